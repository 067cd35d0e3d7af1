/**
 * The report's portfolio test (section 5, Table 7): a weekly index-enhanced portfolio
 * against a benchmark index of the reference data, for each factor variant and stock
 * deviation.
 *
 * - Decision at the close of each rebalance date (the week's last trading day, or a given
 *   weekday); trades at the next trading day's average price (daily `amount / volume`),
 *   paying `cost` on the value traded (both sides); between trades the weights drift with
 *   the closes.
 * - Expected returns: each period's factor premia from a cross-sectional regression of the
 *   period's returns (close to close between rebalance dates) on industry dummies and the
 *   standardised exposures at its start (the factor's score, log size, any extra
 *   exposures); a premium is the mean of the last `premiumWindow` periods' (52 weeks: 12
 *   months); a stock's expected return is the premia times its latest exposures. Until the
 *   first premium is known the portfolio is the benchmark.
 * - Candidates: the benchmark's members on the trading day, and whatever is still held.
 * - Market reality (portfolio.ts): locked at the upper limit on the trading day (its
 *   average price within 0.1% of the limit) cannot be bought, at the lower cannot be sold;
 *   suspended is held; an infeasible week relaxes turnover, then exposures, then industry,
 *   and is reported.
 */
import { parse as parseCsv } from 'csv-parse/sync';
import type { ReferenceBook } from '../market/reference.js';
import { referenceLimits } from '../market/reference.js';
import { boardOf } from '../market/symbols.js';
import { isoToDay, weekday } from '../market/time.js';
import { solve, type DailyPanel } from '../model/labels.js';
import type { ScoreRow } from './evaluate.js';
import { weekEnds } from './evaluate.js';
import { solveRebalance, type ExposureBound, type Relaxation } from './portfolio.js';

/** A-share trading days a year, for annualising. */
export const TRADING_DAYS_PER_YEAR = 242;

/** Extra factor exposures by day and symbol (valuation, momentum, …: a CSV of columns). */
export interface ExtraExposures {
  names: string[];
  get(date: string, symbol: string): Float64Array | undefined;
}

export interface BacktestConfig {
  /** Index name in the reference data's `indexes`. */
  benchmark: string;
  /** Largest |w − b| per stock. */
  deviation: number;
  industryNeutral: boolean;
  sizeNeutral: boolean;
  /** |active exposure| bound of the factor tested (standardised). */
  factorBound: number;
  /** |active exposure| bound of the extra exposures; those named in `neutral` are held at 0. */
  extraBound: number;
  neutral: string[];
  /** One-way turnover cap per rebalance. */
  turnoverCap: number;
  /** Cost per unit of value traded (3‰ = 0.003). */
  cost: number;
  /** 'last': the last trading day of each week; 1-5: that weekday (Monday = 1). */
  rebalance: 'last' | number;
  premiumWindow: number;
}

export const DEFAULT_BACKTEST_CONFIG: Omit<BacktestConfig, 'benchmark'> = {
  deviation: 0.01,
  industryNeutral: true,
  sizeNeutral: true,
  factorBound: 2,
  extraBound: 0.5,
  neutral: [],
  turnoverCap: 0.3,
  cost: 0.003,
  rebalance: 'last',
  premiumWindow: 52,
};

/** One rebalance, with everything its constraints were built from (tests check them against it). */
export interface Rebalance {
  /** Decision date (a close) and trading date. */
  date: string;
  tradeDate: string;
  symbols: string[];
  weights: Float64Array;
  bench: Float64Array;
  prev: Float64Array;
  industry: Int32Array;
  exposures: ExposureBound[];
  canBuy: Uint8Array;
  canSell: Uint8Array;
  mu: Float64Array;
  objective: number;
  relaxed: Relaxation[];
  solved: boolean;
  /** One-way turnover, ½ Σ |w − p|. */
  turnover: number;
  /** Cost paid, as a fraction of the portfolio's value. */
  cost: number;
  seconds: number;
  /** 'benchmark' before the first premium is known; 'optimised' after. */
  kind: 'benchmark' | 'optimised';
}

export interface BacktestMetrics {
  days: number;
  annualExcess: number;
  trackingError: number;
  informationRatio: number;
  maxDrawdown: number;
  meanTurnover: number;
  costPaid: number;
  rebalances: number;
  relaxedWeeks: number;
  yearly: Record<string, number>;
}

export interface BacktestRun {
  dates: string[];
  nav: number[];
  benchmarkNav: number[];
  excessNav: number[];
  rebalances: Rebalance[];
  metrics: BacktestMetrics;
}

function zscores(values: Float64Array, ok: Uint8Array): Float64Array {
  let n = 0;
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    if (!ok[i]) continue;
    n++;
    sum += values[i];
  }
  const mean = n > 0 ? sum / n : 0;
  let ss = 0;
  for (let i = 0; i < values.length; i++) if (ok[i]) ss += (values[i] - mean) ** 2;
  const sd = n > 1 ? Math.sqrt(ss / (n - 1)) : 0;
  return Float64Array.from(values, (v, i) => (ok[i] && sd > 0 ? (v - mean) / sd : 0));
}

/** Least-squares coefficients of y on the columns of X (row-major, n × k), or undefined when singular. */
function leastSquares(X: Float64Array, y: Float64Array, n: number, k: number): Float64Array | undefined {
  const xtx = new Float64Array(k * k);
  const xty = new Float64Array(k);
  for (let r = 0; r < n; r++) {
    for (let a = 0; a < k; a++) {
      const xa = X[r * k + a];
      if (xa === 0) continue;
      xty[a] += xa * y[r];
      for (let b = 0; b < k; b++) xtx[a * k + b] += xa * X[r * k + b];
    }
  }
  return solve(xtx, xty, k) ?? undefined;
}

interface Exposed {
  symbols: string[];
  /** Standardised exposures [stock][factor]: the tested factor, log size, extras. */
  x: Float64Array[];
  industry: Int32Array;
}

/** Runs the backtest of one factor variant. */
export async function backtest(scores: readonly ScoreRow[], daily: DailyPanel, reference: ReferenceBook, cfg: BacktestConfig, extra?: ExtraExposures): Promise<BacktestRun> {
  const S = daily.symbols.length;
  const col = new Map(daily.symbols.map((s, i) => [s, i]));
  const dayIndex = new Map(daily.days.map((d, i) => [d, i]));
  const byDate = new Map<string, Map<string, number>>();
  for (const r of scores) {
    let m = byDate.get(r.date);
    if (m === undefined) byDate.set(r.date, (m = new Map()));
    m.set(r.symbol, r.score);
  }
  const scoreDates = [...byDate.keys()].filter((d) => dayIndex.has(d)).sort();
  const decisions = new Set(cfg.rebalance === 'last' ? weekEnds(scoreDates) : scoreDates.filter((d) => weekday(isoToDay(d)) === cfg.rebalance));
  const factorNames = ['factor', 'size', ...(extra?.names ?? [])];
  const industries = new Map<string, number>();
  const industryOf = (date: string, symbol: string): number => {
    const g = reference.get(isoToDay(date), symbol)?.industry ?? '?';
    let id = industries.get(g);
    if (id === undefined) industries.set(g, (id = industries.size));
    return id;
  };
  const close = (d: number, symbol: string): number => {
    const k = col.get(symbol);
    return k === undefined ? Number.NaN : daily.close[d * S + k];
  };
  /** The standardised exposures of `symbols` at the close of `date`. */
  const exposed = (date: string, symbols: string[]): Exposed => {
    const day = isoToDay(date);
    const todays = byDate.get(date) ?? new Map<string, number>();
    const n = symbols.length;
    const raw = factorNames.map(() => new Float64Array(n));
    const ok = factorNames.map(() => new Uint8Array(n));
    symbols.forEach((s, i) => {
      const score = todays.get(s);
      const put = (f: number, v: number): void => {
        raw[f][i] = v;
        ok[f][i] = 1;
      };
      if (score !== undefined) put(0, score);
      const fmv = reference.get(day, s)?.floatMarketValue;
      if (fmv !== undefined) put(1, Math.log(fmv));
      const e = extra?.get(date, s);
      e?.forEach((v, k) => {
        if (Number.isFinite(v)) put(2 + k, v);
      });
    });
    const z = raw.map((v, k) => zscores(v, ok[k]));
    return { symbols, x: symbols.map((_, i) => Float64Array.from(z, (f) => f[i])), industry: Int32Array.from(symbols, (s) => industryOf(date, s)) };
  };

  const premia: Float64Array[] = [];
  let last: { date: string; exposed: Exposed } | undefined;
  const held = new Map<string, number>();
  const dates: string[] = [];
  const nav: number[] = [];
  const benchNav: number[] = [];
  const rebalances: Rebalance[] = [];
  let pending: string | undefined;
  let v = 1;
  let bv = 1;
  const firstDecision = scoreDates.find((d) => decisions.has(d));
  const start = firstDecision === undefined ? daily.days.length : (dayIndex.get(firstDecision) as number);
  for (let d = start; d < daily.days.length; d++) {
    const date = daily.days[d];
    const day = isoToDay(date);
    const members = reference.indexWeights(day, cfg.benchmark);
    if (d > start) {
      // The benchmark's day: its members' weights at the open, their close-to-close returns.
      let num = 0;
      let den = 0;
      for (const [s, b] of members) {
        const r = close(d, s) / close(d - 1, s);
        if (!Number.isFinite(r)) continue;
        num += b * r;
        den += b;
      }
      if (den > 0) bv *= num / den;
    }
    if (pending !== undefined) {
      // Trading day: drift to the average price, trade, drift to the close.
      let drift = 0;
      const atVwap = new Map<string, number>();
      for (const [s, w] of held) {
        const k = col.get(s);
        const f = k === undefined ? 1 : daily.vwap[d * S + k] / daily.close[(d - 1) * S + k];
        const g = Number.isFinite(f) ? f : 1;
        atVwap.set(s, w * g);
        drift += w * g;
      }
      if (drift > 0) v *= drift;
      const prev = new Map([...atVwap].map(([s, x]) => [s, drift > 0 ? x / drift : 0]));
      const r = await rebalance(pending, date, prev, members);
      rebalances.push(r);
      v *= 1 - r.cost;
      held.clear();
      let grow = 0;
      r.symbols.forEach((s, i) => {
        if (r.weights[i] <= 0) return;
        const k = col.get(s);
        const f = k === undefined ? 1 : daily.close[d * S + k] / daily.vwap[d * S + k];
        const g = Number.isFinite(f) ? f : 1;
        held.set(s, r.weights[i] * g);
        grow += r.weights[i] * g;
      });
      v *= grow;
      for (const [s, x] of held) held.set(s, x / grow);
      pending = undefined;
    } else if (held.size > 0) {
      let grow = 0;
      for (const [s, w] of held) {
        const f = close(d, s) / close(d - 1, s);
        const g = Number.isFinite(f) ? f : 1;
        held.set(s, w * g);
        grow += w * g;
      }
      v *= grow;
      for (const [s, x] of held) held.set(s, x / grow);
    }
    dates.push(date);
    nav.push(v);
    benchNav.push(bv);
    if (decisions.has(date) && d + 1 < daily.days.length) pending = date;
  }

  /** Decides at the close of `date` the weights traded on `tradeDate`. */
  async function rebalance(date: string, tradeDate: string, prevBy: Map<string, number>, members: Map<string, number>): Promise<Rebalance> {
    const td = dayIndex.get(tradeDate) as number;
    const tday = isoToDay(tradeDate);
    const symbols = [...new Set([...members.keys(), ...[...prevBy].filter(([, w]) => w > 0).map(([s]) => s)])].sort();
    const n = symbols.length;
    const benchTotal = [...members.values()].reduce((a, b) => a + b, 0);
    const bench = Float64Array.from(symbols, (s) => (members.get(s) ?? 0) / (benchTotal || 1));
    const prev = Float64Array.from(symbols, (s) => prevBy.get(s) ?? 0);
    const now = exposed(date, symbols);
    // The premium of the period that ends here: its returns on the exposures at its start.
    if (last !== undefined) {
      const from = dayIndex.get(last.date) as number;
      const to = dayIndex.get(date) as number;
      const rows: number[] = [];
      const ys: number[] = [];
      last.exposed.symbols.forEach((s, i) => {
        const y = close(to, s) / close(from, s) - 1;
        if (!Number.isFinite(y)) return;
        rows.push(i);
        ys.push(y);
      });
      const start = last.exposed;
      const groups = [...new Set(rows.map((i) => start.industry[i]))];
      // A factor without variation (no sizes in the reference data, say) has no premium: left out of the regression.
      const factors = factorNames.map((_, f) => f).filter((f) => rows.some((i) => start.x[i][f] !== 0));
      const k = groups.length + factors.length;
      const X = new Float64Array(rows.length * k);
      rows.forEach((i, r) => {
        X[r * k + groups.indexOf(start.industry[i])] = 1;
        factors.forEach((f, j) => (X[r * k + groups.length + j] = start.x[i][f]));
      });
      const beta = rows.length > k ? leastSquares(X, Float64Array.from(ys), rows.length, k) : undefined;
      if (beta !== undefined) {
        const p = new Float64Array(factorNames.length);
        factors.forEach((f, j) => (p[f] = beta[groups.length + j]));
        premia.push(p);
      }
    }
    last = { date, exposed: now };
    const canBuy = new Uint8Array(n).fill(1);
    const canSell = new Uint8Array(n).fill(1);
    symbols.forEach((s, i) => {
      const k = col.get(s);
      const rec = reference.get(tday, s);
      const board = boardOf(s);
      const suspended = rec?.suspended === true || k === undefined || daily.traded[td * S + k] === 0;
      if (suspended) {
        canBuy[i] = 0;
        canSell[i] = 0;
        return;
      }
      if (rec === undefined || board === undefined) return;
      const limits = referenceLimits(rec, board);
      const price = daily.vwap[td * S + (k as number)];
      if (price >= limits.up * 0.999) canBuy[i] = 0;
      if (price <= limits.down * 1.001) canSell[i] = 0;
    });
    const exposures: ExposureBound[] = [];
    const column = (f: number): Float64Array => Float64Array.from(now.x, (x) => x[f]);
    exposures.push({ name: 'factor', values: column(0), lower: -cfg.factorBound, upper: cfg.factorBound });
    if (cfg.sizeNeutral) exposures.push({ name: 'size', values: column(1), lower: 0, upper: 0 });
    (extra?.names ?? []).forEach((name, k) => {
      const b = cfg.neutral.includes(name) ? 0 : cfg.extraBound;
      exposures.push({ name, values: column(2 + k), lower: b === 0 ? 0 : -b, upper: b });
    });
    const window = premia.slice(-cfg.premiumWindow);
    const base = { date, tradeDate, symbols, bench, prev, industry: now.industry, exposures, canBuy, canSell };
    const traded = (weights: Float64Array): { turnover: number; cost: number } => {
      let sum = 0;
      for (let i = 0; i < n; i++) sum += Math.abs(weights[i] - prev[i]);
      return { turnover: sum / 2, cost: prev.some((x) => x > 0) ? cfg.cost * sum : 0 };
    };
    if (window.length === 0) {
      // No premium yet: hold the benchmark (the portfolio starts as the benchmark, at no cost).
      const weights = Float64Array.from(bench);
      return { ...base, weights, mu: new Float64Array(n), objective: 0, relaxed: [], solved: true, seconds: 0, kind: 'benchmark', ...traded(weights) };
    }
    const premium = new Float64Array(factorNames.length);
    for (const p of window) for (let f = 0; f < premium.length; f++) premium[f] += p[f] / window.length;
    const mu = Float64Array.from(now.x, (x) => x.reduce((s, xf, f) => s + xf * premium[f], 0));
    const industry = cfg.industryNeutral ? now.industry : new Int32Array(n);
    const s = await solveRebalance({ mu, bench, prev, industry, exposures, deviation: cfg.deviation, turnoverCap: cfg.turnoverCap, canBuy, canSell });
    return { ...base, weights: s.weights, mu, objective: s.objective, relaxed: s.relaxed, solved: s.solved, seconds: s.seconds, kind: 'optimised', ...traded(s.weights) };
  }

  const excessNav = nav.map((x, i) => x / benchNav[i]);
  return { dates, nav, benchmarkNav: benchNav, excessNav, rebalances, metrics: backtestMetrics(dates, excessNav, rebalances) };
}

/** The run's figures from its excess NAV and rebalances. */
export function backtestMetrics(dates: readonly string[], excessNav: readonly number[], rebalances: readonly Rebalance[]): BacktestMetrics {
  const r: number[] = [];
  for (let i = 1; i < excessNav.length; i++) r.push(excessNav[i] / excessNav[i - 1] - 1);
  const days = r.length;
  const end = excessNav.length > 0 ? excessNav[excessNav.length - 1] : 1;
  const annualExcess = days > 0 ? end ** (TRADING_DAYS_PER_YEAR / days) - 1 : 0;
  const mean = days > 0 ? r.reduce((a, b) => a + b, 0) / days : 0;
  const sd = days > 1 ? Math.sqrt(r.reduce((a, b) => a + (b - mean) ** 2, 0) / (days - 1)) : 0;
  const trackingError = sd * Math.sqrt(TRADING_DAYS_PER_YEAR);
  let peak = -Infinity;
  let maxDrawdown = 0;
  for (const x of excessNav) {
    peak = Math.max(peak, x);
    maxDrawdown = Math.max(maxDrawdown, 1 - x / peak);
  }
  const yearly: Record<string, number> = {};
  for (let i = 1; i < excessNav.length; i++) {
    const y = dates[i].slice(0, 4);
    yearly[y] = (1 + (yearly[y] ?? 0)) * (excessNav[i] / excessNav[i - 1]) - 1;
  }
  const optimised = rebalances.filter((x) => x.kind === 'optimised');
  return {
    days,
    annualExcess,
    trackingError,
    informationRatio: trackingError > 0 ? annualExcess / trackingError : 0,
    maxDrawdown,
    meanTurnover: optimised.length > 0 ? optimised.reduce((a, x) => a + x.turnover, 0) / optimised.length : 0,
    costPaid: rebalances.reduce((a, x) => a + x.cost, 0),
    rebalances: rebalances.length,
    relaxedWeeks: rebalances.filter((x) => x.relaxed.length > 0).length,
    yearly,
  };
}

/** Extra exposures from a CSV with `date, symbol` and one column per exposure (empty: unknown). */
export function readExtraExposures(path: string, text: string): ExtraExposures {
  const [head = [], ...rows] = parseCsv(text, { skip_empty_lines: true, trim: true }) as string[][];
  const iDate = head.indexOf('date');
  const iSymbol = head.indexOf('symbol');
  if (iDate < 0 || iSymbol < 0 || head.length < 3) throw new Error(`${path}: needs columns date, symbol and at least one exposure`);
  const cols = head.map((_, i) => i).filter((i) => i !== iDate && i !== iSymbol);
  const values = new Map<string, Float64Array>();
  for (const r of rows) values.set(`${r[iDate]}|${r[iSymbol]}`, Float64Array.from(cols, (i) => (r[i] === '' ? Number.NaN : Number(r[i]))));
  return { names: cols.map((i) => head[i]), get: (date, symbol) => values.get(`${date}|${symbol}`) };
}
