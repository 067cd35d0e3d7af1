/**
 * Factor evaluation, as in the research report (DESIGN §8). Every figure is computed
 * per evaluation date on the cross-section of symbols that have both a factor value and
 * a forward return, then aggregated over dates:
 *
 *   IC            Pearson correlation of factor and forward return, mean over dates
 *   Rank IC       Spearman correlation (average ranks for ties), mean over dates
 *   ICIR          mean(IC) / std(IC) * sqrt(periodsPerYear)   (annualised; Qlib's is not)
 *   win rate      share of dates with IC > 0
 *   long excess   equal-weighted top quantile mean return minus the cross-section mean
 *   short excess  bottom quantile mean return minus the cross-section mean
 *   long-short    long excess minus short excess
 *   autocorr      Spearman correlation of consecutive dates' factor values over common symbols
 *   turnover      one-way turnover of the top quantile: 1 - |top_t ∩ top_{t-1}| / |top_t|
 *   yearly long   long excess compounded within each calendar year
 *
 * Aggregates of per-date returns are arithmetic means of weekly figures, as in the
 * report's Table 5.
 */
import { pearson, spearman } from '../stats.js';

export { ranks, spearman } from '../stats.js';

export interface CrossSection {
  /** Evaluation date, YYYY-MM-DD. */
  date: string;
  symbols: string[];
  factor: Float64Array;
  /** Forward return over the holding period (excess or raw: every figure here is invariant to a per-date shift). */
  forward: Float64Array;
}

export interface DateMetrics {
  date: string;
  n: number;
  ic: number;
  rankIc: number;
  longExcess: number;
  shortExcess: number;
  /** NaN on the first date. */
  autocorrelation: number;
  /** NaN on the first date. */
  turnover: number;
}

export interface FactorMetrics {
  dates: number;
  meanN: number;
  ic: number;
  icStd: number;
  icir: number;
  rankIc: number;
  rankIcir: number;
  winRate: number;
  longExcess: number;
  shortExcess: number;
  longShort: number;
  autocorrelation: number;
  turnover: number;
  yearlyLongExcess: { year: number; longExcess: number }[];
  series: DateMetrics[];
}

export interface MetricOptions {
  /** Top and bottom quantile for long/short and turnover (0.1 = deciles). */
  quantile: number;
  /** Evaluation dates per year, for the annualised ICIR (52 for weekly). */
  periodsPerYear: number;
}

export const DEFAULT_METRIC_OPTIONS: MetricOptions = { quantile: 0.1, periodsPerYear: 52 };

/** Indices of the top (or bottom) quantile by factor, ties broken by symbol for determinism. */
export function quantileMembers(cs: CrossSection, quantile: number, top: boolean): number[] {
  const n = cs.symbols.length;
  const k = Math.max(1, Math.round(n * quantile));
  const order = Array.from({ length: n }, (_, i) => i).sort(
    (a, b) => (top ? cs.factor[b] - cs.factor[a] : cs.factor[a] - cs.factor[b]) || (cs.symbols[a] < cs.symbols[b] ? -1 : 1),
  );
  return order.slice(0, k);
}

function mean(xs: ArrayLike<number>, idx?: number[]): number {
  let s = 0;
  if (idx === undefined) {
    for (let i = 0; i < xs.length; i++) s += xs[i];
    return s / xs.length;
  }
  for (const i of idx) s += xs[i];
  return s / idx.length;
}

function sampleStd(xs: number[]): number {
  const m = mean(xs);
  let s = 0;
  for (const x of xs) s += (x - m) * (x - m);
  return Math.sqrt(s / (xs.length - 1));
}

function finiteMean(xs: number[]): number {
  const f = xs.filter(Number.isFinite);
  return f.length === 0 ? Number.NaN : mean(f);
}

export function factorMetrics(sections: CrossSection[], options: Partial<MetricOptions> = {}): FactorMetrics {
  const opts = { ...DEFAULT_METRIC_OPTIONS, ...options };
  const sorted = [...sections].filter((c) => c.symbols.length >= 2).sort((a, b) => (a.date < b.date ? -1 : 1));
  const series: DateMetrics[] = [];
  let prev: CrossSection | undefined;
  let prevTop: Set<string> | undefined;
  for (const cs of sorted) {
    const all = mean(cs.forward);
    const top = quantileMembers(cs, opts.quantile, true);
    const bottom = quantileMembers(cs, opts.quantile, false);
    const topSet = new Set(top.map((i) => cs.symbols[i]));
    let autocorrelation = Number.NaN;
    let turnover = Number.NaN;
    if (prev !== undefined && prevTop !== undefined) {
      const prevIndex = new Map(prev.symbols.map((s, i) => [s, i]));
      const a: number[] = [];
      const b: number[] = [];
      cs.symbols.forEach((s, i) => {
        const j = prevIndex.get(s);
        if (j !== undefined) {
          a.push(cs.factor[i]);
          b.push((prev as CrossSection).factor[j]);
        }
      });
      if (a.length >= 3) autocorrelation = spearman(a, b);
      let kept = 0;
      for (const s of topSet) if (prevTop.has(s)) kept++;
      turnover = 1 - kept / topSet.size;
    }
    series.push({
      date: cs.date,
      n: cs.symbols.length,
      ic: pearson(cs.factor, cs.forward, cs.symbols.length),
      rankIc: spearman(cs.factor, cs.forward),
      longExcess: mean(cs.forward, top) - all,
      shortExcess: mean(cs.forward, bottom) - all,
      autocorrelation,
      turnover,
    });
    prev = cs;
    prevTop = topSet;
  }
  const ics = series.map((s) => s.ic).filter(Number.isFinite);
  const rankIcs = series.map((s) => s.rankIc).filter(Number.isFinite);
  const ic = mean(ics);
  const icStd = sampleStd(ics);
  const rankIc = mean(rankIcs);
  const longExcess = finiteMean(series.map((s) => s.longExcess));
  const shortExcess = finiteMean(series.map((s) => s.shortExcess));
  const years = new Map<number, number>();
  for (const s of series) {
    const y = Number(s.date.slice(0, 4));
    years.set(y, (years.get(y) ?? 1) * (1 + s.longExcess));
  }
  return {
    dates: series.length,
    meanN: finiteMean(series.map((s) => s.n)),
    ic,
    icStd,
    icir: (ic / icStd) * Math.sqrt(opts.periodsPerYear),
    rankIc,
    rankIcir: (rankIc / sampleStd(rankIcs)) * Math.sqrt(opts.periodsPerYear),
    winRate: ics.filter((x) => x > 0).length / ics.length,
    longExcess,
    shortExcess,
    longShort: longExcess - shortExcess,
    autocorrelation: finiteMean(series.map((s) => s.autocorrelation)),
    turnover: finiteMean(series.map((s) => s.turnover)),
    yearlyLongExcess: [...years].sort((a, b) => a[0] - b[0]).map(([year, g]) => ({ year, longExcess: g - 1 })),
    series,
  };
}
