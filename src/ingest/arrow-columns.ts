/**
 * Column access for Arrow record batches without per-row allocation: numeric columns are
 * viewed (Float64) or converted once per record batch into reusable scratch arrays,
 * 64-bit integers and timestamps are read through an Int32 view (no BigInt per row), and
 * dictionary-encoded strings are mapped once per dictionary.
 */
import * as A from 'apache-arrow';
import { SYMBOL_MALFORMED, SYMBOL_MISSING } from './decode.js';
import { symbolKey, type SymbolTable } from './events.js';

const TWO_32 = 4_294_967_296;

/** A numeric column as float64 values plus validity (null = all valid). */
export interface NumericColumn {
  values: Float64Array;
  valid: Uint8Array | null;
}

export class Scratch {
  private readonly f64 = new Map<string, Float64Array>();
  private readonly u8 = new Map<string, Uint8Array>();
  private readonly i32 = new Map<string, Int32Array>();

  float64(name: string, n: number): Float64Array {
    let a = this.f64.get(name);
    if (a === undefined || a.length < n) {
      a = new Float64Array(Math.max(n, 1024));
      this.f64.set(name, a);
    }
    return a;
  }

  uint8(name: string, n: number): Uint8Array {
    let a = this.u8.get(name);
    if (a === undefined || a.length < n) {
      a = new Uint8Array(Math.max(n, 1024));
      this.u8.set(name, a);
    }
    return a;
  }

  int32(name: string, n: number): Int32Array {
    let a = this.i32.get(name);
    if (a === undefined || a.length < n) {
      a = new Int32Array(Math.max(n, 1024));
      this.i32.set(name, a);
    }
    return a;
  }
}

function validity(data: A.Data, name: string, scratch: Scratch): Uint8Array | null {
  if (data.nullCount === 0 || data.nullBitmap === undefined || data.nullBitmap.length === 0) return null;
  const n = data.length;
  const out = scratch.uint8(`${name}.valid`, n);
  const bitmap = data.nullBitmap;
  const off = data.offset;
  for (let i = 0; i < n; i++) {
    const bit = off + i;
    out[i] = (bitmap[bit >> 3] >> (bit & 7)) & 1;
  }
  return out;
}

/** Milliseconds per unit of an Arrow timestamp. */
function msPerUnit(unit: A.TimeUnit): number {
  switch (unit) {
    case A.TimeUnit.SECOND:
      return 1000;
    case A.TimeUnit.MILLISECOND:
      return 1;
    case A.TimeUnit.MICROSECOND:
      return 1e-3;
    case A.TimeUnit.NANOSECOND:
      return 1e-6;
  }
}

/** Whether a column's type can be read as numbers. */
export function isNumericType(type: A.DataType): boolean {
  return (
    A.DataType.isFloat(type) ||
    A.DataType.isInt(type) ||
    A.DataType.isTimestamp(type)
  ) && !(A.DataType.isFloat(type) && type.precision === A.Precision.HALF);
}

export function readNumeric(data: A.Data, name: string, scratch: Scratch): NumericColumn {
  const type = data.type as A.DataType;
  const n = data.length;
  const valid = validity(data, name, scratch);
  const raw = data.values as ArrayLike<number> | BigInt64Array | BigUint64Array;
  if (raw instanceof Float64Array) return { values: raw.length === n ? raw : raw.subarray(0, n), valid };
  const out = scratch.float64(name, n);
  if (raw instanceof BigInt64Array || raw instanceof BigUint64Array) {
    const words = new Int32Array(raw.buffer, raw.byteOffset, n * 2);
    const scale = A.DataType.isTimestamp(type) ? msPerUnit(type.unit) : 1;
    const unsigned = raw instanceof BigUint64Array;
    for (let i = 0; i < n; i++) {
      const hi = unsigned ? words[2 * i + 1] >>> 0 : words[2 * i + 1];
      out[i] = (hi * TWO_32 + (words[2 * i] >>> 0)) * scale;
    }
  } else {
    const scale = A.DataType.isTimestamp(type) ? msPerUnit(type.unit) : 1;
    for (let i = 0; i < n; i++) out[i] = (raw as ArrayLike<number>)[i] * scale;
  }
  return { values: out.subarray(0, n), valid };
}

/**
 * A string column mapped to small integer codes by `code(s)` (called once per distinct
 * dictionary entry for dictionary columns, once per row for plain Utf8). Nulls map to `nullCode`.
 */
export function readCodes(
  data: A.Data,
  name: string,
  scratch: Scratch,
  code: (s: string) => number,
  nullCode: number,
): Int32Array {
  const n = data.length;
  const out = scratch.int32(name, n).subarray(0, n);
  const valid = validity(data, name, scratch);
  const type = data.type as A.DataType;
  if (A.DataType.isDictionary(type)) {
    const dict = data.dictionary;
    if (dict === undefined) throw new TypeError(`dictionary column ${name} has no dictionary`);
    const map = scratch.int32(`${name}.dict`, dict.length);
    for (let j = 0; j < dict.length; j++) {
      const s = dict.get(j) as string | null;
      map[j] = s === null ? nullCode : code(s);
    }
    const idx = data.values as ArrayLike<number>;
    for (let i = 0; i < n; i++) out[i] = valid !== null && valid[i] === 0 ? nullCode : map[idx[i]];
    return out;
  }
  const vector = A.makeVector(data as A.Data<A.Utf8>);
  for (let i = 0; i < n; i++) {
    const s = vector.get(i);
    out[i] = s === null ? nullCode : code(s);
  }
  return out;
}

/**
 * The symbol column as symbol ids: dictionary entries are read as bytes and mapped with
 * symbolKey (no string per entry once a symbol is known); other forms fall back to
 * strings. Negative ids as in decode.ts: SYMBOL_MALFORMED, SYMBOL_OUTSIDE_UNIVERSE, SYMBOL_MISSING (null).
 */
export function readSymbolIds(data: A.Data, scratch: Scratch, symbols: SymbolTable): Int32Array {
  const type = data.type as A.DataType;
  if (!A.DataType.isDictionary(type) || !A.DataType.isUtf8(type.dictionary) || data.dictionary === undefined) {
    return readCodes(data, 'symbol', scratch, (s) => symbols.intern(s), SYMBOL_MISSING);
  }
  const dict = data.dictionary;
  const map = scratch.int32('symbol.dict', dict.length);
  let j = 0;
  for (const chunk of dict.data) {
    const offsets = chunk.valueOffsets as Int32Array;
    const bytes = chunk.values as Uint8Array;
    for (let k = 0; k < chunk.length; k++, j++) {
      const nullBitmap = chunk.nullBitmap;
      if (chunk.nullCount > 0 && nullBitmap !== undefined && ((nullBitmap[(chunk.offset + k) >> 3] >> ((chunk.offset + k) & 7)) & 1) === 0) {
        map[j] = SYMBOL_MISSING;
        continue;
      }
      const key = symbolKey(bytes, offsets[k], offsets[k + 1]);
      map[j] = key >= 0 ? symbols.internKey(key) : SYMBOL_MALFORMED;
    }
  }
  const n = data.length;
  const out = scratch.int32('symbol', n).subarray(0, n);
  const valid = validity(data, 'symbol', scratch);
  const idx = data.values as ArrayLike<number>;
  for (let i = 0; i < n; i++) out[i] = valid !== null && valid[i] === 0 ? SYMBOL_MISSING : map[idx[i]];
  return out;
}

export function isStringType(type: A.DataType): boolean {
  return A.DataType.isUtf8(type) || A.DataType.isLargeUtf8(type) || (A.DataType.isDictionary(type) && (A.DataType.isUtf8(type.dictionary) || A.DataType.isLargeUtf8(type.dictionary)));
}

// ---- building columns (writers, encoders) ----

function bitmapOf(valid: Uint8Array, n: number): { bitmap: Uint8Array; nullCount: number } {
  const bitmap = new Uint8Array(((n + 63) >> 6) << 3);
  let nullCount = 0;
  for (let i = 0; i < n; i++) {
    if (valid[i]) bitmap[i >> 3] |= 1 << (i & 7);
    else nullCount++;
  }
  return { bitmap, nullCount };
}

export function float64Vector(values: Float64Array, valid?: Uint8Array): A.Vector<A.Float64> {
  const n = values.length;
  if (valid === undefined) return A.makeVector(A.makeData({ type: new A.Float64(), length: n, data: values }));
  const { bitmap, nullCount } = bitmapOf(valid, n);
  return A.makeVector(A.makeData({ type: new A.Float64(), length: n, nullCount, nullBitmap: bitmap, data: values }));
}

function int64Words(values: Float64Array): BigInt64Array {
  const n = values.length;
  const out = new BigInt64Array(n);
  const words = new Int32Array(out.buffer);
  for (let i = 0; i < n; i++) {
    const v = values[i];
    const hi = Math.floor(v / TWO_32);
    words[2 * i] = v - hi * TWO_32;
    words[2 * i + 1] = hi;
  }
  return out;
}

export function timestampMsVector(values: Float64Array): A.Vector<A.TimestampMillisecond> {
  return A.makeVector(
    A.makeData({ type: new A.TimestampMillisecond('UTC'), length: values.length, data: int64Words(values) }),
  );
}

export function int64Vector(values: Float64Array, valid?: Uint8Array): A.Vector<A.Int64> {
  const n = values.length;
  const data = int64Words(values);
  if (valid === undefined) return A.makeVector(A.makeData({ type: new A.Int64(), length: n, data }));
  const { bitmap, nullCount } = bitmapOf(valid, n);
  return A.makeVector(A.makeData({ type: new A.Int64(), length: n, nullCount, nullBitmap: bitmap, data }));
}

/**
 * Dictionary column types by dictionary id. Tables written one after another to one IPC
 * stream must share their schema, so a column keeps one type object (and id) for the
 * whole process; a batch with another dictionary is written as a replacement dictionary.
 */
const DICTIONARY_TYPES = new Map<number, A.Dictionary<A.Utf8, A.Int32>>();

export const DICT_SYMBOL = 0;
export const DICT_KIND = 1;
export const DICT_SIDE = 2;
/** Score messages: one-entry dictionaries for the columns that are constant within a close. */
export const DICT_FREQ = 3;
export const DICT_MODEL = 4;
export const DICT_MODEL_VERSION = 5;
/** Target-weight messages: the portfolio, its benchmark, the decision's kind and relaxations. */
export const DICT_PORTFOLIO = 6;
export const DICT_BENCHMARK = 7;
export const DICT_DECISION = 8;
export const DICT_RELAXED = 9;

function dictionaryType(id: number): A.Dictionary<A.Utf8, A.Int32> {
  let t = DICTIONARY_TYPES.get(id);
  if (t === undefined) {
    t = new A.Dictionary(new A.Utf8(), new A.Int32(), id);
    DICTIONARY_TYPES.set(id, t);
  }
  return t;
}

const utf8 = new TextEncoder();

/**
 * A string column, built from its bytes and offsets (Arrow's vectorFromArray goes through
 * a builder: 3 ms for a close's 5,000 symbols, this 0.3 ms). ASCII strings, the usual
 * case, are encoded in one piece; otherwise each on its own, so that no two strings'
 * halves of a surrogate pair join across the boundary.
 */
export function utf8Vector(strings: readonly string[]): A.Vector<A.Utf8> {
  const n = strings.length;
  const valueOffsets = new Int32Array(n + 1);
  const joined = strings.join('');
  let data = utf8.encode(joined);
  if (data.length === joined.length) {
    for (let i = 0; i < n; i++) valueOffsets[i + 1] = valueOffsets[i] + strings[i].length;
  } else {
    const parts = strings.map((s) => utf8.encode(s));
    data = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
    for (let i = 0; i < n; i++) {
      data.set(parts[i], valueOffsets[i]);
      valueOffsets[i + 1] = valueOffsets[i] + parts[i].length;
    }
  }
  return A.makeVector(A.makeData({ type: new A.Utf8(), length: n, valueOffsets, data }));
}

/** A dictionary-encoded string column: `indices` into `dictionary`, with optional validity. */
export function dictionaryVector(
  id: number,
  dictionary: readonly string[],
  indices: Int32Array,
  valid?: Uint8Array,
): A.Vector<A.Dictionary<A.Utf8, A.Int32>> {
  const dict = utf8Vector(dictionary);
  const type = dictionaryType(id);
  const n = indices.length;
  if (valid === undefined) return A.makeVector(A.makeData({ type, length: n, data: indices, dictionary: dict }));
  const { bitmap, nullCount } = bitmapOf(valid, n);
  return A.makeVector(A.makeData({ type, length: n, nullCount, nullBitmap: bitmap, data: indices, dictionary: dict }));
}

/**
 * A one-batch table with an explicit schema: every column's field is marked nullable or
 * not by the caller, not inferred from this batch's null count, so that successive
 * tables of one stream have identical schemas.
 */
export function tableOf(columns: [name: string, vector: A.Vector, nullable: boolean][]): A.Table {
  const fields = columns.map(([name, v, nullable]) => new A.Field(name, v.type as A.DataType, nullable));
  const schema = new A.Schema(fields);
  const length = columns.length === 0 ? 0 : columns[0][1].length;
  const data = A.makeData({ type: new A.Struct(fields), length, nullCount: 0, children: columns.map(([, v]) => v.data[0]) });
  return new A.Table([new A.RecordBatch(schema, data)]);
}
