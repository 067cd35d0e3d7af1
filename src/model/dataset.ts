/**
 * Training samples from `factorstream features` output and daily data: the feature rows
 * are normalised and pushed into a sequence store bar by bar, exactly as the daemon does
 * live, and at each day's last bar close every symbol with enough coverage and a label
 * becomes a sample — one date batch per trading day, labelled with the forward excess
 * return from that close.
 */
import { existsSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import * as A from 'apache-arrow';
import { FEATURE_COUNT, FEATURE_NAMES } from '../features/feature-set.js';
import { RobustZScorer } from '../features/normalize.js';
import { SequenceStore } from '../features/sequence-store.js';
import { SymbolTable } from '../ingest/events.js';
import { DAY_CLOSE, type Freq } from '../market/sessions.js';
import { dayToIso, localDay, msOfLocalDay } from '../market/time.js';
import { grown } from '../typed-arrays.js';
import { exposureProjection, forwardLabels, type DailyPanel, type ExposureProjection, type LabelKind } from './labels.js';
import type { DateBatch } from './train.js';

/** The features file of a frequency: a file as given, or `features-<freq>.arrow` in a folder. */
export function featuresFile(path: string, freq: Freq): string {
  const file = existsSync(path) && statSync(path).isDirectory() ? join(path, `features-${freq}.arrow`) : path;
  if (!existsSync(file)) throw new Error(`${file} does not exist (run factorstream features --format arrow first)`);
  return file;
}

export interface DatasetOptions {
  T: number;
  minCoverage: number;
  zClip: number;
  horizon: number;
  labelKind: LabelKind;
  /** Attach each date's exposures (industry, log size) for the orthogonal layer. */
  orthogonal: boolean;
}

export interface Dataset {
  batches: DateBatch[];
  /** Symbols of the sample rows, per batch (same order as the rows). */
  symbols: string[][];
  barsRead: number;
}

/** Checks that a features file has the feature set's columns, in order. */
export function checkFeatureColumns(schema: A.Schema, path: string): void {
  const names = schema.fields.map((f) => f.name);
  const features = names.filter((n) => n !== 'symbol' && n !== 'barEnd');
  if (names[0] !== 'symbol' || names[1] !== 'barEnd' || features.join(',') !== FEATURE_NAMES.join(',')) {
    throw new Error(`${path}: the columns are not symbol, barEnd and the feature set baseline-v1 (${FEATURE_NAMES.join(', ')}); got ${names.join(', ')}`);
  }
}

/** What a replay hands over at each bar end: the store after that bar's row was pushed. */
export interface ReplayedBar {
  barEnd: number;
  /** Whether this bar ends the trading day (15:00). */
  dayClose: boolean;
  store: SequenceStore;
  symbols: SymbolTable;
}

/**
 * Replays a features file bar by bar through the live normalisation and sequence store
 * (robust z-score per bar, one row per symbol, missing rows masked) and calls `onBar`
 * after each bar end.
 */
export async function replayFeatures(path: string, T: number, zClip: number, onBar: (bar: ReplayedBar) => void | Promise<void>): Promise<number> {
  const F = FEATURE_COUNT;
  const symbols = new SymbolTable();
  const store = new SequenceStore(T, F);
  const zscorer = new RobustZScorer(zClip);
  let rows = new Float64Array(0);
  let mask = new Uint8Array(0);
  let missing = new Uint8Array(0);
  let normalized = new Float32Array(0);
  let bars = 0;
  let currentEnd = Number.NaN;
  // Rows of the current bar end: symbol id, values and validity, collected until it changes.
  const pendingIds: number[] = [];
  let pendingValues = new Float64Array(0);
  let pendingValid = new Uint8Array(0);

  const closeBar = async (): Promise<void> => {
    if (Number.isNaN(currentEnd)) return;
    const n = symbols.size;
    if (rows.length < n * F) {
      rows = new Float64Array(n * F * 2);
      mask = new Uint8Array(n * F * 2);
      missing = new Uint8Array(n * 2);
      normalized = new Float32Array(n * F * 2);
    }
    mask.fill(0, 0, n * F);
    missing.fill(1, 0, n);
    pendingIds.forEach((id, k) => {
      rows.set(pendingValues.subarray(k * F, k * F + F), id * F);
      mask.set(pendingValid.subarray(k * F, k * F + F), id * F);
      missing[id] = pendingValid.subarray(k * F, k * F + F).includes(1) ? 0 : 1;
    });
    pendingIds.length = 0;
    zscorer.all(rows, mask, n, F, normalized);
    store.push(normalized, mask, missing, n);
    bars++;
    await onBar({ barEnd: currentEnd, dayClose: msOfLocalDay(currentEnd) === DAY_CLOSE, store, symbols });
  };

  const handle = await open(path);
  try {
    const reader = await A.RecordBatchReader.from(handle);
    let checked = false;
    for await (const rb of reader) {
      if (!checked) {
        checkFeatureColumns(rb.schema, path);
        checked = true;
      }
      const sym = rb.getChild('symbol') as A.Vector;
      const ends = rb.getChild('barEnd') as A.Vector;
      const cols = FEATURE_NAMES.map((name) => rb.getChild(name) as A.Vector);
      for (let r = 0; r < rb.numRows; r++) {
        const end = Number(ends.get(r) as number | bigint);
        if (end !== currentEnd) {
          await closeBar();
          currentEnd = end;
        }
        const id = symbols.intern(String(sym.get(r)));
        if (id < 0) continue;
        const k = pendingIds.length;
        if (pendingValues.length < (k + 1) * F) {
          pendingValues = grown(pendingValues, (k + 1) * F * 2);
          pendingValid = grown(pendingValid, (k + 1) * F * 2);
        }
        pendingIds.push(id);
        for (let f = 0; f < F; f++) {
          const v = cols[f].get(r) as number | null;
          const ok = v !== null && Number.isFinite(v);
          pendingValues[k * F + f] = ok ? v : 0;
          pendingValid[k * F + f] = ok ? 1 : 0;
        }
      }
    }
    await closeBar();
  } finally {
    await handle.close();
  }
  return bars;
}

/** The exposure projection of day `d` for the daily-panel symbols `columns`. */
export function exposuresOf(daily: DailyPanel, d: number, columns: number[]): ExposureProjection {
  const base = d * daily.symbols.length;
  return exposureProjection(Int32Array.from(columns, (k) => daily.industry[base + k]), Float64Array.from(columns, (k) => daily.logSize[base + k]));
}

/** Per-date training samples: at each day close, every symbol with coverage and a label. */
export async function buildDataset(featuresPath: string, daily: DailyPanel, opts: DatasetOptions): Promise<Dataset> {
  const F = FEATURE_COUNT;
  const labels = forwardLabels(daily, opts.horizon, opts.labelKind);
  const dayIndex = new Map(daily.days.map((d, i) => [d, i]));
  const dailySymbol = new Map(daily.symbols.map((s, i) => [s, i]));
  const out: Dataset = { batches: [], symbols: [], barsRead: 0 };
  out.barsRead = await replayFeatures(featuresPath, opts.T, opts.zClip, ({ barEnd, dayClose, store, symbols }) => {
    if (!dayClose) return;
    const date = dayToIso(localDay(barEnd));
    const d = dayIndex.get(date);
    if (d === undefined) return;
    const ids: number[] = [];
    const y: number[] = [];
    for (let s = 0; s < symbols.size; s++) {
      const k = dailySymbol.get(symbols.names[s]);
      if (k === undefined || store.coverage(s) < opts.minCoverage) continue;
      const label = labels[d * daily.symbols.length + k];
      if (!Number.isFinite(label)) continue;
      ids.push(s);
      y.push(label);
    }
    if (ids.length < 2) return;
    const x = new Float32Array(ids.length * opts.T * F);
    store.fill(ids, ids.length, x);
    const batch: DateBatch = { date, n: ids.length, x, y: Float32Array.from(y) };
    if (opts.orthogonal) batch.exposures = exposuresOf(daily, d, ids.map((s) => dailySymbol.get(symbols.names[s]) as number));
    out.batches.push(batch);
    out.symbols.push(ids.map((s) => symbols.names[s]));
  });
  return out;
}
