/**
 * The onnx and tfjs engines score the same artifact the same: for every architecture,
 * head and pooling (and stacked layers), weights randomised (biases, LayerNorm gain and
 * bias included, so that a gate or bias in the wrong place shows), max |onnx - tfjs|
 * <= 1e-4 on 1,000 random sequences and 1,000 sequences the live pipeline assembled from
 * the simulated market. Also: ensembles, a stale model.onnx, the served engine's choice
 * and refusals, and an external model exported from PyTorch scoring what PyTorch scored.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../src/config.js';
import type { ServedModel } from '../src/daemon/models.js';
import { ScoringPipeline } from '../src/daemon/pipeline.js';
import { FEATURE_COUNT } from '../src/features/feature-set.js';
import { encodeTicksArrow } from '../src/ingest/arrow-codec.js';
import { MarketSimulator } from '../src/ingest/simulator/market.js';
import type { ModelSpec } from '../src/model/architecture.js';
import { NO_COMPUTE, type ComputeTime } from '../src/market/clock.js';
import { readMeta, writeMeta } from '../src/model/artifact.js';
import { selectBackend } from '../src/model/backend.js';
import { compareEngines, compareSteps, ENGINE_TOLERANCE, randomSequences } from '../src/model/onnx/compare.js';
import { ONNX_FILE } from '../src/model/onnx/export.js';
import { createOnnxSession, loadOnnxRuntime } from '../src/model/onnx/session.js';
import { DEFAULT_ENGINE_OPTIONS, engineOptionsOf, loadPredictor, type Predictor } from '../src/model/predictor.js';
import { CrossSectionScorer } from '../src/model/scorer.js';
import type { Logger } from '../src/log.js';
import { Metrics } from '../src/sink/metrics.js';
import { calendar, fixture } from './helpers.js';
import { metaFor, randomModelFolder as randomFolder, everyArchitecture } from './model-folders.js';

const T = 12;
const N = 1_000;
const work = mkdtempSync(join(tmpdir(), 'fs-onnx-parity-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const randomModelFolder = (name: string, spec: ModelSpec): Promise<string> => randomFolder(work, name, spec);

/** Records the [n, T, F] windows the pipeline hands to inference, instead of scoring them. */
class CapturingPredictor implements Predictor {
  readonly engine = 'tfjs' as const;
  readonly backend = 'capture';
  readonly windows: Float32Array[] = [];
  async predict(input: Float32Array, n: number, out: Float32Array): Promise<ComputeTime> {
    this.windows.push(input.slice(0, n * T * FEATURE_COUNT));
    out.fill(0, 0, n);
    return NO_COMPUTE;
  }
  async dispose(): Promise<void> {}
}

/** N sequences of T = 12 ten-minute bars as the live pipeline assembles them from a simulated market (later closes first: fuller windows). */
async function simulatorSequences(): Promise<Float32Array> {
  const config = loadConfig({ flags: { features: { freqs: ['10m'] } } });
  const capture = new CapturingPredictor();
  const meta = metaFor('capture', { arch: 'gru', head: 'last', pooling: 'last-query', T, F: FEATURE_COUNT, hidden: 4, layers: 1, dense: 2, dropout: 0, seed: 1 });
  const model: ServedModel = { dir: '', meta, scorer: new CrossSectionScorer(capture, meta, 0.5), role: 'live', fallback: '' };
  const topics = { ticks: 'md.ticks', bars: 'md.bars.1m', scores: 'factor.scores', scoresBatch: 'factor.scores.batch', deadLetter: 'md.deadletter' };
  let now = 0;
  const pipeline = new ScoringPipeline({ config, calendar, topics, models: [model], metrics: new Metrics({ defaultMetrics: false }), now: () => now });
  pipeline.assign(topics.ticks, 0, 0, true);
  const sim = new MarketSimulator({ symbols: 120, days: 1, seed: 23, tradesPerDay: 400, start: '2026-11-23' }, calendar);
  let offset = 0;
  for (const m of sim.generateDay(0)) {
    if (m.ticks.length === 0) continue;
    pipeline.ingest({ topic: topics.ticks, partition: 0, offset: offset++, key: null, value: Buffer.from(encodeTicksArrow(m.ticks, sim.symbols)), headers: { 'content-type': 'application/vnd.apache.arrow.stream' } });
    await pipeline.takeOutputs();
  }
  // The feed goes quiet: the wall clock closes the day's last bars.
  now = Date.parse('2026-11-23T16:00:00+08:00');
  pipeline.advanceTime();
  await pipeline.takeOutputs();
  const out = new Float32Array(N * T * FEATURE_COUNT);
  let filled = 0;
  for (const w of capture.windows.reverse()) {
    const take = Math.min(w.length, out.length - filled);
    out.set(w.subarray(0, take), filled);
    filled += take;
    if (filled === out.length) break;
  }
  expect(filled).toBe(out.length);
  return out;
}

const cases = everyArchitecture(T, 11);

let simulated: Float32Array;
beforeAll(async () => {
  await selectBackend();
  simulated = await simulatorSequences();
}, 120_000);

describe('onnx and tfjs engines agree', () => {
  it.each(cases.map((spec) => ({ ...spec, label: `${spec.arch} ${spec.layers}-layer / ${spec.head} / ${spec.pooling}` })))(
    '$label: max |onnx - tfjs| <= 1e-4 on 1,000 random and 1,000 simulator sequences',
    async (spec) => {
      const dir = await randomModelFolder(`${spec.arch}-${spec.layers}-${spec.head}-${spec.pooling}`, spec);
      const random = await compareEngines(dir, N, randomSequences(N, T, spec.seed));
      const sim = await compareEngines(dir, N, simulated);
      expect(random.maxAbs).toBeLessThanOrEqual(ENGINE_TOLERANCE);
      expect(sim.maxAbs).toBeLessThanOrEqual(ENGINE_TOLERANCE);
      // Not a degenerate model: the scores spread, so agreement means something.
      const spread = Math.max(...random.tfjs) - Math.min(...random.tfjs);
      expect(spread).toBeGreaterThan(0.1);
    },
    60_000,
  );

  it('a seed ensemble: every member exported, the averaged scores agree', async () => {
    const dir = join(work, 'ensemble');
    const members = [];
    for (const seed of [3, 4]) {
      const spec: ModelSpec = { arch: 'gru', head: 'attention', pooling: 'last-query', T, F: FEATURE_COUNT, hidden: 16, layers: 1, dense: 8, dropout: 0.1, seed };
      const member = await randomModelFolder(`ensemble/seed-${seed}`, spec);
      members.push({ dir: `seed-${seed}`, seed, scale: seed === 3 ? 2 : 0.5, validationIc: 0 });
      expect(readMeta(member).onnx?.source).toBe('export');
    }
    writeMeta(dir, { ...readMeta(join(dir, 'seed-3')), name: 'ensemble', ensemble: { members } });
    const c = await compareEngines(dir, N, simulated);
    expect(c.maxAbs).toBeLessThanOrEqual(ENGINE_TOLERANCE);
  }, 60_000);

  it('a model.onnx older than its weights is not served: the graph is rebuilt from the weights, with a warning', async () => {
    const spec: ModelSpec = { arch: 'lstm', head: 'residual', pooling: 'mean', T, F: FEATURE_COUNT, hidden: 16, layers: 1, dense: 8, dropout: 0.1, seed: 40 };
    const dir = await randomModelFolder('stale', spec);
    const old = readFileSync(join(dir, ONNX_FILE));
    // New weights saved over the folder, model.onnx left from the old ones.
    const other = await randomModelFolder('stale-new', { ...spec, seed: 41 });
    cpSync(join(other, 'weights.bin'), join(dir, 'weights.bin'));
    writeFileSync(join(dir, ONNX_FILE), old);
    const warnings: string[] = [];
    const log = { warn: (o: { reason: string }) => warnings.push(o.reason), info: () => undefined } as unknown as Logger;
    const { predictor } = await loadPredictor(dir, { ...DEFAULT_ENGINE_OPTIONS, engine: 'onnx', log });
    await predictor.dispose();
    expect(warnings).toEqual(['model.onnx was not exported from these weights']);
    expect((await compareEngines(dir, N, simulated)).maxAbs).toBeLessThanOrEqual(ENGINE_TOLERANCE);
  }, 60_000);

  it('a folder exported before the step graphs existed is served on graphs all built from its weights: the step equals the whole window', async () => {
    const spec: ModelSpec = { arch: 'gru', head: 'attention', pooling: 'last-query', T, F: FEATURE_COUNT, hidden: 16, layers: 1, dense: 8, dropout: 0.1, seed: 42 };
    const dir = await randomModelFolder('before-steps', spec);
    // What such a folder holds: model.onnx only, of another form than today's step graphs
    // (here another model's graph: served from the disk beside built step graphs, the step
    // would not equal it).
    const other = await randomModelFolder('before-steps-other', { ...spec, seed: 43 });
    cpSync(join(other, ONNX_FILE), join(dir, ONNX_FILE));
    rmSync(join(dir, 'model.prefix.onnx'));
    rmSync(join(dir, 'model.step.onnx'));
    const meta = readMeta(dir);
    writeMeta(dir, { ...meta, onnx: { file: ONNX_FILE, input: 'features', output: 'score', source: 'export', opset: meta.onnx?.opset ?? 17, weightsSha256: meta.onnx?.weightsSha256 ?? '' } });
    const warnings: string[] = [];
    const log = { warn: (o: { reason: string }) => warnings.push(o.reason), info: () => undefined } as unknown as Logger;
    const { predictor } = await loadPredictor(dir, { ...DEFAULT_ENGINE_OPTIONS, engine: 'onnx', log });
    await predictor.dispose();
    expect(warnings).toEqual(['the prefix graph is missing']);
    const stepped = await compareSteps(dir, N, 'onnx', simulated);
    expect(stepped?.maxAbs).toBe(0);
    expect((await compareEngines(dir, N, simulated)).maxAbs).toBeLessThanOrEqual(ENGINE_TOLERANCE);
  }, 60_000);

  it('auto serves on onnx; tfjs is chosen when asked', async () => {
    const auto = await loadPredictor('models/demo-10m');
    const tfjs = await loadPredictor('models/demo-10m', { ...DEFAULT_ENGINE_OPTIONS, engine: 'tfjs' });
    expect([auto.predictor.engine, auto.predictor.backend, auto.fallback]).toEqual(['onnx', 'cpu', '']);
    expect(tfjs.predictor.engine).toBe('tfjs');
    await auto.predictor.dispose();
    await tfjs.predictor.dispose();
  });

  it('asking for the CUDA provider where it is not installed falls back to the CPU provider and says why', async () => {
    const { predictor, fallback } = await loadPredictor('models/demo-10m', { ...DEFAULT_ENGINE_OPTIONS, onnx: { threads: 1, provider: 'cuda', spinWait: false } });
    await predictor.dispose();
    // This machine has no CUDA provider libraries (CI never does); where it has, the provider is used.
    if (predictor.backend === 'cpu') expect(fallback).toMatch(/^cuda unavailable/);
    else expect(fallback).toBe('');
  });
});

describe("onnxruntime's idle threads", () => {
  it('sleep unless daemon.onnxSpinWait says spin: the session is created with allow_spinning 0, from the config and its environment variable', async () => {
    expect(loadConfig().daemon.onnxSpinWait).toBe(false);
    const spinning = loadConfig({ env: { FACTORSTREAM_DAEMON_ONNX_SPIN_WAIT: 'true' } }).daemon;
    expect(engineOptionsOf(spinning, undefined, 'daemon').onnx.spinWait).toBe(true);
    expect(DEFAULT_ENGINE_OPTIONS.onnx.spinWait).toBe(false);
    const ort = await loadOnnxRuntime();
    const create = vi.spyOn(ort.InferenceSession, 'create');
    try {
      for (const spinWait of [false, true]) {
        const { session } = await createOnnxSession(join('models', 'demo-10m', ONNX_FILE), { threads: 1, provider: 'cpu', spinWait });
        await session.release();
      }
      const extras = create.mock.calls.map((c) => (c[1] as { extra?: unknown } | undefined)?.extra);
      expect(extras).toEqual([{ session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } }, undefined]);
    } finally {
      create.mockRestore();
    }
  });
});

describe('external ONNX models', () => {
  const external = fixture('external-torch');
  const reference = JSON.parse(readFileSync(join(external, 'reference.json'), 'utf8')) as { n: number; seed: number; scores: number[]; torch: string };

  it('a graph exported from the PyTorch reference model scores what PyTorch scored (max |diff| <= 1e-4)', async () => {
    const { predictor, meta } = await loadPredictor(external);
    expect(meta.architecture).toBeUndefined();
    expect(predictor.engine).toBe('onnx');
    const x = randomSequences(reference.n, meta.T, reference.seed);
    const out = new Float32Array(reference.n);
    await predictor.predict(x, reference.n, out);
    await predictor.dispose();
    let max = 0;
    for (let i = 0; i < reference.n; i++) max = Math.max(max, Math.abs(out[i] - reference.scores[i]));
    expect(max).toBeLessThanOrEqual(ENGINE_TOLERANCE);
  });

  it('is refused by the tfjs engine, and a meta.json whose T does not match the graph is refused with a clear message', async () => {
    await expect(loadPredictor(external, { ...DEFAULT_ENGINE_OPTIONS, engine: 'tfjs' })).rejects.toThrow(/external ONNX model: only the onnx engine serves it/);
    const wrong = join(work, 'external-wrong-T');
    cpSync(external, wrong, { recursive: true });
    writeMeta(wrong, { ...readMeta(wrong), T: 30 });
    await expect(loadPredictor(wrong)).rejects.toThrow(/meta.json says T = 30/);
    const incomplete = join(work, 'external-incomplete');
    cpSync(external, incomplete, { recursive: true });
    const { freq: _freq, ...rest } = readMeta(incomplete);
    writeFileSync(join(incomplete, 'meta.json'), JSON.stringify(rest));
    await expect(loadPredictor(incomplete)).rejects.toThrow(/not a valid model description.*freq/);
  });
});
