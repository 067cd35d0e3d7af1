/**
 * `factorstream score`: a model folder scores a features file offline, bar by bar, the
 * way the daemon scores live: after each bar close every symbol whose window has at least
 * `minCoverage` present bars gets a score, its cross-sectional z-score and percentile
 * rank (1 = best). Rows of the day's last bar (15:00) are marked `dayClose = 1`: those are
 * the end-of-day scores the weekly evaluation reads.
 */
import { join } from 'node:path';
import * as A from 'apache-arrow';
import { DICT_SYMBOL, dictionaryVector, float64Vector, tableOf, timestampMsVector } from '../ingest/arrow-columns.js';
import { formatOfPath } from '../ingest/file-source.js';
import { TableWriter } from '../ingest/table-writer.js';
import type { Logger } from '../log.js';
import { checkedMeta, readMeta, type RollingWindow, type ServingMeta } from './artifact.js';
import { DEFAULT_ENGINE_OPTIONS, loadPredictor, type EngineOptions } from './predictor.js';
import { CrossSectionScorer } from './scorer.js';
import { featuresFile, replayFeatures } from './dataset.js';
import { eligibleSymbols, filtersSymbols, missingInputs, orthogonalProjection, type CrossSectionInputs } from './cross-section.js';
import { dayToIso, localDay } from '../market/time.js';

export interface ScoreSummary {
  rows: number;
  bars: number;
  dayCloses: number;
  model: string;
  version: string;
  /** Engine and backend the scores came from (the first window's, for a rolling set). */
  engine: string;
  backend: string;
}

/** The scorer for each date: one model, or a rolling set's window whose scoring dates hold the date (out of sample). */
async function scorersOf(modelDir: string, minCoverage: number, engine: EngineOptions): Promise<{ meta: ServingMeta; scorerFor(day: string): CrossSectionScorer | undefined; dispose(): Promise<void> }> {
  const meta = checkedMeta(modelDir);
  if (meta.rolling === undefined) {
    const { predictor } = await loadPredictor(modelDir, engine);
    const scorer = new CrossSectionScorer(predictor, meta, minCoverage);
    return { meta, scorerFor: () => scorer, dispose: () => scorer.dispose() };
  }
  const windows: { w: RollingWindow; scorer: CrossSectionScorer }[] = [];
  for (const w of meta.rolling) {
    const { predictor, meta: wm } = await loadPredictor(join(modelDir, w.dir), engine);
    windows.push({ w, scorer: new CrossSectionScorer(predictor, wm, minCoverage) });
  }
  return {
    meta,
    scorerFor: (day) => windows.find(({ w }) => w.scoreFrom <= day && day <= w.scoreTo)?.scorer,
    dispose: async () => {
      for (const { scorer } of windows) await scorer.dispose();
    },
  };
}

/**
 * Scores every bar of a features file. A model with the orthogonal layer needs exposures
 * (industry and log size by day, from daily data or reference data): each bar's scores are
 * residualised on that day's exposures before z-scores and ranks; a universe filter needs
 * reference data (cross-section.ts). A rolling set scores each date with the window
 * trained before it, and leaves dates before its first scoring date unscored.
 */
export async function scoreFeatures(
  modelDir: string,
  featuresPath: string,
  outPath: string,
  minCoverage: number,
  inputs: CrossSectionInputs = {},
  dayCloseOnly = false,
  engine: EngineOptions = DEFAULT_ENGINE_OPTIONS,
): Promise<ScoreSummary> {
  const { meta, scorerFor, dispose } = await scorersOf(modelDir, minCoverage, engine);
  const missing = missingInputs(meta, inputs);
  if (missing !== undefined) {
    await dispose();
    throw new Error(`${missing} (--daily or --reference)`);
  }
  let eligible = new Uint8Array(0);
  const writer = new TableWriter(outPath, formatOfPath(outPath));
  const summary: ScoreSummary = { rows: 0, bars: 0, dayCloses: 0, model: meta.name, version: meta.version, engine: '', backend: '' };
  summary.bars = await replayFeatures(featuresPath, meta.T, meta.normalisation.clip, async ({ barEnd, dayClose, store, symbols }) => {
    // Weekly evaluation reads only the day's last bar: scoring it alone is 24x (10m) less inference.
    if (dayCloseOnly && !dayClose) return;
    const day = localDay(barEnd);
    const scorer = scorerFor(dayToIso(day));
    if (scorer === undefined) return;
    if (filtersSymbols(meta)) {
      if (eligible.length < symbols.size) eligible = new Uint8Array(symbols.size * 2);
      eligibleSymbols(meta, inputs, day, symbols.names, symbols.size, eligible);
    }
    const job = scorer.assemble(store, symbols.names, symbols.size, barEnd, filtersSymbols(meta) ? eligible : undefined);
    if (job === undefined) return;
    summary.engine ||= scorer.engine;
    summary.backend ||= scorer.backend;
    const { n, ids } = job;
    if (meta.orthogonal && inputs.exposures !== undefined) job.exposures = orthogonalProjection(inputs.exposures, day, symbols.names, ids);
    const { score, z, rank } = await scorer.run(job);
    writer.write(
      tableOf([
        ['symbol', dictionaryVector(DICT_SYMBOL, Array.from(ids, (s) => symbols.names[s]), Int32Array.from(ids, (_, i) => i)), false],
        ['barEnd', timestampMsVector(new Float64Array(n).fill(barEnd)), false],
        ['score', float64Vector(Float64Array.from(score)), false],
        ['z', float64Vector(z), false],
        ['rank', float64Vector(rank), false],
        ['coverage', float64Vector(Float64Array.from(job.coverage)), false],
        ['dayClose', A.makeVector(new Uint8Array(n).fill(dayClose ? 1 : 0)), false],
      ]),
    );
    summary.rows += n;
    if (dayClose) summary.dayCloses++;
  });
  await writer.close();
  await dispose();
  return summary;
}

/**
 * Scores a model folder over the features of its frequency (a features file, or the
 * folder `factorstream features` wrote) on the engine asked for. `inputs` gives the
 * exposures of models trained with the orthogonal layer and the reference data of
 * universe filters.
 */
export async function scoreModel(
  modelDir: string,
  features: string,
  outPath: string,
  minCoverage: number,
  inputs: CrossSectionInputs,
  log: Logger,
  dayCloseOnly = false,
  engine: Omit<EngineOptions, 'log'> = DEFAULT_ENGINE_OPTIONS,
): Promise<ScoreSummary> {
  return scoreFeatures(modelDir, featuresFile(features, readMeta(modelDir).freq), outPath, minCoverage, inputs, dayCloseOnly, { ...engine, log });
}
