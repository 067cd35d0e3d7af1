/**
 * Training learns a planted relation: the label of each symbol is a noisy function of its
 * features early in the sequence, so validation IC rises far above zero only if training
 * works; the split keeps a gap of the label horizon between training and validation.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../src/ingest/simulator/rng.js';
import { buildModel } from '../src/model/architecture.js';
import { selectBackend } from '../src/model/backend.js';
import { splitByDate, trainModel, type DateBatch, type EpochReport } from '../src/model/train.js';

const T = 8;
const F = 3;

function synthetic(dates: number, n: number, seed: number): DateBatch[] {
  const rng = new Rng(seed);
  return Array.from({ length: dates }, (_, d) => {
    const x = new Float32Array(n * T * F);
    const y = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < T * F; k++) x[i * T * F + k] = rng.normal();
      // the signal: feature 0 at the FIRST step, and feature 1 at the last, plus noise
      y[i] = x[i * T * F + 0] + 0.5 * x[i * T * F + (T - 1) * F + 1] + 0.8 * rng.normal();
    }
    return { date: `2026-01-${String(d + 1).padStart(2, '0')}`, n, x, y };
  });
}

beforeAll(async () => {
  await selectBackend();
});

describe('training', () => {
  it('splits by date with a gap of the label horizon', () => {
    const b = synthetic(20, 2, 1);
    const { train, validation } = splitByDate(b, 0.2, 5);
    expect(train.map((d) => d.date)).toEqual(b.slice(0, 11).map((d) => d.date));
    expect(validation.map((d) => d.date)).toEqual(b.slice(16).map((d) => d.date));
    expect(() => splitByDate(synthetic(5, 2, 1), 0.2, 5)).toThrow(/too few dates/);
  });

  it.each(['ic', 'mse'] as const)('learns the planted relation with the %s loss and keeps the best epoch', async (loss) => {
    const batches = synthetic(24, 64, 2);
    const model = buildModel({ arch: 'gru', head: 'attention', pooling: 'last-query', T, F, hidden: 12, layers: 1, dense: 8, dropout: 0, seed: 5 });
    const reports: EpochReport[] = [];
    const result = await trainModel(model, batches, { loss, learningRate: 0.01, maxEpochs: 12, patience: 4, validationShare: 0.25, gap: 2, seed: 1, T, F }, (r) => reports.push(r));
    expect(reports.length).toBeGreaterThan(0);
    expect(result.bestValidationIc).toBe(Math.max(...reports.map((r) => r.validationIc)));
    // the correlation of the planted signal with the label is about 0.8: learning gets well past chance
    expect(result.bestValidationIc).toBeGreaterThan(0.4);
    expect(result.samplesPerSecond).toBeGreaterThan(0);
    model.dispose();
  });

  it('stops at once when interrupted and keeps the weights it has', async () => {
    const batches = synthetic(12, 16, 3);
    const model = buildModel({ arch: 'gru', head: 'last', pooling: 'last-query', T, F, hidden: 4, layers: 1, dense: 4, dropout: 0, seed: 5 });
    const abort = new AbortController();
    abort.abort();
    const result = await trainModel(model, batches, { loss: 'ic', learningRate: 0.01, maxEpochs: 5, patience: 2, validationShare: 0.25, gap: 1, seed: 1, T, F }, () => undefined, abort.signal);
    expect(result.interrupted).toBe(true);
    expect(result.epochs).toEqual([]);
    model.dispose();
  });
});

describe('orthogonal layer', () => {
  it('makes each date\'s output orthogonal to industry and size, in training and in prediction', async () => {
    const { exposureProjection } = await import('../src/model/labels.js');
    const { predictBatch } = await import('../src/model/train.js');
    const batches = synthetic(14, 40, 4).map((b, d) => {
      const industry = Int32Array.from({ length: b.n }, (_, i) => i % 3);
      const size = Float64Array.from({ length: b.n }, (_, i) => 22 + ((i * 7 + d) % 11) / 3);
      return { ...b, exposures: exposureProjection(industry, size), industry, size };
    });
    const model = buildModel({ arch: 'gru', head: 'last', pooling: 'last-query', T, F, hidden: 6, layers: 1, dense: 4, dropout: 0, seed: 5 });
    await trainModel(model, batches, { loss: 'ic', learningRate: 0.01, maxEpochs: 2, patience: 2, validationShare: 0.25, gap: 1, seed: 1, T, F });
    for (const b of batches.slice(0, 3)) {
      const p = predictBatch(model, b, T, F);
      for (const g of [0, 1, 2]) expect(Array.from(p).filter((_, i) => b.industry[i] === g).reduce((a, v) => a + v, 0)).toBeCloseTo(0, 4);
      expect(Array.from(p).reduce((a, v, i) => a + v * b.size[i], 0)).toBeCloseTo(0, 3);
      // without exposures the same model's output is not orthogonal
      const raw = predictBatch(model, { ...b, exposures: undefined }, T, F);
      expect(Math.abs(Array.from(raw).filter((_, i) => b.industry[i] === 0).reduce((a, v) => a + v, 0))).toBeGreaterThan(1e-3);
    }
    model.dispose();
  });
});
