/**
 * Scoring one cross-section: after a bar close every symbol whose window has at least
 * `minCoverage` present bars is packed into one [n, T, F] batch and scored in one
 * inference; scores get their cross-sectional z-score and percentile rank. Offline
 * scoring and the daemon both go through this, in two steps: `assemble` copies the window
 * out of the sequence store at the close (synchronously, so later closes cannot change it)
 * and `run` does the inference, possibly later. Input buffers are pooled: no per-bar
 * allocation of the [n, T, F] tensor's backing array once the pool is warm.
 *
 * Where the model scores incrementally (predictor.incremental) and the daemon prepared the
 * close's prefix (capturePrefix after the previous close, startPrefix once it is
 * published, while the market trades: window-prefixes.ts), assemble copies only the new
 * row of each prepared symbol and run does one recurrent step and the head; a symbol the
 * prefix does not hold (new to the universe) is scored on its whole window in the same run. Offline scoring prepares
 * nothing and scores whole windows: the reference the incremental path is tested against.
 */
import { FEATURE_COUNT } from '../features/feature-set.js';
import type { SequenceStore } from '../features/sequence-store.js';
import { meanStd, ranks } from '../stats.js';
import type { ServingMeta } from './artifact.js';
import type { IncrementalScoring, Predictor } from './predictor.js';
import { WindowPrefixes, type PreparedPrefix } from './window-prefixes.js';
import { pooled } from '../typed-arrays.js';
import { addComputeTime, stopwatch, type ComputeTime } from '../market/clock.js';
import { residualize, type ExposureProjection } from './labels.js';

/** A cross-section ready for inference: symbol ids, their coverage and the packed window. */
export interface ScoringJob {
  barEnd: number;
  /** Symbols known at the close (scored + skipped). */
  universe: number;
  n: number;
  ids: Int32Array;
  coverage: Float64Array;
  /** Whole windows [*, T, F]: of all n symbols, or, with `step`, of those at step.whole. */
  input: Float32Array;
  /** Scored from a prepared prefix: one recurrent step on each prefix symbol's new row. */
  step?: StepJob;
  /** The orthogonal layer's projection for these symbols (set by the caller after assemble). */
  exposures?: ExposureProjection;
  /** The bar's limit state per scored symbol (1 at the upper limit, -1 at the lower, 0 neither), for the score records. */
  limit?: Int8Array;
}

export interface StepJob {
  prefix: PreparedPrefix;
  /** The new row of every prefix symbol, [prefix.ids.length, F]. */
  rows: Float32Array;
  /** Positions (in the job) of the symbols scored on their whole window. */
  whole: Int32Array;
}

export interface ScoredCrossSection {
  job: ScoringJob;
  score: Float32Array;
  z: Float64Array;
  rank: Float64Array;
  /** The inference at the close (the step and any whole windows, or the whole batch), as the engine measured it (Predictor.predict), and how long of it the engine's thread waited for a core. */
  inference: ComputeTime;
  /** Symbols scored by a recurrent step and on whole windows, the prefix's own time and how long the close waited for it (0 without one). */
  path: { step: number; whole: number; prefixSeconds: number; prefixWaitSeconds: number };
}

/** Cross-sectional z-scores and percentile ranks (1 = highest score, ties share the average). */
export function standardise(scores: Float32Array): { z: Float64Array; rank: Float64Array } {
  const n = scores.length;
  const { mean, std: sd } = meanStd(scores);
  const z = Float64Array.from(scores, (s) => (sd > 0 ? (s - mean) / sd : 0));
  const r = ranks(scores);
  const rank = r.map((v) => (n === 1 ? 1 : (v - 1) / (n - 1)));
  return { z, rank };
}

export class CrossSectionScorer {
  readonly meta: ServingMeta;
  readonly minCoverage: number;
  private readonly predictor: Predictor;
  private readonly pool: Float32Array[] = [];
  private readonly rowPool: Float32Array[] = [];
  private readonly prefixes: WindowPrefixes | undefined;
  private stepOut = new Float32Array(0);
  /** The engine's buffers (shared memory for a worker thread). */
  private readonly allocate: (length: number) => Float32Array;
  private wholeOut = new Float32Array(0);
  /** Jobs run was called for and not finished, and the last of them, settled (run). */
  private unfinished = 0;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(predictor: Predictor, meta: ServingMeta, minCoverage: number) {
    this.predictor = predictor;
    this.meta = meta;
    this.minCoverage = minCoverage;
    this.allocate = predictor.allocate?.bind(predictor) ?? ((length) => new Float32Array(length));
    if (predictor.incremental !== undefined) this.prefixes = new WindowPrefixes(predictor.incremental, meta.T, minCoverage, this.allocate);
  }

  /** Whether closes can be scored in one recurrent step (the model has prefix and step computations). */
  get incremental(): boolean {
    return this.prefixes !== undefined;
  }

  /** After a close's rows are pushed: marks the next close's shared rows, copied by startPrefix (see window-prefixes.ts). */
  capturePrefix(store: SequenceStore, universe: number): void {
    this.prefixes?.capture(store, universe);
  }

  /** The universe the next close's pending prefix covers (ids below it; 0: none pending), and whether its recurrence is running. */
  get preparedUniverse(): number {
    return this.prefixes?.preparedUniverse ?? 0;
  }

  get preparing(): boolean {
    return this.prefixes?.computing ?? false;
  }

  /** Starts the captured prefix's recurrence (off the close's latency path). */
  startPrefix(): void {
    this.prefixes?.start();
  }

  /**
   * Copies the scorable part of `store` (symbols 0..universe-1 with coverage, and marked in
   * `eligible` when given: see cross-section.ts) into a job, in symbol-name order: the
   * batch is then the same whatever order the symbols were first seen in (a restart,
   * another partition order), and so are the float32 results. Undefined when no symbol
   * qualifies.
   */
  assemble(store: SequenceStore, names: readonly string[], universe: number, barEnd: number, eligible?: Uint8Array): ScoringJob | undefined {
    const candidates = new Int32Array(universe);
    let n = 0;
    for (let s = 0; s < universe; s++) if ((eligible === undefined || eligible[s] === 1) && store.coverage(s) >= this.minCoverage) candidates[n++] = s;
    if (n === 0) return undefined;
    const ids = candidates.subarray(0, n).sort((a, b) => (names[a] < names[b] ? -1 : names[a] > names[b] ? 1 : 0));
    const coverage = Float64Array.from(ids, (s) => store.coverage(s));
    const prefix = this.prefixes?.take(store);
    if (prefix === undefined) return { barEnd, universe, n, ids, coverage, input: this.windows(store, ids, n) };
    const whole: number[] = [];
    for (let i = 0; i < n; i++) if (ids[i] >= prefix.universe || prefix.position[ids[i]] < 0) whole.push(i);
    const wholeIds = Int32Array.from(whole, (i) => ids[i]);
    const rows = pooled(this.rowPool, prefix.ids.length * FEATURE_COUNT, this.allocate);
    store.fill(prefix.ids, prefix.ids.length, rows, undefined, 1);
    return { barEnd, universe, n, ids, coverage, input: this.windows(store, wholeIds, wholeIds.length), step: { prefix, rows, whole: Int32Array.from(whole) } };
  }

  /** The whole windows of `ids` in a pooled buffer. */
  private windows(store: SequenceStore, ids: Int32Array, n: number): Float32Array {
    const input = pooled(this.pool, n * this.meta.T * FEATURE_COUNT, this.allocate);
    store.fill(ids, n, input);
    return input;
  }

  /** The engine and backend this scorer runs on. */
  get engine(): Predictor['engine'] {
    return this.predictor.engine;
  }

  get backend(): string {
    return this.predictor.backend;
  }

  /** Whether the inference runs on another thread (an inference worker), so that starting it at the close overlaps this thread's work (pipeline.ts). */
  get offThread(): boolean {
    return this.predictor.offThread === true;
  }

  /**
   * Runs the inference of a job and returns its buffers to the pool; with exposures, the
   * scores are residualised on them (the orthogonal layer). Jobs run one at a time, in the
   * order run is called (they share this scorer's buffers, and a model's closes follow each
   * other's prefixes). With none in flight the job starts before run returns: serve calls it
   * at the close, in the middle of a batch, where the engine is offThread, and the worker
   * steps while this thread reads on.
   */
  run(job: ScoringJob): Promise<ScoredCrossSection> {
    const start = (): Promise<ScoredCrossSection> => this.runNow(job).finally(() => this.unfinished--);
    const result = this.unfinished === 0 ? start() : this.tail.then(start);
    this.unfinished++;
    this.tail = result.catch(() => undefined);
    return result;
  }

  private async runNow(job: ScoringJob): Promise<ScoredCrossSection> {
    let score: Float32Array = new Float32Array(job.n);
    let inference: ComputeTime;
    let path: ScoredCrossSection['path'];
    try {
      if (job.step === undefined) {
        inference = await this.predictor.predict(job.input, job.n, score);
        path = { step: 0, whole: job.n, prefixSeconds: 0, prefixWaitSeconds: 0 };
      } else {
        ({ inference, path } = await this.runStep(job, job.step, score));
      }
    } finally {
      this.pool.push(job.input);
      if (job.step !== undefined) {
        this.rowPool.push(job.step.rows);
        job.step.prefix.dispose();
      }
    }
    if (job.exposures !== undefined) score = Float32Array.from(residualize(job.exposures, score));
    const { z, rank } = standardise(score);
    return { job, score, z, rank, inference, path };
  }

  /** One recurrent step for the prefix's symbols, whole windows for the rest, into score (job order). */
  private async runStep(job: ScoringJob, step: StepJob, score: Float32Array): Promise<Pick<ScoredCrossSection, 'inference' | 'path'>> {
    const { prefix, rows, whole } = step;
    const waited = stopwatch();
    const state = prefix.ready ?? (await prefix.state());
    const prefixWaitSeconds = waited() / 1000;
    const m = prefix.ids.length;
    if (this.stepOut.length < m) this.stepOut = new Float32Array(m);
    let inference = await (this.predictor.incremental as IncrementalScoring).step(state, rows, this.stepOut);
    for (let i = 0; i < job.n; i++) {
      const s = job.ids[i];
      if (s < prefix.universe && prefix.position[s] >= 0) score[i] = this.stepOut[prefix.position[s]];
    }
    if (whole.length > 0) {
      if (this.wholeOut.length < whole.length) this.wholeOut = new Float32Array(whole.length);
      inference = addComputeTime(inference, await this.predictor.predict(job.input, whole.length, this.wholeOut));
      for (let j = 0; j < whole.length; j++) score[whole[j]] = this.wholeOut[j];
    }
    return { inference, path: { step: job.n - whole.length, whole: whole.length, prefixSeconds: prefix.seconds, prefixWaitSeconds } };
  }

  async dispose(): Promise<void> {
    await this.tail;
    this.prefixes?.dispose();
    await this.predictor.dispose();
  }
}
