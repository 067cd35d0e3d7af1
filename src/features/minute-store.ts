/**
 * 1-minute sub-bars of every symbol. Each symbol owns a ring of RING_SLOTS minutes
 * indexed by slot % RING_SLOTS; each entry is stamped with (day * 240 + slot) so that
 * stale entries read as empty without any clearing pass. The ring holds the open
 * 30-minute bar plus the allowed lateness (< 30 minutes).
 *
 * Layout: one Float64Array with MINUTE_FIELDS numbers per entry (array of structs), so
 * that aggregating a tick touches one or two cache lines, not one per field; the entry
 * index `e` is already multiplied by MINUTE_FIELDS (use `e + M_CLOSE` etc.).
 */
import { DirtyColumns, gatherColumns, scatterColumns, type ColumnLayout } from './state.js';
import { grown } from '../typed-arrays.js';

export const RING_SLOTS = 60;

/** Field offsets inside an entry. */
export const M_OPEN = 0;
export const M_HIGH = 1;
export const M_LOW = 2;
export const M_CLOSE = 3;
export const M_VOLUME = 4;
export const M_AMOUNT = 5;
export const M_BUY_VOLUME = 6;
export const M_SELL_VOLUME = 7;
export const M_LARGE_BUY = 8;
export const M_LARGE_SELL = 9;
export const M_TRADES = 10;
export const M_IMBALANCE_SUM = 11;
export const M_IMBALANCE_COUNT = 12;
export const M_SPREAD_SUM = 13;
export const M_SPREAD_COUNT = 14;
export const MINUTE_FIELDS = 16;

/** Minute flags. */
export const M_FILLED = 1;
/** Some of the minute's volume came without a trade count (snapshot increments, bars without `trades`). */
export const M_NO_TRADE_COUNT = 2;
/** Some of the minute's volume did not come from individual trade ticks. */
export const M_NOT_TRADE_LEVEL = 4;
/** The minute was filled from a 1-minute bar (a second bar for it is a duplicate). */
export const M_FROM_BAR = 8;
/** The minute (slot 0) took a vendor's opening-auction bar. */
export const M_AUCTION_BAR = 16;

export function stampOf(day: number, slot: number): number {
  return day * 240 + slot;
}

/** The minute store in a checkpoint. */
export interface MinuteStoreState {
  capacity: number;
  stamp: Int32Array;
  flags: Uint8Array;
  data: Float64Array;
}

/** The ring minutes written since the last checkpoint, for every symbol (see state.ts). */
export interface MinuteStoreIncrement {
  capacity: number;
  /** Ring positions (slot % RING_SLOTS). */
  columns: number[];
  stamp: Int32Array;
  flags: Uint8Array;
  data: Float64Array;
}

export class MinuteStore {
  capacity = 0;
  /** Per entry (symbol * RING_SLOTS + slot % RING_SLOTS): the minute it holds. */
  stamp: Int32Array = new Int32Array(0);
  flags: Uint8Array = new Uint8Array(0);
  /** MINUTE_FIELDS numbers per entry. */
  data: Float64Array = new Float64Array(0);

  /** Ring positions written since the last checkpoint. */
  private readonly dirty = new DirtyColumns(RING_SLOTS);

  constructor(capacity: number) {
    this.resize(Math.max(1, capacity));
  }

  /**
   * Grows to hold `capacity` symbols, keeping existing data where it was (symbol-major) and
   * the new entries empty: an increment gathers its ring minutes over every symbol of the
   * new capacity, so a growth needs no whole store in the next increment.
   */
  resize(capacity: number): void {
    if (capacity <= this.capacity) return;
    const n = capacity * RING_SLOTS;
    this.stamp = grown(this.stamp, n, -1);
    this.flags = grown(this.flags, n);
    this.data = grown(this.data, n * MINUTE_FIELDS);
    this.capacity = capacity;
  }

  snapshot(): MinuteStoreState {
    return { capacity: this.capacity, stamp: this.stamp, flags: this.flags, data: this.data };
  }

  /** What changed since the last saved checkpoint (the whole store after a restore). */
  increment(): MinuteStoreState | MinuteStoreIncrement {
    if (this.dirty.all) return this.snapshot();
    const columns = this.dirty.list();
    const entries = this.layout(1);
    return { capacity: this.capacity, columns, stamp: gatherColumns(this.stamp, entries, columns), flags: gatherColumns(this.flags, entries, columns), data: gatherColumns(this.data, this.layout(MINUTE_FIELDS), columns) };
  }

  /** The state as it is now was checkpointed. */
  saved(): void {
    this.dirty.clear();
  }

  restore(state: MinuteStoreState | MinuteStoreIncrement): void {
    if ('columns' in state) {
      if (state.capacity < this.capacity) throw new Error(`a checkpoint increment of the minute store is for ${state.capacity} symbols; the store holds ${this.capacity}`);
      this.resize(state.capacity);
      scatterColumns(this.stamp, this.layout(1), state.columns, state.stamp);
      scatterColumns(this.flags, this.layout(1), state.columns, state.flags);
      scatterColumns(this.data, this.layout(MINUTE_FIELDS), state.columns, state.data);
    } else {
      ({ capacity: this.capacity, stamp: this.stamp, flags: this.flags, data: this.data } = state);
    }
    this.dirty.markAll();
  }

  private layout(width: number): ColumnLayout {
    return { rows: this.capacity, columns: RING_SLOTS, width };
  }

  /** Ring index of (symbol, slot). */
  static index(symbol: number, slot: number): number {
    return symbol * RING_SLOTS + (slot % RING_SLOTS);
  }

  /**
   * Data offset of (symbol, slot) for writing at `stamp`: resets the entry when it holds
   * another minute. Flags stay addressed by ring index: `offset / MINUTE_FIELDS`. An entry
   * holding a minute at or after `keepFrom` (one an open bar still reads) is never
   * overwritten: that would lose events silently, so it throws instead (a bug: the close
   * rule keeps writes within the ring).
   */
  entryForWrite(symbol: number, slot: number, stamp: number, keepFrom = -1): number {
    const r = symbol * RING_SLOTS + (slot % RING_SLOTS);
    const e = r * MINUTE_FIELDS;
    this.dirty.mark(slot % RING_SLOTS);
    if (this.stamp[r] !== stamp) {
      if (this.stamp[r] >= keepFrom && keepFrom >= 0) throw new RangeError(`minute ring overrun: minute ${stamp} of symbol ${symbol} would overwrite minute ${this.stamp[r]}, which a bar not yet closed still reads (oldest open minute ${keepFrom})`);
      this.stamp[r] = stamp;
      this.flags[r] = 0;
      this.data.fill(0, e, e + MINUTE_FIELDS);
    }
    return e;
  }

  /** Data offset of (symbol, slot) when it holds the minute `stamp`, else -1. */
  entryForRead(symbol: number, slot: number, stamp: number): number {
    const r = symbol * RING_SLOTS + (slot % RING_SLOTS);
    return this.stamp[r] === stamp ? r * MINUTE_FIELDS : -1;
  }

  flagsOf(e: number): number {
    return this.flags[e / MINUTE_FIELDS];
  }

  setFlags(e: number, bits: number): void {
    this.flags[e / MINUTE_FIELDS] |= bits;
  }

  /** Adds a trade print to a minute entry. */
  addTrade(e: number, price: number, volume: number, amount: number): void {
    const d = this.data;
    const r = e / MINUTE_FIELDS;
    if ((this.flags[r] & M_FILLED) === 0) {
      d[e + M_OPEN] = price;
      d[e + M_HIGH] = price;
      d[e + M_LOW] = price;
      this.flags[r] |= M_FILLED;
    } else {
      if (price > d[e + M_HIGH]) d[e + M_HIGH] = price;
      if (price < d[e + M_LOW]) d[e + M_LOW] = price;
    }
    d[e + M_CLOSE] = price;
    d[e + M_VOLUME] += volume;
    d[e + M_AMOUNT] += amount;
  }

  addQuote(e: number, bid: number, ask: number, bidVol: number, askVol: number): void {
    const d = this.data;
    const depth = bidVol + askVol;
    if (depth > 0) {
      d[e + M_IMBALANCE_SUM] += (bidVol - askVol) / depth;
      d[e + M_IMBALANCE_COUNT] += 1;
    }
    if (bid > 0 && ask > bid) {
      d[e + M_SPREAD_SUM] += (2 * (ask - bid)) / (ask + bid);
      d[e + M_SPREAD_COUNT] += 1;
    }
  }
}
