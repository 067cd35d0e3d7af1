/**
 * Reads topics whole, as they stand: every retained message of every partition from the
 * earliest offset up to the end captured when the read starts, in offset order per
 * partition, then stops. `reconcile` reads recorded input, published scores and dead
 * letters with it. The consumer group is a throwaway one (nothing is committed), and
 * `readCommitted` reads as trading systems do: only messages of committed transactions.
 */
import { randomUUID } from 'node:crypto';
import type { IHeaders, Kafka } from 'kafkajs';
import type { InputMessage } from './message-decoder.js';

export interface TopicReadOptions {
  readCommitted: boolean;
  /** Give up (with an error naming the partitions still short of their end) after this long. */
  timeoutMs: number;
}

/** Kafka record headers as text (the first value of a repeated header). */
export function headerText(h: IHeaders | undefined): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(h ?? {})) {
    if (v === undefined) continue;
    const first = Array.isArray(v) ? v[0] : v;
    out[k] = first === undefined ? undefined : first.toString();
  }
  return out;
}

/** Reads `topics` to their current ends, calling `onMessage` per message (per partition in offset order); resolves with the message count. */
export async function readTopics(kafka: Kafka, topics: readonly string[], onMessage: (m: InputMessage) => void | Promise<void>, opts: TopicReadOptions): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  const existing = new Set(await admin.listTopics());
  /** topic/partition -> offset the read is complete at (the end when it started). */
  const ends = new Map<string, number>();
  const reached = new Map<string, number>();
  try {
    for (const topic of topics) {
      if (!existing.has(topic)) continue;
      for (const o of await admin.fetchTopicOffsets(topic)) {
        if (Number(o.high) > Number(o.low)) ends.set(`${topic}/${o.partition}`, Number(o.high));
      }
    }
  } finally {
    await admin.disconnect();
  }
  const present = topics.filter((t) => existing.has(t));
  if (ends.size === 0) return 0;
  const consumer = kafka.consumer({ groupId: `factorstream-read-${randomUUID()}`, readUncommitted: !opts.readCommitted, allowAutoTopicCreation: false });
  let count = 0;
  let finish: () => void = () => undefined;
  let fail: (err: Error) => void = () => undefined;
  const done = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  const complete = (): boolean => [...ends].every(([k, end]) => (reached.get(k) ?? 0) >= end);
  // Batches of transaction markers or aborted messages only reach no handler: the batch events show their offsets.
  consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
    const k = `${e.payload.topic}/${e.payload.partition}`;
    reached.set(k, Math.max(reached.get(k) ?? 0, Number(e.payload.lastOffset) + 1));
    if (complete()) finish();
  });
  const timer = setTimeout(() => {
    const short = [...ends].filter(([k, end]) => (reached.get(k) ?? 0) < end).map(([k, end]) => `${k} at ${reached.get(k) ?? 0} of ${end}`);
    fail(new Error(`reading ${present.join(', ')} did not reach the end of ${short.join('; ')} within ${opts.timeoutMs} ms${opts.readCommitted ? ' (a transaction still open?)' : ''}`));
  }, opts.timeoutMs);
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: present, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const k = `${batch.topic}/${batch.partition}`;
        const end = ends.get(k) ?? 0;
        for (const message of batch.messages) {
          const offset = Number(message.offset);
          if (offset >= end) break;
          await onMessage({ topic: batch.topic, partition: batch.partition, offset, key: message.key, value: message.value, headers: headerText(message.headers) });
          count++;
        }
      },
    });
    await done;
  } finally {
    clearTimeout(timer);
    await consumer.disconnect();
  }
  return count;
}
