/**
 * Training on per-date batches (DESIGN §6): each step is one date's cross-section, the
 * loss is MSE on the date's z-scored labels or the negative Pearson IC of the date;
 * validation dates come after the training dates with a gap of the label horizon (no
 * label of a training date overlaps a validation date); early stopping keeps the weights
 * of the epoch with the best mean validation IC.
 */
import { Rng } from '../ingest/simulator/rng.js';
import { pearson } from '../stats.js';
import { tf } from './backend.js';
import type { ExposureProjection } from './labels.js';
import { stopwatch } from '../market/clock.js';

/** One date's samples: x is [n, T, F] row-major, y the labels. */
export interface DateBatch {
  date: string;
  n: number;
  x: Float32Array;
  y: Float32Array;
  /** The date's exposures, when the orthogonal layer is on: predictions are residualised on them. */
  exposures?: ExposureProjection;
}

export type Loss = 'mse' | 'ic';

export interface TrainOptions {
  loss: Loss;
  learningRate: number;
  maxEpochs: number;
  /** Epochs without a better validation IC before stopping. */
  patience: number;
  /** Share of dates (the latest) used for validation. */
  validationShare: number;
  /** Dates skipped between the training and validation dates: the label horizon. */
  gap: number;
  seed: number;
  T: number;
  F: number;
}

export const DEFAULT_TRAIN_OPTIONS: Omit<TrainOptions, 'T' | 'F'> = {
  loss: 'ic',
  learningRate: 1e-3,
  maxEpochs: 30,
  patience: 5,
  validationShare: 0.2,
  gap: 5,
  seed: 1,
};

export interface EpochReport {
  epoch: number;
  trainLoss: number;
  validationLoss: number;
  validationIc: number;
  seconds: number;
  best: boolean;
}

export interface TrainResult {
  epochs: EpochReport[];
  bestEpoch: number;
  bestValidationIc: number;
  trainDates: [string, string];
  validationDates: [string, string];
  samplesPerSecond: number;
  stoppedEarly: boolean;
  interrupted: boolean;
}

/** Splits dates (sorted) into training and validation with `gap` dates between them. */
export function splitByDate(batches: DateBatch[], validationShare: number, gap: number): { train: DateBatch[]; validation: DateBatch[] } {
  const sorted = [...batches].sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : 0));
  const nVal = Math.max(1, Math.round(sorted.length * validationShare));
  const trainEnd = sorted.length - nVal - gap;
  if (trainEnd < 1) throw new Error(`too few dates (${sorted.length}) for a validation share of ${validationShare} and a gap of ${gap}`);
  return { train: sorted.slice(0, trainEnd), validation: sorted.slice(sorted.length - nVal) };
}

function zscore(y: tf.Tensor1D): tf.Tensor1D {
  const { mean, variance } = tf.moments(y);
  return y.sub(mean).div(variance.sqrt().add(1e-8));
}

/** Negative Pearson correlation of a date's predictions with its labels. */
function negativeIc(pred: tf.Tensor1D, y: tf.Tensor1D): tf.Scalar {
  const p = zscore(pred);
  const t = zscore(y);
  return p.mul(t).mean().neg() as tf.Scalar;
}

function lossOf(kind: Loss, pred: tf.Tensor1D, y: tf.Tensor1D): tf.Scalar {
  return kind === 'ic' ? negativeIc(pred, y) : (tf.losses.meanSquaredError(zscore(y), pred) as tf.Scalar);
}

export interface DateTensors {
  x: tf.Tensor3D;
  y: tf.Tensor1D;
  /** X [n, k] and A = (X'X)^-1 X' [k, n] of the orthogonal layer. */
  X?: tf.Tensor2D;
  A?: tf.Tensor2D;
}

function tensors(b: DateBatch, T: number, F: number): DateTensors {
  const t: DateTensors = { x: tf.tensor3d(b.x, [b.n, T, F]), y: tf.tensor1d(b.y) };
  if (b.exposures !== undefined) {
    t.X = tf.tensor2d(Float32Array.from(b.exposures.X), [b.n, b.exposures.k]);
    t.A = tf.tensor2d(Float32Array.from(b.exposures.A), [b.exposures.k, b.n]);
  }
  return t;
}

/**
 * The model's output for a date: the network's scores, made orthogonal to the date's
 * exposures when the batch has them (the orthogonal layer: pred - X (A pred)).
 */
function predictDate(model: tf.LayersModel, t: DateTensors, training: boolean): tf.Tensor1D {
  const raw = (model.apply(t.x, { training }) as tf.Tensor).reshape([-1]) as tf.Tensor1D;
  if (t.X === undefined || t.A === undefined) return raw;
  const fit = t.X.matMul(t.A.matMul(raw.reshape([-1, 1])));
  return raw.sub(fit.reshape([-1])) as tf.Tensor1D;
}

function disposeTensors(t: DateTensors): void {
  tf.dispose([t.x, t.y, ...(t.X === undefined ? [] : [t.X]), ...(t.A === undefined ? [] : [t.A])]);
}

/** One optimisation step on one date's tensors; returns the loss before the step. */
export function trainStep(model: tf.LayersModel, optimizer: tf.Optimizer, t: DateTensors, loss: Loss): number {
  const cost = optimizer.minimize(() => lossOf(loss, predictDate(model, t, true), t.y), true) as tf.Scalar;
  const value = cost.dataSync()[0];
  cost.dispose();
  return value;
}

/** The model's output for one date (with the orthogonal layer when the batch has exposures). */
export function predictBatch(model: tf.LayersModel, b: DateBatch, T: number, F: number): Float32Array {
  const t = tensors(b, T, F);
  const out = tf.tidy(() => predictDate(model, t, false).dataSync() as Float32Array);
  disposeTensors(t);
  return out;
}

/** Mean validation loss and IC of the model over dates. */
export function evaluateDates(model: tf.LayersModel, batches: DateBatch[], opts: Pick<TrainOptions, 'loss' | 'T' | 'F'>): { loss: number; ic: number } {
  let loss = 0;
  let ic = 0;
  for (const b of batches) {
    const t = tensors(b, opts.T, opts.F);
    const pred = tf.tidy(() => predictDate(model, t, false));
    loss += tf.tidy(() => lossOf(opts.loss, pred, t.y).dataSync()[0]);
    ic += pearson(pred.dataSync(), b.y, b.n);
    disposeTensors(t);
    pred.dispose();
  }
  return { loss: loss / batches.length, ic: ic / batches.length };
}

/**
 * Trains `model` in place and leaves it holding the best validation weights. `onEpoch`
 * reports each epoch, `onProgress` each date; `signal` stops after the current date
 * (Ctrl-C keeps the best epoch).
 */
export async function trainModel(
  model: tf.LayersModel,
  batches: DateBatch[],
  options: TrainOptions,
  onEpoch: (r: EpochReport) => void = () => undefined,
  signal?: AbortSignal,
  onProgress: (epoch: number, datesDone: number, datesTotal: number) => void = () => undefined,
): Promise<TrainResult> {
  const { train, validation } = splitByDate(batches, options.validationShare, options.gap);
  const optimizer = tf.train.adam(options.learningRate);
  const rng = new Rng(options.seed, 11);
  const epochs: EpochReport[] = [];
  let best: tf.Tensor[] | undefined;
  let bestIc = -Infinity;
  let bestEpoch = -1;
  let samples = 0;
  let trainingSeconds = 0;
  let interrupted = false;
  const order = train.map((_, i) => i);
  for (let epoch = 1; epoch <= options.maxEpochs; epoch++) {
    const elapsed = stopwatch();
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    let lossSum = 0;
    for (let done = 0; done < order.length; done++) {
      if (signal?.aborted === true) {
        interrupted = true;
        break;
      }
      const k = order[done];
      const t = tensors(train[k], options.T, options.F);
      lossSum += trainStep(model, optimizer, t, options.loss);
      samples += train[k].n;
      disposeTensors(t);
      onProgress(epoch, done + 1, order.length);
      // Let timers and signals run between dates.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    trainingSeconds += elapsed() / 1000;
    if (interrupted) break;
    const v = evaluateDates(model, validation, options);
    const isBest = v.ic > bestIc;
    if (isBest) {
      bestIc = v.ic;
      bestEpoch = epoch;
      tf.dispose(best ?? []);
      best = model.getWeights().map((w) => w.clone());
    }
    const report: EpochReport = {
      epoch,
      trainLoss: lossSum / order.length,
      validationLoss: v.loss,
      validationIc: v.ic,
      seconds: elapsed() / 1000,
      best: isBest,
    };
    epochs.push(report);
    onEpoch(report);
    if (epoch - bestEpoch >= options.patience) break;
  }
  if (best !== undefined) {
    model.setWeights(best);
    tf.dispose(best);
  }
  optimizer.dispose();
  const last = (a: DateBatch[]): [string, string] => [a[0].date, a[a.length - 1].date];
  return {
    epochs,
    bestEpoch,
    bestValidationIc: bestIc,
    trainDates: last(train),
    validationDates: last(validation),
    samplesPerSecond: samples / Math.max(1e-9, trainingSeconds),
    stoppedEarly: !interrupted && epochs.length < options.maxEpochs,
    interrupted,
  };
}
