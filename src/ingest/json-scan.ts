/**
 * The fast path of the JSON tick codec: reads the common message shape, one flat object
 * of numbers, nulls and plain ASCII strings, straight from the message bytes into
 * TickFields, without building a string or an object per message (JSON.parse of a
 * 170-byte tick costs about 2 µs here, most of the JSON budget).
 *
 * It declines (returns false) anything it does not handle exactly as JSON.parse would:
 * nesting, escapes, non-ASCII bytes, duplicate keys, true/false, numbers outside the
 * exactly-rounded fast range, malformed input. The caller then takes the JSON.parse path,
 * so the two paths accept, reject and decode identically (a differential test checks it).
 */
import { SYMBOL_MALFORMED, type DecodeContext } from './decode.js';
import { KIND_SNAPSHOT, KIND_TRADE, SIDE_BUY, SIDE_SELL, SIDE_UNKNOWN, symbolKey } from './events.js';
import type { TickBatch } from './events.js';
import {
  CODE_INVALID,
  decodeTickFields,
  decodeTickJson,
  FIELD_NUMBER,
  TICK_NUMBER_FIELDS,
  TickFields,
} from './json-codec.js';

const QUOTE = 34;
const COMMA = 44;
const COLON = 58;
const OPEN = 123;
const CLOSE = 125;
const MINUS = 45;
const DOT = 46;
const BACKSLASH = 92;

/** Powers of ten exactly representable as doubles (10^0 .. 10^22). */
const POW10 = Float64Array.from({ length: 23 }, (_, i) => 10 ** i);

/** Key ids: numeric fields by their TICK_NUMBER_FIELDS index, then the string fields. */
const K_SYMBOL = 100;
const K_KIND = 101;
const K_SIDE = 102;
const K_UNKNOWN = -1;
const fieldIndex = (name: (typeof TICK_NUMBER_FIELDS)[number]): number => TICK_NUMBER_FIELDS.indexOf(name);
const K_TS = fieldIndex('ts');
const K_PRICE = fieldIndex('price');
const K_VOLUME = fieldIndex('volume');
const K_AMOUNT = fieldIndex('amount');
const K_SEQ = fieldIndex('seq');
const K_CUM_VOLUME = fieldIndex('cumVolume');
const K_CUM_AMOUNT = fieldIndex('cumAmount');
const K_BID1 = fieldIndex('bid1');
const K_ASK1 = fieldIndex('ask1');
const K_BID_VOL1 = fieldIndex('bidVol1');
const K_ASK_VOL1 = fieldIndex('askVol1');

function isSpace(c: number): boolean {
  return c === 32 || c === 10 || c === 13 || c === 9;
}

/** 31-multiplier hash of a key's bytes, as stringEnd computes it while scanning. */
function hashOf(name: string): number {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (Math.imul(h, 31) + name.charCodeAt(i)) | 0;
  return h;
}

const KEY_NAMES: [string, number][] = [
  ['ts', K_TS],
  ['price', K_PRICE],
  ['volume', K_VOLUME],
  ['amount', K_AMOUNT],
  ['seq', K_SEQ],
  ['cumVolume', K_CUM_VOLUME],
  ['cumAmount', K_CUM_AMOUNT],
  ['bid1', K_BID1],
  ['ask1', K_ASK1],
  ['bidVol1', K_BID_VOL1],
  ['askVol1', K_ASK_VOL1],
  ['symbol', K_SYMBOL],
  ['kind', K_KIND],
  ['side', K_SIDE],
];
const KEY_HASHES = Int32Array.from(KEY_NAMES, ([name]) => hashOf(name));
const KEY_IDS = Int32Array.from(KEY_NAMES, ([, id]) => id);
const KEY_BYTES = KEY_NAMES.map(([name]) => Uint8Array.from(name, (c) => c.charCodeAt(0)));

/** The id of the key in bytes [start, end) with hash `h`: a hash match, confirmed byte by byte. */
function keyId(b: Uint8Array, start: number, end: number, h: number): number {
  for (let k = 0; k < KEY_HASHES.length; k++) {
    if (KEY_HASHES[k] !== h) continue;
    const name = KEY_BYTES[k];
    if (name.length !== end - start) return K_UNKNOWN;
    for (let i = 0; i < name.length; i++) if (name[i] !== b[start + i]) return K_UNKNOWN;
    return KEY_IDS[k];
  }
  return K_UNKNOWN;
}

function sameBytes(b: Uint8Array, start: number, end: number, text: string): boolean {
  if (end - start !== text.length) return false;
  for (let i = 0; i < text.length; i++) if (b[start + i] !== text.charCodeAt(i)) return false;
  return true;
}

/** The value of the last number scanned (module-level: the hot path allocates nothing). */
let numberValue = 0;
const latin1 = new TextDecoder('latin1');

/**
 * Parses a JSON number (RFC 8259 grammar) starting at `i`; sets numberValue and returns
 * the index after it, or -1 on bad grammar. Values within the exact fast path (Clinger:
 * integer mantissa below 2^53, a power of ten up to 10^22) are computed directly; others
 * (17-digit doubles such as 3003.0000000000005) go through Number() of their text.
 */
function scanNumber(b: Uint8Array, i: number, end: number): number {
  const start = i;
  let negative = false;
  if (b[i] === MINUS) {
    negative = true;
    i++;
  }
  if (i >= end) return -1;
  let mantissa = 0;
  let digits = 0;
  let exp10 = 0;
  let c = b[i];
  if (c === 48) {
    i++;
  } else if (c >= 49 && c <= 57) {
    while (i < end && (c = b[i]) >= 48 && c <= 57) {
      mantissa = mantissa * 10 + (c - 48);
      digits++;
      i++;
    }
  } else return -1;
  if (i < end && b[i] === DOT) {
    i++;
    const fracStart = i;
    while (i < end && (c = b[i]) >= 48 && c <= 57) {
      mantissa = mantissa * 10 + (c - 48);
      digits++;
      exp10--;
      i++;
    }
    if (i === fracStart) return -1;
  }
  if (i < end && (b[i] === 101 || b[i] === 69)) {
    i++;
    let expNegative = false;
    if (b[i] === 43 || b[i] === MINUS) {
      expNegative = b[i] === MINUS;
      i++;
    }
    const expStart = i;
    let e = 0;
    while (i < end && (c = b[i]) >= 48 && c <= 57) {
      if (e < 100_000) e = e * 10 + (c - 48);
      i++;
    }
    if (i === expStart) return -1;
    exp10 += expNegative ? -e : e;
  }
  if (digits > 15 || exp10 < -22 || exp10 > 22) {
    numberValue = Number(latin1.decode(b.subarray(start, i)));
    return i;
  }
  const v = exp10 < 0 ? mantissa / POW10[-exp10] : mantissa * POW10[exp10];
  numberValue = negative ? -v : v;
  return i;
}

/** Hash of the last string scanned by stringEnd. */
let stringHash = 0;

/**
 * Index of the closing quote of a string whose body starts at `i`, or -1 when it has
 * escapes, control or non-ASCII bytes. Leaves the body's hash in stringHash.
 */
function stringEnd(b: Uint8Array, i: number, end: number): number {
  let h = 0;
  while (i < end) {
    const c = b[i];
    if (c === QUOTE) {
      stringHash = h;
      return i;
    }
    if (c === BACKSLASH || c >= 128 || c < 32) return -1;
    h = (Math.imul(h, 31) + c) | 0;
    i++;
  }
  return -1;
}

function skipSpace(b: Uint8Array, i: number, end: number): number {
  while (i < end && isSpace(b[i])) i++;
  return i;
}

/**
 * Reads a flat tick object from bytes [start, end) into `t`. Returns false when the
 * message needs the general JSON.parse path.
 */
export function scanTickJson(b: Uint8Array, start: number, end: number, t: TickFields, ctx: DecodeContext): boolean {
  t.reset();
  let i = skipSpace(b, start, end);
  if (b[i] !== OPEN) return false;
  i = skipSpace(b, i + 1, end);
  if (b[i] === CLOSE) return skipSpace(b, i + 1, end) === end;
  let seen = 0;
  while (true) {
    if (i >= end || b[i] !== QUOTE) return false;
    const keyStart = i + 1;
    const keyEnd = stringEnd(b, keyStart, end);
    if (keyEnd < 0) return false;
    const key = keyId(b, keyStart, keyEnd, stringHash);
    if (key !== K_UNKNOWN) {
      const bit = 1 << (key >= K_SYMBOL ? key - K_SYMBOL + TICK_NUMBER_FIELDS.length : key);
      if (seen & bit) return false; // duplicate key: JSON.parse keeps the last
      seen |= bit;
    }
    i = skipSpace(b, keyEnd + 1, end);
    if (b[i] !== COLON) return false;
    i = skipSpace(b, i + 1, end);
    if (i >= end) return false;
    const c = b[i];
    if (c === QUOTE) {
      const vStart = i + 1;
      const vEnd = stringEnd(b, vStart, end);
      if (vEnd < 0) return false;
      i = vEnd + 1;
      if (key === K_SYMBOL) {
        const k = symbolKey(b, vStart, vEnd);
        t.symbolId = k >= 0 ? ctx.symbols.internKey(k) : SYMBOL_MALFORMED;
        if (t.symbolId < 0) t.symbolText = latin1.decode(b.subarray(vStart, vEnd));
      } else if (key === K_KIND) {
        t.kind = sameBytes(b, vStart, vEnd, 'trade') ? KIND_TRADE : sameBytes(b, vStart, vEnd, 'snapshot') ? KIND_SNAPSHOT : CODE_INVALID;
      } else if (key === K_SIDE) {
        const one = vEnd - vStart === 1 ? b[vStart] : 0;
        t.side = one === 66 ? SIDE_BUY : one === 83 ? SIDE_SELL : one === 78 ? SIDE_UNKNOWN : CODE_INVALID;
      } else if (key !== K_UNKNOWN) {
        return false; // a string where a number goes (or an ISO time): the general path
      }
    } else if (c === 110) {
      // null: absent, as the JSON.parse path treats it
      if (!sameBytes(b, i, i + 4, 'null')) return false;
      i += 4;
    } else if (c === MINUS || (c >= 48 && c <= 57)) {
      i = scanNumber(b, i, end);
      if (i < 0) return false;
      if (key >= 0 && key < K_SYMBOL) {
        t.num[key] = numberValue;
        t.state[key] = FIELD_NUMBER;
      } else if (key !== K_UNKNOWN) {
        return false;
      }
    } else {
      return false; // objects, arrays, true/false
    }
    i = skipSpace(b, i, end);
    if (b[i] === COMMA) {
      i = skipSpace(b, i + 1, end);
      continue;
    }
    if (b[i] === CLOSE) return skipSpace(b, i + 1, end) === end;
    return false;
  }
}

const fields = new TickFields();
// ignoreBOM keeps a byte-order mark in the text, so that it is rejected as JSON.parse rejects it (RFC 8259 forbids one).
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

/**
 * Decodes one JSON tick message given as bytes [start, end) (a Kafka message value): the
 * fast scan when the message has the common shape, JSON.parse otherwise.
 */
export function decodeTickJsonBytes(bytes: Uint8Array, start: number, end: number, origin: number, out: TickBatch, ctx: DecodeContext): boolean {
  if (scanTickJson(bytes, start, end, fields, ctx)) return decodeTickFields(fields, origin, out, ctx);
  return decodeTickJson(utf8.decode(bytes.subarray(start, end)), origin, out, ctx);
}
