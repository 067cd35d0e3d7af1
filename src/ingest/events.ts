/**
 * Decoded events, held column-wise in typed arrays that grow by doubling and are reused
 * across messages: decoding a message writes rows, it allocates nothing per event.
 * Optional fields are marked present in a per-row `flags` bitmask instead of sentinels.
 */
import { barLabelOf, type BarLabel } from '../market/sessions.js';
import { isValidSymbol, type Exchange } from '../market/symbols.js';
import { doubled, grown, type TypedArray } from '../typed-arrays.js';

export const KIND_TRADE = 0;
export const KIND_SNAPSHOT = 1;

export const SIDE_UNKNOWN = 0;
export const SIDE_BUY = 1;
export const SIDE_SELL = 2;
export const SIDE_CODES = ['N', 'B', 'S'] as const;

/** Tick row flags. */
export const HAS_AMOUNT = 1;
export const HAS_SEQ = 2;
export const HAS_QUOTE = 4;
/** Bar row flags. */
export const HAS_SIDES = 1;
export const HAS_TRADES = 2;
/**
 * A vendor's bar of session prints only, merged into its slot beside the regular bar: the
 * opening auction (slot 0), or in start-labelled feeds the prints at 11:30:00 (slot 119)
 * and the closing auction at 15:00:00 (slot 239). Its ts is the label it came with.
 */
export const BAR_SESSION_PRINT = 4;

/**
 * A number that identifies a well-formed symbol from its UTF-8 bytes without making a
 * string: digits * 4 + exchange (SH 1, SZ 2, BJ 3); -1 when the bytes are not of the form
 * `dddddd.XX`. Arrow decoding maps dictionary entries to ids through it.
 */
export function symbolKey(bytes: Uint8Array, start: number, end: number): number {
  if (end - start !== 9 || bytes[start + 6] !== 46) return -1;
  let code = 0;
  for (let i = start; i < start + 6; i++) {
    const d = bytes[i] - 48;
    if (d < 0 || d > 9) return -1;
    code = code * 10 + d;
  }
  const a = bytes[start + 7];
  const b = bytes[start + 8];
  const ex = a === 83 && b === 72 ? 1 : a === 83 && b === 90 ? 2 : a === 66 && b === 74 ? 3 : 0;
  return ex === 0 ? -1 : code * 4 + ex;
}

const EXCHANGE_OF_KEY = ['', 'SH', 'SZ', 'BJ'];

export class SymbolTable {
  private readonly ids = new Map<string, number>();
  private readonly keyIds = new Map<number, number>();
  readonly names: string[] = [];
  /** The exchange of each symbol (its suffix), by id: session rules differ per exchange. */
  readonly exchanges: Exchange[] = [];
  frozen = false;

  constructor(initial: Iterable<string> = []) {
    for (const s of initial) this.intern(s);
  }

  get size(): number {
    return this.names.length;
  }

  /** The id of `symbol`; -1 when malformed (E_BAD_SYMBOL), -2 when outside a frozen universe (E_UNKNOWN_SYMBOL). */
  intern(symbol: string): number {
    const id = this.ids.get(symbol);
    if (id !== undefined) return id;
    if (!isValidSymbol(symbol)) return -1;
    if (this.frozen) return -2;
    const next = this.names.length;
    this.ids.set(symbol, next);
    this.names.push(symbol);
    this.exchanges.push(symbol.slice(-2) as Exchange);
    return next;
  }

  /** Re-interns a checkpoint's symbols in their order, so that ids match; the table must be empty or a prefix of it. */
  restore(names: readonly string[], frozen: boolean): void {
    for (let i = 0; i < this.names.length; i++) {
      if (names[i] !== this.names[i]) throw new Error(`checkpoint symbol ${i} is ${names[i]}, this run has ${this.names[i]}`);
    }
    const wasFrozen = this.frozen;
    this.frozen = false;
    for (let i = this.names.length; i < names.length; i++) this.intern(names[i]);
    this.frozen = frozen || wasFrozen;
  }

  idOf(symbol: string): number | undefined {
    return this.ids.get(symbol);
  }

  /** intern() for a symbolKey() (>= 0), without building the string once the symbol is known. */
  internKey(key: number): number {
    const id = this.keyIds.get(key);
    if (id !== undefined) return id;
    const symbol = `${String(Math.floor(key / 4)).padStart(6, '0')}.${EXCHANGE_OF_KEY[key % 4]}`;
    const interned = this.intern(symbol);
    if (interned >= 0) this.keyIds.set(key, interned);
    return interned;
  }
}

export class TickBatch {
  length = 0;
  capacity: number;
  symbol: Int32Array;
  ts: Float64Array;
  /** 1-minute slot of the trading day (0..239), set by validation. */
  slot: Int16Array;
  kind: Uint8Array;
  side: Uint8Array;
  flags: Uint8Array;
  price: Float64Array;
  /** Trade: shares. Snapshot: unused. */
  volume: Float64Array;
  /** Trade: CNY (price*volume when absent). */
  amount: Float64Array;
  seq: Float64Array;
  cumVolume: Float64Array;
  cumAmount: Float64Array;
  bid1: Float64Array;
  ask1: Float64Array;
  bidVol1: Float64Array;
  askVol1: Float64Array;
  /** Where the row came from: Kafka offset, file line or row number. */
  origin: Float64Array;

  constructor(capacity = 1024) {
    this.capacity = capacity;
    this.symbol = new Int32Array(capacity);
    this.ts = new Float64Array(capacity);
    this.slot = new Int16Array(capacity);
    this.kind = new Uint8Array(capacity);
    this.side = new Uint8Array(capacity);
    this.flags = new Uint8Array(capacity);
    this.price = new Float64Array(capacity);
    this.volume = new Float64Array(capacity);
    this.amount = new Float64Array(capacity);
    this.seq = new Float64Array(capacity);
    this.cumVolume = new Float64Array(capacity);
    this.cumAmount = new Float64Array(capacity);
    this.bid1 = new Float64Array(capacity);
    this.ask1 = new Float64Array(capacity);
    this.bidVol1 = new Float64Array(capacity);
    this.askVol1 = new Float64Array(capacity);
    this.origin = new Float64Array(capacity);
  }

  clear(): void {
    this.length = 0;
  }

  /** Makes room for `extra` more rows. */
  reserve(extra: number): void {
    const need = this.length + extra;
    if (need <= this.capacity) return;
    const cap = doubled(this.capacity, need);
    this.capacity = cap;
    this.symbol = grown(this.symbol, cap);
    this.ts = grown(this.ts, cap);
    this.slot = grown(this.slot, cap);
    this.kind = grown(this.kind, cap);
    this.side = grown(this.side, cap);
    this.flags = grown(this.flags, cap);
    this.price = grown(this.price, cap);
    this.volume = grown(this.volume, cap);
    this.amount = grown(this.amount, cap);
    this.seq = grown(this.seq, cap);
    this.cumVolume = grown(this.cumVolume, cap);
    this.cumAmount = grown(this.cumAmount, cap);
    this.bid1 = grown(this.bid1, cap);
    this.ask1 = grown(this.ask1, cap);
    this.bidVol1 = grown(this.bidVol1, cap);
    this.askVol1 = grown(this.askVol1, cap);
    this.origin = grown(this.origin, cap);
  }
}

export class BarBatch {
  length = 0;
  capacity: number;
  symbol: Int32Array;
  /** Bar END time (epoch ms): 09:31:00 covers [09:30:00, 09:31:00). */
  ts: Float64Array;
  /** 1-minute slot of the trading day (0..239), set by validation. */
  slot: Int16Array;
  flags: Uint8Array;
  open: Float64Array;
  high: Float64Array;
  low: Float64Array;
  close: Float64Array;
  volume: Float64Array;
  amount: Float64Array;
  buyVolume: Float64Array;
  sellVolume: Float64Array;
  trades: Float64Array;
  origin: Float64Array;

  constructor(capacity = 1024) {
    this.capacity = capacity;
    this.symbol = new Int32Array(capacity);
    this.ts = new Float64Array(capacity);
    this.slot = new Int16Array(capacity);
    this.flags = new Uint8Array(capacity);
    this.open = new Float64Array(capacity);
    this.high = new Float64Array(capacity);
    this.low = new Float64Array(capacity);
    this.close = new Float64Array(capacity);
    this.volume = new Float64Array(capacity);
    this.amount = new Float64Array(capacity);
    this.buyVolume = new Float64Array(capacity);
    this.sellVolume = new Float64Array(capacity);
    this.trades = new Float64Array(capacity);
    this.origin = new Float64Array(capacity);
  }

  clear(): void {
    this.length = 0;
  }

  reserve(extra: number): void {
    const need = this.length + extra;
    if (need <= this.capacity) return;
    const cap = doubled(this.capacity, need);
    this.capacity = cap;
    this.symbol = grown(this.symbol, cap);
    this.ts = grown(this.ts, cap);
    this.slot = grown(this.slot, cap);
    this.flags = grown(this.flags, cap);
    this.open = grown(this.open, cap);
    this.high = grown(this.high, cap);
    this.low = grown(this.low, cap);
    this.close = grown(this.close, cap);
    this.volume = grown(this.volume, cap);
    this.amount = grown(this.amount, cap);
    this.buyVolume = grown(this.buyVolume, cap);
    this.sellVolume = grown(this.sellVolume, cap);
    this.trades = grown(this.trades, cap);
    this.origin = grown(this.origin, cap);
  }
}

/** Plain-object forms, for writers, tests and the JSON wire format. */
export interface TickRecord {
  symbol: string;
  ts: number;
  kind?: 'trade' | 'snapshot';
  price: number;
  volume?: number;
  amount?: number;
  side?: 'B' | 'S' | 'N';
  seq?: number;
  cumVolume?: number;
  cumAmount?: number;
  bid1?: number;
  ask1?: number;
  bidVol1?: number;
  askVol1?: number;
}

export interface BarRecord {
  symbol: string;
  ts: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  amount: number;
  buyVolume?: number;
  sellVolume?: number;
  trades?: number;
}

/** Reads row `i` of a tick batch back as a record (tests, writers; not the hot path). */
export function tickRecordAt(batch: TickBatch, symbols: SymbolTable, i: number): TickRecord {
  const f = batch.flags[i];
  const rec: TickRecord = {
    symbol: symbols.names[batch.symbol[i]],
    ts: batch.ts[i],
    kind: batch.kind[i] === KIND_SNAPSHOT ? 'snapshot' : 'trade',
    price: batch.price[i],
  };
  if (batch.kind[i] === KIND_TRADE) {
    rec.volume = batch.volume[i];
    rec.amount = batch.amount[i];
    rec.side = SIDE_CODES[batch.side[i]];
  } else {
    rec.cumVolume = batch.cumVolume[i];
    rec.cumAmount = batch.cumAmount[i];
  }
  if (f & HAS_SEQ) rec.seq = batch.seq[i];
  if (f & HAS_QUOTE) {
    rec.bid1 = batch.bid1[i];
    rec.ask1 = batch.ask1[i];
    rec.bidVol1 = batch.bidVol1[i];
    rec.askVol1 = batch.askVol1[i];
  }
  return rec;
}

/** Row i as a record, its ts labelled in the `label` convention (bars.label). */
export function barRecordAt(batch: BarBatch, symbols: SymbolTable, i: number, label: BarLabel = 'end'): BarRecord {
  const rec: BarRecord = {
    symbol: symbols.names[batch.symbol[i]],
    ts: barLabelOf(batch.ts[i], (batch.flags[i] & BAR_SESSION_PRINT) !== 0, label),
    open: batch.open[i],
    high: batch.high[i],
    low: batch.low[i],
    close: batch.close[i],
    volume: batch.volume[i],
    amount: batch.amount[i],
  };
  if (batch.flags[i] & HAS_SIDES) {
    rec.buyVolume = batch.buyVolume[i];
    rec.sellVolume = batch.sellVolume[i];
  }
  if (batch.flags[i] & HAS_TRADES) rec.trades = batch.trades[i];
  return rec;
}

/** Copies row `i` of `src` to the end of `dst`. */
export function copyTickRow(src: TickBatch, i: number, dst: TickBatch): void {
  dst.reserve(1);
  const j = dst.length;
  dst.symbol[j] = src.symbol[i];
  dst.ts[j] = src.ts[i];
  dst.slot[j] = src.slot[i];
  dst.kind[j] = src.kind[i];
  dst.side[j] = src.side[i];
  dst.flags[j] = src.flags[i];
  dst.price[j] = src.price[i];
  dst.volume[j] = src.volume[i];
  dst.amount[j] = src.amount[i];
  dst.seq[j] = src.seq[i];
  dst.cumVolume[j] = src.cumVolume[i];
  dst.cumAmount[j] = src.cumAmount[i];
  dst.bid1[j] = src.bid1[i];
  dst.ask1[j] = src.ask1[i];
  dst.bidVol1[j] = src.bidVol1[i];
  dst.askVol1[j] = src.askVol1[i];
  dst.origin[j] = src.origin[i];
  dst.length = j + 1;
}

/** Copies row `i` of `src` to the end of `dst`. */
export function copyBarRow(src: BarBatch, i: number, dst: BarBatch): void {
  dst.reserve(1);
  const j = dst.length;
  dst.symbol[j] = src.symbol[i];
  dst.ts[j] = src.ts[i];
  dst.slot[j] = src.slot[i];
  dst.flags[j] = src.flags[i];
  dst.open[j] = src.open[i];
  dst.high[j] = src.high[i];
  dst.low[j] = src.low[i];
  dst.close[j] = src.close[i];
  dst.volume[j] = src.volume[i];
  dst.amount[j] = src.amount[i];
  dst.buyVolume[j] = src.buyVolume[i];
  dst.sellVolume[j] = src.sellVolume[i];
  dst.trades[j] = src.trades[i];
  dst.origin[j] = src.origin[i];
  dst.length = j + 1;
}

/** The typed-array columns of each batch kind (what compaction and checkpoints move). */
const TICK_COLUMNS = ['symbol', 'ts', 'slot', 'kind', 'side', 'flags', 'price', 'volume', 'amount', 'seq', 'cumVolume', 'cumAmount', 'bid1', 'ask1', 'bidVol1', 'askVol1', 'origin'] as const;
const BAR_COLUMNS = ['symbol', 'ts', 'slot', 'flags', 'open', 'high', 'low', 'close', 'volume', 'amount', 'buyVolume', 'sellVolume', 'trades', 'origin'] as const;

function columnsOf(b: TickBatch | BarBatch): Record<string, TypedArray> {
  return b as unknown as Record<string, TypedArray>;
}

function columnNames(b: TickBatch | BarBatch): readonly string[] {
  return b instanceof TickBatch ? TICK_COLUMNS : BAR_COLUMNS;
}

/** Drops rows [0, from): the rows from `from` on move to the front. */
export function dropRows(b: TickBatch | BarBatch, from: number): void {
  if (from <= 0) return;
  const cols = columnsOf(b);
  if (from < b.length) for (const c of columnNames(b)) cols[c].copyWithin(0, from, b.length);
  b.length = Math.max(0, b.length - from);
}

/** Rows [from, to) as copies of their columns, for a checkpoint (see appendRows). */
export function rowsSnapshot(b: TickBatch | BarBatch, from: number, to: number): Record<string, TypedArray> {
  const cols = columnsOf(b);
  const out: Record<string, TypedArray> = {};
  for (const c of columnNames(b)) out[c] = cols[c].slice(from, to);
  return out;
}

/** Appends rows taken by rowsSnapshot from a batch of the same kind. */
export function appendRows(b: TickBatch | BarBatch, rows: Readonly<Record<string, TypedArray>>): void {
  const n = rows.ts.length;
  b.reserve(n);
  const cols = columnsOf(b);
  for (const c of columnNames(b)) cols[c].set(rows[c] as ArrayLike<number> & TypedArray, b.length);
  b.length += n;
}
