/**
 * Live IC: the served factor measured by the daemon itself, long before the weekly report.
 * At each trading day's close (the 15:00 bar) it keeps each model's end-of-day scores and
 * every symbol's closing price; h trading days later (h = 1 and 5) the realised return
 * close(d + h) / close(d) − 1 of each symbol scored on day d is known, and the cross-
 * sectional rank IC between the day-d scores and those returns is the realised IC of day d
 * at horizon h. The latest and the mean of the last 20 are exported (factorstream_live_ic,
 * factorstream_live_ic_mean): a factor that decays shows there within days.
 *
 * Symbols without a close on either day (suspended, not traded, delisted) drop out of that
 * day's IC. State (a few days of scores and prices) is part of the daemon's checkpoint.
 */
import type { TradingCalendar } from '../market/calendar.js';
import { spearman } from '../stats.js';

export const LIVE_IC_HORIZONS = [1, 5] as const;
/** Realised ICs averaged into the _mean gauge. */
export const LIVE_IC_WINDOW = 20;
/** An IC needs at least this many symbols with both prices. */
const MIN_SYMBOLS = 10;

interface DayScores {
  day: number;
  ids: Int32Array;
  scores: Float32Array;
  /** Horizons (bit per index of LIVE_IC_HORIZONS) already measured. */
  done: number;
}

export interface LiveIcObservation {
  model: string;
  horizon: number;
  /** The day the scores were published (local day number). */
  day: number;
  ic: number;
  mean: number;
  symbols: number;
}

export interface LiveIcState {
  closes: [number, Float64Array][];
  scores: [string, DayScores[]][];
  history: [string, { day: number; ic: number }[]][];
}

export class LiveIc {
  private readonly closes = new Map<number, Float64Array>();
  private readonly scores = new Map<string, DayScores[]>();
  /** `model|horizon` -> the last LIVE_IC_WINDOW realised ICs. */
  private readonly history = new Map<string, { day: number; ic: number }[]>();
  private readonly maxHorizon = Math.max(...LIVE_IC_HORIZONS);

  constructor(
    private readonly calendar: TradingCalendar,
    private readonly onIc: (o: LiveIcObservation) => void,
  ) {}

  /** The closing prices of `day` by symbol id (rows 0..n-1; a missing bar has none). */
  dayClose(day: number, close: Float64Array, missing: Uint8Array, n: number): void {
    if (this.closes.has(day)) return;
    const c = new Float64Array(n);
    for (let i = 0; i < n; i++) c[i] = missing[i] === 1 || !(close[i] > 0) ? Number.NaN : close[i];
    this.closes.set(day, c);
    // Prices older than the longest horizon before the oldest kept scores are not needed.
    const keep = this.calendar.shiftTradingDays(day, -(2 * this.maxHorizon + 1));
    for (const d of this.closes.keys()) if (d < keep) this.closes.delete(d);
    for (const model of this.scores.keys()) this.mature(model);
  }

  /** A model's end-of-day cross-section (symbol ids and raw scores). */
  dayScores(model: string, day: number, ids: Int32Array, scores: Float32Array): void {
    let list = this.scores.get(model);
    if (list === undefined) this.scores.set(model, (list = []));
    if (list.some((e) => e.day === day)) return;
    list.push({ day, ids: Int32Array.from(ids), scores: Float32Array.from(scores), done: 0 });
    this.mature(model);
  }

  private emit(model: string, horizon: number, hist: { day: number; ic: number }[], symbols: number): void {
    const last = hist[hist.length - 1];
    this.onIc({ model, horizon, day: last.day, ic: last.ic, mean: hist.reduce((a, b) => a + b.ic, 0) / hist.length, symbols });
  }

  private mature(model: string): void {
    const list = this.scores.get(model) ?? [];
    if (list.length === 0) return;
    for (const e of list) {
      const from = this.closes.get(e.day);
      if (from === undefined) continue;
      LIVE_IC_HORIZONS.forEach((h, k) => {
        if ((e.done & (1 << k)) !== 0) return;
        const to = this.closes.get(this.calendar.shiftTradingDays(e.day, h));
        if (to === undefined) return;
        e.done |= 1 << k;
        const x: number[] = [];
        const y: number[] = [];
        for (let i = 0; i < e.ids.length; i++) {
          const s = e.ids[i];
          const r = to[s] / from[s] - 1;
          if (Number.isFinite(r)) {
            x.push(e.scores[i]);
            y.push(r);
          }
        }
        if (x.length < MIN_SYMBOLS) return;
        const ic = spearman(x, y);
        if (!Number.isFinite(ic)) return;
        const key = `${model}|${h}`;
        const hist = this.history.get(key) ?? [];
        hist.push({ day: e.day, ic });
        if (hist.length > LIVE_IC_WINDOW) hist.shift();
        this.history.set(key, hist);
        this.emit(model, h, hist, x.length);
      });
    }
    // Scores whose every horizon is measured, or too old to be, are dropped.
    const all = (1 << LIVE_IC_HORIZONS.length) - 1;
    const newest = Math.max(...this.closes.keys(), ...list.map((e) => e.day));
    const oldest = this.calendar.shiftTradingDays(newest, -(this.maxHorizon + 1));
    this.scores.set(
      model,
      list.filter((e) => e.done !== all && e.day >= oldest),
    );
  }

  snapshot(): LiveIcState {
    return { closes: [...this.closes], scores: [...this.scores], history: [...this.history] };
  }

  /** Restores a snapshot and re-exports the last realised ICs (the gauges start empty in a new process). */
  restore(s: LiveIcState): void {
    for (const [d, c] of s.closes) this.closes.set(d, c);
    for (const [m, l] of s.scores) this.scores.set(m, l);
    for (const [k, h] of s.history) {
      this.history.set(k, h);
      const [model, horizon] = k.split('|');
      if (h.length > 0) this.emit(model, Number(horizon), h, 0);
    }
  }
}
