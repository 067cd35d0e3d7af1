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
import { exposuresOf, featuresFile, replayFeatures } from './dataset.js';
import { exposureProjection, residualize, type DailyPanel } from './labels.js';
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
 * Scores every bar of a features file. A model with the orthogonal layer needs `daily`
 * (industry and log size by day): each bar's scores are residualised on that day's
 * exposures before z-scores and ranks. A rolling set scores each date with the window
 * trained before it, and leaves dates before its first scoring date unscored.
 */
export async function scoreFeatures(
  modelDir: string,
  featuresPath: string,
  outPath: string,
  minCoverage: number,
  daily?: DailyPanel,
  dayCloseOnly = false,
  engine: EngineOptions = DEFAULT_ENGINE_OPTIONS,
): Promise<ScoreSummary> {
  const { meta, scorerFor, dispose } = await scorersOf(modelDir, minCoverage, engine);
  if (meta.orthogonal && daily === undefined) throw new Error(`model ${meta.name} has the orthogonal layer: scoring needs the daily data with industry and logSize (--daily)`);
  const dayIndex = new Map((daily?.days ?? []).map((d, i) => [d, i]));
  const dailySymbol = new Map((daily?.symbols ?? []).map((s, i) => [s, i]));
  const writer = new TableWriter(outPath, formatOfPath(outPath));
  const summary: ScoreSummary = { rows: 0, bars: 0, dayCloses: 0, model: meta.name, version: meta.version, engine: '', backend: '' };
  summary.bars = await replayFeatures(featuresPath, meta.T, meta.normalisation.clip, async ({ barEnd, dayClose, store, symbols }) => {
    // Weekly evaluation reads only the day's last bar: scoring it alone is 24x (10m) less inference.
    if (dayCloseOnly && !dayClose) return;
    const scorer = scorerFor(dayToIso(localDay(barEnd)));
    if (scorer === undefined) return;
    const job = scorer.assemble(store, symbols.names, symbols.size, barEnd);
    if (job === undefined) return;
    summary.engine ||= scorer.engine;
    summary.backend ||= scorer.backend;
    const { n, ids } = job;
    const orthogonal = (scores: Float32Array): Float32Array => {
      if (daily === undefined) return scores;
      const d = dayIndex.get(dayToIso(localDay(barEnd)));
      const columns = Array.from(ids, (s) => dailySymbol.get(symbols.names[s]) ?? -1);
      // A day or symbol the daily data lacks: no exposures, the intercept alone (demeaned).
      const projection = d === undefined || columns.includes(-1) ? exposureProjection(new Int32Array(n).fill(-1), new Float64Array(n)) : exposuresOf(daily, d, columns);
      return Float32Array.from(residualize(projection, scores));
    };
    const { score, z, rank } = await scorer.run(job, meta.orthogonal ? orthogonal : undefined);
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
 * folder `factorstream features` wrote) on the engine asked for. `daily` gives the
 * exposures of models trained with the orthogonal layer.
 */
export async function scoreModel(
  modelDir: string,
  features: string,
  outPath: string,
  minCoverage: number,
  daily: DailyPanel | undefined,
  log: Logger,
  dayCloseOnly = false,
  engine: Omit<EngineOptions, 'log'> = DEFAULT_ENGINE_OPTIONS,
): Promise<ScoreSummary> {
  return scoreFeatures(modelDir, featuresFile(features, readMeta(modelDir).freq), outPath, minCoverage, daily, dayCloseOnly, { ...engine, log });
}
