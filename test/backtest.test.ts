/**
 * The portfolio test (issue 16): the LP against a second solver (yalps, a pure JavaScript
 * simplex), the constraints on every rebalance recomputed here from the weights, the
 * NAV and cost arithmetic on a hand-computed case, an infeasible week, limit and
 * suspension rules, and on the simulated market a positive excess for the planted signal
 * and about zero for a random factor.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { solve as yalps, type Model } from 'yalps';
import { backtest, DEFAULT_BACKTEST_CONFIG, readExtraExposures, TRADING_DAYS_PER_YEAR, type BacktestRun } from '../src/eval/backtest.js';
import type { ScoreRow } from '../src/eval/evaluate.js';
import { solveRebalance, weightBounds, type RebalanceProblem } from '../src/eval/portfolio.js';
import { readReferenceFile } from '../src/ingest/reference-codec.js';
import { ReferenceBook, type ReferenceRecord } from '../src/market/reference.js';
import { readDailyCsv, type DailyPanel } from '../src/model/labels.js';
import { cli } from './helpers.js';

/** A small random rebalance: n stocks in two industries, an exposure bound, a turnover cap. */
function randomProblem(seed: number, n: number): RebalanceProblem {
  let x = seed * 2_654_435_761;
  const rnd = (): number => ((x = (x * 1_103_515_245 + 12_345) % 2_147_483_648) / 2_147_483_648);
  const bench = Float64Array.from({ length: n }, () => 0.5 + rnd());
  const bs = bench.reduce((a, b) => a + b, 0);
  bench.forEach((b, i) => (bench[i] = b / bs));
  const prev = Float64Array.from({ length: n }, () => 0.5 + rnd());
  const ps = prev.reduce((a, b) => a + b, 0);
  prev.forEach((p, i) => (prev[i] = p / ps));
  return {
    mu: Float64Array.from({ length: n }, () => rnd() - 0.5),
    bench,
    prev,
    industry: Int32Array.from({ length: n }, (_, i) => i % 2),
    exposures: [{ name: 'factor', values: Float64Array.from({ length: n }, () => 2 * rnd() - 1), lower: -0.05, upper: 0.05 }],
    deviation: 0.05,
    turnoverCap: 0.1,
    canBuy: new Uint8Array(n).fill(1),
    canSell: new Uint8Array(n).fill(1),
  };
}

/** The same LP written for yalps. */
function yalpsObjective(p: RebalanceProblem): number {
  const n = p.mu.length;
  const constraints: Record<string, { equal?: number; min?: number; max?: number }> = { budget: { equal: 1 }, turnover: { max: 2 * p.turnoverCap } };
  const variables: Record<string, Record<string, number>> = {};
  for (let i = 0; i < n; i++) {
    const [lo, hi] = weightBounds(p, i);
    constraints[`lo${i}`] = { min: lo };
    constraints[`hi${i}`] = { max: hi };
    constraints[`up${i}`] = { max: p.prev[i] };
    constraints[`down${i}`] = { min: p.prev[i] };
    const w: Record<string, number> = { obj: p.mu[i], budget: 1, [`lo${i}`]: 1, [`hi${i}`]: 1, [`up${i}`]: 1, [`down${i}`]: 1, [`industry${p.industry[i]}`]: 1 };
    p.exposures.forEach((e, k) => (w[`exposure${k}`] = e.values[i]));
    variables[`w${i}`] = w;
    variables[`t${i}`] = { turnover: 1, [`up${i}`]: -1, [`down${i}`]: 1 };
  }
  for (const g of new Set(p.industry)) constraints[`industry${g}`] = { equal: Array.from(p.bench).reduce((s, b, i) => s + (p.industry[i] === g ? b : 0), 0) };
  p.exposures.forEach((e, k) => {
    const bench = Array.from(p.bench).reduce((s, b, i) => s + b * e.values[i], 0);
    constraints[`exposure${k}`] = { min: e.lower + bench, max: e.upper + bench };
  });
  const s = yalps({ direction: 'maximize', objective: 'obj', constraints, variables } satisfies Model, { precision: 1e-13 });
  if (s.status !== 'optimal') throw new Error(`yalps: ${s.status}`);
  // The objective from its weights: yalps rounds the value it reports.
  return s.variables.reduce((sum, [name, value]) => sum + (name.startsWith('w') ? p.mu[Number(name.slice(1))] * value : 0), 0);
}

/** Every constraint of a rebalance, recomputed from its weights: the largest violation. */
function violation(r: { weights: Float64Array; bench: Float64Array; prev: Float64Array; industry: Int32Array; exposures: RebalanceProblem['exposures']; canBuy: Uint8Array; canSell: Uint8Array }, deviation: number, turnoverCap: number, relaxed: readonly string[]): number {
  const n = r.weights.length;
  let worst = Math.abs(r.weights.reduce((a, b) => a + b, 0) - 1);
  for (let i = 0; i < n; i++) {
    const w = r.weights[i];
    worst = Math.max(worst, -w);
    if (r.canBuy[i] === 0) worst = Math.max(worst, w - r.prev[i]);
    if (r.canSell[i] === 0) worst = Math.max(worst, r.prev[i] - w);
    // The band binds where trading is free; a stuck stock keeps its weight.
    if (r.canBuy[i] === 1 && r.canSell[i] === 1) worst = Math.max(worst, Math.abs(w - r.bench[i]) - deviation);
  }
  if (!relaxed.includes('industry')) {
    for (const g of new Set(r.industry)) {
      let active = 0;
      for (let i = 0; i < n; i++) if (r.industry[i] === g) active += r.weights[i] - r.bench[i];
      worst = Math.max(worst, Math.abs(active));
    }
  }
  if (!relaxed.includes('exposures')) {
    for (const e of r.exposures) {
      let active = 0;
      for (let i = 0; i < n; i++) active += (r.weights[i] - r.bench[i]) * e.values[i];
      worst = Math.max(worst, e.lower - active, active - e.upper);
    }
  }
  if (!relaxed.includes('turnover') && r.prev.some((x) => x > 0)) {
    let traded = 0;
    for (let i = 0; i < n; i++) traded += Math.abs(r.weights[i] - r.prev[i]);
    worst = Math.max(worst, traded / 2 - turnoverCap);
  }
  return worst;
}

describe('one rebalance (HiGHS)', () => {
  it('gives the optimum a second solver (yalps) finds, on 40 random problems', async () => {
    let compared = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const p = randomProblem(seed, 4 + (seed % 9));
      const s = await solveRebalance(p);
      if (!s.solved || s.relaxed.length > 0) continue;
      compared++;
      expect(s.objective).toBeCloseTo(yalpsObjective(p), 9);
      expect(violation({ ...p, weights: s.weights }, p.deviation, p.turnoverCap, [])).toBeLessThanOrEqual(1e-9);
    }
    expect(compared).toBeGreaterThan(25);
  });

  it('a stock locked at its upper limit is not bought, one at its lower is not sold, a suspended one is held', async () => {
    const p = randomProblem(7, 6);
    p.turnoverCap = Infinity;
    p.mu.set([0.9, -0.9, 0.5, 0, 0, 0]);
    p.canBuy[0] = 0; // best expected return, but locked at limit-up
    p.canSell[1] = 0; // worst, but locked at limit-down
    p.canBuy[2] = 0;
    p.canSell[2] = 0; // suspended
    const s = await solveRebalance(p);
    expect(s.solved).toBe(true);
    expect(s.weights[0]).toBeLessThanOrEqual(p.prev[0] + 1e-12);
    expect(s.weights[1]).toBeGreaterThanOrEqual(p.prev[1] - 1e-12);
    expect(s.weights[2]).toBeCloseTo(p.prev[2], 12);
    // Free, it buys the best and sells the worst to the ends of their bands.
    const free = await solveRebalance({ ...p, canBuy: new Uint8Array(6).fill(1), canSell: new Uint8Array(6).fill(1) });
    expect(free.weights[0]).toBeCloseTo(p.bench[0] + p.deviation, 9);
  });

  it('an infeasible week relaxes turnover first, then exposures, then industry, and says so', async () => {
    // Everything held in one stock, a 10% turnover cap: the band cannot be reached.
    const p = randomProblem(3, 6);
    p.prev = Float64Array.from([1, 0, 0, 0, 0, 0]);
    const s = await solveRebalance(p);
    expect(s.relaxed).toEqual(['turnover']);
    expect(violation({ ...p, weights: s.weights }, p.deviation, p.turnoverCap, s.relaxed)).toBeLessThanOrEqual(1e-9);
    // A suspended stock far above its industry's benchmark weight: industry neutrality cannot hold.
    const q: RebalanceProblem = {
      mu: Float64Array.from([0.1, 0.2, 0.3, 0.4]),
      bench: Float64Array.from([0.25, 0.25, 0.25, 0.25]),
      prev: Float64Array.from([0.45, 0.15, 0.2, 0.2]),
      industry: Int32Array.from([0, 0, 1, 1]),
      exposures: [],
      deviation: 0.1,
      turnoverCap: Infinity,
      canBuy: Uint8Array.from([0, 1, 1, 1]),
      canSell: Uint8Array.from([0, 1, 1, 1]),
    };
    // Stock 0 is suspended at 45%: its industry would need stock 1 at 5%, below its band.
    const t = await solveRebalance(q);
    expect(t.relaxed).toEqual(['turnover', 'exposures', 'industry']);
    expect(t.solved).toBe(true);
    expect(Array.from(t.weights)).toEqual([0.45, 0.15, 0.15, 0.25].map((w) => expect.closeTo(w, 12)));
  });
});

describe('NAV and cost arithmetic on a hand-computed case', () => {
  // Four stocks of one industry, benchmark 25% each, deviation 10%; decisions on two
  // Fridays, trading the Mondays after at their average prices.
  const days = ['2026-11-20', '2026-11-23', '2026-11-24', '2026-11-27', '2026-11-30', '2026-12-01'];
  const symbols = ['600000.SH', '600004.SH', '600006.SH', '600007.SH'];
  const close = [
    [10, 10, 10, 10],
    [10.5, 10.2, 10, 9.8],
    [10.8, 10.4, 10, 9.6],
    [11, 10.5, 10, 9.5],
    [11.2, 10.5, 9.9, 9.5],
    [11.3, 10.6, 9.8, 9.4],
  ];
  const vwap = close.map((row, d) => row.map((c, i) => (d === 0 ? c : (c + close[d - 1][i]) / 2)));
  const panel: DailyPanel = {
    days,
    symbols,
    close: Float64Array.from(close.flat()),
    traded: new Uint8Array(24).fill(1),
    industry: new Int32Array(24),
    industries: ['Banks'],
    logSize: new Float64Array(24).fill(Number.NaN),
    vwap: Float64Array.from(vwap.flat()),
  };
  const book = new ReferenceBook();
  for (const [d, date] of days.entries()) for (const [i, symbol] of symbols.entries()) book.put({ date, symbol, prevClose: d === 0 ? 10 : close[d - 1][i], st: false, suspended: false, industry: 'Banks', indexes: { IDX: 0.25 } } satisfies ReferenceRecord);
  const scores: ScoreRow[] = ['2026-11-20', '2026-11-27'].flatMap((date) => symbols.map((symbol, i) => ({ date, symbol, score: [2, 1, -1, -2][i] })));

  it('matches the arithmetic done here step by step', async () => {
    const run = await backtest(scores, panel, book, { ...DEFAULT_BACKTEST_CONFIG, benchmark: 'IDX', deviation: 0.1, turnoverCap: 1, sizeNeutral: false });
    expect(run.dates).toEqual(days);
    expect(run.rebalances.map((r) => [r.date, r.tradeDate, r.kind])).toEqual([
      ['2026-11-20', '2026-11-23', 'benchmark'],
      ['2026-11-27', '2026-11-30', 'optimised'],
    ]);
    // The premium is positive (the high scores rose): the best two at 35%, the others at 15%.
    expect(Array.from(run.rebalances[1].weights)).toEqual([0.35, 0.35, 0.15, 0.15].map((w) => expect.closeTo(w, 12)));
    // By hand: the benchmark held from the Monday's average price (no cost to build it).
    const b = [0.25, 0.25, 0.25, 0.25];
    let v = 1;
    let w = [...b];
    const grow = (f: number[]): void => {
      const g = w.reduce((s, x, i) => s + x * f[i], 0);
      v *= g;
      w = w.map((x, i) => (x * f[i]) / g);
    };
    const navs = [1];
    grow(close[1].map((c, i) => c / vwap[1][i])); // 11-23: from the average price to the close
    navs.push(v);
    grow(close[2].map((c, i) => c / close[1][i]));
    navs.push(v);
    grow(close[3].map((c, i) => c / close[2][i]));
    navs.push(v);
    grow(vwap[4].map((p, i) => p / close[3][i])); // 11-30: to the average price, then trade
    const target = [0.35, 0.35, 0.15, 0.15];
    const cost = 0.003 * target.reduce((s, t, i) => s + Math.abs(t - w[i]), 0);
    v *= 1 - cost;
    w = target;
    grow(close[4].map((c, i) => c / vwap[4][i]));
    navs.push(v);
    grow(close[5].map((c, i) => c / close[4][i]));
    navs.push(v);
    run.nav.forEach((x, d) => expect(x, days[d]).toBeCloseTo(navs[d], 12));
    expect(run.rebalances[1].cost).toBeCloseTo(cost, 14);
    // The benchmark: equal weights of the day's close-to-close returns.
    let bv = 1;
    const bnav = [1];
    for (let d = 1; d < days.length; d++) bnav.push((bv *= close[d].reduce((s, c, i) => s + 0.25 * (c / close[d - 1][i]), 0)));
    run.benchmarkNav.forEach((x, d) => expect(x).toBeCloseTo(bnav[d], 12));
    expect(run.metrics.annualExcess).toBeCloseTo((navs[5] / bnav[5]) ** (TRADING_DAYS_PER_YEAR / 5) - 1, 10);
    expect(run.metrics.costPaid).toBeCloseTo(cost, 14);
  });

  it('does not buy a stock that trades at its upper limit all day, and holds a suspended one', async () => {
    const locked = { ...panel, vwap: Float64Array.from(panel.vwap), traded: Uint8Array.from(panel.traded) };
    locked.vwap[4 * 4 + 0] = Math.round(close[3][0] * 1.1 * 100) / 100; // 600000.SH at its limit-up on 11-30
    locked.traded[4 * 4 + 3] = 0; // 600007.SH suspended on 11-30
    const run = await backtest(scores, locked, book, { ...DEFAULT_BACKTEST_CONFIG, benchmark: 'IDX', deviation: 0.1, turnoverCap: 1, sizeNeutral: false });
    const r = run.rebalances[1];
    expect(Array.from(r.canBuy)).toEqual([0, 1, 1, 0]);
    expect(Array.from(r.canSell)).toEqual([1, 1, 1, 0]);
    expect(r.weights[0]).toBeLessThanOrEqual(r.prev[0] + 1e-12);
    expect(r.weights[3]).toBeCloseTo(r.prev[3], 12);
    expect(violation(r, 0.1, 1, r.relaxed)).toBeLessThanOrEqual(1e-9);
  });
});

describe('on the simulated market (synthetic, not market evidence)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fs-backtest-'));
  const sim = join(dir, 'sim');
  let daily: DailyPanel;
  let book: ReferenceBook;
  const planted: ScoreRow[] = [];
  const random: ScoreRow[] = [];
  beforeAll(() => {
    // 160 days of 200 symbols; few trades a day, no snapshot feeds: the daily data is what counts here.
    const s = cli(['simulate', '--symbols', '200', '--days', '160', '--seed', '5', '--trades-per-day', '40', '--snapshot-share', '0', '--format', 'csv', '--out', sim]);
    expect(s.code, s.stderr).toBe(0);
    daily = readDailyCsv(join(sim, 'daily.csv'));
    book = new ReferenceBook();
    for (const r of readReferenceFile(join(sim, 'reference.csv'))) book.put(r);
    // The planted short-memory latent as the factor (what a perfect model of it would score), and noise.
    let x = 12_345;
    const lines = readFileSync(join(sim, 'latent.csv'), 'utf8').trim().split('\n').slice(1);
    for (const line of lines) {
      const [date, symbol, short] = line.split(',');
      planted.push({ date, symbol, score: Number(short) });
      x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
      random.push({ date, symbol, score: x / 2_147_483_648 });
    }
  }, 120_000);

  const checkRun = (run: BacktestRun, deviation: number): void => {
    expect(run.rebalances.length).toBeGreaterThan(25);
    for (const r of run.rebalances.filter((x) => x.kind === 'optimised')) expect(violation(r, deviation, DEFAULT_BACKTEST_CONFIG.turnoverCap, r.relaxed), r.date).toBeLessThanOrEqual(1e-9);
  };

  it('the planted signal beats the benchmark by more than the noise allows; a random factor does not (before costs)', async () => {
    const cfg = { ...DEFAULT_BACKTEST_CONFIG, benchmark: 'SIM-MID', deviation: 0.01, cost: 0 };
    const signal = await backtest(planted, daily, book, cfg);
    const noise = await backtest(random, daily, book, cfg);
    checkRun(signal, 0.01);
    checkRun(noise, 0.01);
    // The standard error of an annualised excess over the period: tracking error / sqrt(years).
    const years = signal.metrics.days / TRADING_DAYS_PER_YEAR;
    expect(signal.metrics.annualExcess).toBeGreaterThan((2.5 * signal.metrics.trackingError) / Math.sqrt(years));
    expect(Math.abs(noise.metrics.annualExcess)).toBeLessThan((2.5 * noise.metrics.trackingError) / Math.sqrt(years));
  });

  it('extra exposures from a file: one held neutral, one within its bound, on every rebalance', async () => {
    let x = 99;
    const rnd = (): number => ((x = (x * 1_103_515_245 + 12_345) % 2_147_483_648) / 2_147_483_648);
    const text = 'date,symbol,value,momentum\n' + planted.map((r) => `${r.date},${r.symbol},${rnd().toFixed(6)},${r.symbol.endsWith('1.SH') ? '' : rnd().toFixed(6)}`).join('\n') + '\n';
    const extra = readExtraExposures('exposures.csv', text);
    expect(extra.names).toEqual(['value', 'momentum']);
    const run = await backtest(planted, daily, book, { ...DEFAULT_BACKTEST_CONFIG, benchmark: 'SIM-MID', deviation: 0.02, neutral: ['value'] }, extra);
    const optimised = run.rebalances.filter((r) => r.kind === 'optimised');
    expect(optimised.length).toBeGreaterThan(20);
    for (const r of optimised) {
      expect(r.exposures.map((e) => [e.name, e.lower, e.upper])).toEqual([['factor', -2, 2], ['size', 0, 0], ['value', 0, 0], ['momentum', -0.5, 0.5]]);
      expect(violation(r, 0.02, DEFAULT_BACKTEST_CONFIG.turnoverCap, r.relaxed), r.date).toBeLessThanOrEqual(1e-9);
    }
  });

  it('`factorstream backtest` writes a Table-7-shaped result, metrics.json and a self-contained report', () => {
    const file = join(dir, 'planted.csv');
    writeFileSync(file, 'date,symbol,score\n' + planted.map((r) => `${r.date},${r.symbol},${r.score}`).join('\n') + '\n');
    const out = join(dir, 'out');
    const r = cli(['backtest', '--scores', file, '--name', 'planted', '--daily', join(sim, 'daily.csv'), '--reference', join(sim, 'reference.csv'), '--benchmark', 'SIM-MID', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^planted ±1%: annualised excess -?\d+\.\d\d%/m);
    const table = readFileSync(join(out, 'table.md'), 'utf8');
    expect(table).toMatch(/^\| factor \| deviation \| 2026 \| annualised excess \| tracking error \| IR \| max drawdown \| turnover \| cost \| relaxed weeks \|$/m);
    expect(table).toMatch(/^\| planted \| ±1% \|/m);
    expect(table).toMatch(/^\| planted \| ±2% \|/m);
    const m = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as { runs: { deviation: number; metrics: { costPaid: number; rebalances: number }; rebalances: { seconds: number }[] }[] };
    expect(m.runs.map((x) => x.deviation)).toEqual([0.01, 0.02]);
    expect(m.runs[0].metrics.costPaid).toBeGreaterThan(0);
    expect(existsSync(join(out, 'report.html'))).toBe(true);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html).toContain('<svg');
    expect(html).not.toMatch(/<script|src="http/);
  });
});
