/**
 * Produce requests of bounded size. kafkajs puts every message of one send for a
 * partition into one record batch, and a broker refuses a batch above its
 * message.max.bytes (1 MB by default): replay and the daemon's transactions send in
 * chunks of at most `maxBytes` (value + key + headers) and `maxCount` messages — per
 * partition where the partition of every message is known (the daemon's keyed outputs:
 * a close's 5,000 score messages over 4 partitions go in one request, not three), per
 * request otherwise.
 */
import { Partitioners, type PartitionMetadata } from 'kafkajs';

export const REQUEST_BYTES = 900_000;
export const REQUEST_MESSAGES = 2_000;
/** What one request carries at most when its chunks are per partition (many partitions' chunks of a topic go together). */
export const REQUEST_TOTAL_BYTES = 16_000_000;

export interface SizedMessage {
  key: Buffer | string | null;
  value: Buffer | null;
  headers?: Record<string, string>;
}

// A headers object's bytes, once per object: a close's messages share one (sink/scores.ts).
const headerBytes = new WeakMap<Record<string, string>, number>();

/**
 * A message's bytes in a record batch, bounded from above: the key, value and headers as
 * UTF-8, with room for the record's own fields (its length, attributes, deltas and the
 * lengths: at most 36 bytes, and 8 a header). test/sink.test.ts checks it against kafkajs's
 * own encoding; a string's length in UTF-16 units, counted until 2026-12-06, fell below it
 * for non-ASCII keys and headers.
 */
export function recordBytes(m: SizedMessage): number {
  const key = m.key === null ? 0 : typeof m.key === 'string' ? Buffer.byteLength(m.key) : m.key.length;
  let n = (m.value?.length ?? 0) + key + 64;
  if (m.headers !== undefined) {
    let h = headerBytes.get(m.headers);
    if (h === undefined) {
      h = 0;
      for (const [k, v] of Object.entries(m.headers)) h += Buffer.byteLength(k) + Buffer.byteLength(v) + 8;
      headerBytes.set(m.headers, h);
    }
    n += h;
  }
  return n;
}

/** Consecutive runs of `messages`, each within the limits (a message larger than maxBytes goes alone). */
export function* chunks<T extends SizedMessage>(messages: readonly T[], maxBytes = REQUEST_BYTES, maxCount = REQUEST_MESSAGES): Generator<T[]> {
  let from = 0;
  while (from < messages.length) {
    let to = from;
    let bytes = 0;
    while (to < messages.length && to - from < maxCount) {
      const size = recordBytes(messages[to]);
      if (to > from && bytes + size > maxBytes) break;
      bytes += size;
      to++;
    }
    yield messages.slice(from, to);
    from = to;
  }
}

/** The partition a producer sends a keyed message of `topic` to; undefined where not known here (the producer decides). */
export type PartitionOf = (topic: string, key: Buffer | string) => number | undefined;

/**
 * The producers' own choice (kafkajs's DefaultPartitioner, Java's murmur2 partitioner) over
 * each topic's partitions as `metadata` lists them; undefined for a topic it does not list.
 * Remembered per topic and key (the same symbols every close; the partitioner costs about
 * 1 us a call), up to PARTITION_CACHE keys per topic and kind of key.
 */
export function producerPartitions(metadata: ReadonlyMap<string, PartitionMetadata[]>): PartitionOf {
  const partitioner = Partitioners.DefaultPartitioner();
  // Per topic and kind of key, then per key: no string of both built per message. A string
  // key is hashed as its UTF-8 bytes, a Buffer's as latin1 text (one character per byte, so
  // distinct keys stay distinct): the two kinds need their own maps.
  const caches = new Map<string, { text: Map<string, number>; bytes: Map<string, number> }>();
  return (topic, key) => {
    const partitionMetadata = metadata.get(topic);
    if (partitionMetadata === undefined || partitionMetadata.length === 0) return undefined;
    let byKind = caches.get(topic);
    if (byKind === undefined) caches.set(topic, (byKind = { text: new Map(), bytes: new Map() }));
    const text = typeof key === 'string';
    const cache = text ? byKind.text : byKind.bytes;
    const k = text ? key : key.toString('latin1');
    let partition = cache.get(k);
    if (partition === undefined) {
      partition = partitioner({ topic, partitionMetadata, message: { key, value: null } });
      if (cache.size >= PARTITION_CACHE) cache.clear();
      cache.set(k, partition);
    }
    return partition;
  };
}

const PARTITION_CACHE = 100_000;

/** What a request carries of a message: its partition where serve sets it. */
export interface OutgoingMessage extends SizedMessage {
  partition?: number;
}

/**
 * Produce requests for messages to several topics: each request carries at most one part
 * per topic (kafkajs keys a request's data by topic, so a topic appears once in it), the
 * r-th of each in the r-th request. Messages of one topic keep their order within each
 * partition. With `partitionOf`, a topic whose every message has a key of a known
 * partition is sent with those partitions set, bounded per partition (topicParts).
 */
export function* topicRounds<T extends SizedMessage>(batches: readonly { topic: string; messages: readonly T[] }[], partitionOf?: PartitionOf): Generator<{ topic: string; messages: OutgoingMessage[] }[]> {
  const byTopic = new Map<string, T[]>();
  for (const b of batches) {
    const list = byTopic.get(b.topic);
    if (list === undefined) byTopic.set(b.topic, [...b.messages]);
    else for (const m of b.messages) list.push(m);
  }
  const pending = [...byTopic].map(([topic, messages]) => ({ topic, parts: topicParts(topic, messages, partitionOf) }));
  for (;;) {
    const round: { topic: string; messages: OutgoingMessage[] }[] = [];
    for (const p of pending) {
      const next = p.parts.next();
      if (next.done !== true && next.value.length > 0) round.push({ topic: p.topic, messages: next.value });
    }
    if (round.length === 0) return;
    yield round;
  }
}

/**
 * One topic's messages in the parts of successive requests. Where every message's partition
 * is known, each partition's messages are chunked within REQUEST_BYTES (the broker's limit
 * is per partition's record batch) and a part takes the next chunk of every partition, up to
 * REQUEST_TOTAL_BYTES; otherwise (a message without a key, a topic whose partitions are not
 * known) the part is bounded as a whole, as if all of it went to one partition.
 */
function* topicParts<T extends SizedMessage>(topic: string, messages: T[], partitionOf: PartitionOf | undefined): Generator<OutgoingMessage[]> {
  const byPartition = partitionOf === undefined ? undefined : partitionsOf(topic, messages, partitionOf);
  if (byPartition === undefined) {
    yield* chunks(messages);
    return;
  }
  const queues = [...byPartition].map(([partition, list]) => ({ partition, chunks: [...chunks(list, REQUEST_BYTES, Infinity)], next: 0 }));
  for (;;) {
    const part: OutgoingMessage[] = [];
    let bytes = 0;
    for (const q of queues) {
      if (q.next === q.chunks.length) continue;
      const chunk = q.chunks[q.next];
      const size = chunk.reduce((n, m) => n + recordBytes(m), 0);
      if (part.length > 0 && bytes + size > REQUEST_TOTAL_BYTES) break;
      bytes += size;
      q.next++;
      for (const m of chunk) part.push({ key: m.key, value: m.value, headers: m.headers, partition: q.partition });
    }
    if (part.length === 0) return;
    yield part;
  }
}

/** The messages by partition, in order, or undefined when one of them has no known partition. */
function partitionsOf<T extends SizedMessage>(topic: string, messages: readonly T[], partitionOf: PartitionOf): Map<number, T[]> | undefined {
  const out = new Map<number, T[]>();
  for (const m of messages) {
    const partition = m.key === null ? undefined : partitionOf(topic, m.key);
    if (partition === undefined) return undefined;
    const list = out.get(partition);
    if (list === undefined) out.set(partition, [m]);
    else list.push(m);
  }
  return out;
}
