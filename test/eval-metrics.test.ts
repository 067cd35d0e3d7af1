/** Each metric against a small case computed by hand (numbers in the comments). */
import { describe, expect, it } from 'vitest';
import { factorMetrics, ranks, spearman, type CrossSection } from '../src/eval/metrics.js';

const S = ['A', 'B', 'C', 'D', 'E'];
const week1: CrossSection = { date: '2026-01-09', symbols: S, factor: Float64Array.from([5, 4, 3, 2, 1]), forward: Float64Array.from([0.05, 0.03, 0.01, -0.01, -0.03]) };
const week2: CrossSection = { date: '2026-01-16', symbols: S, factor: Float64Array.from([1, 2, 3, 4, 5]), forward: Float64Array.from([0, 0.01, 0, 0.03, 0.01]) };

describe('factor metrics', () => {
  it('ranks give ties their average rank; Spearman uses them', () => {
    expect(Array.from(ranks([0, 0.01, 0, 0.03, 0.01]))).toEqual([1.5, 3.5, 1.5, 5, 3.5]);
    expect(spearman([1, 2, 3], [30, 20, 10])).toBeCloseTo(-1, 12);
  });
  it('per-date figures', () => {
    const m = factorMetrics([week2, week1], { quantile: 0.2 });
    const [w1, w2] = m.series;
    expect(w1.date).toBe('2026-01-09'); // sorted by date
    expect(w1.ic).toBeCloseTo(1, 12);
    expect(w1.rankIc).toBeCloseTo(1, 12);
    expect(w1.longExcess).toBeCloseTo(0.04, 12); // top A 0.05 - mean 0.01
    expect(w1.shortExcess).toBeCloseTo(-0.04, 12); // bottom E -0.03 - 0.01
    expect(w1.autocorrelation).toBeNaN();
    // cov 0.04 / sqrt(10 * 0.0006)
    expect(w2.ic).toBeCloseTo(0.04 / Math.sqrt(0.006), 12);
    // rank cov 5.5 / sqrt(10 * 9)
    expect(w2.rankIc).toBeCloseTo(5.5 / Math.sqrt(90), 12);
    expect(w2.longExcess).toBeCloseTo(0, 12); // top E 0.01 - mean 0.01
    expect(w2.shortExcess).toBeCloseTo(-0.01, 12); // bottom A 0 - 0.01
    expect(w2.autocorrelation).toBeCloseTo(-1, 12); // the ranking reversed
    expect(w2.turnover).toBe(1); // top {A} -> {E}
  });
  it('aggregates: mean IC, annualised ICIR, win rate, long/short, yearly compounding', () => {
    const m = factorMetrics([week1, week2], { quantile: 0.2 });
    const ic2 = 0.04 / Math.sqrt(0.006);
    const meanIc = (1 + ic2) / 2;
    const std = Math.abs(1 - ic2) / Math.SQRT2;
    expect(m.dates).toBe(2);
    expect(m.ic).toBeCloseTo(meanIc, 12);
    expect(m.icStd).toBeCloseTo(std, 12);
    expect(m.icir).toBeCloseTo((meanIc / std) * Math.sqrt(52), 9);
    expect(m.winRate).toBe(1);
    expect(m.longExcess).toBeCloseTo(0.02, 12);
    expect(m.shortExcess).toBeCloseTo(-0.025, 12);
    expect(m.longShort).toBeCloseTo(0.045, 12);
    expect(m.autocorrelation).toBeCloseTo(-1, 12);
    expect(m.turnover).toBe(1);
    expect(m.yearlyLongExcess).toEqual([{ year: 2026, longExcess: expect.closeTo(0.04, 12) as number }]);
  });
  it('deciles round to at least one member, and the top decile of ten names is one name', () => {
    const ten: CrossSection = { date: '2026-02-06', symbols: 'ABCDEFGHIJ'.split(''), factor: Float64Array.from({ length: 10 }, (_, i) => i), forward: Float64Array.from({ length: 10 }, (_, i) => i / 100) };
    const m = factorMetrics([ten]);
    expect(m.series[0].longExcess).toBeCloseTo(0.09 - 0.045, 12);
    expect(m.series[0].shortExcess).toBeCloseTo(0 - 0.045, 12);
  });
});
