/**
 * The report's portfolio test (section 5, Table 7): a weekly index-enhanced portfolio
 * against a benchmark index of the reference data, for each factor variant and stock
 * deviation.
 *
 * - Decision at the close of each rebalance date (the week's last trading day, a given
 *   weekday, or every day); trades at the next trading day's average price (daily `amount / volume`),
 *   paying `cost` on the value traded (both sides); between trades the weights drift with
 *   the closes.
 * - The decision (rebalance-decision.ts, shared with the daemon's target weights): factor
 *   premia from cross-sectional regressions of each period's returns, their mean over 52
 *   weeks times the latest exposures as expected returns, the benchmark until the first
 *   premium is known. Candidates: the benchmark's members on the trading day, and
 *   whatever is still held.
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
import type { DailyPanel } from '../model/labels.js';
import type { ScoreRow } from './evaluate.js';
import { scoresByDate, weekEnds } from './evaluate.js';
import { RebalanceDecider, type Decision, type ExtraExposures, type PortfolioConstraints } from './rebalance-decision.js';

export type { ExtraExposures } from './rebalance-decision.js';

/** A-share trading days a year, for annualising. */
export const TRADING_DAYS_PER_YEAR = 242;

export interface BacktestConfig extends PortfolioConstraints {
  /** Cost per unit of value traded (3‰ = 0.003). */
  cost: number;
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

/** One rebalance: the decision at a close, traded the next trading day. */
export interface Rebalance extends Decision {
  tradeDate: string;
  /** Cost paid, as a fraction of the portfolio's value. */
  cost: number;
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

/** Runs the backtest of one factor variant. */
export async function backtest(scores: readonly ScoreRow[], daily: DailyPanel, reference: ReferenceBook, cfg: BacktestConfig, extra?: ExtraExposures): Promise<BacktestRun> {
  const S = daily.symbols.length;
  const col = new Map(daily.symbols.map((s, i) => [s, i]));
  const dayIndex = new Map(daily.days.map((d, i) => [d, i]));
  const byDate = scoresByDate(scores);
  const scoreDates = [...byDate.keys()].filter((d) => dayIndex.has(d)).sort();
  const { rebalance: schedule } = cfg;
  const decisions = new Set(schedule === 'last' ? weekEnds(scoreDates) : schedule === 'daily' ? scoreDates : scoreDates.filter((d) => weekday(isoToDay(d)) === schedule));
  const decider = new RebalanceDecider(cfg, reference, extra);
  const close = (d: number, symbol: string): number => {
    const k = col.get(symbol);
    return k === undefined ? Number.NaN : daily.close[d * S + k];
  };

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

  /**
   * Decides at the close of `date` the weights traded on `tradeDate`, from the weights
   * held drifted to its average price: there a stock locked at its upper limit (average
   * price within 0.1% of it) cannot be bought, at its lower cannot be sold, a suspended
   * one is held.
   */
  async function rebalance(date: string, tradeDate: string, held: Map<string, number>, members: Map<string, number>): Promise<Rebalance> {
    const td = dayIndex.get(tradeDate) as number;
    const tday = isoToDay(tradeDate);
    const dd = dayIndex.get(date) as number;
    const decision = await decider.decide({
      date,
      scores: byDate.get(date) ?? new Map<string, number>(),
      members,
      held,
      close: (s) => close(dd, s),
      tradable: (symbols, canBuy, canSell) =>
        symbols.forEach((s, i) => {
          const k = col.get(s);
          const rec = reference.get(tday, s);
          const board = boardOf(s);
          if (rec?.suspended === true || k === undefined || daily.traded[td * S + k] === 0) {
            canBuy[i] = 0;
            canSell[i] = 0;
            return;
          }
          if (rec === undefined || board === undefined) return;
          const limits = referenceLimits(rec, board);
          const price = daily.vwap[td * S + k];
          if (price >= limits.up * 0.999) canBuy[i] = 0;
          if (price <= limits.down * 1.001) canSell[i] = 0;
        }),
    });
    // The first portfolio is bought as the benchmark at no cost; later trades pay on both sides.
    const cost = decision.prev.some((x) => x > 0) ? cfg.cost * 2 * decision.turnover : 0;
    return { ...decision, tradeDate, cost };
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
