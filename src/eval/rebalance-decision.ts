/**
 * The decision of one rebalance of the report's index-enhanced portfolio (section 5):
 * what `backtest` runs week by week and what `serve` publishes as target weights
 * (`factor.targets`). It owns the factor premia, the only state carried from one
 * rebalance to the next:
 *
 * - each period's premia come from a cross-sectional regression of the period's returns
 *   (close to close between decisions) on industry dummies and the standardised exposures
 *   at its start (the factor's score, log size, any extra exposures);
 * - a premium is the mean of the last `premiumWindow` periods' (52 weeks: 12 months); a
 *   stock's expected return is the premia times its latest exposures;
 * - until the first premium is known the decision is the benchmark.
 *
 * The caller supplies what differs between a backtest and the live daemon: the weights
 * held (drifted), the closing prices, and which stocks can be bought or sold.
 */
import type { ReferenceBook } from '../market/reference.js';
import { isoToDay, weekday } from '../market/time.js';
import { solve } from '../model/labels.js';
import { solveRebalance, type ExposureBound, type Relaxation } from './portfolio.js';

/** Extra factor exposures by day and symbol (valuation, momentum, …: a CSV of columns). */
export interface ExtraExposures {
  names: string[];
  get(date: string, symbol: string): Float64Array | undefined;
}

/** When a portfolio rebalances: the last trading day of each week, a weekday (Monday = 1), or every trading day. */
export type RebalanceSchedule = 'last' | 'daily' | number;

export interface PortfolioConstraints {
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
  rebalance: RebalanceSchedule;
  /** Periods of premia averaged into the expected returns. */
  premiumWindow: number;
}

/** What the caller knows at the decision close. */
export interface DecisionInputs {
  /** The decision date (a trading day's close), ISO. */
  date: string;
  /** The factor's end-of-day scores of `date`. */
  scores: ReadonlyMap<string, number>;
  /** The benchmark's members and weights (any scale). */
  members: ReadonlyMap<string, number>;
  /** The weights held before the rebalance, drifted (sum 1; empty at the start). */
  held: ReadonlyMap<string, number>;
  /** Closing price of `date` (NaN unknown). */
  close(symbol: string): number;
  /** Fills canBuy / canSell (pre-filled with 1) for the sorted candidates. */
  tradable(symbols: readonly string[], canBuy: Uint8Array, canSell: Uint8Array): void;
}

/** One decision, with everything its constraints were built from (tests check them against it). */
export interface Decision {
  date: string;
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
  seconds: number;
  /** 'benchmark' before the first premium is known; 'optimised' after. */
  kind: 'benchmark' | 'optimised';
}

/** The premia and the exposures the next period's regression starts from: what a restart needs. */
export interface DeciderState {
  premia: Float64Array[];
  last: { date: string; symbols: string[]; x: Float64Array[]; industry: Int32Array; closes: Float64Array } | null;
}

/** Whether `day` (a trading day of `isTradingDay`) is a rebalance day of the schedule. */
export function isRebalanceDay(schedule: RebalanceSchedule, day: number, nextTradingDay: (day: number) => number): boolean {
  if (schedule === 'daily') return true;
  if (schedule !== 'last') return weekday(day) === schedule;
  const monday = (d: number): number => d - ((weekday(d) + 6) % 7);
  return monday(nextTradingDay(day)) !== monday(day);
}

export function zscores(values: Float64Array, ok: Uint8Array): Float64Array {
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

export class RebalanceDecider {
  readonly factorNames: string[];
  private premia: Float64Array[] = [];
  private last: DeciderState['last'] = null;

  constructor(
    private readonly cfg: PortfolioConstraints,
    private readonly reference: ReferenceBook,
    private readonly extra?: ExtraExposures,
  ) {
    this.factorNames = ['factor', 'size', ...(extra?.names ?? [])];
  }

  /** Industry ids of the candidates: the rank of the industry's name among theirs, so a decision does not depend on the ones before it (nor on a restart). */
  private industries(day: number, symbols: readonly string[]): Int32Array {
    const names = symbols.map((s) => this.reference.get(day, s)?.industry ?? '?');
    const sorted = [...new Set(names)].sort();
    const id = new Map(sorted.map((g, i) => [g, i]));
    return Int32Array.from(names, (g) => id.get(g) as number);
  }

  /** The standardised exposures [stock][factor] of `symbols` at the close of `date`. */
  private exposed(date: string, symbols: readonly string[], scores: ReadonlyMap<string, number>): Float64Array[] {
    const day = isoToDay(date);
    const n = symbols.length;
    const raw = this.factorNames.map(() => new Float64Array(n));
    const ok = this.factorNames.map(() => new Uint8Array(n));
    symbols.forEach((s, i) => {
      const put = (f: number, v: number): void => {
        raw[f][i] = v;
        ok[f][i] = 1;
      };
      const score = scores.get(s);
      if (score !== undefined) put(0, score);
      const fmv = this.reference.get(day, s)?.floatMarketValue;
      if (fmv !== undefined) put(1, Math.log(fmv));
      this.extra?.get(date, s)?.forEach((v, k) => {
        if (Number.isFinite(v)) put(2 + k, v);
      });
    });
    const z = raw.map((v, k) => zscores(v, ok[k]));
    return symbols.map((_, i) => Float64Array.from(z, (f) => f[i]));
  }

  /** The premia of the period that ends at this close: its returns on the exposures at its start. */
  private periodPremia(close: (symbol: string) => number): void {
    const start = this.last;
    if (start === null) return;
    const rows: number[] = [];
    const ys: number[] = [];
    start.symbols.forEach((s, i) => {
      const y = close(s) / start.closes[i] - 1;
      if (!Number.isFinite(y)) return;
      rows.push(i);
      ys.push(y);
    });
    const groups = [...new Set(rows.map((i) => start.industry[i]))];
    // A factor without variation (no sizes in the reference data, say) has no premium: left out of the regression.
    const factors = this.factorNames.map((_, f) => f).filter((f) => rows.some((i) => start.x[i][f] !== 0));
    const k = groups.length + factors.length;
    const X = new Float64Array(rows.length * k);
    rows.forEach((i, r) => {
      X[r * k + groups.indexOf(start.industry[i])] = 1;
      factors.forEach((f, j) => (X[r * k + groups.length + j] = start.x[i][f]));
    });
    const beta = rows.length > k ? leastSquares(X, Float64Array.from(ys), rows.length, k) : undefined;
    if (beta === undefined) return;
    const p = new Float64Array(this.factorNames.length);
    factors.forEach((f, j) => (p[f] = beta[groups.length + j]));
    this.premia.push(p);
    if (this.premia.length > this.cfg.premiumWindow) this.premia.shift();
  }

  /** Decides the weights at the close of `inputs.date`. Candidates: the benchmark's members and whatever is held. */
  async decide(inputs: DecisionInputs): Promise<Decision> {
    const { cfg } = this;
    const { date, members, held } = inputs;
    const day = isoToDay(date);
    const symbols = [...new Set([...members.keys(), ...[...held].filter(([, w]) => w > 0).map(([s]) => s)])].sort();
    const n = symbols.length;
    // Summed in symbol order: the same total whatever order the reference data came in (a file, the topic).
    let benchTotal = 0;
    for (const s of symbols) benchTotal += members.get(s) ?? 0;
    const bench = Float64Array.from(symbols, (s) => (members.get(s) ?? 0) / (benchTotal || 1));
    const prev = Float64Array.from(symbols, (s) => held.get(s) ?? 0);
    const x = this.exposed(date, symbols, inputs.scores);
    const industryIds = this.industries(day, symbols);
    this.periodPremia(inputs.close);
    this.last = { date, symbols, x, industry: industryIds, closes: Float64Array.from(symbols, (s) => inputs.close(s)) };
    const canBuy = new Uint8Array(n).fill(1);
    const canSell = new Uint8Array(n).fill(1);
    inputs.tradable(symbols, canBuy, canSell);
    const column = (f: number): Float64Array => Float64Array.from(x, (row) => row[f]);
    const exposures: ExposureBound[] = [{ name: 'factor', values: column(0), lower: -cfg.factorBound, upper: cfg.factorBound }];
    if (cfg.sizeNeutral) exposures.push({ name: 'size', values: column(1), lower: 0, upper: 0 });
    (this.extra?.names ?? []).forEach((name, k) => {
      const b = cfg.neutral.includes(name) ? 0 : cfg.extraBound;
      exposures.push({ name, values: column(2 + k), lower: b === 0 ? 0 : -b, upper: b });
    });
    const base = { date, symbols, bench, prev, industry: industryIds, exposures, canBuy, canSell };
    const turnover = (weights: Float64Array): number => {
      let sum = 0;
      for (let i = 0; i < n; i++) sum += Math.abs(weights[i] - prev[i]);
      return sum / 2;
    };
    if (this.premia.length === 0) {
      // No premium yet: hold the benchmark.
      const weights = Float64Array.from(bench);
      return { ...base, weights, mu: new Float64Array(n), objective: 0, relaxed: [], solved: true, seconds: 0, kind: 'benchmark', turnover: turnover(weights) };
    }
    const premium = new Float64Array(this.factorNames.length);
    for (const p of this.premia) for (let f = 0; f < premium.length; f++) premium[f] += p[f] / this.premia.length;
    const mu = Float64Array.from(x, (row) => row.reduce((s, xf, f) => s + xf * premium[f], 0));
    const industry = cfg.industryNeutral ? industryIds : new Int32Array(n);
    const s = await solveRebalance({ mu, bench, prev, industry, exposures, deviation: cfg.deviation, turnoverCap: cfg.turnoverCap, canBuy, canSell });
    return { ...base, weights: s.weights, mu, objective: s.objective, relaxed: s.relaxed, solved: s.solved, seconds: s.seconds, kind: 'optimised', turnover: turnover(s.weights) };
  }

  snapshot(): DeciderState {
    return { premia: this.premia, last: this.last };
  }

  restore(state: DeciderState): void {
    this.premia = state.premia.map((p) => Float64Array.from(p));
    this.last = state.last;
  }
}
