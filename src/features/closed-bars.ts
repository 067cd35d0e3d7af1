/**
 * The result of one bar close at one frequency for the whole universe: the bars and the
 * raw feature rows, column-wise. One instance per frequency is reused for every close;
 * consumers copy what they keep (the sequence store, writers).
 */
import type { Freq } from '../market/sessions.js';
import { FEATURE_COUNT } from './feature-set.js';

export class ClosedBars {
  readonly freq: Freq;
  /** Trading day (local day number) and bar index within it. */
  day = 0;
  bar = 0;
  /** Bar end (label), epoch ms. */
  barEnd = 0;
  /** Symbols in the universe at this close (rows 0..n-1, by symbol id). */
  n = 0;
  capacity = 0;
  open!: Float64Array;
  high!: Float64Array;
  low!: Float64Array;
  close!: Float64Array;
  volume!: Float64Array;
  amount!: Float64Array;
  vwap!: Float64Array;
  /** Trade count, NaN when the feed does not supply counts. */
  trades!: Float64Array;
  /** 1 when the symbol had no trade in the bar: prices are NaN and every feature is masked. */
  missing!: Uint8Array;
  /** 1 closed at the upper daily limit, -1 at the lower, 0 neither (or unknown previous close). */
  limit!: Int8Array;
  /** Raw features, row-major [n, F]. */
  features!: Float64Array;
  /** 1 where the feature is valid, [n, F]. */
  featureMask!: Uint8Array;

  constructor(freq: Freq, capacity: number) {
    this.freq = freq;
    this.ensure(capacity);
  }

  ensure(capacity: number): void {
    if (capacity <= this.capacity) return;
    const cap = Math.max(capacity, this.capacity * 2);
    this.open = new Float64Array(cap);
    this.high = new Float64Array(cap);
    this.low = new Float64Array(cap);
    this.close = new Float64Array(cap);
    this.volume = new Float64Array(cap);
    this.amount = new Float64Array(cap);
    this.vwap = new Float64Array(cap);
    this.trades = new Float64Array(cap);
    this.missing = new Uint8Array(cap);
    this.limit = new Int8Array(cap);
    this.features = new Float64Array(cap * FEATURE_COUNT);
    this.featureMask = new Uint8Array(cap * FEATURE_COUNT);
    this.capacity = cap;
  }
}
