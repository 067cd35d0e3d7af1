/**
 * `factorstream train`: features file + daily data -> per-date samples -> model ->
 * training with early stopping -> model folder (weights + meta.json). Ctrl-C stops after
 * the current date and saves the best epoch so far.
 */
import { basename, join } from 'node:path';
import { FEATURE_COUNT, FEATURE_NAMES, FEATURE_SET_ID } from '../features/feature-set.js';
import type { Freq } from '../market/sessions.js';
import type { Logger } from '../log.js';
import { buildModel, type ModelSpec } from './architecture.js';
import { factorstreamVersion, saveModel, writeMeta, type ModelMeta, type RollingWindow } from './artifact.js';
import { exportOnnx } from './onnx/export.js';
import { selectAndLogBackend, type BackendInfo, type BackendPreference } from './backend.js';
import { buildDataset, featuresFile } from './dataset.js';
import { readDailyCsv, withReferenceExposures, type LabelKind } from './labels.js';
import type { ReferenceBook } from '../market/reference.js';
import { predictBatch, splitByDate, trainModel, type DateBatch, type EpochReport, type TrainOptions, type TrainResult } from './train.js';
import { meanStd, pearson } from '../stats.js';
import type { TradingCalendar } from '../market/calendar.js';
import { dayToIso, isoToDay } from '../market/time.js';
import { stopwatch, systemClock } from '../market/clock.js';

export interface TrainCommandOptions {
  features: string;
  daily: string;
  freq: Freq;
  out: string;
  spec: Omit<ModelSpec, 'T' | 'F'>;
  T: number;
  train: Omit<TrainOptions, 'T' | 'F' | 'gap'>;
  horizon: number;
  label: LabelKind;
  minCoverage: number;
  zClip: number;
  backend: BackendPreference;
  /** The orthogonal layer: outputs residualised per date on industry and log size. */
  orthogonal: boolean;
  /** Reference data: industry and size (of the orthogonal layer and risk-adjusted labels) from it instead of the daily data. */
  reference?: ReferenceBook;
  /** Members of a seed ensemble (1: a single model). */
  seeds: number;
  /** Rolling windows: dates (with samples) per training window, and dates between window starts. */
  window?: number;
  step?: number;
  calendar: TradingCalendar;
}


/**
 * On a terminal: one self-rewriting line with the epoch, a bar over its dates, the ETA of
 * the epoch and the last validation IC. Elsewhere (CI, logs) nothing: the per-epoch log
 * line says the same.
 */
function progressBar(maxEpochs: number): { update(epoch: number, done: number, total: number): void; epochDone(r: EpochReport): void; end(): void } | undefined {
  const out = process.stderr;
  if (!out.isTTY) return undefined;
  let elapsed = stopwatch();
  let lastIc = Number.NaN;
  return {
    update(epoch, done, total) {
      if (done === 1) elapsed = stopwatch();
      const width = 30;
      const filled = Math.round((width * done) / total);
      const eta = (elapsed() / done) * (total - done) / 1000;
      const ic = Number.isNaN(lastIc) ? '' : `  val IC ${lastIc.toFixed(4)}`;
      out.write(`\repoch ${epoch}/${maxEpochs} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total} dates  ETA ${eta.toFixed(0)} s${ic}   `);
    },
    epochDone(r) {
      lastIc = r.validationIc;
      out.write('\n');
    },
    end() {
      out.write('\r\x1b[K');
    },
  };
}

/** What one trained folder (a model or a seed ensemble) reports. */
export interface TrainedFolder {
  meta: ModelMeta;
  result: TrainResult;
}

/**
 * Trains one folder on `batches`: a single model, or with `seeds` > 1 a seed ensemble
 * (members seed, seed+1, ... in `seed-<s>/`, each scaled to unit mean cross-sectional
 * spread on the validation dates and averaged; meta.validation.ic is the ensemble's).
 */
async function trainFolder(dir: string, batches: DateBatch[], opts: TrainCommandOptions, backend: BackendInfo, log: Logger, signal?: AbortSignal): Promise<TrainedFolder> {
  const spec: ModelSpec = { ...opts.spec, T: opts.T, F: FEATURE_COUNT };
  const train = { ...opts.train, gap: opts.horizon, T: opts.T, F: FEATURE_COUNT };
  const seeds = Math.max(1, opts.seeds);
  const { validation } = splitByDate(batches, train.validationShare, train.gap);
  const members: { dir: string; seed: number; scale: number; validationIc: number }[] = [];
  const memberPredictions: Float32Array[][] = [];
  let first: TrainedFolder | undefined;
  for (let i = 0; i < seeds; i++) {
    const seed = opts.spec.seed + i;
    const model = buildModel({ ...spec, seed });
    const bar = progressBar(opts.train.maxEpochs);
    const result = await trainModel(
      model,
      batches,
      { ...train, seed: opts.train.seed + i },
      (r) => {
        bar?.epochDone(r);
        log.info({ seed, epoch: r.epoch, trainLoss: +r.trainLoss.toFixed(5), validationLoss: +r.validationLoss.toFixed(5), validationIc: +r.validationIc.toFixed(4), seconds: +r.seconds.toFixed(1), best: r.best }, 'epoch');
      },
      signal,
      (epoch, done, total) => bar?.update(epoch, done, total),
    );
    bar?.end();
    if (result.bestEpoch < 0) throw new Error('training was interrupted before the first epoch ended: nothing to save');
    const meta = metaOf(seeds === 1 ? basename(dir) : `${basename(dir)}-seed-${seed}`, { ...spec, seed }, opts, result, backend);
    const memberDir = seeds === 1 ? dir : join(dir, `seed-${seed}`);
    await saveModel(memberDir, model, meta);
    // The onnx engine's graph, beside the weights it was built from.
    exportOnnx(memberDir);
    if (seeds > 1) {
      const preds = validation.map((b) => predictBatch(model, b, opts.T, FEATURE_COUNT));
      const spread = preds.reduce((acc, p) => acc + meanStd(p).std, 0) / preds.length;
      memberPredictions.push(preds);
      members.push({ dir: `seed-${seed}`, seed, scale: spread > 0 ? 1 / spread : 1, validationIc: result.bestValidationIc });
      log.info({ seed, validationIc: +result.bestValidationIc.toFixed(4), dir: memberDir }, 'ensemble member trained');
    }
    model.dispose();
    first ??= { meta, result };
    if (result.interrupted) break;
  }
  const done = first as TrainedFolder;
  if (seeds === 1 || members.length < 2) return done;
  // The ensemble's own validation IC: members' scaled outputs averaged, date by date.
  let ic = 0;
  validation.forEach((b, d) => {
    const avg = new Float32Array(b.n);
    members.forEach((m, i) => memberPredictions[i][d].forEach((v, j) => (avg[j] += (m.scale * v) / members.length)));
    ic += pearson(avg, b.y, b.n);
  });
  const meta: ModelMeta = { ...done.meta, name: basename(dir), version: `${done.meta.version}x${members.length}`, validation: { ic: ic / validation.length }, ensemble: { members } };
  writeMeta(dir, meta);
  return { meta, result: { ...done.result, bestValidationIc: meta.validation.ic } };
}

function metaOf(name: string, spec: ModelSpec, opts: TrainCommandOptions, result: TrainResult, backend: BackendInfo): ModelMeta {
  const createdAt = new Date(systemClock.now()).toISOString();
  return {
    name,
    version: `${createdAt.replace(/[-:.]/g, '').slice(0, 15)}-s${spec.seed}`,
    factorstreamVersion: factorstreamVersion(),
    featureSet: FEATURE_SET_ID,
    features: [...FEATURE_NAMES],
    freq: opts.freq,
    T: opts.T,
    normalisation: { method: 'robust-z', clip: opts.zClip, minCoverage: opts.minCoverage },
    architecture: spec,
    orthogonal: opts.orthogonal,
    label: { kind: opts.label, horizonDays: opts.horizon },
    training: {
      loss: opts.train.loss,
      learningRate: opts.train.learningRate,
      epochs: result.epochs.length,
      bestEpoch: result.bestEpoch,
      trainDates: result.trainDates,
      validationDates: result.validationDates,
      samplesPerSecond: Math.round(result.samplesPerSecond),
    },
    validation: { ic: result.bestValidationIc },
    backend,
    createdAt,
  };
}

/** The trading day `n` trading days after `iso` (before it when n < 0). */
function tradingDaysAfter(calendar: TradingCalendar, iso: string, n: number): string {
  return dayToIso(calendar.shiftTradingDays(isoToDay(iso), n));
}

export async function runTrain(opts: TrainCommandOptions, log: Logger, signal?: AbortSignal): Promise<TrainedFolder & { windows?: RollingWindow[] }> {
  const backend = await selectAndLogBackend(opts.backend, log);
  const file = featuresFile(opts.features, opts.freq);
  const daily = opts.reference === undefined ? readDailyCsv(opts.daily) : withReferenceExposures(readDailyCsv(opts.daily), opts.reference);
  const elapsed = stopwatch();
  const data = await buildDataset(file, daily, { T: opts.T, minCoverage: opts.minCoverage, zClip: opts.zClip, horizon: opts.horizon, labelKind: opts.label, orthogonal: opts.orthogonal });
  const samples = data.batches.reduce((a, b) => a + b.n, 0);
  log.info({ file, bars: data.barsRead, dates: data.batches.length, samples, seconds: +(elapsed() / 1000).toFixed(1) }, 'samples built');
  if (opts.orthogonal && daily.industries.length === 0) throw new Error(`${opts.daily} has no industry column: the orthogonal layer needs industry (and logSize) per symbol and day`);
  if (data.batches.length === 0) throw new Error(`no samples: ${file} has no day with T=${opts.T} bars of history and a ${opts.horizon}-day label in ${opts.daily}`);
  if (opts.window === undefined) return trainFolder(opts.out, data.batches, opts, backend, log, signal);

  // Rolling: train on `window` dates, move by `step`; each window scores the dates from the
  // day after its last label is known (horizon + 1 trading days after its last date) until
  // the next window takes over.
  const batches = [...data.batches].sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : 0));
  const step = opts.step ?? opts.window;
  const windows: RollingWindow[] = [];
  let last: TrainedFolder | undefined;
  for (let s = 0; s + opts.window <= batches.length; s += step) {
    const part = batches.slice(s, s + opts.window);
    const [trainFrom, trainTo] = [part[0].date, part[part.length - 1].date];
    const dir = `w${String(windows.length + 1).padStart(2, '0')}-${trainFrom}_${trainTo}`;
    log.info({ window: windows.length + 1, trainFrom, trainTo, dates: part.length }, 'rolling window');
    last = await trainFolder(join(opts.out, dir), part, opts, backend, log, signal);
    windows.push({ dir, trainFrom, trainTo, scoreFrom: tradingDaysAfter(opts.calendar, trainTo, opts.horizon + 1), scoreTo: '9999-12-31', validationIc: last.meta.validation.ic });
    if (last.result.interrupted || signal?.aborted === true) break;
  }
  if (last === undefined) throw new Error(`--window ${opts.window} needs at least that many dates with samples; ${file} has ${batches.length}`);
  for (let i = 0; i + 1 < windows.length; i++) windows[i].scoreTo = tradingDaysAfter(opts.calendar, windows[i + 1].scoreFrom, -1);
  const meta: ModelMeta = { ...last.meta, name: basename(opts.out), rolling: windows };
  writeMeta(opts.out, meta);
  return { meta, result: last.result, windows };
}
