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
