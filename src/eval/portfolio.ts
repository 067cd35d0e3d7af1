/**
 * One rebalance of the report's index-enhanced portfolio (section 5, Table 7) as a linear
 * programme, solved by HiGHS (compiled to WebAssembly, npm `highs`):
 *
 *   maximise   Σ μᵢ wᵢ
 *   subject to Σ wᵢ = 1,  wᵢ ≥ 0
 *              bᵢ − dev ≤ wᵢ ≤ bᵢ + dev                     (stock deviation from the benchmark)
 *              Σ_{i∈g} wᵢ = Σ_{i∈g} bᵢ  for every industry g (industry neutrality)
 *              lo_k ≤ Σ (wᵢ − bᵢ) x_{ik} ≤ hi_k              (exposure bounds, standardised x)
 *              ½ Σ |wᵢ − pᵢ| ≤ cap                            (one-way turnover from the drifted weights p)
 *
 * With a turnover cap the columns are each stock's purchase and sale (see lpText).
 * Market reality enters as bounds: a stock locked at its upper limit on the trading day
 * cannot be bought (wᵢ ≤ pᵢ), one at its lower limit cannot be sold (wᵢ ≥ pᵢ), a suspended
 * one is held (wᵢ = pᵢ); where that conflicts with the deviation band the held weight wins.
 * An infeasible week relaxes in RELAXATION_ORDER and says what it dropped.
 */
import * as highsModule from 'highs';
import type { Highs } from 'highs';
import { stopwatch } from '../market/clock.js';

export interface ExposureBound {
  name: string;
  /** Standardised exposure per stock. */
  values: Float64Array;
  /** Bounds of the active exposure Σ (w − b) x. */
  lower: number;
  upper: number;
}

export interface RebalanceProblem {
  /** Expected returns. */
  mu: Float64Array;
  /** Benchmark weights (sum 1 over the candidates). */
  bench: Float64Array;
  /** The drifted weights held before the rebalance (sum 1, or all 0 at the start). */
  prev: Float64Array;
  /** Industry group per stock (any non-negative id). */
  industry: Int32Array;
  exposures: ExposureBound[];
  /** Largest |w − b| per stock. */
  deviation: number;
  /** Largest one-way turnover (Infinity: none). */
  turnoverCap: number;
  /** 0 where the stock cannot be bought (limit-up lock, suspension). */
  canBuy: Uint8Array;
  /** 0 where it cannot be sold (limit-down lock, suspension). */
  canSell: Uint8Array;
}

export type Relaxation = 'turnover' | 'exposures' | 'industry';

/** What an infeasible week gives up, in this order, until it solves (README *backtest*). */
export const RELAXATION_ORDER: readonly Relaxation[] = ['turnover', 'exposures', 'industry'];

export interface RebalanceSolution {
  weights: Float64Array;
  objective: number;
  /** The constraints dropped to make the week feasible (empty: none). */
  relaxed: Relaxation[];
  /** False when even every relaxation left it infeasible: the weights are then the held ones. */
  solved: boolean;
  seconds: number;
}

// The package's types are CommonJS while Node loads its ES module build: the loader is its default export.
type Loader = () => Promise<Highs>;
let solver: Promise<Highs> | undefined;

/** HiGHS, loaded once per process (its WebAssembly module is about 3 MB). */
function highs(): Promise<Highs> {
  solver ??= (highsModule as unknown as { default: Loader }).default();
  return solver;
}

/** A number as LP-format text (no exponent surprises, full precision). */
function num(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toPrecision(17);
}

function linear(terms: [number, string][]): string {
  const parts: string[] = [];
  for (const [c, v] of terms) {
    if (c === 0) continue;
    parts.push(`${c < 0 ? '-' : '+'} ${num(Math.abs(c))} ${v}`);
  }
  return parts.length === 0 ? `0 ${terms[0]?.[1] ?? 'w0'}` : parts.join(' ');
}

/** Each stock's weight bounds: the deviation band, narrowed by what cannot be traded. */
export function weightBounds(p: RebalanceProblem, i: number): [number, number] {
  let lo = Math.max(0, p.bench[i] - p.deviation);
  let hi = p.bench[i] + p.deviation;
  if (p.canSell[i] === 0) {
    lo = Math.max(lo, p.prev[i]);
    hi = Math.max(hi, lo);
  }
  if (p.canBuy[i] === 0) {
    hi = Math.min(hi, p.prev[i]);
    lo = Math.min(lo, hi);
  }
  return [lo, hi];
}

/** Whether the turnover cap is a constraint of this solve. */
function capsTurnover(p: RebalanceProblem, relaxed: readonly Relaxation[]): boolean {
  return !relaxed.includes('turnover') && Number.isFinite(p.turnoverCap) && p.prev.some((x) => x > 0);
}

/**
 * The problem in CPLEX LP format, without the relaxed constraints. With a turnover cap
 * the columns are the trades — wᵢ = pᵢ + bᵢ − sᵢ, bought bᵢ ≥ 0 and sold sᵢ ≥ 0, their
 * bounds carrying the weight band — so the cap is one row, Σ (bᵢ + sᵢ) ≤ 2·cap, rather
 * than two rows and a column per stock for |wᵢ − pᵢ|: a 5,000-name week is then a few
 * dozen rows. Without it the columns are the weights.
 */
export function lpText(p: RebalanceProblem, relaxed: readonly Relaxation[]): string {
  const n = p.mu.length;
  const trades = capsTurnover(p, relaxed);
  /** A row over the weights as terms of the columns, and the constant the prior weights move to the right-hand side. */
  const row = (coef: (i: number) => number, members: Iterable<number>): { terms: [number, string][]; shift: number } => {
    const terms: [number, string][] = [];
    let shift = 0;
    for (const i of members) {
      const c = coef(i);
      if (trades) {
        terms.push([c, `b${i}`], [-c, `s${i}`]);
        shift += c * p.prev[i];
      } else terms.push([c, `w${i}`]);
    }
    return { terms, shift };
  };
  const all = Array.from({ length: n }, (_, i) => i);
  const objective = row((i) => p.mu[i], all);
  const lines: string[] = ['Maximize', ` obj: ${linear(objective.terms)}`, 'Subject To'];
  const budget = row(() => 1, all);
  lines.push(` budget: ${linear(budget.terms)} = ${num(1 - budget.shift)}`);
  if (!relaxed.includes('industry')) {
    const groups = new Map<number, number[]>();
    for (let i = 0; i < n; i++) {
      const g = groups.get(p.industry[i]) ?? [];
      g.push(i);
      groups.set(p.industry[i], g);
    }
    for (const [g, members] of [...groups].sort((a, b) => a[0] - b[0])) {
      const target = members.reduce((sum, i) => sum + p.bench[i], 0);
      const r = row(() => 1, members);
      lines.push(` industry${g}: ${linear(r.terms)} = ${num(target - r.shift)}`);
    }
  }
  if (!relaxed.includes('exposures')) {
    p.exposures.forEach((e, k) => {
      const bench = p.bench.reduce((sum, b, i) => sum + b * e.values[i], 0);
      const r = row((i) => e.values[i], all);
      const text = linear(r.terms);
      lines.push(` exposure${k}_lo: ${text} >= ${num(e.lower + bench - r.shift)}`);
      lines.push(` exposure${k}_hi: ${text} <= ${num(e.upper + bench - r.shift)}`);
    });
  }
  if (trades) lines.push(` turnover: ${linear(all.flatMap((i) => [[1, `b${i}`], [1, `s${i}`]] as [number, string][]))} <= ${num(2 * p.turnoverCap)}`);
  lines.push('Bounds');
  for (let i = 0; i < n; i++) {
    const [lo, hi] = weightBounds(p, i);
    if (!trades) {
      lines.push(` ${num(lo)} <= w${i} <= ${num(hi)}`);
      continue;
    }
    // p + b − s within [lo, hi]: buy up to hi − p (at least lo − p below the band), sell up to p − lo (at least p − hi above it).
    const q = p.prev[i];
    lines.push(` ${num(Math.max(0, lo - q))} <= b${i} <= ${num(Math.max(0, hi - q))}`);
    lines.push(` ${num(Math.max(0, q - hi))} <= s${i} <= ${num(Math.max(0, q - lo))}`);
  }
  lines.push('End');
  return lines.join('\n');
}

/** Solves one rebalance, relaxing in RELAXATION_ORDER while it is infeasible. */
export async function solveRebalance(p: RebalanceProblem): Promise<RebalanceSolution> {
  const h = await highs();
  const elapsed = stopwatch();
  const relaxed: Relaxation[] = [];
  for (let k = 0; k <= RELAXATION_ORDER.length; k++) {
    const s = h.solve(lpText(p, relaxed), { presolve: 'on', output_flag: false });
    if (s.Status === 'Optimal') {
      const column = (name: string): number => s.Columns[name]?.Primal ?? 0;
      const trades = capsTurnover(p, relaxed);
      const weights = Float64Array.from(p.mu, (_, i) => (trades ? p.prev[i] + column(`b${i}`) - column(`s${i}`) : column(`w${i}`)));
      return { weights, objective: weights.reduce((sum, w, i) => sum + w * p.mu[i], 0), relaxed, solved: true, seconds: elapsed() / 1000 };
    }
    if (k < RELAXATION_ORDER.length) relaxed.push(RELAXATION_ORDER[k]);
  }
  return { weights: Float64Array.from(p.prev), objective: p.mu.reduce((s, m, i) => s + m * p.prev[i], 0), relaxed, solved: false, seconds: elapsed() / 1000 };
}
