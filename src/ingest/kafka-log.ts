/**
 * kafkajs logs through pino. kafkajs logs at level error much that it retries by itself —
 * a coordinator still loading on a fresh broker, a leader election, a broker restarting
 * — which an on-call engineer would read as an incident. So: an error kafkajs retries (a
 * retriable protocol error, a connection refused or timed out, a retry in progress) is a
 * warn, one line per episode (the first; later ones of the same kind are counted, and the
 * count is in the first line of the next episode); an error that needs a person (an
 * authentication failure, a crash after the retries ran out, anything else) stays an
 * error. Below warn, everything goes to debug.
 */
import { createRequire } from 'node:module';
import { logLevel as KafkaLogLevel, type LogEntry, type logCreator } from 'kafkajs';
import type { Logger } from '../log.js';

/** Silence that ends an episode of one retried error (ms). */
export const RETRY_EPISODE_GAP_MS = 60_000;

/** The messages of the Kafka protocol errors kafkajs marks retriable (its own table; empty if its layout changed). */
function retriableProtocolMessages(): Set<string> {
  try {
    const table = createRequire(import.meta.url)('kafkajs/src/protocol/error.js') as { errorCodes: { message: string; retriable: boolean }[] };
    return new Set(table.errorCodes.filter((e) => e.retriable).map((e) => e.message));
  } catch {
    return new Set();
  }
}

const RETRIABLE = retriableProtocolMessages();
/** Messages of what kafkajs retries without a protocol error: connections, and its own retry and restart notices. */
const RETRIED = /^(Connection error|Connection timeout|Failed to connect to broker|Restarting the consumer|The coordinator is not aware of this member|Crash: KafkaJSConnection)|ECONNREFUSED|ETIMEDOUT|ECONNRESET/;

/** Whether a kafkajs error-level entry is one it retries by itself. */
export function isRetried(message: string, fields: Record<string, unknown>): boolean {
  const error = typeof fields.error === 'string' ? fields.error : '';
  if (RETRIABLE.has(error) || RETRIABLE.has(message)) return true;
  if (/KafkaJSNumberOfRetriesExceeded|SASL|[Aa]uthenticat|[Aa]uthoriz/.test(`${message} ${error}`)) return false;
  return RETRIED.test(message) || RETRIED.test(error) || fields.retryCount !== undefined;
}

export function kafkaLogCreator(log: Logger, now: () => number): logCreator {
  const child = log.child({ component: 'kafkajs' });
  /** Per kind of retried error: when it was last seen and how many lines the episode held back. */
  const episodes = new Map<string, { last: number; suppressed: number }>();
  return () =>
    ({ level, log: entry }: LogEntry) => {
      const { message, ...rest } = entry;
      if (level > KafkaLogLevel.WARN) {
        child.debug(rest, message);
        return;
      }
      if (level === KafkaLogLevel.WARN || !isRetried(message, rest)) {
        if (level === KafkaLogLevel.WARN) child.warn(rest, message);
        else child.error(rest, message);
        return;
      }
      const key = `${message}\u0000${typeof rest.error === 'string' ? rest.error : ''}`;
      const t = now();
      const e = episodes.get(key);
      if (e !== undefined && t - e.last < RETRY_EPISODE_GAP_MS) {
        e.last = t;
        e.suppressed++;
        child.debug(rest, message);
        return;
      }
      child.warn({ ...rest, retried: true, ...(e !== undefined && e.suppressed > 0 ? { repeatsInLastEpisode: e.suppressed } : {}) }, `${message} (kafkajs retries this; one line per episode)`);
      episodes.set(key, { last: t, suppressed: 0 });
    };
}
