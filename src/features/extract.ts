/**
 * `factorstream features`: offline extraction. Reads tick and 1-minute bar files, runs
 * them through the same decode -> validate -> aggregate -> bar close path as the daemon,
 * and writes, per frequency, the bars and the raw feature rows (one row per symbol per
 * bar end). Training reads these files; anyone auditing the aggregation can too.
 *
 *   bars-<freq>.<ext>      symbol, barEnd, open, high, low, close, volume, amount, vwap,
 *                          trades, missing, limit
 *   features-<freq>.<ext>  symbol, barEnd, one column per feature (null = masked)
 *   rejects.jsonl          every rejected event: code, detail, file, line/row, symbol
 *   summary.json           counts: events, bars, rejects by code, feature set, and the
 *                          symbol-days traded without reference data (noReference)
 */
import { createWriteStream, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import type { Reject } from '../errors.js';
import type { TradingCalendar } from '../market/calendar.js';
import type { ReferenceBook } from '../market/reference.js';
import type { BarLabel, Freq } from '../market/sessions.js';
import { dayToIso } from '../market/time.js';
import { expandInputs, FileSource, mergeByTime, type FileFormat } from '../ingest/file-source.js';
import { SymbolTable } from '../ingest/events.js';
import { FILE_EXTENSIONS, TableWriter } from '../ingest/table-writer.js';
import { FeatureEngine } from './engine.js';
import { FEATURE_NAMES, FEATURE_SET_ID, type FeatureParams } from './feature-set.js';
import { barsTable, featuresTable } from './tables.js';

export interface ExtractOptions {
  inputs: string[];
  outDir: string;
  freqs: Freq[];
  format: FileFormat;
  calendar: TradingCalendar;
  allowedLatenessMs: number;
  dedupWindow: number;
  features: FeatureParams;
  /** A fixed universe (daemon.universeFile): other symbols are E_UNKNOWN_SYMBOL, as in the daemon. */
  universe?: readonly string[];
  /** How the 1-minute bar files label their bars (bars.label, default end). */
  barLabel?: BarLabel;
  /** Daily reference data (limits, ST), as the daemon reads it from the reference topic. */
  reference?: ReferenceBook;
}

export interface ExtractSummary {
  featureSet: string;
  features: readonly string[];
  inputs: string[];
  ticks: number;
  oneMinuteBars: number;
  barsClosed: Partial<Record<Freq, number>>;
  rows: Partial<Record<Freq, number>>;
  symbols: number;
  rejected: Record<string, number>;
  /** Symbol-days traded without a reference record (W_NO_REFERENCE; 0 without reference data). */
  noReference: number;
  /** The first few of them, "YYYY-MM-DD SYMBOL". */
  noReferenceExamples: string[];
  outputs: string[];
}

export async function extractFeatures(opts: ExtractOptions): Promise<ExtractSummary> {
  const inputs = expandInputs(opts.inputs);
  const symbols = new SymbolTable(opts.universe ?? []);
  symbols.frozen = opts.universe !== undefined;
  const rejects = createWriteStream(join(opts.outDir, 'rejects.jsonl'));
  const writeReject = (r: Reject): void => {
    rejects.write(JSON.stringify(r) + '\n');
  };
  const engine = new FeatureEngine({
    calendar: opts.calendar,
    symbols,
    freqs: opts.freqs,
    allowedLatenessMs: opts.allowedLatenessMs,
    dedupWindow: opts.dedupWindow,
    features: opts.features,
    barLabel: opts.barLabel,
    reference: opts.reference,
    onNoReference: (symbol, day) => {
      if (summary.noReferenceExamples.length < 20) summary.noReferenceExamples.push(`${dayToIso(day)} ${symbol}`);
    },
    onReject: writeReject,
  });
  const ext = FILE_EXTENSIONS[opts.format];
  const writers = new Map<Freq, { bars: TableWriter; features: TableWriter }>();
  for (const freq of opts.freqs) {
    writers.set(freq, {
      bars: new TableWriter(join(opts.outDir, `bars-${freq}${ext}`), opts.format),
      features: new TableWriter(join(opts.outDir, `features-${freq}${ext}`), opts.format),
    });
  }
  const summary: ExtractSummary = {
    featureSet: FEATURE_SET_ID,
    features: FEATURE_NAMES,
    inputs,
    ticks: 0,
    oneMinuteBars: 0,
    barsClosed: {},
    rows: {},
    symbols: 0,
    rejected: {},
    noReference: 0,
    noReferenceExamples: [],
    outputs: [],
  };
  engine.onBarClose(({ bars }) => {
    const w = writers.get(bars.freq);
    if (w === undefined) return;
    w.bars.write(barsTable(bars, symbols));
    w.features.write(featuresTable(bars, symbols));
    summary.barsClosed[bars.freq] = (summary.barsClosed[bars.freq] ?? 0) + 1;
    summary.rows[bars.freq] = (summary.rows[bars.freq] ?? 0) + bars.n;
  });
  const sources = inputs.map((p) => new FileSource(p));
  // One decoding context per file, so that rejects name their file.
  await mergeByTime(sources, (s) => engine.context(s.path), {
    ticks(b, from, to, s) {
      summary.ticks += to - from;
      engine.ingestTicks(b, from, to, s.path);
    },
    bars(b, from, to, s) {
      summary.oneMinuteBars += to - from;
      engine.ingestBars(b, from, to, s.path);
    },
  });
  engine.flush();
  for (const w of writers.values()) {
    await Promise.all([w.bars.close(), w.features.close()]);
    summary.outputs.push(w.bars.path, w.features.path);
  }
  rejects.end();
  await finished(rejects);
  summary.symbols = symbols.size;
  for (const [code, count] of engine.rejected) summary.rejected[code] = count;
  summary.noReference = engine.noReference;
  writeFileSync(join(opts.outDir, 'summary.json'), JSON.stringify(summary, null, 1) + '\n');
  return summary;
}
