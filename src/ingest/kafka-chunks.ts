/**
 * Produce requests of bounded size. kafkajs puts every message of one send for a
 * partition into one record batch, and a broker refuses a batch above its
 * message.max.bytes (1 MB by default): replay and the daemon's transactions send in
 * chunks of at most `maxBytes` (value + key + headers) and `maxCount` messages.
 */
export const REQUEST_BYTES = 900_000;
export const REQUEST_MESSAGES = 2_000;

export interface SizedMessage {
  key: Buffer | string | null;
  value: Buffer | null;
  headers?: Record<string, string>;
}

function sizeOf(m: SizedMessage): number {
  let n = (m.value?.length ?? 0) + (m.key?.length ?? 0) + 64;
  if (m.headers !== undefined) for (const [k, v] of Object.entries(m.headers)) n += k.length + v.length + 8;
  return n;
}

/** Consecutive runs of `messages`, each within the limits (a message larger than maxBytes goes alone). */
export function* chunks<T extends SizedMessage>(messages: readonly T[], maxBytes = REQUEST_BYTES, maxCount = REQUEST_MESSAGES): Generator<T[]> {
  let from = 0;
  while (from < messages.length) {
    let to = from;
    let bytes = 0;
    while (to < messages.length && to - from < maxCount) {
      const size = sizeOf(messages[to]);
      if (to > from && bytes + size > maxBytes) break;
      bytes += size;
      to++;
    }
    yield messages.slice(from, to);
    from = to;
  }
}

/**
 * Produce requests for messages to several topics: each request carries at most one chunk
 * per topic (kafkajs keys a request's data by topic, so a topic appears once in it), the
 * r-th of each in the r-th request. Messages of one topic keep their order.
 */
export function* topicRounds<T extends SizedMessage>(batches: readonly { topic: string; messages: readonly T[] }[]): Generator<{ topic: string; messages: T[] }[]> {
  const byTopic = new Map<string, T[]>();
  for (const b of batches) {
    const list = byTopic.get(b.topic);
    if (list === undefined) byTopic.set(b.topic, [...b.messages]);
    else for (const m of b.messages) list.push(m);
  }
  const pending = [...byTopic].map(([topic, messages]) => ({ topic, parts: chunks(messages) }));
  for (;;) {
    const round: { topic: string; messages: T[] }[] = [];
    for (const p of pending) {
      const next = p.parts.next();
      if (next.done !== true && next.value.length > 0) round.push({ topic: p.topic, messages: next.value });
    }
    if (round.length === 0) return;
    yield round;
  }
}
