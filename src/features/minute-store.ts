/**
 * 1-minute sub-bars of every symbol, column-wise in typed arrays. Each symbol owns a
 * ring of RING_SLOTS minutes indexed by slot % RING_SLOTS; each entry is stamped with
 * (day * 240 + slot) so that stale entries read as empty without any clearing pass.
 * The ring holds the open 30-minute bar plus the allowed lateness (< 30 minutes).
 */
export const RING_SLOTS = 60;

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

export class MinuteStore {
  capacity: number;
  stamp!: Int32Array;
  flags!: Uint8Array;
  open!: Float64Array;
  high!: Float64Array;
  low!: Float64Array;
  close!: Float64Array;
  volume!: Float64Array;
  amount!: Float64Array;
  buyVolume!: Float64Array;
  sellVolume!: Float64Array;
  largeBuyAmount!: Float64Array;
  largeSellAmount!: Float64Array;
  trades!: Float64Array;
  imbalanceSum!: Float64Array;
  imbalanceCount!: Float64Array;
  spreadSum!: Float64Array;
  spreadCount!: Float64Array;

  constructor(capacity: number) {
    this.capacity = 0;
    this.resize(Math.max(1, capacity));
  }

  /** Grows to hold `capacity` symbols, keeping existing data. */
  resize(capacity: number): void {
    if (capacity <= this.capacity) return;
    const n = capacity * RING_SLOTS;
    const f64 = (old: Float64Array | undefined): Float64Array => {
      const a = new Float64Array(n);
      if (old !== undefined) a.set(old);
      return a;
    };
    const stamp = new Int32Array(n).fill(-1);
    if (this.stamp !== undefined) stamp.set(this.stamp);
    const flags = new Uint8Array(n);
    if (this.flags !== undefined) flags.set(this.flags);
    this.stamp = stamp;
    this.flags = flags;
    this.open = f64(this.open);
    this.high = f64(this.high);
    this.low = f64(this.low);
    this.close = f64(this.close);
    this.volume = f64(this.volume);
    this.amount = f64(this.amount);
    this.buyVolume = f64(this.buyVolume);
    this.sellVolume = f64(this.sellVolume);
    this.largeBuyAmount = f64(this.largeBuyAmount);
    this.largeSellAmount = f64(this.largeSellAmount);
    this.trades = f64(this.trades);
    this.imbalanceSum = f64(this.imbalanceSum);
    this.imbalanceCount = f64(this.imbalanceCount);
    this.spreadSum = f64(this.spreadSum);
    this.spreadCount = f64(this.spreadCount);
    this.capacity = capacity;
  }

  /** Index of (symbol, slot) for writing at `stamp`: resets the entry when it holds another minute. */
  entryForWrite(symbol: number, slot: number, stamp: number): number {
    const e = symbol * RING_SLOTS + (slot % RING_SLOTS);
    if (this.stamp[e] !== stamp) {
      this.stamp[e] = stamp;
      this.flags[e] = 0;
      this.volume[e] = 0;
      this.amount[e] = 0;
      this.buyVolume[e] = 0;
      this.sellVolume[e] = 0;
      this.largeBuyAmount[e] = 0;
      this.largeSellAmount[e] = 0;
      this.trades[e] = 0;
      this.imbalanceSum[e] = 0;
      this.imbalanceCount[e] = 0;
      this.spreadSum[e] = 0;
      this.spreadCount[e] = 0;
    }
    return e;
  }

  /** Index of (symbol, slot) when it holds the minute `stamp`, else -1. */
  entryForRead(symbol: number, slot: number, stamp: number): number {
    const e = symbol * RING_SLOTS + (slot % RING_SLOTS);
    return this.stamp[e] === stamp ? e : -1;
  }

  /** Adds a trade print to a minute entry. */
  addTrade(e: number, price: number, volume: number, amount: number): void {
    if ((this.flags[e] & M_FILLED) === 0) {
      this.open[e] = price;
      this.high[e] = price;
      this.low[e] = price;
      this.flags[e] |= M_FILLED;
    } else {
      if (price > this.high[e]) this.high[e] = price;
      if (price < this.low[e]) this.low[e] = price;
    }
    this.close[e] = price;
    this.volume[e] += volume;
    this.amount[e] += amount;
  }

  addQuote(e: number, bid: number, ask: number, bidVol: number, askVol: number): void {
    const depth = bidVol + askVol;
    if (depth > 0) {
      this.imbalanceSum[e] += (bidVol - askVol) / depth;
      this.imbalanceCount[e] += 1;
    }
    if (bid > 0 && ask > bid) {
      this.spreadSum[e] += (2 * (ask - bid)) / (ask + bid);
      this.spreadCount[e] += 1;
    }
  }
}
