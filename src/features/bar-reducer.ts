/**
 * Reduces one symbol's 1-minute sub-bars into its bar and feature row at a bar close.
 * Per-frequency carried state (previous close, same-slot volume history) lives here.
 * Works on typed arrays with fixed scratch buffers: no allocation per close.
 */
import { DirtyColumns, gatherColumns, scatterColumns, type ColumnLayout } from './state.js';
import { limitStateOf } from '../market/symbols.js';
import { pearson } from '../stats.js';
import { grown } from '../typed-arrays.js';
import type { BarSchedule } from '../market/sessions.js';
import type { ClosedBars } from './closed-bars.js';
import {
  FEATURE_COUNT,
  F_AVG_TRADE_SIZE,
  F_BUY_VOLUME_SHARE,
  F_CLOSE_LOCATION,
  F_CLOSE_VS_VWAP,
  F_LARGE_NET_BUY,
  F_ORDER_IMBALANCE,
  F_PRICE_VOLUME_CORR,
  F_RANGE,
  F_REALIZED_SKEW,
  F_REALIZED_VOL,
  F_REL_SPREAD,
  F_REL_VOLUME,
  F_RET,
  F_UP_VOLUME_SHARE,
  type FeatureParams,
} from './feature-set.js';
import {
  M_AMOUNT,
  M_BUY_VOLUME,
  M_CLOSE,
  M_FILLED,
  M_HIGH,
  M_IMBALANCE_COUNT,
  M_IMBALANCE_SUM,
  M_LARGE_BUY,
  M_LARGE_SELL,
  M_LOW,
  M_NOT_TRADE_LEVEL,
  M_NO_TRADE_COUNT,
  M_OPEN,
  M_SELL_VOLUME,
  M_SPREAD_COUNT,
  M_SPREAD_SUM,
  M_TRADES,
  M_VOLUME,
  stampOf,
  type MinuteStore,
} from './minute-store.js';

/** The day's reference per symbol (the aggregator sets it on a symbol's first event of a day). */
export interface DailyReference {
  /** The reference price of the day's limits (NaN unknown). */
  prevClose: Float64Array;
  isST: Uint8Array;
  /** The day's limit prices (NaN: unknown, no limit flag). */
  upper: Float64Array;
  lower: Float64Array;
}

/** A bar reducer in a checkpoint. */
export interface BarReducerState {
  capacity: number;
  prevBarClose: Float64Array;
  lastMinuteClose: Float64Array;
  lastMinuteDay: Int32Array;
  volumeHistory: Float64Array;
  volumeHistoryCount: Uint8Array;
  volumeHistoryHead: Uint8Array;
}

/** The bar slots whose volume history changed since the last checkpoint, for every symbol, and the per-symbol state (see state.ts). */
export interface BarReducerIncrement extends BarReducerState {
  slots: number[];
}

export class BarReducer {
  readonly schedule: BarSchedule;
  private readonly params: FeatureParams;
  private capacity = 0;
  /** Close of the symbol's last non-missing bar (any day), NaN before the first. */
  prevBarClose: Float64Array = new Float64Array(0);
  /** Close of the symbol's last filled minute today (for 1-minute returns), NaN at day start. */
  lastMinuteClose: Float64Array = new Float64Array(0);
  lastMinuteDay: Int32Array = new Int32Array(0);
  /** Same-slot volume history: [symbol][bar slot][K days] ring + count. */
  volumeHistory: Float64Array = new Float64Array(0);
  volumeHistoryCount: Uint8Array = new Uint8Array(0);
  volumeHistoryHead: Uint8Array = new Uint8Array(0);
  /** Bar slots whose volume history changed since the last checkpoint. */
  private readonly dirty: DirtyColumns;
  private readonly minuteReturns: Float64Array;
  private readonly minuteClose: Float64Array;
  private readonly minuteVolume: Float64Array;

  constructor(schedule: BarSchedule, params: FeatureParams, capacity: number) {
    this.schedule = schedule;
    this.params = params;
    this.minuteReturns = new Float64Array(schedule.minutes);
    this.minuteClose = new Float64Array(schedule.minutes);
    this.minuteVolume = new Float64Array(schedule.minutes);
    this.dirty = new DirtyColumns(schedule.barsPerDay);
    this.resize(capacity);
  }

  snapshot(): BarReducerState {
    const { capacity, prevBarClose, lastMinuteClose, lastMinuteDay, volumeHistory, volumeHistoryCount, volumeHistoryHead } = this;
    return { capacity, prevBarClose, lastMinuteClose, lastMinuteDay, volumeHistory, volumeHistoryCount, volumeHistoryHead };
  }

  /** What changed since the last saved checkpoint: the volume history of the bar slots closed since, the per-symbol arrays whole. */
  increment(): BarReducerState | BarReducerIncrement {
    if (this.dirty.all) return this.snapshot();
    const slots = this.dirty.list();
    const K = this.params.volumeLookbackDays;
    return {
      ...this.snapshot(),
      slots,
      volumeHistory: gatherColumns(this.volumeHistory, this.layout(K), slots),
      volumeHistoryCount: gatherColumns(this.volumeHistoryCount, this.layout(1), slots),
      volumeHistoryHead: gatherColumns(this.volumeHistoryHead, this.layout(1), slots),
    };
  }

  /** The state as it is now was checkpointed. */
  saved(): void {
    this.dirty.clear();
  }

  restore(state: BarReducerState | BarReducerIncrement): void {
    if ('slots' in state) {
      if (state.capacity < this.capacity) throw new Error(`a checkpoint increment of the ${this.schedule.freq} bar reducer is for ${state.capacity} symbols; it holds ${this.capacity}`);
      this.resize(state.capacity);
      const K = this.params.volumeLookbackDays;
      scatterColumns(this.volumeHistory, this.layout(K), state.slots, state.volumeHistory);
      scatterColumns(this.volumeHistoryCount, this.layout(1), state.slots, state.volumeHistoryCount);
      scatterColumns(this.volumeHistoryHead, this.layout(1), state.slots, state.volumeHistoryHead);
    } else {
      ({ volumeHistory: this.volumeHistory, volumeHistoryCount: this.volumeHistoryCount, volumeHistoryHead: this.volumeHistoryHead } = state);
    }
    ({ capacity: this.capacity, prevBarClose: this.prevBarClose, lastMinuteClose: this.lastMinuteClose, lastMinuteDay: this.lastMinuteDay } = state);
    this.dirty.markAll();
  }

  private layout(width: number): ColumnLayout {
    return { rows: this.capacity, columns: this.schedule.barsPerDay, width };
  }

  resize(capacity: number): void {
    if (capacity <= this.capacity) return;
    const k = this.params.volumeLookbackDays;
    const slots = this.schedule.barsPerDay;
    this.prevBarClose = grown(this.prevBarClose, capacity, Number.NaN);
    this.lastMinuteClose = grown(this.lastMinuteClose, capacity, Number.NaN);
    this.lastMinuteDay = grown(this.lastMinuteDay, capacity, -1);
    this.volumeHistory = grown(this.volumeHistory, capacity * slots * k);
    this.volumeHistoryCount = grown(this.volumeHistoryCount, capacity * slots);
    this.volumeHistoryHead = grown(this.volumeHistoryHead, capacity * slots);
    // No whole history in the next increment: it gathers its slots over every symbol of the new capacity.
    this.capacity = capacity;
  }

  /**
   * Builds row `s` of `out` for bar (day, bar) from the minute store. `ref` supplies the
   * day's limit prices for the limit flag.
   */
  reduce(s: number, day: number, bar: number, minutes: MinuteStore, ref: DailyReference, out: ClosedBars): void {
    const F = FEATURE_COUNT;
    const feat = out.features;
    const mask = out.featureMask;
    const fo = s * F;
    for (let f = 0; f < F; f++) {
      feat[fo + f] = 0;
      mask[fo + f] = 0;
    }
    if (this.lastMinuteDay[s] !== day) {
      this.lastMinuteDay[s] = day;
      this.lastMinuteClose[s] = Number.NaN;
    }

    const first = this.schedule.firstSlot(bar);
    const m = this.schedule.minutes;
    let open = Number.NaN;
    let high = -Infinity;
    let low = Infinity;
    let close = Number.NaN;
    let volume = 0;
    let amount = 0;
    let buy = 0;
    let sell = 0;
    let largeBuy = 0;
    let largeSell = 0;
    let trades = 0;
    let tradesKnown = true;
    let tradeLevel = true;
    let imbSum = 0;
    let imbN = 0;
    let sprSum = 0;
    let sprN = 0;
    let nMin = 0;
    let upVolume = 0;
    let ref1m = this.lastMinuteClose[s];
    const md = minutes.data;
    for (let j = 0; j < m; j++) {
      const e = minutes.entryForRead(s, first + j, stampOf(day, first + j));
      if (e < 0) continue;
      imbSum += md[e + M_IMBALANCE_SUM];
      imbN += md[e + M_IMBALANCE_COUNT];
      sprSum += md[e + M_SPREAD_SUM];
      sprN += md[e + M_SPREAD_COUNT];
      const flags = minutes.flagsOf(e);
      if ((flags & M_FILLED) === 0) continue;
      const c = md[e + M_CLOSE];
      const o = md[e + M_OPEN];
      if (Number.isNaN(open)) open = o;
      if (md[e + M_HIGH] > high) high = md[e + M_HIGH];
      if (md[e + M_LOW] < low) low = md[e + M_LOW];
      close = c;
      const v = md[e + M_VOLUME];
      volume += v;
      amount += md[e + M_AMOUNT];
      buy += md[e + M_BUY_VOLUME];
      sell += md[e + M_SELL_VOLUME];
      largeBuy += md[e + M_LARGE_BUY];
      largeSell += md[e + M_LARGE_SELL];
      trades += md[e + M_TRADES];
      if (flags & M_NO_TRADE_COUNT) tradesKnown = false;
      if (flags & M_NOT_TRADE_LEVEL) tradeLevel = false;
      // The first minute of the day has no previous close today: its return is close/open.
      const r = Math.log(c / (Number.isNaN(ref1m) ? o : ref1m));
      ref1m = c;
      this.minuteReturns[nMin] = r;
      this.minuteClose[nMin] = c;
      this.minuteVolume[nMin] = v;
      if (r > 0) upVolume += v;
      nMin++;
    }

    out.limit[s] = 0;
    if (nMin === 0) {
      out.missing[s] = 1;
      out.open[s] = Number.NaN;
      out.high[s] = Number.NaN;
      out.low[s] = Number.NaN;
      out.close[s] = Number.NaN;
      out.volume[s] = 0;
      out.amount[s] = 0;
      out.vwap[s] = Number.NaN;
      out.trades[s] = tradesKnown ? 0 : Number.NaN;
      return;
    }
    this.lastMinuteClose[s] = ref1m;
    out.missing[s] = 0;
    out.open[s] = open;
    out.high[s] = high;
    out.low[s] = low;
    out.close[s] = close;
    out.volume[s] = volume;
    out.amount[s] = amount;
    const vwap = volume > 0 ? amount / volume : close;
    out.vwap[s] = vwap;
    out.trades[s] = tradesKnown ? trades : Number.NaN;

    const prevClose = this.prevBarClose[s];
    if (ref.upper[s] > 0) out.limit[s] = limitStateOf(close, ref.upper[s], ref.lower[s]);

    if (prevClose > 0) {
      feat[fo + F_RET] = Math.log(close / prevClose);
      mask[fo + F_RET] = 1;
    }
    this.prevBarClose[s] = close;
    feat[fo + F_RANGE] = Math.log(high / low);
    mask[fo + F_RANGE] = 1;
    feat[fo + F_CLOSE_LOCATION] = high > low ? (close - low) / (high - low) : 0.5;
    mask[fo + F_CLOSE_LOCATION] = 1;
    feat[fo + F_CLOSE_VS_VWAP] = Math.log(close / vwap);
    mask[fo + F_CLOSE_VS_VWAP] = 1;

    // Same-slot volume: compare with history first, then record today's volume.
    const K = this.params.volumeLookbackDays;
    const hs = s * this.schedule.barsPerDay + bar;
    const count = this.volumeHistoryCount[hs];
    if (count > 0) {
      let sum = 0;
      for (let d = 0; d < count; d++) sum += this.volumeHistory[hs * K + d];
      feat[fo + F_REL_VOLUME] = Math.log((volume + 1) / (sum / count + 1));
      mask[fo + F_REL_VOLUME] = 1;
    }
    this.dirty.mark(bar);
    this.volumeHistory[hs * K + this.volumeHistoryHead[hs]] = volume;
    this.volumeHistoryHead[hs] = (this.volumeHistoryHead[hs] + 1) % K;
    if (count < K) this.volumeHistoryCount[hs] = count + 1;

    // Moments of the 1-minute returns.
    let sumR = 0;
    let sumR2 = 0;
    for (let j = 0; j < nMin; j++) {
      sumR += this.minuteReturns[j];
      sumR2 += this.minuteReturns[j] * this.minuteReturns[j];
    }
    feat[fo + F_REALIZED_VOL] = Math.sqrt(sumR2);
    mask[fo + F_REALIZED_VOL] = 1;
    if (nMin >= 3) {
      const mean = sumR / nMin;
      let m2 = 0;
      let m3 = 0;
      for (let j = 0; j < nMin; j++) {
        const d = this.minuteReturns[j] - mean;
        m2 += d * d;
        m3 += d * d * d;
      }
      if (m2 > 1e-18) {
        feat[fo + F_REALIZED_SKEW] = (Math.sqrt(nMin) * m3) / Math.pow(m2, 1.5);
        mask[fo + F_REALIZED_SKEW] = 1;
      }
      const corr = pearson(this.minuteClose, this.minuteVolume, nMin);
      if (!Number.isNaN(corr)) {
        feat[fo + F_PRICE_VOLUME_CORR] = corr;
        mask[fo + F_PRICE_VOLUME_CORR] = 1;
      }
    }
    if (volume > 0) {
      feat[fo + F_UP_VOLUME_SHARE] = upVolume / volume;
      mask[fo + F_UP_VOLUME_SHARE] = 1;
    }
    if (buy + sell > 0) {
      feat[fo + F_BUY_VOLUME_SHARE] = buy / (buy + sell);
      mask[fo + F_BUY_VOLUME_SHARE] = 1;
    }
    if (tradeLevel && amount > 0) {
      feat[fo + F_LARGE_NET_BUY] = (largeBuy - largeSell) / amount;
      mask[fo + F_LARGE_NET_BUY] = 1;
    }
    if (tradesKnown && trades > 0) {
      feat[fo + F_AVG_TRADE_SIZE] = Math.log(amount / trades);
      mask[fo + F_AVG_TRADE_SIZE] = 1;
    }
    if (imbN > 0) {
      feat[fo + F_ORDER_IMBALANCE] = imbSum / imbN;
      mask[fo + F_ORDER_IMBALANCE] = 1;
    }
    if (sprN > 0) {
      feat[fo + F_REL_SPREAD] = sprSum / sprN;
      mask[fo + F_REL_SPREAD] = 1;
    }
  }
}
