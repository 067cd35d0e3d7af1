/**
 * The onnx engine in worker threads (daemon.inferenceWorkers) scores what it scores on the
 * main thread — the same sessions on the same graphs, so the same floats — for whole
 * windows, prefixes and steps, ensembles and the daemon's pipeline over a day; and while a
 * worker infers, the main thread's event loop keeps turning (it is blocked for the whole
 * inference when the session runs on it).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { loadServedModels, type ServedModel } from '../src/daemon/models.js';
import { FEATURE_COUNT } from '../src/features/feature-set.js';
import { createLogger } from '../src/log.js';
import { readMeta, writeMeta } from '../src/model/artifact.js';
import { selectBackend } from '../src/model/backend.js';
import { randomSequences, wholeAndStepped } from '../src/model/onnx/compare.js';
import { DEFAULT_ENGINE_OPTIONS, engineOptionsOf, loadPredictor, type EngineOptions, type Predictor } from '../src/model/predictor.js';
import { Metrics } from '../src/sink/metrics.js';
import type { ComputeTime } from '../src/market/clock.js';
import { everyArchitecture, randomModelFolder } from './model-folders.js';
import { deliver, partitionMessages, rng, simulatedMarket } from './partitioned-feed.js';

const T = 12;
const N = 500;
const work = mkdtempSync(join(tmpdir(), 'fs-workers-'));
const onWorkers: EngineOptions = { ...DEFAULT_ENGINE_OPTIONS, engine: 'onnx', workers: 2 };
const onMain: EngineOptions = { ...DEFAULT_ENGINE_OPTIONS, engine: 'onnx' };
afterAll(() => rmSync(work, { recursive: true, force: true }));
beforeAll(async () => {
  await selectBackend();
});

/** The folder's scores on workers and on the main thread: whole windows, prefix + step. */
async function onBoth(dir: string, x: Float32Array): Promise<void> {
  const worker = await loadPredictor(dir, onWorkers);
  const main = await loadPredictor(dir, onMain);
  const a = await wholeAndStepped(worker.predictor, x, N, T);
  const b = await wholeAndStepped(main.predictor, x, N, T);
  await worker.predictor.dispose();
  await main.predictor.dispose();
  expect(worker.predictor.engine).toBe('onnx');
  expect(Array.from(a.whole)).toEqual(Array.from(b.whole));
  expect(Array.from(a.stepped)).toEqual(Array.from(b.stepped));
}

describe('the onnx engine in worker threads', () => {
  it.each(everyArchitecture(T, 81).filter((_, i) => i % 3 === 0).map((spec) => ({ spec, label: `${spec.arch} ${spec.layers}-layer / ${spec.head} / ${spec.pooling}` })))(
    '$label: whole windows, prefix and step give the main thread\'s floats exactly',
    async ({ spec }) => {
      const dir = await randomModelFolder(work, `${spec.arch}-${spec.layers}-${spec.head}-${spec.pooling}`, spec);
      await onBoth(dir, randomSequences(N, T, spec.seed));
    },
    60_000,
  );

  it('a seed ensemble with its members on two workers: the main thread\'s floats', async () => {
    const dir = join(work, 'ensemble');
    const members = [];
    for (const seed of [5, 6]) {
      await randomModelFolder(work, `ensemble/seed-${seed}`, { arch: 'gru', head: 'attention', pooling: 'last-query', T, F: FEATURE_COUNT, hidden: 16, layers: 1, dense: 8, dropout: 0, seed });
      members.push({ dir: `seed-${seed}`, seed, scale: seed === 5 ? 1.5 : 0.5, validationIc: 0 });
    }
    writeMeta(dir, { ...readMeta(join(dir, 'seed-5')), name: 'ensemble', ensemble: { members } });
    await onBoth(dir, randomSequences(N, T, 3));
  }, 60_000);

  it('the main thread keeps turning while a worker infers; on the main thread it stops', async () => {
    const dir = await randomModelFolder(work, 'big', { arch: 'gru', head: 'attention', pooling: 'last-query', T: 120, F: FEATURE_COUNT, hidden: 64, layers: 1, dense: 8, dropout: 0, seed: 9 });
    const n = 2_000;
    const x = randomSequences(n, 120, 4);
    /** Event-loop turns (setImmediate) that happen while one inference runs, and its time as the engine measured it. */
    const turnsDuring = async (p: Predictor): Promise<{ turns: number; time: ComputeTime }> => {
      const out = new Float32Array(n);
      await p.predict(x, n, out); // warm-up
      let turns = 0;
      let running = true;
      const spin = (): void => {
        if (!running) return;
        turns++;
        setImmediate(spin);
      };
      const done = p.predict(x, n, out).then((time) => {
        running = false;
        return time;
      });
      setImmediate(spin);
      const time = await done;
      return { turns, time };
    };
    const worker = await loadPredictor(dir, onWorkers);
    const main = await loadPredictor(dir, onMain);
    const onWorker = await turnsDuring(worker.predictor);
    const onMainThread = await turnsDuring(main.predictor);
    await worker.predictor.dispose();
    await main.predictor.dispose();
    expect(onWorker.turns).toBeGreaterThan(100);
    expect(onMainThread.turns).toBeLessThan(5);
    // Each measured on the thread that computed (the worker's comes back with its scores), with that thread's wait for a core where the kernel says.
    for (const { time } of [onWorker, onMainThread]) {
      expect(time.seconds).toBeGreaterThan(0);
      if (process.platform === 'linux') {
        expect(time.waitSeconds).toBeGreaterThanOrEqual(0);
        expect(time.waitSeconds).toBeLessThanOrEqual(time.seconds);
      }
    }
  }, 120_000);

  it("the daemon's pipeline over a day on workers publishes the main thread's scores", async () => {
    const config = loadConfig({ flags: { features: { freqs: ['10m', '30m'] } } });
    const dirs = ['models/demo-10m', 'models/demo-30m'];
    const run = async (engine: EngineOptions): Promise<string[]> => {
      const models: ServedModel[] = await loadServedModels(dirs, engine, 0.5, new Metrics({ defaultMetrics: false }), createLogger('silent'));
      const r = rng(3);
      const feed = partitionMessages(simulatedMarket({ symbols: 30, days: 1, seed: 8 }), 2, (s) => s.charCodeAt(5) % 2, () => 'arrow', 200);
      const got = await deliver(feed, config, models, { pick: (c) => c[Math.floor(r() * c.length)], fetchSize: () => 1 + Math.floor(r() * 30), step: () => 10, restart: () => r() < 0.01, speed: Infinity });
      for (const m of models) await m.scorer.dispose();
      return got.scores;
    };
    const a = await run(onWorkers);
    const b = await run(onMain);
    expect(a.length).toBeGreaterThan(30 * 20);
    expect(a).toEqual(b);
  }, 120_000);

  it("shares the cores between the workers that infer at once: each session's intra-op threads, unless daemon.onnxThreads is set", () => {
    const cores = availableParallelism();
    const threads = (daemon: Record<string, unknown>, where: 'daemon' | 'offline' = 'daemon'): number => engineOptionsOf(loadConfig({ flags: { daemon } }).daemon, undefined, where).onnx.threads;
    const two = { models: ['models/demo-10m', 'models/demo-30m'] };
    expect(threads(two)).toBe(Math.max(1, Math.floor(cores / 2)));
    expect(threads({ ...two, shadowModels: ['models/demo-10m'] })).toBe(Math.max(1, Math.floor(cores / 3)));
    expect(threads({ ...two, inferenceWorkers: 1 })).toBe(cores);
    expect(threads({ ...two, inferenceWorkers: 8 })).toBe(Math.max(1, Math.floor(cores / 2)));
    expect(threads({ models: ['models/demo-10m'] })).toBe(cores);
    // On the calling thread, nothing infers beside it: onnxruntime's default (0, one per physical core).
    expect(threads({ ...two, inferenceWorkers: 0 })).toBe(0);
    expect(threads(two, 'offline')).toBe(0);
    expect(threads({ ...two, onnxThreads: 3 })).toBe(3);
  });
});
