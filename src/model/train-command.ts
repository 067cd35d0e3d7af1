/**
 * `factorstream train`: features file + daily data -> per-date samples -> model ->
 * training with early stopping -> model folder (weights + meta.json). Ctrl-C stops after
 * the current date and saves the best epoch so far.
 */
import { basename } from 'node:path';
import { FEATURE_COUNT, FEATURE_NAMES, FEATURE_SET_ID } from '../features/feature-set.js';
import type { Freq } from '../market/sessions.js';
import type { Logger } from '../log.js';
import { buildModel, type ModelSpec } from './architecture.js';
import { factorstreamVersion, saveModel, type ModelMeta } from './artifact.js';
import { selectAndLogBackend, type BackendPreference } from './backend.js';
import { buildDataset, featuresFile } from './dataset.js';
import { readDailyCsv, type LabelKind } from './labels.js';
import { trainModel, type EpochReport, type TrainOptions, type TrainResult } from './train.js';

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
}


/**
 * On a terminal: one self-rewriting line with the epoch, a bar over its dates, the ETA of
 * the epoch and the last validation IC. Elsewhere (CI, logs) nothing: the per-epoch log
 * line says the same.
 */
function progressBar(maxEpochs: number): { update(epoch: number, done: number, total: number): void; epochDone(r: EpochReport): void; end(): void } | undefined {
  const out = process.stderr;
  if (!out.isTTY) return undefined;
  let started = performance.now();
  let lastIc = Number.NaN;
  return {
    update(epoch, done, total) {
      if (done === 1) started = performance.now();
      const width = 30;
      const filled = Math.round((width * done) / total);
      const eta = ((performance.now() - started) / done) * (total - done) / 1000;
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

export async function runTrain(opts: TrainCommandOptions, log: Logger, signal?: AbortSignal): Promise<{ meta: ModelMeta; result: TrainResult }> {
  const backend = await selectAndLogBackend(opts.backend, log);
  const file = featuresFile(opts.features, opts.freq);
  const daily = readDailyCsv(opts.daily);
  const started = performance.now();
  const data = await buildDataset(file, daily, { T: opts.T, minCoverage: opts.minCoverage, zClip: opts.zClip, horizon: opts.horizon, labelKind: opts.label, orthogonal: opts.orthogonal });
  const samples = data.batches.reduce((a, b) => a + b.n, 0);
  log.info({ file, bars: data.barsRead, dates: data.batches.length, samples, seconds: +((performance.now() - started) / 1000).toFixed(1) }, 'samples built');
  if (opts.orthogonal && daily.industries.length === 0) throw new Error(`${opts.daily} has no industry column: the orthogonal layer needs industry (and logSize) per symbol and day`);
  if (data.batches.length === 0) throw new Error(`no samples: ${file} has no day with T=${opts.T} bars of history and a ${opts.horizon}-day label in ${opts.daily}`);
  const spec: ModelSpec = { ...opts.spec, T: opts.T, F: FEATURE_COUNT };
  const model = buildModel(spec);
  const bar = progressBar(opts.train.maxEpochs);
  const result = await trainModel(
    model,
    data.batches,
    { ...opts.train, gap: opts.horizon, T: opts.T, F: FEATURE_COUNT },
    (r) => {
      bar?.epochDone(r);
      log.info({ epoch: r.epoch, trainLoss: +r.trainLoss.toFixed(5), validationLoss: +r.validationLoss.toFixed(5), validationIc: +r.validationIc.toFixed(4), seconds: +r.seconds.toFixed(1), best: r.best }, 'epoch');
    },
    signal,
    (epoch, done, total) => bar?.update(epoch, done, total),
  );
  bar?.end();
  if (result.bestEpoch < 0) throw new Error('training was interrupted before the first epoch ended: nothing to save');
  const createdAt = new Date().toISOString();
  const meta: ModelMeta = {
    name: basename(opts.out),
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
  await saveModel(opts.out, model, meta);
  model.dispose();
  return { meta, result };
}
