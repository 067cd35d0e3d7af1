/**
 * Training and evaluation labels from daily data (DESIGN §6): the forward return over
 * `horizon` trading days (close of day d to close of day d + horizon), in excess of the
 * cross-sectional mean ("raw"), or the residual of a per-date least-squares regression on
 * risk exposures — industry dummies and log size — ("risk-adjusted"). A label of day d
 * reads closes of days d and d + horizon only, and the exposures of day d: nothing later.
 */
import { readFileSync } from 'node:fs';
import { parse as parseCsv } from 'csv-parse/sync';
import { logSizeOf, type ReferenceBook } from '../market/reference.js';
import { isoToDay } from '../market/time.js';

export type LabelKind = 'raw' | 'risk-adjusted';

/** Daily data, [day][symbol] row-major; NaN where a symbol has no row that day. */
export interface DailyPanel {
  days: string[];
  symbols: string[];
  close: Float64Array;
  /** 1 when the symbol traded that day (not suspended). */
  traded: Uint8Array;
  /** Industry index per [day][symbol] (-1 unknown), into `industries`. */
  industry: Int32Array;
  industries: string[];
  logSize: Float64Array;
  /** The day's average price (amount / volume; the close where the data has no amount and volume, or no volume). */
  vwap: Float64Array;
}

/**
 * Reads a daily CSV with at least `date, symbol, close` and optionally `suspended`,
 * `industry`, `logSize`, `volume` and `amount` (the simulator's daily.csv has them all).
 */
export function readDailyCsv(path: string): DailyPanel {
  const [cols = [], ...rows] = parseCsv(readFileSync(path, 'utf8'), { skip_empty_lines: true, trim: true }) as string[][];
  const at = (name: string): number => cols.indexOf(name);
  const iDate = at('date');
  const iSymbol = at('symbol');
  const iClose = at('close');
  if (iDate < 0 || iSymbol < 0 || iClose < 0) throw new Error(`${path}: needs columns date, symbol, close (has ${cols.join(', ')})`);
  const iSusp = at('suspended');
  const iInd = at('industry');
  const iSize = at('logSize');
  const iVolume = at('volume');
  const iAmount = at('amount');
  const days = [...new Set(rows.map((r) => r[iDate]))].sort();
  const symbols = [...new Set(rows.map((r) => r[iSymbol]))].sort();
  const industries = iInd < 0 ? [] : [...new Set(rows.map((r) => r[iInd]))].sort();
  const dayIndex = new Map(days.map((d, i) => [d, i]));
  const symIndex = new Map(symbols.map((s, i) => [s, i]));
  const indIndex = new Map(industries.map((s, i) => [s, i]));
  const n = days.length * symbols.length;
  const panel: DailyPanel = {
    days,
    symbols,
    close: new Float64Array(n).fill(Number.NaN),
    traded: new Uint8Array(n),
    industry: new Int32Array(n).fill(-1),
    industries,
    logSize: new Float64Array(n).fill(Number.NaN),
    vwap: new Float64Array(n).fill(Number.NaN),
  };
  for (const r of rows) {
    const k = (dayIndex.get(r[iDate]) as number) * symbols.length + (symIndex.get(r[iSymbol]) as number);
    panel.close[k] = Number(r[iClose]);
    panel.traded[k] = iSusp >= 0 && r[iSusp] === '1' ? 0 : 1;
    if (iInd >= 0) panel.industry[k] = indIndex.get(r[iInd]) ?? -1;
    if (iSize >= 0) panel.logSize[k] = Number(r[iSize]);
    const volume = iVolume >= 0 ? Number(r[iVolume]) : 0;
    panel.vwap[k] = volume > 0 && iAmount >= 0 ? Number(r[iAmount]) / volume : panel.close[k];
  }
  return panel;
}

/**
 * The panel with industry and log size from the reference data (industry, ln
 * floatMarketValue) on each day the reference has a record for; unknown elsewhere.
 */
export function withReferenceExposures(panel: DailyPanel, book: ReferenceBook): DailyPanel {
  const industries = new Set<string>();
  for (const d of book.days()) for (const r of book.day(d).values()) if (r.industry !== undefined) industries.add(r.industry);
  const names = [...industries].sort();
  const index = new Map(names.map((g, i) => [g, i]));
  const n = panel.days.length * panel.symbols.length;
  const out: DailyPanel = { ...panel, industries: names, industry: new Int32Array(n).fill(-1), logSize: new Float64Array(n).fill(Number.NaN) };
  panel.days.forEach((iso, d) => {
    const day = isoToDay(iso);
    panel.symbols.forEach((symbol, k) => {
      const r = book.get(day, symbol);
      if (r === undefined) return;
      out.industry[d * panel.symbols.length + k] = r.industry === undefined ? -1 : (index.get(r.industry) as number);
      out.logSize[d * panel.symbols.length + k] = logSizeOf(r);
    });
  });
  return out;
}

/** Solves A x = b (A n×n, row-major) by Gaussian elimination with partial pivoting; null when singular. */
export function solve(a: Float64Array, b: Float64Array, n: number): Float64Array | null {
  const m = Float64Array.from(a);
  const x = Float64Array.from(b);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r * n + c]) > Math.abs(m[p * n + c])) p = r;
    if (Math.abs(m[p * n + c]) < 1e-12) return null;
    if (p !== c) {
      for (let k = 0; k < n; k++) [m[c * n + k], m[p * n + k]] = [m[p * n + k], m[c * n + k]];
      [x[c], x[p]] = [x[p], x[c]];
    }
    for (let r = c + 1; r < n; r++) {
      const f = m[r * n + c] / m[c * n + c];
      if (f === 0) continue;
      for (let k = c; k < n; k++) m[r * n + k] -= f * m[c * n + k];
      x[r] -= f * x[c];
    }
  }
  for (let c = n - 1; c >= 0; c--) {
    let s = x[c];
    for (let k = c + 1; k < n; k++) s -= m[c * n + k] * x[k];
    x[c] = s / m[c * n + c];
  }
  return x;
}

/**
 * A date's exposure design and its least-squares projector: X [n, k] has one dummy per
 * industry present (which also carries the intercept) and standardised log size; A =
 * (X'X)^-1 X' [k, n]. The residual of y is y - X (A y). Without usable exposures (an
 * unknown industry, or a singular design) X is the intercept alone: residual = y - mean.
 * The label's "risk-adjusted" form and the model's orthogonal layer both use it.
 */
export interface ExposureProjection {
  n: number;
  k: number;
  X: Float64Array;
  A: Float64Array;
}

function interceptOnly(n: number): ExposureProjection {
  return { n, k: 1, X: new Float64Array(n).fill(1), A: new Float64Array(n).fill(1 / n) };
}

export function exposureProjection(industry: Int32Array, logSize: Float64Array): ExposureProjection {
  const n = industry.length;
  const present = [...new Set(Array.from(industry).filter((g) => g >= 0))].sort((a, b) => a - b);
  if (present.length === 0 || !Array.from(industry).every((g) => g >= 0)) return interceptOnly(n);
  const sizeOk = Array.from(logSize).every(Number.isFinite);
  let sMean = 0;
  let sStd = 0;
  if (sizeOk) {
    for (let i = 0; i < n; i++) sMean += logSize[i];
    sMean /= n;
    for (let i = 0; i < n; i++) sStd += (logSize[i] - sMean) ** 2;
    sStd = Math.sqrt(sStd / n) || 1;
  }
  const col = new Map(present.map((g, j) => [g, j]));
  const k = present.length + (sizeOk ? 1 : 0);
  const X = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    X[i * k + (col.get(industry[i]) as number)] = 1;
    if (sizeOk) X[i * k + k - 1] = (logSize[i] - sMean) / sStd;
  }
  const xtx = new Float64Array(k * k);
  for (let i = 0; i < n; i++) for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) xtx[a * k + b] += X[i * k + a] * X[i * k + b];
  // (X'X)^-1 column by column.
  const inv = new Float64Array(k * k);
  const unit = new Float64Array(k);
  for (let c = 0; c < k; c++) {
    unit.fill(0);
    unit[c] = 1;
    const column = solve(xtx, unit, k);
    if (column === null) return interceptOnly(n);
    for (let r = 0; r < k; r++) inv[r * k + c] = column[r];
  }
  const A = new Float64Array(k * n);
  for (let a = 0; a < k; a++) for (let i = 0; i < n; i++) {
    let s = 0;
    for (let b = 0; b < k; b++) s += inv[a * k + b] * X[i * k + b];
    A[a * n + i] = s;
  }
  return { n, k, X, A };
}

/** y minus its projection on the exposures: y - X (A y). */
export function residualize(p: ExposureProjection, y: ArrayLike<number>): Float64Array {
  const beta = new Float64Array(p.k);
  for (let a = 0; a < p.k; a++) for (let i = 0; i < p.n; i++) beta[a] += p.A[a * p.n + i] * y[i];
  const out = new Float64Array(p.n);
  for (let i = 0; i < p.n; i++) {
    let fit = 0;
    for (let a = 0; a < p.k; a++) fit += p.X[i * p.k + a] * beta[a];
    out[i] = y[i] - fit;
  }
  return out;
}

/** Residuals of y on industry dummies and log size (see exposureProjection). */
export function exposureResiduals(y: Float64Array, industry: Int32Array, logSize: Float64Array): Float64Array {
  return residualize(exposureProjection(industry, logSize), y);
}

/**
 * Labels [day][symbol]: NaN where the symbol did not trade on day d, lacks a close at
 * d + horizon, or d + horizon is past the data.
 */
export function forwardLabels(panel: DailyPanel, horizon: number, kind: LabelKind): Float64Array {
  const nS = panel.symbols.length;
  const out = new Float64Array(panel.days.length * nS).fill(Number.NaN);
  for (let d = 0; d + horizon < panel.days.length; d++) {
    const idx: number[] = [];
    const ret: number[] = [];
    for (let s = 0; s < nS; s++) {
      const now = panel.close[d * nS + s];
      const later = panel.close[(d + horizon) * nS + s];
      if (panel.traded[d * nS + s] !== 1 || !(now > 0) || !(later > 0)) continue;
      idx.push(s);
      ret.push(later / now - 1);
    }
    if (idx.length < 2) continue;
    const y = Float64Array.from(ret);
    let labels: Float64Array;
    if (kind === 'raw') {
      const mean = ret.reduce((a, b) => a + b, 0) / ret.length;
      labels = y.map((v) => v - mean);
    } else {
      labels = exposureResiduals(
        y,
        Int32Array.from(idx, (s) => panel.industry[d * nS + s]),
        Float64Array.from(idx, (s) => panel.logSize[d * nS + s]),
      );
    }
    idx.forEach((s, j) => (out[d * nS + s] = labels[j]));
  }
  return out;
}
