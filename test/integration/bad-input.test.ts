/**
 * Bad input through the real broker: every kind of bad message a feed can send is
 * dead-lettered with its stable code and source coordinates, counted in
 * factorstream_events_invalid_total, and the daemon goes on scoring.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeTicksArrow } from '../../src/ingest/arrow-codec.js';
import { SymbolTable, TickBatch } from '../../src/ingest/events.js';
import { decodeTickObject } from '../../src/ingest/json-codec.js';
import { collectingContext } from '../helpers.js';
import { brokers, cli, daemonConfig, kafkaSkipReason, startDaemon, Subscriber, tempDir, topicsFor, waitForLog, type DaemonProcess } from './kafka-harness.js';

const DAY = '2026-11-23';
const at = (hhmmss: string): number => Date.parse(`${DAY}T${hhmmss}+08:00`);
const JSON_TYPE = 'application/json';
const ARROW_TYPE = 'application/vnd.apache.arrow.stream';

function truncatedArrow(): Buffer {
  const symbols = new SymbolTable();
  const ticks = new TickBatch(2);
  decodeTickObject({ symbol: '600000.SH', ts: at('09:31:00'), price: 10, volume: 100 }, 0, ticks, collectingContext(symbols));
  decodeTickObject({ symbol: '600000.SH', ts: at('09:31:01'), price: 10.01, volume: 200 }, 1, ticks, collectingContext(symbols));
  const bytes = encodeTicksArrow(ticks, symbols);
  return Buffer.from(bytes.subarray(0, bytes.length - 40));
}

/** Each bad message and the code it must be dead-lettered with. */
const BAD: { code: string; key: string; value: Buffer; contentType: string }[] = [
  { code: 'E_MALFORMED', key: '600000.SH', value: Buffer.from('{"symbol":"600000.SH","ts":'), contentType: JSON_TYPE },
  { code: 'E_SCHEMA', key: '600000.SH', value: Buffer.from('{"symbol":"600000.SH","ts":"soon","price":"ten"}'), contentType: JSON_TYPE },
  { code: 'E_NEGATIVE_VOLUME', key: '600000.SH', value: Buffer.from(JSON.stringify({ symbol: '600000.SH', ts: at('09:31:02'), price: 10, volume: -100 })), contentType: JSON_TYPE },
  { code: 'E_BAD_SYMBOL', key: '60000.SH', value: Buffer.from(JSON.stringify({ symbol: '60000.SH', ts: at('09:31:03'), price: 10, volume: 100 })), contentType: JSON_TYPE },
  { code: 'E_OUT_OF_SESSION', key: '600000.SH', value: Buffer.from(JSON.stringify({ symbol: '600000.SH', ts: at('12:00:00'), price: 10, volume: 100 })), contentType: JSON_TYPE },
  { code: 'E_MALFORMED', key: '600000.SH', value: truncatedArrow(), contentType: ARROW_TYPE },
  { code: 'E_OVERSIZED', key: '600000.SH', value: Buffer.from(JSON.stringify({ symbol: '600000.SH', ts: at('09:31:04'), price: 10, volume: 1, pad: 'x'.repeat(70_000) })), contentType: JSON_TYPE },
  { code: 'E_UNKNOWN_CONTENT_TYPE', key: '600000.SH', value: Buffer.from('600000.SH,10.0,100'), contentType: 'text/csv' },
  // A snapshot feed whose cumulative volume goes down, and a trade sent twice (same seq).
  { code: 'OK', key: '600999.SH', value: Buffer.from(JSON.stringify({ symbol: '600999.SH', kind: 'snapshot', ts: at('09:32:00'), price: 10, cumVolume: 1000, cumAmount: 10_000 })), contentType: JSON_TYPE },
  { code: 'E_CUMULATIVE_DECREASE', key: '600999.SH', value: Buffer.from(JSON.stringify({ symbol: '600999.SH', kind: 'snapshot', ts: at('09:32:03'), price: 10, cumVolume: 500, cumAmount: 5_000 })), contentType: JSON_TYPE },
  { code: 'OK', key: '600998.SH', value: Buffer.from(JSON.stringify({ symbol: '600998.SH', ts: at('09:31:00'), price: 10, volume: 100, seq: 77 })), contentType: JSON_TYPE },
  { code: 'E_DUPLICATE', key: '600998.SH', value: Buffer.from(JSON.stringify({ symbol: '600998.SH', ts: at('09:31:00'), price: 10, volume: 100, seq: 77 })), contentType: JSON_TYPE },
];

describe.skipIf(kafkaSkipReason !== '')('bad input through a real broker', () => {
  const dir = tempDir('bad-input');
  let daemon: DaemonProcess | undefined;
  afterAll(() => {
    daemon?.proc.kill('SIGKILL');
  });

  it('dead-letters each bad message with its code and coordinates, counts it, and keeps scoring', async () => {
    const inputs = topicsFor(`bad-${Date.now()}`);
    const outputs = topicsFor(`bad-out-${Date.now()}`);
    const sim = join(dir, 'sim');
    expect(cli(['simulate', '--symbols', '30', '--days', '1', '--seed', '3', '--start', DAY, '--trades-per-day', '400', '--out', sim, '--format', 'arrow']).code).toBe(0);

    const kafka = new Kafka({ clientId: 'bad-input-test', brokers: [brokers], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [inputs.ticks, inputs.bars].map((topic) => ({ topic, numPartitions: 3 })), waitForLeaders: true });
    await admin.disconnect();
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: inputs.ticks, messages: BAD.map((b) => ({ key: b.key, value: b.value, headers: { 'content-type': b.contentType } })) });

    const replayed = cli(['replay', '--input', join(sim, 'ticks'), '--format', 'arrow', '--arrow-rows', '500'], {
      FACTORSTREAM_KAFKA_BROKERS: JSON.stringify([brokers]),
      FACTORSTREAM_KAFKA_TICKS_TOPIC: inputs.ticks,
      FACTORSTREAM_KAFKA_BARS_TOPIC: inputs.bars,
    });
    expect(replayed.code, replayed.stderr).toBe(0);

    const scores = await new Subscriber().start(outputs.scores);
    const dead = await new Subscriber().start(outputs.deadLetter);
    daemon = startDaemon(daemonConfig(dir, 'bad', inputs, outputs, { maxMessageBytes: 65_536 }));
    const port = await daemon.port;
    await waitForLog(daemon, /"msg":"serving"/);
    await scores.until(() => scores.messages.some((m) => m.value.barEnd === at('15:00:00')), 90_000, 'scores of the last bar');

    // After the day has closed, a tick for 10:05 is late.
    await producer.send({ topic: inputs.ticks, messages: [{ key: '600000.SH', value: JSON.stringify({ symbol: '600000.SH', ts: at('10:05:00'), price: 10, volume: 100 }), headers: { 'content-type': JSON_TYPE } }] });
    await producer.disconnect();
    const expectedCodes = [...new Set([...BAD.map((b) => b.code).filter((c) => c !== 'OK'), 'E_LATE'])].sort();
    await dead.until(() => expectedCodes.every((c) => dead.messages.some((m) => m.headers.error === c)), 30_000, `dead letters ${expectedCodes.join(", ")}; got ${dead.messages.map((m) => m.headers.error).join(", ")}; daemon: ${daemon?.logs.filter((l) => !l.includes("scores published")).slice(-8).join("\n")}`);

    const validHeaders = new Ajv2020({ strict: true }).compile(JSON.parse(readFileSync('schemas/deadletter.headers.schema.json', 'utf8')) as object);
    for (const m of dead.messages) {
      expect(validHeaders(m.headers), JSON.stringify(validHeaders.errors)).toBe(true);
      expect(m.headers['source-topic']).toBe(inputs.ticks);
      expect(Number(m.headers['source-partition'])).toBeGreaterThanOrEqual(0);
      expect(Number(m.headers['source-offset'])).toBeGreaterThanOrEqual(0);
      expect(m.headers['error-detail']).not.toBe('');
      expect(m.headers['content-type']).toBeDefined();
    }
    const schema = dead.messages.find((m) => m.headers.error === 'E_SCHEMA');
    expect(schema?.key).toBe('600000.SH');
    expect(dead.raw[dead.messages.indexOf(schema!)].toString()).toBe('{"symbol":"600000.SH","ts":"soon","price":"ten"}');

    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    for (const code of expectedCodes) expect(metrics).toMatch(new RegExp(`factorstream_events_invalid_total\\{code="${code}"\\} [1-9]`));
    expect(metrics).toMatch(/factorstream_late_events_total [1-9]/);
    expect(metrics).toMatch(/factorstream_events_ingested_total\{topic="[^"]+",format="arrow"\} [1-9]/);
    // Still scoring: the whole day closed, every close of both models published.
    expect(new Set(scores.messages.map((m) => `${String(m.value.freq)}|${String(m.value.barEnd)}`)).size).toBeGreaterThan(20);
    await scores.stop();
    await dead.stop();
  }, 240_000);
});
