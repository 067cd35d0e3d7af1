import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exposureResiduals, forwardLabels, readDailyCsv, solve, type DailyPanel } from '../src/model/labels.js';

function panel(closes: number[][], industry?: number[], logSize?: number[]): DailyPanel {
  const days = closes.map((_, d) => `2026-01-0${d + 5}`);
  const n = closes[0].length;
  return {
    days,
    symbols: Array.from({ length: n }, (_, i) => `60000${i}.SH`),
    close: Float64Array.from(closes.flat()),
    traded: new Uint8Array(days.length * n).fill(1),
    industry: Int32Array.from(closes.flatMap(() => industry ?? Array.from({ length: n }, () => -1))),
    industries: ['X', 'Y'],
    logSize: Float64Array.from(closes.flatMap(() => logSize ?? Array.from({ length: n }, () => Number.NaN))),
    vwap: Float64Array.from(closes.flat()),
  };
}

describe('labels', () => {
  it('raw: forward return over the horizon minus the cross-sectional mean', () => {
    const p = panel([
      [10, 20, 40],
      [11, 20, 40],
      [12, 22, 36],
    ]);
    const l1 = forwardLabels(p, 1, 'raw');
    // day 0 -> 1: returns 0.1, 0, 0; mean 1/30
    expect(Array.from(l1.subarray(0, 3))).toEqual([0.1 - 0.1 / 3, -0.1 / 3, -0.1 / 3].map((x) => expect.closeTo(x, 12) as unknown as number));
    // the last day has no forward close
    expect(Array.from(l1.subarray(6, 9)).every(Number.isNaN)).toBe(true);
    const l2 = forwardLabels(p, 2, 'raw');
    // day 0 -> 2: 0.2, 0.1, -0.1; mean 0.2/3
    expect(l2[0]).toBeCloseTo(0.2 - 0.2 / 3, 12);
    expect(l2[2]).toBeCloseTo(-0.1 - 0.2 / 3, 12);
    expect(Number.isNaN(l2[3])).toBe(true);
  });
  it('skips symbols that did not trade on the label day', () => {
    const p = panel([
      [10, 20, 40],
      [11, 22, 40],
    ]);
    p.traded[1] = 0;
    const l = forwardLabels(p, 1, 'raw');
    expect(Number.isNaN(l[1])).toBe(true);
    expect(l[0]).toBeCloseTo(0.05, 12); // 0.1 - mean(0.1, 0)
  });
  it('risk-adjusted: residuals are orthogonal to industry and size', () => {
    const y = Float64Array.from([0.05, 0.01, -0.02, 0.03, 0.0, -0.04, 0.02]);
    const ind = Int32Array.from([0, 0, 0, 1, 1, 1, 1]);
    const size = Float64Array.from([22, 23, 24, 21, 22.5, 23.5, 25]);
    const r = exposureResiduals(y, ind, size);
    for (const g of [0, 1]) expect(Array.from(r).filter((_, i) => ind[i] === g).reduce((a, b) => a + b, 0)).toBeCloseTo(0, 12);
    expect(Array.from(r).reduce((a, v, i) => a + v * size[i], 0)).toBeCloseTo(0, 10);
  });
  it('solve finds the solution and reports singular systems', () => {
    expect(Array.from(solve(Float64Array.from([2, 1, 1, 3]), Float64Array.from([3, 5]), 2) ?? [])).toEqual([0.8, 1.4].map((x) => expect.closeTo(x, 12) as unknown as number));
    expect(solve(Float64Array.from([1, 2, 2, 4]), Float64Array.from([1, 2]), 2)).toBeNull();
  });
  it('no look-ahead: changing closes after day d + horizon changes no label of day d or earlier', () => {
    const base = [
      [10, 20, 40, 8],
      [11, 20, 41, 8.5],
      [12, 21, 39, 9],
      [12.5, 22, 38, 9.5],
      [13, 20, 42, 10],
    ];
    const h = 2;
    for (const kind of ['raw', 'risk-adjusted'] as const) {
      const a = forwardLabels(panel(base, [0, 0, 1, 1], [22, 23, 24, 25]), h, kind);
      const changed = base.map((row, d) => (d > 2 ? row.map((x) => x * 1.7) : row));
      const b = forwardLabels(panel(changed, [0, 0, 1, 1], [22, 23, 24, 25]), h, kind);
      // labels of day 0 use days 0 and 2 only
      expect(Array.from(b.subarray(0, 4))).toEqual(Array.from(a.subarray(0, 4)));
      expect(Array.from(b.subarray(4, 8))).not.toEqual(Array.from(a.subarray(4, 8)));
    }
  });
  it('reads the simulator daily.csv', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fs-labels-'));
    const path = join(dir, 'daily.csv');
    writeFileSync(path, 'date,symbol,prevClose,close,suspended,industry,logSize\n2026-01-05,600000.SH,10,10.5,0,Banks,23\n2026-01-05,000001.SZ,5,5.1,1,Utilities,22\n2026-01-06,600000.SH,10.5,10,0,Banks,23\n');
    const p = readDailyCsv(path);
    expect(p.days).toEqual(['2026-01-05', '2026-01-06']);
    expect(p.symbols).toEqual(['000001.SZ', '600000.SH']);
    expect(Array.from(p.close)).toEqual([5.1, 10.5, Number.NaN, 10]);
    expect(Array.from(p.traded)).toEqual([0, 1, 0, 1]);
    expect(p.industries).toEqual(['Banks', 'Utilities']);
  });
});
