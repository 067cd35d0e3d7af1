/**
 * Per-symbol aggregation of validated ticks and 1-minute bars into 1-minute sub-bars, and
 * the close rule: a bar closes when the event-time watermark (max event time - allowed
 * lateness) reaches its close instant, or when the owner advances the watermark by wall
 * clock (quiet feeds). Accumulating (MinuteStore) is separate from deciding when a bar
 * closes (here) and from reducing it (BarReducer).
 *
 * Ordering rule: before an event is aggregated, every bar due strictly before it closes;
 * so a print at exactly 10:00:00.000 opens the bar ending 10:10, while prints at exactly
 * 11:30:00.000 and 15:00:00.000 still belong to the bar that ends then.
 *
 * Stateful checks live here: duplicates (sequence numbers within a window, repeated
 * snapshots, a second bar for a minute), decreasing cumulative snapshots, late events,
 * a symbol fed by both ticks and bars on one day, and prices outside the day's limit band.
 *
 * The day's reference (limit prices, ST) of a symbol is set on its first event of the
 * day: from the reference book's record, or without one from its last price before the
 * day by the board rule (W_NO_REFERENCE, reported once per symbol and day), whose lower
 * side then rejects only far below (UNREFERENCED_LOWER_FACTOR: ex-rights days).
 */
import type { ErrorCode } from '../errors.js';
import { grown } from '../typed-arrays.js';
import type { TradingCalendar } from '../market/calendar.js';
import { BarSchedule, freqMinutes, type Freq } from '../market/sessions.js';
import { boardOf, priceLimits, type Board } from '../market/symbols.js';
import { referenceLimits, type ReferenceBook, type ReferenceRecord } from '../market/reference.js';
import { isoToDay, localDay, MS_PER_MINUTE, toLocalIso } from '../market/time.js';
import {
  BAR_SESSION_PRINT,
  HAS_QUOTE,
  HAS_SEQ,
  HAS_SIDES,
  HAS_TRADES,
  KIND_TRADE,
  SIDE_BUY,
  SIDE_SELL,
  type BarBatch,
  type SymbolTable,
  type TickBatch,
} from '../ingest/events.js';
import { SLOT_BREAK } from '../ingest/validate.js';
import { BarReducer, type BarReducerIncrement, type BarReducerState, type DailyReference } from './bar-reducer.js';
import { ClosedBars } from './closed-bars.js';

import { DEFAULT_FEATURE_PARAMS, type FeatureParams } from './feature-set.js';
import {
  M_AMOUNT,
  M_AUCTION_BAR,
  M_BUY_VOLUME,
  M_CLOSE,
  M_FILLED,
  M_FROM_BAR,
  M_HIGH,
  M_LARGE_BUY,
  M_LARGE_SELL,
  M_LOW,
  M_NOT_TRADE_LEVEL,
  M_NO_TRADE_COUNT,
  M_OPEN,
  M_SELL_VOLUME,
  M_TRADES,
  M_VOLUME,
  MinuteStore,
  type MinuteStoreIncrement,
  type MinuteStoreState,
  stampOf,
} from './minute-store.js';

/** Per-symbol feed state offsets (Aggregator.feed). */
const S_DAY = 0;
const S_MODE = 1;
const S_SNAP_TS = 2;
const S_CUM_VOLUME = 3;
const S_CUM_AMOUNT = 4;
const S_MAX_SEQ = 5;
const S_SEQ_HEAD = 6;
const S_FIELDS = 8;

const MODE_NONE = 0;
const MODE_TICKS = 1;
const MODE_BARS = 2;

/**
 * Whether a snapshot may follow the symbol's previous one, or the code that rejects it: an
 * earlier time is out of order; the same time and totals is a repeat; the same time with
 * larger totals is a later snapshot within the feed's time resolution (vendors stamp to
 * the second), accepted. Decreasing totals are checked apart (E_CUMULATIVE_DECREASE).
 */
function snapshotOrder(ts: number, lastTs: number, cv: number, ca: number, lastV: number, lastA: number): ErrorCode | undefined {
  if (ts < lastTs) return cv === lastV && ca === lastA ? 'E_DUPLICATE' : 'E_OUT_OF_ORDER';
  if (ts === lastTs && cv <= lastV && ca <= lastA) return cv === lastV && ca === lastA ? 'E_DUPLICATE' : 'E_OUT_OF_ORDER';
  return undefined;
}

export interface AggregatorOptions {
  calendar: TradingCalendar;
  symbols: SymbolTable;
  freqs: readonly Freq[];
  /** Allowed lateness of event time, ms (< 30 minutes). */
  allowedLatenessMs?: number;
  /** Sequence numbers remembered per symbol for duplicate detection. */
  dedupWindow?: number;
  features?: Partial<FeatureParams>;
  /**
   * Whether the newest event time moves the watermark (default). The daemon turns this
   * off and drives advanceWatermark itself from per-partition event times, so that the
   * order in which partitions are read cannot make an event late.
   */
  eventTimeWatermark?: boolean;
  /** Daily reference data (limits, ST): read on each symbol's first event of a day, and again when applyReference changes it. */
  reference?: ReferenceBook;
  /** Called once per symbol and day it trades without a record in `reference` (W_NO_REFERENCE). */
  onNoReference?(symbol: number, day: number): void;
  /** Called once per rejected event, with the batch row it came from. */
  onReject(code: ErrorCode, detail: string, symbol: number, origin: number): void;
  /** Called at every bar close, in time order; coarser frequencies after finer ones at the same instant. */
  onClose(bars: ClosedBars): void;
}

interface FreqState {
  freq: Freq;
  schedule: BarSchedule;
  reducer: BarReducer;
  out: ClosedBars;
  /** Next bar to close: day number and index; day -1 before the first event. */
  day: number;
  bar: number;
  closeAt: number;
}

/** The aggregator in a checkpoint. */
export interface AggregatorState {
  capacity: number;
  maxEventTs: number;
  nextCloseAt: number;
  openFromStamp: number;
  feed: Float64Array;
  seqRing: Float64Array;
  /** Added in checkpoint format 3: absent in older checkpoints (restored as unknown). */
  lastPrice?: Float64Array;
  rejectBelow?: Float64Array;
  reference?: DailyReference;
  minutes: MinuteStoreState;
  freqs: FreqSaved<BarReducerState>[];
}

interface FreqSaved<R> {
  freq: Freq;
  day: number;
  bar: number;
  closeAt: number;
  reducer: R;
}

/**
 * What changed since the last saved checkpoint: the per-symbol arrays whole (small), the
 * dedup ring's entries written since (each symbol's newest `counts[i]`, ending at its
 * head), the minute store's and the reducers' increments.
 */
export interface AggregatorIncrement extends Omit<AggregatorState, 'seqRing' | 'minutes' | 'freqs'> {
  seqWrites: { symbols: Int32Array; counts: Int32Array; values: Float64Array };
  minutes: MinuteStoreState | MinuteStoreIncrement;
  freqs: FreqSaved<BarReducerState | BarReducerIncrement>[];
}

/**
 * Without a reference record an ex-rights day can open far below the last price (bonus
 * shares: 10-for-10 halves it), so below the board rule's lower limit a print is rejected
 * only under a third of it (a 10-for-20 adjustment); the upper side holds as it is.
 */
const UNREFERENCED_LOWER_FACTOR = 1 / 3;

export class Aggregator {
  readonly calendar: TradingCalendar;
  readonly symbols: SymbolTable;
  readonly params: FeatureParams;
  readonly latenessMs: number;
  private readonly dedupWindow: number;
  private readonly eventTimeWatermark: boolean;
  private readonly onReject: AggregatorOptions['onReject'];
  private readonly onClose: AggregatorOptions['onClose'];
  /** Finest first: closes at one instant go finest to coarsest. */
  private readonly freqs: FreqState[];
  private capacity = 0;
  readonly minutes: MinuteStore;
  private maxEventTs = -Infinity;
  /** The earliest close instant across frequencies: events before it close nothing. */
  private nextCloseAt = Infinity;
  /** Stamp of the first minute not yet closed at the finest frequency: earlier minutes are late. */
  private openFromStamp = -1;
  /** Stamp of the first minute an open bar of any frequency still reads: the ring must not overwrite it or later ones (derived). */
  private keepFromStamp = -1;

  /**
   * Per-symbol, per-day feed state, S_FIELDS numbers per symbol in one array (one cache
   * line per symbol on the per-tick path): see the S_* offsets.
   */
  private feed: Float64Array = new Float64Array(0);
  /** The amount (CNY) of the last snapshot increment snapshotIncrement returned. */
  private amountIncrement = 0;
  private seqRing: Float64Array = new Float64Array(0);
  /** Per symbol, dedup ring entries written since the last saved checkpoint (at most the window); everything after a restore. */
  private seqWrites: Int32Array = new Int32Array(0);
  private seqEverything = true;
  /** Last trade price (or snapshot price, or 1-minute bar close) per symbol: the fallback reference of its next day. */
  private lastPrice: Float64Array = new Float64Array(0);
  /** The price below which a print is E_PRICE_LIMIT today: the lower limit, or a third of it without a reference record. */
  private rejectBelow: Float64Array = new Float64Array(0);
  readonly reference: DailyReference = { prevClose: new Float64Array(0), isST: new Uint8Array(0), upper: new Float64Array(0), lower: new Float64Array(0) };
  private readonly boards: (Board | undefined)[] = [];
  private readonly book: ReferenceBook | undefined;
  private readonly onNoReference: AggregatorOptions['onNoReference'];


  constructor(opts: AggregatorOptions) {
    this.calendar = opts.calendar;
    this.symbols = opts.symbols;
    this.params = { ...DEFAULT_FEATURE_PARAMS, ...opts.features };
    this.latenessMs = opts.allowedLatenessMs ?? 0;
    if (!(this.latenessMs >= 0 && this.latenessMs < 30 * MS_PER_MINUTE)) {
      throw new RangeError('allowed lateness must be in [0, 30 minutes)');
    }
    this.dedupWindow = opts.dedupWindow ?? 256;
    this.eventTimeWatermark = opts.eventTimeWatermark ?? true;
    this.onReject = opts.onReject;
    this.onClose = opts.onClose;
    this.book = opts.reference;
    this.onNoReference = opts.onNoReference;
    const cap = Math.max(16, opts.symbols.size);
    this.minutes = new MinuteStore(cap);
    const sorted = [...new Set(opts.freqs)].sort((a, b) => freqMinutes(a) - freqMinutes(b));
    if (sorted.length === 0) throw new RangeError('at least one bar frequency is needed');
    this.freqs = sorted.map((freq) => {
      const schedule = new BarSchedule(freq, opts.calendar.widestGrace);
      return {
        freq,
        schedule,
        reducer: new BarReducer(schedule, this.params, cap),
        out: new ClosedBars(freq, cap),
        day: -1,
        bar: 0,
        closeAt: Infinity,
      };
    });
    this.ensureCapacity(cap);
  }

  private ensureCapacity(needed: number): void {
    if (needed <= this.capacity) return;
    const cap = Math.max(needed, this.capacity * 2);
    const oldCapacity = this.capacity;
    this.feed = grown(this.feed, cap * S_FIELDS);
    for (let s = oldCapacity; s < cap; s++) this.feed[s * S_FIELDS + S_DAY] = -1;
    this.seqRing = grown(this.seqRing, cap * this.dedupWindow, -1);
    // A growth keeps increments small: new symbols' ring entries are empty (-1) on both sides of a restore.
    this.seqWrites = grown(this.seqWrites, cap);
    this.lastPrice = grown(this.lastPrice, cap, Number.NaN);
    this.rejectBelow = grown(this.rejectBelow, cap, Number.NaN);
    this.reference.prevClose = grown(this.reference.prevClose, cap, Number.NaN);
    this.reference.isST = grown(this.reference.isST, cap);
    this.reference.upper = grown(this.reference.upper, cap, Number.NaN);
    this.reference.lower = grown(this.reference.lower, cap, Number.NaN);
    this.minutes.resize(cap);
    for (const f of this.freqs) {
      f.reducer.resize(cap);
      f.out.ensure(cap);
    }
    this.capacity = cap;
  }

  /** Symbols known so far; grows as new symbols are interned (lazily: at the next row or close, see restore). */
  private syncSymbols(): void {
    const n = this.symbols.size;
    if (n > this.capacity) this.ensureCapacity(n);
    this.syncBoards();
  }

  private syncBoards(): void {
    const boards = this.boards;
    for (let s = boards.length; s < this.symbols.size; s++) boards.push(boardOf(this.symbols.names[s]));
  }

  /**
   * Sets symbol s's reference for `day`: the book's record, else (counted once per symbol
   * and day when a book is configured) its last price before the day by the board rule.
   */
  private loadReference(s: number, day: number, report: boolean): void {
    const record = this.book?.get(day, this.symbols.names[s]);
    const ref = this.reference;
    const board = this.boards[s];
    if (record !== undefined && board !== undefined) {
      const limits = referenceLimits(record, board);
      ref.prevClose[s] = record.prevClose;
      ref.isST[s] = record.st ? 1 : 0;
      ref.upper[s] = limits.up;
      ref.lower[s] = limits.down;
      this.rejectBelow[s] = limits.down;
      return;
    }
    if (report && this.book !== undefined) this.onNoReference?.(s, day);
    const last = this.lastPrice[s];
    ref.prevClose[s] = last;
    ref.isST[s] = 0;
    const limits = last > 0 && board !== undefined ? priceLimits(last, board, false) : undefined;
    ref.upper[s] = limits?.up ?? Number.NaN;
    ref.lower[s] = limits?.down ?? Number.NaN;
    this.rejectBelow[s] = ref.lower[s] * UNREFERENCED_LOWER_FACTOR;
  }

  /**
   * Takes a reference record that arrived after the symbol's day started (an update during
   * the day): the limits of its later events and bars follow it. The book must hold it already.
   */
  applyReference(record: ReferenceRecord): void {
    const s = this.symbols.idOf(record.symbol);
    if (s === undefined || s >= this.capacity) return;
    const day = this.feed[s * S_FIELDS + S_DAY];
    if (day >= 0 && day === isoToDay(record.date)) this.loadReference(s, day, false);
  }

  /** Whether [low, high] leaves symbol s's band today (false while the band is unknown). */
  private outsideBand(s: number, low: number, high: number): boolean {
    return high > this.reference.upper[s] + 1e-9 || low < this.rejectBelow[s] - 1e-9;
  }

  /** The detail of an E_PRICE_LIMIT (off the per-event path: built only for a reject). */
  private bandDetail(s: number, what: string, ts: number): string {
    const basis = this.book?.get(localDay(ts), this.symbols.names[s]) !== undefined ? 'the reference data' : `the board rule on the last price ${this.reference.prevClose[s]}`;
    return `${what} at ${toLocalIso(ts)} is outside the day's band ${Number(this.rejectBelow[s].toFixed(4))} - ${Number(this.reference.upper[s].toFixed(4))} (${basis})`;
  }

  /** Resets a symbol's per-day feed state on its first event of a day. */
  private dayState(s: number, day: number): void {
    this.loadReference(s, day, true);
    const f = s * S_FIELDS;
    const st = this.feed;
    st[f + S_DAY] = day;
    st[f + S_MODE] = MODE_NONE;
    st[f + S_SNAP_TS] = -Infinity;
    st[f + S_CUM_VOLUME] = 0;
    st[f + S_CUM_AMOUNT] = 0;
    st[f + S_MAX_SEQ] = -Infinity;
    st[f + S_SEQ_HEAD] = 0;
    this.seqRing.fill(-1, s * this.dedupWindow, (s + 1) * this.dedupWindow);
    this.seqWrites[s] = this.dedupWindow;
  }

  /** Whether `seq` was seen recently for symbol s; records it when new. */
  private seenSeq(s: number, seq: number): boolean {
    const w = this.dedupWindow;
    const base = s * w;
    const f = s * S_FIELDS;
    const st = this.feed;
    if (seq <= st[f + S_MAX_SEQ]) {
      for (let k = 0; k < w; k++) if (this.seqRing[base + k] === seq) return true;
    } else {
      st[f + S_MAX_SEQ] = seq;
    }
    const head = st[f + S_SEQ_HEAD];
    this.seqRing[base + head] = seq;
    st[f + S_SEQ_HEAD] = head + 1 === w ? 0 : head + 1;
    if (this.seqWrites[s] < w) this.seqWrites[s]++;
    return false;
  }

  /** Whether the first event has set the first bar (see start). */
  get started(): boolean {
    return this.freqs[0].day >= 0;
  }

  /**
   * Sets the first bar of every frequency to the one holding `ts`: what the first event
   * does. The daemon calls it with the earliest event over all its partitions, so that
   * whichever partition is read first, no earlier event is judged late.
   */
  start(ts: number): void {
    const day = localDay(ts);
    for (const f of this.freqs) {
      f.day = day;
      const slot = this.calendar.slotOf(ts);
      f.bar = f.schedule.barOfSlot(Math.max(0, slot));
      f.closeAt = f.schedule.closeAt(f.day, f.bar);
    }
    this.openFromStamp = stampOf(day, this.freqs[0].schedule.firstSlot(this.freqs[0].bar));
    this.keepFromStamp = this.oldestOpenStamp();
    this.nextCloseAt = this.earliestClose();
  }

  private oldestOpenStamp(): number {
    let stamp = Infinity;
    for (const f of this.freqs) stamp = Math.min(stamp, stampOf(f.day, f.schedule.firstSlot(f.bar)));
    return stamp;
  }

  /** The last price of each symbol that traded on `day`: its closing price once the day's last bar has closed. */
  lastPricesOn(day: number): Map<string, number> {
    const out = new Map<string, number>();
    const n = Math.min(this.symbols.size, this.capacity);
    for (let s = 0; s < n; s++) if (this.feed[s * S_FIELDS + S_DAY] === day && this.lastPrice[s] > 0) out.set(this.symbols.names[s], this.lastPrice[s]);
    return out;
  }

  /** The last close instant of the trading day holding `ts` (the coarsest bar's, the day's last). */
  lastCloseOfDay(ts: number): number {
    const coarsest = this.freqs[this.freqs.length - 1].schedule;
    return coarsest.closeAt(localDay(ts), coarsest.barsPerDay - 1);
  }

  private earliestClose(): number {
    let at = Infinity;
    for (const f of this.freqs) if (f.closeAt < at) at = f.closeAt;
    return at;
  }

  /**
   * Moves the watermark to `watermark` (epoch ms): closes, in time order, every bar whose
   * close instant is at or before it. The daemon also calls this from the wall clock.
   */
  advanceWatermark(watermark: number): void {
    if (this.freqs[0].day < 0 || watermark < this.nextCloseAt) return;
    while (true) {
      // The next close is the earliest closeAt across frequencies (finest first on ties).
      let next: FreqState | undefined;
      for (const f of this.freqs) if (next === undefined || f.closeAt < next.closeAt) next = f;
      if (next === undefined || next.closeAt > watermark) return;
      const at = next.closeAt;
      for (const f of this.freqs) if (f.closeAt === at) this.closeBar(f);
      this.nextCloseAt = this.earliestClose();
    }
  }

  private closeBar(f: FreqState): void {
    this.syncSymbols();
    const out = f.out;
    out.day = f.day;
    out.bar = f.bar;
    out.barEnd = f.schedule.barEnd(f.day, f.bar);
    out.n = this.symbols.size;
    for (let s = 0; s < out.n; s++) f.reducer.reduce(s, f.day, f.bar, this.minutes, this.reference, out);
    // Advance before notifying, so that a consumer sees consistent state.
    if (f.bar + 1 < f.schedule.barsPerDay) f.bar++;
    else {
      f.day = this.calendar.nextTradingDay(f.day);
      f.bar = 0;
    }
    f.closeAt = f.schedule.closeAt(f.day, f.bar);
    if (f === this.freqs[0]) this.openFromStamp = stampOf(f.day, f.schedule.firstSlot(f.bar));
    this.keepFromStamp = this.oldestOpenStamp();
    this.onClose(out);
  }

  /** The watermark step before an event newer than every earlier one. */
  private beforeEvent(ts: number): void {
    if (this.freqs[0].day < 0) this.start(ts);
    this.maxEventTs = ts;
    if (this.eventTimeWatermark) this.advanceWatermark(ts - this.latenessMs);
  }

  /** Aggregates validated tick rows [from, to) in order. */
  ingestTicks(b: TickBatch, from = 0, to = b.length): void {
    this.syncSymbols();
    const large = this.params.largeTradeAmount;
    const mins = this.minutes;
    const d = mins.data;
    const st = this.feed;
    for (let i = from; i < to; i++) {
      const ts = b.ts[i];
      // Bars due before this event close first (event-time order).
      if (ts > this.maxEventTs) this.beforeEvent(ts);
      const s = b.symbol[i];
      const day = localDay(ts);
      const slot = b.slot[i];
      if (slot === SLOT_BREAK) {
        this.breakSnapshot(b, i, s, day);
        continue;
      }
      const stamp = stampOf(day, slot);
      if (stamp < this.openFromStamp) {
        this.onReject('E_LATE', `${b.kind[i] === KIND_TRADE ? 'trade' : 'snapshot'} at ${toLocalIso(ts)} belongs to a bar already closed`, s, b.origin[i]);
        continue;
      }
      const f = s * S_FIELDS;
      if (st[f + S_DAY] !== day) this.dayState(s, day);
      if (st[f + S_MODE] === MODE_BARS) {
        this.onReject('E_SOURCE_CONFLICT', 'tick for a symbol fed by 1-minute bars today', s, b.origin[i]);
        continue;
      }
      const price = b.price[i];
      if (price > 0 && this.outsideBand(s, price, price)) {
        this.onReject('E_PRICE_LIMIT', this.bandDetail(s, `${b.kind[i] === KIND_TRADE ? 'trade' : "snapshot's last price"} ${price}`, ts), s, b.origin[i]);
        continue;
      }
      const flags = b.flags[i];
      if (flags & HAS_SEQ && this.seenSeq(s, b.seq[i])) {
        this.onReject('E_DUPLICATE', `sequence number ${b.seq[i]} already aggregated`, s, b.origin[i]);
        continue;
      }
      const e = mins.entryForWrite(s, slot, stamp, this.keepFromStamp);
      if (b.kind[i] === KIND_TRADE) {
        const v = b.volume[i];
        const a = b.amount[i];
        mins.addTrade(e, price, v, a);
        d[e + M_TRADES] += 1;
        const side = b.side[i];
        if (side === SIDE_BUY) {
          d[e + M_BUY_VOLUME] += v;
          if (a >= large) d[e + M_LARGE_BUY] += a;
        } else if (side === SIDE_SELL) {
          d[e + M_SELL_VOLUME] += v;
          if (a >= large) d[e + M_LARGE_SELL] += a;
        }
      } else {
        const dv = this.snapshotIncrement(b, i, s);
        if (dv < 0) continue;
        if (dv > 0) {
          mins.addTrade(e, b.price[i], dv, this.amountIncrement);
          mins.setFlags(e, M_NO_TRADE_COUNT | M_NOT_TRADE_LEVEL);
        }
      }
      if (flags & HAS_QUOTE) mins.addQuote(e, b.bid1[i], b.ask1[i], b.bidVol1[i], b.askVol1[i]);
      if (price > 0) this.lastPrice[s] = price;
      st[f + S_MODE] = MODE_TICKS;
    }
  }

  /**
   * A snapshot outside the sessions (the lunch break, before the open, after the close):
   * one that reports nothing since the symbol's previous snapshot is a heartbeat, valid and
   * aggregated into nothing; one that reports new volume is E_OUT_OF_SESSION, and its
   * increment is taken as seen (it is in no bar, and the reject says how much), so that the
   * next snapshot's increment does not carry it into the next session's first bar.
   */
  private breakSnapshot(b: TickBatch, i: number, s: number, day: number): void {
    if (this.feed[s * S_FIELDS + S_DAY] !== day) this.dayState(s, day);
    const dv = this.snapshotIncrement(b, i, s);
    if (dv < 0 || (dv === 0 && this.amountIncrement === 0)) return;
    this.onReject('E_OUT_OF_SESSION', `snapshot: ${this.calendar.outOfSessionReason(b.ts[i], this.symbols.exchanges[s])}, reporting ${dv} shares / CNY ${this.amountIncrement} not in any bar`, s, b.origin[i]);
  }

  /**
   * Checks snapshot row i against the symbol's previous snapshot and records it: returns
   * the shares it adds (its amount in amountIncrement), or -1 when it is rejected
   * (out of order, a repeat, decreasing totals).
   */
  private snapshotIncrement(b: TickBatch, i: number, s: number): number {
    const f = s * S_FIELDS;
    const st = this.feed;
    const ts = b.ts[i];
    const cv = b.cumVolume[i];
    const ca = b.cumAmount[i];
    const lastV = st[f + S_CUM_VOLUME];
    const lastA = st[f + S_CUM_AMOUNT];
    if (snapshotOrder(ts, st[f + S_SNAP_TS], cv, ca, lastV, lastA) !== undefined) {
      this.rejectSnapshotOrder(b, i, s, st[f + S_SNAP_TS], lastV, lastA);
      return -1;
    }
    if (cv < lastV || ca < lastA) {
      this.onReject('E_CUMULATIVE_DECREASE', `cumVolume ${cv} / cumAmount ${ca} below ${lastV} / ${lastA}`, s, b.origin[i]);
      return -1;
    }
    st[f + S_SNAP_TS] = ts;
    st[f + S_CUM_VOLUME] = cv;
    st[f + S_CUM_AMOUNT] = ca;
    this.amountIncrement = ca - lastA;
    return cv - lastV;
  }

  private rejectSnapshotOrder(b: TickBatch, i: number, s: number, lastTs: number, lastV: number, lastA: number): void {
    const code = snapshotOrder(b.ts[i], lastTs, b.cumVolume[i], b.cumAmount[i], lastV, lastA) as ErrorCode;
    const at = `snapshot at ${toLocalIso(b.ts[i])} (cumVolume ${b.cumVolume[i]})`;
    const previous = `the snapshot at ${toLocalIso(lastTs)} (cumVolume ${lastV})`;
    this.onReject(code, code === 'E_DUPLICATE' ? `${at} repeats ${previous}` : `${at} is older than ${previous}`, s, b.origin[i]);
  }

  /** Aggregates validated 1-minute bar rows [from, to) in order. */
  ingestBars(b: BarBatch, from = 0, to = b.length): void {
    this.syncSymbols();
    const mins = this.minutes;
    const d = mins.data;
    const st = this.feed;
    for (let i = from; i < to; i++) {
      const ts = b.ts[i];
      const slot = b.slot[i];
      const day = localDay(ts);
      // A bar is ordered by its last covered instant, so its own label does not close it.
      if (ts - 1 > this.maxEventTs) this.beforeEvent(ts - 1);
      const s = b.symbol[i];
      const stamp = stampOf(day, slot);
      if (stamp < this.openFromStamp) {
        this.onReject('E_LATE', `1-minute bar ending ${toLocalIso(ts)} belongs to a bar already closed`, s, b.origin[i]);
        continue;
      }
      const f = s * S_FIELDS;
      if (st[f + S_DAY] !== day) this.dayState(s, day);
      if (st[f + S_MODE] === MODE_TICKS) {
        this.onReject('E_SOURCE_CONFLICT', '1-minute bar for a symbol fed by ticks today', s, b.origin[i]);
        continue;
      }
      if (this.outsideBand(s, b.low[i], b.high[i])) {
        this.onReject('E_PRICE_LIMIT', this.bandDetail(s, `1-minute bar (low ${b.low[i]}, high ${b.high[i]}) ending`, ts), s, b.origin[i]);
        continue;
      }
      const e = mins.entryForWrite(s, slot, stamp, this.keepFromStamp);
      // Slot 0 may take a vendor's opening-auction bar (labelled 09:25 or 09:30) and the
      // 09:31 bar: they merge, and each may come once.
      const which = b.flags[i] & BAR_SESSION_PRINT ? M_AUCTION_BAR : M_FROM_BAR;
      if (mins.flagsOf(e) & which) {
        this.onReject('E_DUPLICATE', `second 1-minute bar for ${ts}`, s, b.origin[i]);
        continue;
      }
      if (b.volume[i] > 0) {
        if ((mins.flagsOf(e) & M_FILLED) === 0) {
          d[e + M_OPEN] = b.open[i];
          d[e + M_HIGH] = b.high[i];
          d[e + M_LOW] = b.low[i];
          mins.setFlags(e, M_FILLED);
        } else {
          if (b.high[i] > d[e + M_HIGH]) d[e + M_HIGH] = b.high[i];
          if (b.low[i] < d[e + M_LOW]) d[e + M_LOW] = b.low[i];
        }
        d[e + M_CLOSE] = b.close[i];
        this.lastPrice[s] = b.close[i];
        d[e + M_VOLUME] += b.volume[i];
        d[e + M_AMOUNT] += b.amount[i];
      }
      const flags = b.flags[i];
      if (flags & HAS_SIDES) {
        d[e + M_BUY_VOLUME] += b.buyVolume[i];
        d[e + M_SELL_VOLUME] += b.sellVolume[i];
      }
      if (flags & HAS_TRADES) d[e + M_TRADES] += b.trades[i];
      else mins.setFlags(e, M_NO_TRADE_COUNT);
      mins.setFlags(e, M_NOT_TRADE_LEVEL | which);
      st[f + S_MODE] = MODE_BARS;
    }
  }

  /** The newest event time ingested (epoch ms), -Infinity before the first. */
  get newestEventTs(): number {
    return this.maxEventTs;
  }

  /** The close instant of the next bar to close (epoch ms), Infinity before the first event. */
  get nextClose(): number {
    return this.nextCloseAt;
  }

  snapshot(): AggregatorState {
    return {
      ...this.perSymbol(),
      seqRing: this.seqRing,
      minutes: this.minutes.snapshot(),
      freqs: this.freqs.map((f) => ({ freq: f.freq, day: f.day, bar: f.bar, closeAt: f.closeAt, reducer: f.reducer.snapshot() })),
    };
  }

  /** What changed since the last saved checkpoint (see AggregatorIncrement); the whole state after a restore. */
  increment(): AggregatorState | AggregatorIncrement {
    if (this.seqEverything) return this.snapshot();
    const w = this.dedupWindow;
    let symbols = 0;
    let values = 0;
    for (let s = 0; s < this.capacity; s++) {
      if (this.seqWrites[s] === 0) continue;
      symbols++;
      values += this.seqWrites[s];
    }
    const seqWrites = { symbols: new Int32Array(symbols), counts: new Int32Array(symbols), values: new Float64Array(values) };
    let i = 0;
    let o = 0;
    for (let s = 0; s < this.capacity; s++) {
      const k = this.seqWrites[s];
      if (k === 0) continue;
      seqWrites.symbols[i] = s;
      seqWrites.counts[i++] = k;
      const head = this.feed[s * S_FIELDS + S_SEQ_HEAD];
      for (let j = k; j > 0; j--) seqWrites.values[o++] = this.seqRing[s * w + ((head - j + w) % w)];
    }
    return {
      ...this.perSymbol(),
      seqWrites,
      minutes: this.minutes.increment(),
      freqs: this.freqs.map((f) => ({ freq: f.freq, day: f.day, bar: f.bar, closeAt: f.closeAt, reducer: f.reducer.increment() })),
    };
  }

  /** The state as it is now was checkpointed. */
  saved(): void {
    this.seqWrites.fill(0);
    this.seqEverything = false;
    this.minutes.saved();
    for (const f of this.freqs) f.reducer.saved();
  }

  /** The per-symbol arrays and scalars, written whole in every checkpoint. */
  private perSymbol(): Omit<AggregatorState, 'seqRing' | 'minutes' | 'freqs'> {
    const { capacity, maxEventTs, nextCloseAt, openFromStamp, feed, lastPrice, rejectBelow } = this;
    return { capacity, maxEventTs, nextCloseAt, openFromStamp, feed, lastPrice, rejectBelow, reference: { ...this.reference } };
  }

  /** Restores a snapshot (or applies an increment to the state restored before it) taken with the same frequencies; the symbol table must already hold the snapshot's symbols. */
  restore(state: AggregatorState | AggregatorIncrement): void {
    const freqs = state.freqs;
    if (freqs.map((f) => f.freq).join() !== this.freqs.map((f) => f.freq).join()) {
      throw new Error(`checkpoint aggregates ${freqs.map((f) => f.freq).join(', ')}; this run aggregates ${this.freqs.map((f) => f.freq).join(', ')}`);
    }
    if ('seqWrites' in state) {
      if (state.capacity < this.capacity) throw new Error(`a checkpoint increment of the aggregator is for ${state.capacity} symbols; it holds ${this.capacity}`);
      // The daemon grew between the two checkpoints: the ring entries of the new symbols start empty, as they did there.
      if (state.capacity > this.capacity) this.seqRing = grown(this.seqRing, state.capacity * this.dedupWindow, -1);
    } else {
      this.seqRing = state.seqRing;
    }
    ({ capacity: this.capacity, maxEventTs: this.maxEventTs, nextCloseAt: this.nextCloseAt, openFromStamp: this.openFromStamp, feed: this.feed } = state);
    if ('seqWrites' in state) {
      // After the feed: its heads are the ring heads the writes end at.
      const w = this.dedupWindow;
      const { symbols, counts, values } = state.seqWrites;
      let o = 0;
      for (let i = 0; i < symbols.length; i++) {
        const s = symbols[i];
        const head = this.feed[s * S_FIELDS + S_SEQ_HEAD];
        for (let j = counts[i]; j > 0; j--) this.seqRing[s * w + ((head - j + w) % w)] = values[o++];
      }
    }
    this.seqWrites = new Int32Array(this.capacity);
    this.seqEverything = true;
    if (state.reference !== undefined && state.lastPrice !== undefined && state.rejectBelow !== undefined) {
      this.lastPrice = state.lastPrice;
      this.rejectBelow = state.rejectBelow;
      Object.assign(this.reference, state.reference);
    } else {
      // Format 2: no day references; unknown until each symbol's next day starts.
      const cap = state.feed.length / S_FIELDS;
      this.lastPrice = new Float64Array(cap).fill(Number.NaN);
      this.rejectBelow = new Float64Array(cap).fill(Number.NaN);
      this.reference.prevClose = new Float64Array(cap).fill(Number.NaN);
      this.reference.isST = new Uint8Array(cap);
      this.reference.upper = new Float64Array(cap).fill(Number.NaN);
      this.reference.lower = new Float64Array(cap).fill(Number.NaN);
    }
    this.minutes.restore(state.minutes);
    freqs.forEach((saved, i) => {
      const f = this.freqs[i];
      f.day = saved.day;
      f.bar = saved.bar;
      f.closeAt = saved.closeAt;
      f.reducer.restore(saved.reducer);
      f.out.ensure(this.capacity);
    });
    this.keepFromStamp = this.started ? this.oldestOpenStamp() : -1;
    // Not grown to the symbol table here: a snapshot may know symbols whose rows were still
    // waiting for a close, and an increment after it grows the stores to the capacity it was written with.
    this.syncBoards();
  }

  /** Closes every bar up to the end of the last trading day seen (end of a file or replay). */
  flush(): void {
    if (this.freqs[0].day < 0 || this.maxEventTs === -Infinity) return;
    this.advanceWatermark(this.lastCloseOfDay(this.maxEventTs));
  }
}
