/**
 * kafkajs's log lines through pino (issue 18, item 5): what kafkajs retries by itself is a
 * warn, one line per episode; what needs a person stays an error. The protocol errors are
 * kafkajs's own retriable ones (the messages a fresh broker sends while its coordinator
 * loads), not a list kept here.
 */
import { Writable } from 'node:stream';
import { logLevel } from 'kafkajs';
import { pino } from 'pino';
import type { Logger } from '../src/log.js';
import { describe, expect, it } from 'vitest';
import { isRetried, kafkaLogCreator, RETRY_EPISODE_GAP_MS } from '../src/ingest/kafka-log.js';

function capture(): { lines: Record<string, unknown>[]; log: Logger } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { lines, log: pino({ level: 'info' }, sink) as unknown as Logger };
}

describe('kafkajs log levels', () => {
  it('a retried error is one warn per episode, with the count of the previous one; what needs a person is an error', async () => {
    const { lines, log } = capture();
    let t = 0;
    const entry = kafkaLogCreator(log, () => t)(logLevel.ERROR);
    const coordinator = { namespace: 'Connection', label: 'ERROR', timestamp: '', message: 'Response GroupCoordinator(key: 10, version: 2)', error: 'The group coordinator is not available', correlationId: 1 };
    for (let i = 0; i < 5; i++) {
      entry({ namespace: 'Connection', level: logLevel.ERROR, label: 'ERROR', log: { ...coordinator, timestamp: String(t) } });
      t += 1_000;
    }
    t += RETRY_EPISODE_GAP_MS;
    entry({ namespace: 'Connection', level: logLevel.ERROR, label: 'ERROR', log: coordinator });
    entry({ namespace: 'Connection', level: logLevel.ERROR, label: 'ERROR', log: { ...coordinator, message: 'Connection error: connect ECONNREFUSED 127.0.0.1:9092', error: undefined as unknown as string } });
    entry({ namespace: 'Consumer', level: logLevel.ERROR, label: 'ERROR', log: { ...coordinator, message: 'Crash: KafkaJSNumberOfRetriesExceeded: The group coordinator is not available', error: undefined as unknown as string } });
    entry({ namespace: 'SASLSCRAMAuthenticator', level: logLevel.ERROR, label: 'ERROR', log: { ...coordinator, message: 'SASL SCRAM SHA512 authentication failed for user fs: Authentication failed', error: undefined as unknown as string } });
    entry({ namespace: 'Consumer', level: logLevel.INFO, label: 'INFO', log: { ...coordinator, message: 'Starting' } });
    log.flush();
    await new Promise((r) => setTimeout(r, 20));
    expect(lines.map((l) => [l.level, l.msg, l.repeatsInLastEpisode])).toEqual([
      [40, 'Response GroupCoordinator(key: 10, version: 2) (kafkajs retries this; one line per episode)', undefined],
      [40, 'Response GroupCoordinator(key: 10, version: 2) (kafkajs retries this; one line per episode)', 4],
      [40, 'Connection error: connect ECONNREFUSED 127.0.0.1:9092 (kafkajs retries this; one line per episode)', undefined],
      [50, 'Crash: KafkaJSNumberOfRetriesExceeded: The group coordinator is not available', undefined],
      [50, 'SASL SCRAM SHA512 authentication failed for user fs: Authentication failed', undefined],
    ]);
  });

  it('takes the retriable protocol errors from kafkajs itself', () => {
    expect(isRetried('Response FindCoordinator(key: 10, version: 2)', { error: "The coordinator is loading and hence can't process requests for this group" })).toBe(true);
    expect(isRetried('Response Produce(key: 0, version: 7)', { error: 'This server is not the leader for that topic-partition' })).toBe(true);
    expect(isRetried('Response InitProducerId(key: 22, version: 1)', { error: 'Not authorized to access topics: [Topic authorization failed.]' })).toBe(false);
    expect(isRetried('Response Produce(key: 0, version: 7)', { error: 'The producer attempted to use a producer id which is not currently assigned to its transactional id' })).toBe(false);
  });
});
