/**
 * A close scored in one recurrent step equals the whole window scored (DESIGN §6,
 * incremental scoring), against the whole-window computation the offline `score` runs:
 *
 * - per model: prefix (first T-1 rows) + step (the last row) = predict on the T rows, bit
 *   for bit (so near-tied scores keep their ranks), for every architecture, head and
 *   pooling (and stacked layers), on both engines, and within 1e-6 for a seed ensemble;
 *   the exported prefix and step graphs are the ones served;
 * - through the daemon's pipeline over two days (the lunch break, the overnight gap), with
 *   a symbol that enters on day two, one that stops trading at 11:00 on day one (it
 *   leaves the scored set), one missing from 10:00 to 14:00 on day two (missing rows, it
 *   leaves and re-enters), partitions delivered in random fetches and restarts from
 *   checkpoints: every score equals the whole-window path's (1e-6) and almost every
 *   symbol-close is scored by a step (restarts recompute the prefix before the next close).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import type { ServedModel } from '../src/daemon/models.js';
import type { ComputeTime } from '../src/market/clock.js';
import { FEATURE_COUNT } from '../src/features/feature-set.js';
import { copyTickRow, TickBatch } from '../src/ingest/events.js';
import type { ModelSpec } from '../src/model/architecture.js';
import { readMeta, writeMeta } from '../src/model/artifact.js';
import { selectBackend } from '../src/model/backend.js';
import { compareEngines, compareSteps, randomSequences, STEP_TOLERANCE, wholeAndStepped } from '../src/model/onnx/compare.js';
import { DEFAULT_ENGINE_OPTIONS, loadPredictor, type EngineName, type IncrementalScoring, type Predictor, type WindowPrefix } from '../src/model/predictor.js';
import { CrossSectionScorer, type ScoringJob } from '../src/model/scorer.js';
import { SequenceStore } from '../src/features/sequence-store.js';
import { randomModelFolder, everyArchitecture } from './model-folders.js';
import { deliver, partitionMessages, rng, simulatedMarket, type Market } from './partitioned-feed.js';
import { sh } from './helpers.js';

const T = 12;
const N = 1_000;
const TOLERANCE = STEP_TOLERANCE;
const work = mkdtempSync(join(tmpdir(), 'fs-incremental-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
beforeAll(async () => {
  await selectBackend();
});

async function maxStepDifference(dir: string, engine: EngineName): Promise<{ max: number; spread: number }> {
  const c = await compareSteps(dir, N, engine, randomSequences(N, T, 5));
  if (c === undefined) throw new Error(`${dir} on ${engine} has no incremental scoring`);
  return { max: c.maxAbs, spread: Math.max(...c.whole) - Math.min(...c.whole) };
}

const cases = everyArchitecture(T, 31);

describe('prefix + step = the whole window', () => {
  it.each(cases.flatMap((spec) => (['onnx', 'tfjs'] as const).map((engine) => ({ spec, engine, label: `${spec.arch} ${spec.layers}-layer / ${spec.head} / ${spec.pooling} on ${engine}` }))))(
    '$label: step = whole on 1,000 random windows, bit for bit',
    async ({ spec, engine }) => {
      const dir = await randomModelFolder(work, `${spec.arch}-${spec.layers}-${spec.head}-${spec.pooling}-${engine}`, spec);
      expect(readMeta(dir).onnx).toMatchObject({ prefixFile: 'model.prefix.onnx', stepFile: 'model.step.onnx' });
      const { max, spread } = await maxStepDifference(dir, engine);
      // Bit-identical, not only within 1e-6: a near-tie of two symbols' scores must keep its ranks.
      expect(max).toBe(0);
      expect(spread).toBeGreaterThan(0.1);
    },
    60_000,
  );

  it('a seed ensemble: each member steps, the average equals the whole windows averaged', async () => {
    const dir = join(work, 'ensemble');
    const members = [];
    for (const seed of [3, 4]) {
      await randomModelFolder(work, `ensemble/seed-${seed}`, { arch: 'lstm', head: 'residual', pooling: 'last-query', T, F: FEATURE_COUNT, hidden: 16, layers: 1, dense: 8, dropout: 0.1, seed });
      members.push({ dir: `seed-${seed}`, seed, scale: seed === 3 ? 2 : 0.5, validationIc: 0 });
    }
    writeMeta(dir, { ...readMeta(join(dir, 'seed-3')), name: 'ensemble', ensemble: { members } });
    for (const engine of ['onnx', 'tfjs'] as const) expect((await maxStepDifference(dir, engine)).max).toBeLessThanOrEqual(TOLERANCE);
  }, 60_000);

  it.each(cases.filter((spec) => spec.head !== 'last').map((spec) => ({ spec, label: `${spec.arch} ${spec.layers}-layer / ${spec.head} / ${spec.pooling}` })))(
    '$label on onnx: a window scores the same whole in a batch of any size as stepped in the close\'s batch (the daemon mixes the two)',
    async ({ spec }) => {
      const dir = await randomModelFolder(work, `batches-${spec.arch}-${spec.layers}-${spec.head}-${spec.pooling}`, spec);
      const { predictor } = await loadPredictor(dir, { ...DEFAULT_ENGINE_OPTIONS, engine: 'onnx' });
      try {
        const x = randomSequences(N, T, 11);
        const { stepped } = await wholeAndStepped(predictor, x, N, T);
        for (const [from, n] of [[0, 1], [500, 7], [17, 333]]) {
          const whole = new Float32Array(n);
          await predictor.predict(x.subarray(from * T * FEATURE_COUNT, (from + n) * T * FEATURE_COUNT), n, whole);
          expect(Array.from(whole), `windows ${from}..${from + n - 1}`).toEqual(Array.from(stepped.subarray(from, from + n)));
        }
      } finally {
        await predictor.dispose();
      }
    },
    60_000,
  );

  it('a window of one row has nothing to prepare: no incremental scoring, whole windows as before (and the engines agree on them)', async () => {
    const dir = await randomModelFolder(work, 't1', { arch: 'gru', head: 'attention', pooling: 'last-query', T: 1, F: FEATURE_COUNT, hidden: 8, layers: 1, dense: 4, dropout: 0, seed: 2 });
    expect(readMeta(dir).onnx?.prefixFile).toBeUndefined();
    for (const engine of ['onnx', 'tfjs'] as const) {
      const { predictor } = await loadPredictor(dir, { ...DEFAULT_ENGINE_OPTIONS, engine });
      expect(predictor.incremental).toBeUndefined();
      await predictor.dispose();
    }
    const c = await compareEngines(dir, 200);
    expect(c.maxAbs).toBeLessThanOrEqual(c.tolerance);
  });
});

describe('the scorer uses a prefix only for the close it was prepared for', () => {
  it('one push after the capture (its rows copied at the start, or from behind the push): a step; no capture, or two pushes since: whole windows, the same scores', async () => {
    const dir = await randomModelFolder(work, 'scorer', { arch: 'gru', head: 'residual', pooling: 'last-query', T, F: FEATURE_COUNT, hidden: 8, layers: 1, dense: 4, dropout: 0, seed: 71 });
    const { predictor, meta } = await loadPredictor(dir, { ...DEFAULT_ENGINE_OPTIONS, engine: 'onnx' });
    const scorer = new CrossSectionScorer(predictor, meta, 0.5);
    const reference = new CrossSectionScorer(new Counting(predictor, false), meta, 0.5);
    const n = 6;
    const names = Array.from({ length: n }, (_, i) => `60000${i}.SH`);
    const store = new SequenceStore(T, FEATURE_COUNT, n);
    const rows = randomSequences(40 * n, 1, 9);
    let k = 0;
    const push = (): void => {
      const missing = Uint8Array.from({ length: n }, (_, s) => (s === 3 && k % 3 === 0 ? 1 : 0));
      store.push(rows.subarray((k % 40) * n * FEATURE_COUNT, (k % 40 + 1) * n * FEATURE_COUNT), new Uint8Array(n * FEATURE_COUNT).fill(1), missing, n);
      k++;
    };
    const scoreBoth = async (): Promise<{ step: boolean; max: number }> => {
      const job = scorer.assemble(store, names, n, 0) as ScoringJob;
      const step = job.step !== undefined;
      const a = await scorer.run(job);
      const b = await reference.run(reference.assemble(store, names, n, 0) as ScoringJob);
      return { step, max: Math.max(...a.score.map((v, i) => Math.abs(v - b.score[i]))) };
    };
    for (let i = 0; i < T + 2; i++) push();
    // Never started: take() copies the rows from behind the close's push.
    scorer.capturePrefix(store, n);
    push();
    expect(await scoreBoth()).toEqual({ step: true, max: 0 });
    push();
    expect(await scoreBoth()).toEqual({ step: false, max: 0 });
    // Started before the push (as serve does once the close is published): copied then.
    for (const startAfterPush of [false, true]) {
      for (let i = 0; i < 3; i++) {
        scorer.capturePrefix(store, n);
        if (!startAfterPush) scorer.startPrefix();
        push();
        if (startAfterPush) scorer.startPrefix();
        expect(await scoreBoth()).toEqual({ step: true, max: 0 });
      }
    }
    scorer.capturePrefix(store, n);
    scorer.startPrefix();
    push();
    push();
    expect(await scoreBoth()).toEqual({ step: false, max: 0 });
    await predictor.dispose();
  });
});

/** Counts what the scorer runs: whole-window batches and symbols, steps and prefixes. */
class Counting implements Predictor {
  wholeSymbols = 0;
  stepSymbols = 0;
  prefixes = 0;
  readonly incremental?: IncrementalScoring;

  constructor(
    private readonly inner: Predictor,
    incremental: boolean,
  ) {
    const steps = inner.incremental;
    if (incremental && steps !== undefined) {
      this.incremental = {
        prefix: (rows: Float32Array, n: number): Promise<WindowPrefix> => {
          this.prefixes++;
          return steps.prefix(rows, n);
        },
        step: (prefix: WindowPrefix, rows: Float32Array, out: Float32Array): Promise<ComputeTime> => {
          this.stepSymbols += prefix.n;
          return steps.step(prefix, rows, out);
        },
      };
    }
  }

  get engine(): EngineName {
    return this.inner.engine;
  }

  get backend(): string {
    return this.inner.backend;
  }

  predict(input: Float32Array, n: number, out: Float32Array): Promise<ComputeTime> {
    this.wholeSymbols += n;
    return this.inner.predict(input, n, out);
  }

  async dispose(): Promise<void> {}
}

/** A simulated market with symbols entering, leaving and missing (see the file's comment). */
function churningMarket(): Market {
  const m = simulatedMarket({ symbols: 24, days: 2, seed: 41 });
  const name = (s: number): string => m.symbols.names[s];
  const [entering, leaving, missing] = [name(2), name(5), name(9)];
  const ticks = new TickBatch(m.ticks.length);
  for (let i = 0; i < m.ticks.length; i++) {
    const symbol = name(m.ticks.symbol[i]);
    const ts = m.ticks.ts[i];
    if (symbol === entering && ts < sh('2026-11-24T09:00:00')) continue;
    if (symbol === leaving && ts >= sh('2026-11-23T11:00:00')) continue;
    if (symbol === missing && ts >= sh('2026-11-24T10:00:00') && ts < sh('2026-11-24T14:00:00')) continue;
    copyTickRow(m.ticks, i, ticks);
  }
  return { ...m, ticks };
}

describe('the daemon scores each close in one step, exactly', () => {
  it('two days, symbols entering, leaving and missing, random fetches and restarts: every score equals the whole-window path (1e-6)', async () => {
    const config = loadConfig({ flags: { features: { freqs: ['10m'] } } });
    const specs: ModelSpec[] = [
      { arch: 'gru', head: 'attention', pooling: 'last-query', T, F: FEATURE_COUNT, hidden: 16, layers: 1, dense: 8, dropout: 0, seed: 61 },
      { arch: 'lstm', head: 'residual', pooling: 'mean', T, F: FEATURE_COUNT, hidden: 16, layers: 2, dense: 8, dropout: 0, seed: 62 },
    ];
    const served = async (incremental: boolean): Promise<{ models: ServedModel[]; counters: Counting[] }> => {
      const models: ServedModel[] = [];
      const counters: Counting[] = [];
      for (const [i, spec] of specs.entries()) {
        const dir = join(work, `daemon-${i}`);
        if (!incremental) await randomModelFolder(work, `daemon-${i}`, spec);
        const engine = i === 0 ? 'onnx' : 'tfjs';
        const { predictor, meta } = await loadPredictor(dir, { ...DEFAULT_ENGINE_OPTIONS, engine });
        const counting = new Counting(predictor, incremental);
        counters.push(counting);
        models.push({ dir, meta, scorer: new CrossSectionScorer(counting, meta, 0.5), role: 'live', fallback: '' });
      }
      return { models, counters };
    };
    const market = churningMarket();
    const feed = partitionMessages(market, 3, (s) => s.charCodeAt(5) % 3, (p) => (p === 1 ? 'json' : 'arrow'), 300);
    const schedule = (seed: number, restartRate: number) => {
      const r = rng(seed);
      let restarts = 0;
      return { pick: (c: number[]) => c[Math.floor(r() * c.length)], fetchSize: () => 1 + Math.floor(r() * 40), step: () => Math.floor(r() * 20), restart: () => restarts < 4 && r() < restartRate && ++restarts > 0, speed: Infinity };
    };
    const whole = await served(false);
    const reference = await deliver(feed, config, whole.models, schedule(5, 0));
    const stepped = await served(true);
    const got = await deliver(feed, config, stepped.models, schedule(7, 0.01));
    expect(got.restarts).toBeGreaterThan(0);

    const byKey = (lines: string[]): Map<string, number[]> => new Map(lines.map((l) => l.split('|')).map((f) => [f.slice(0, 4).join('|'), f.slice(4).map(Number)]));
    const a = byKey(reference.scores);
    const b = byKey(got.scores);
    expect(a.size).toBeGreaterThan(2 * 24 * 20);
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    let max = 0;
    for (const [k, v] of a) {
      const w = b.get(k) as number[];
      // score, z, rank, coverage
      for (let j = 0; j < v.length; j++) max = Math.max(max, Math.abs(v[j] - w[j]));
    }
    expect(max).toBeLessThanOrEqual(TOLERANCE);
    // The symbols the churn touches are among the scored, on both days.
    const names = market.symbols.names;
    for (const s of [names[2], names[5], names[9]]) expect([...a.keys()].some((k) => k.startsWith(`${s}|`))).toBe(true);
    for (const c of stepped.counters) {
      expect(c.stepSymbols).toBeGreaterThan(0);
      // Whole windows only for the first close of the run, the symbol entering, and closes a restart replayed before its prefix: a small share.
      expect(c.wholeSymbols / (c.wholeSymbols + c.stepSymbols)).toBeLessThan(0.1);
    }
  }, 300_000);
});

describe('a fresh start prepares its first close', () => {
  it('once the symbols have come and stayed for a housekeeping round, the first close is one step too (minCoverage 0), equal to the whole window', async () => {
    const config = loadConfig({ flags: { features: { freqs: ['10m'] } } });
    const dir = await randomModelFolder(work, 'fresh-start', { arch: 'gru', head: 'attention', pooling: 'last-query', T, F: FEATURE_COUNT, hidden: 16, layers: 1, dense: 8, dropout: 0, seed: 63 });
    const served = async (incremental: boolean): Promise<{ counting: Counting; models: ServedModel[] }> => {
      const { predictor, meta } = await loadPredictor(dir, { ...DEFAULT_ENGINE_OPTIONS, engine: 'onnx' });
      const counting = new Counting(predictor, incremental);
      // minCoverage 0: every symbol is scored from the first close, whose window is one row and T-1 missing ones.
      return { counting, models: [{ dir, meta, scorer: new CrossSectionScorer(counting, meta, 0), role: 'live', fallback: '' }] };
    };
    const market = simulatedMarket({ symbols: 24, days: 1, seed: 43 });
    // Messages of at most a minute of events, so that every symbol has come some seconds before 09:40.
    const feed = partitionMessages(market, 2, (s) => s.charCodeAt(5) % 2, () => 'arrow', 300, 60_000);
    // A live feed at 60x: ten seconds of housekeeping rounds before the first close.
    const live = (): Parameters<typeof deliver>[3] => {
      const r = rng(11);
      return { pick: (c: number[]) => c[Math.floor(r() * c.length)], fetchSize: () => 1 + Math.floor(r() * 40), step: () => 0, restart: () => false, speed: 60 };
    };
    const whole = await served(false);
    const reference = await deliver(feed, config, whole.models, live());
    const stepped = await served(true);
    const got = await deliver(feed, config, stepped.models, live());
    expect(reference.scores.length).toBeGreaterThan(20 * 24);
    expect(got.scores).toEqual(reference.scores);
    // Every symbol-close a step, the first close's included: nothing scored on a whole window.
    expect(stepped.counting.wholeSymbols).toBe(0);
    expect(stepped.counting.stepSymbols).toBe(reference.scores.length);
    await whole.counting.dispose();
  }, 120_000);
});
