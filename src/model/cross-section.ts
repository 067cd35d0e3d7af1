/**
 * Which symbols a model scores on a day, and the exposures of its orthogonal layer: the
 * same rules offline (`score`) and live (`serve`, `run`), so that both give one score.
 *
 * - A universe filter (meta.json `universe`: index membership, exclude ST, exclude
 *   suspended) reads the day's reference record; a symbol without one is left out.
 * - The orthogonal layer residualises the scores on the day's industry and log size; a
 *   symbol without them (no daily row, no reference record, no industry or size) is left
 *   out of that model's cross-section rather than spoil everyone's regression.
 */
import { logSizeOf, type ReferenceBook } from '../market/reference.js';
import { isoToDay } from '../market/time.js';
import type { ServingMeta } from './artifact.js';
import { exposureProjection, type DailyPanel, type ExposureProjection } from './labels.js';

/** A symbol's industry and log size on a day, or undefined when they are not known. */
export type ExposureLookup = (day: number, symbol: string) => { industry: string; logSize: number } | undefined;

/** Exposures from the daily data (industry and logSize columns). */
export function dailyExposures(panel: DailyPanel): ExposureLookup {
  const column = new Map(panel.symbols.map((s, i) => [s, i]));
  const dayIndex = new Map(panel.days.map((d, i) => [isoToDay(d), i]));
  return (day, symbol) => {
    const d = dayIndex.get(day);
    const k = column.get(symbol);
    if (d === undefined || k === undefined) return undefined;
    const at = d * panel.symbols.length + k;
    const g = panel.industry[at];
    const logSize = panel.logSize[at];
    return g >= 0 && Number.isFinite(logSize) ? { industry: panel.industries[g], logSize } : undefined;
  };
}

/** Exposures from the reference data (industry, ln floatMarketValue). */
export function referenceExposures(book: ReferenceBook): ExposureLookup {
  return (day, symbol) => {
    const r = book.get(day, symbol);
    if (r === undefined || r.industry === undefined) return undefined;
    const logSize = logSizeOf(r);
    return Number.isFinite(logSize) ? { industry: r.industry, logSize } : undefined;
  };
}

/** What a model's cross-section reads besides the features. */
export interface CrossSectionInputs {
  /** The day's reference records (universe filters). */
  reference?: ReferenceBook;
  /** Industry and size (orthogonal layer). */
  exposures?: ExposureLookup;
}

/** The inputs of offline scoring: exposures from the daily data where it has them, else from the reference data. */
export function crossSectionInputs(daily: DailyPanel | undefined, reference: ReferenceBook | undefined): CrossSectionInputs {
  const exposures = daily !== undefined && daily.industries.length > 0 ? dailyExposures(daily) : reference !== undefined ? referenceExposures(reference) : undefined;
  return { reference, exposures };
}

/** Whether the model's cross-section depends on anything besides coverage. */
export function filtersSymbols(meta: ServingMeta): boolean {
  return meta.orthogonal || meta.universe !== undefined;
}

/** Why a model cannot be scored with these inputs, or undefined when it can. */
export function missingInputs(meta: ServingMeta, inputs: CrossSectionInputs): string | undefined {
  if (meta.orthogonal && inputs.exposures === undefined) return `model ${meta.name} has the orthogonal layer: it needs the day's industry and size (daily data with industry and logSize, or reference data)`;
  if (meta.universe !== undefined && inputs.reference === undefined) return `model ${meta.name} has a universe filter (${JSON.stringify(meta.universe)}): it needs reference data`;
  return undefined;
}

/**
 * Marks in `eligible` (length >= n) the symbols 0..n-1 the model may score on `day`; returns
 * how many. Every symbol is eligible for a model without filters or orthogonal layer.
 */
export function eligibleSymbols(meta: ServingMeta, inputs: CrossSectionInputs, day: number, names: readonly string[], n: number, eligible: Uint8Array): number {
  const u = meta.universe;
  let count = 0;
  for (let s = 0; s < n; s++) {
    let ok = true;
    if (u !== undefined) {
      const r = inputs.reference?.get(day, names[s]);
      ok = r !== undefined && (u.index === undefined || (r.indexes[u.index] ?? 0) > 0) && !(u.excludeST && r.st) && !(u.excludeSuspended && r.suspended);
    }
    if (ok && meta.orthogonal) ok = inputs.exposures?.(day, names[s]) !== undefined;
    eligible[s] = ok ? 1 : 0;
    if (ok) count++;
  }
  return count;
}

/** The orthogonal layer's projection for the symbols `ids` on `day` (all eligible, so all have exposures). */
export function orthogonalProjection(exposures: ExposureLookup, day: number, names: readonly string[], ids: Int32Array): ExposureProjection {
  const industries = new Map<string, number>();
  const industry = new Int32Array(ids.length);
  const logSize = new Float64Array(ids.length);
  ids.forEach((s, i) => {
    const e = exposures(day, names[s]);
    if (e === undefined) throw new Error(`${names[s]} has no exposures on day ${day}: it is not eligible for an orthogonal model`);
    let g = industries.get(e.industry);
    if (g === undefined) industries.set(e.industry, (g = industries.size));
    industry[i] = g;
    logSize[i] = e.logSize;
  });
  return exposureProjection(industry, logSize);
}
