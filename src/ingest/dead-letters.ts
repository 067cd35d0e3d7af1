/**
 * Dead letters (DESIGN §2): a message with rejected events goes to the dead-letter topic
 * once per error code, as it came (key, value, headers) plus why and where — headers
 * `error`, `error-detail` (the first reject's), `error-count`, `error-rows` (rows inside
 * an Arrow message, when known), `source-topic`, `source-partition`, `source-offset`.
 */
import type { ErrorCode, Reject } from '../errors.js';
import type { InputMessage } from './message-decoder.js';

export interface DeadLetter {
  key: Buffer | null;
  value: Buffer;
  headers: Record<string, string>;
}

const EMPTY = Buffer.alloc(0);
/** Header limits: a detail is one line, a row list a thousand rows (error-count has them all). */
const MAX_DETAIL = 500;
const MAX_ROWS = 1_000;

/** The dead letters of one message: one per error code among its rejects, in the order the codes first occur. */
export function deadLetters(m: InputMessage, rejects: readonly Reject[]): DeadLetter[] {
  const byCode = new Map<ErrorCode, Reject[]>();
  for (const r of rejects) {
    let list = byCode.get(r.code);
    if (list === undefined) byCode.set(r.code, (list = []));
    list.push(r);
  }
  const out: DeadLetter[] = [];
  for (const [code, list] of byCode) {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(m.headers)) if (v !== undefined) headers[k] = v;
    headers.error = code;
    headers['error-detail'] = list[0].detail.slice(0, MAX_DETAIL);
    headers['error-count'] = String(list.length);
    const rows = list.filter((r) => r.row >= 0).map((r) => r.row);
    if (rows.length > 0) headers['error-rows'] = rows.slice(0, MAX_ROWS).join(',');
    headers['source-topic'] = m.topic;
    headers['source-partition'] = String(m.partition);
    headers['source-offset'] = String(m.offset);
    out.push({ key: m.key, value: m.value ?? EMPTY, headers });
  }
  return out;
}
