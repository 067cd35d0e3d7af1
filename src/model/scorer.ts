/**
 * Scoring one cross-section: after a bar close every symbol whose window has at least
 * `minCoverage` present bars is packed into one [n, T, F] batch and scored in one
 * inference; scores get their cross-sectional z-score and percentile rank. Offline
 * scoring and the daemon both go through this, in two steps: `assemble` copies the window
 * out of the sequence store at the close (synchronously, so later closes cannot change it)
 * and `run` does the inference, possibly later. Input buffers are pooled: no per-bar
 * allocation of the [n, T, F] tensor's backing array once the pool is warm.
 */
import { FEATURE_COUNT } from '../features/feature-set.js';
import type { SequenceStore } from '../features/sequence-store.js';
import { meanStd, ranks } from '../stats.js';
import type { ServingMeta } from './artifact.js';
import type { Predictor } from './predictor.js';
import { stopwatch } from '../market/clock.js';
import { residualize, type ExposureProjection } from './labels.js';

/** A cross-section ready for inference: symbol ids, their coverage and the packed window. */
export interface ScoringJob {
  barEnd: number;
  /** Symbols known at the close (scored + skipped). */
  universe: number;
  n: number;
  ids: Int32Array;
  coverage: Float64Array;
  input: Float32Array;
  /** The orthogonal layer's projection for these symbols (set by the caller after assemble). */
  exposures?: ExposureProjection;
  /** The bar's limit state per scored symbol (1 at the upper limit, -1 at the lower, 0 neither), for the score records. */
  limit?: Int8Array;
}

export interface ScoredCrossSection {
  job: ScoringJob;
  score: Float32Array;
  z: Float64Array;
  rank: Float64Array;
  inferenceSeconds: number;
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

  constructor(predictor: Predictor, meta: ServingMeta, minCoverage: number) {
    this.predictor = predictor;
    this.meta = meta;
    this.minCoverage = minCoverage;
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
    const size = n * this.meta.T * FEATURE_COUNT;
    let input = this.pool.pop();
    if (input === undefined || input.length < size) input = new Float32Array(Math.max(size, input?.length ?? 0));
    store.fill(ids, n, input);
    return { barEnd, universe, n, ids, coverage, input };
  }

  /** The engine and backend this scorer runs on. */
  get engine(): Predictor['engine'] {
    return this.predictor.engine;
  }

  get backend(): string {
    return this.predictor.backend;
  }

  /** Runs the inference of a job and returns its buffer to the pool; with exposures, the scores are residualised on them (the orthogonal layer). */
  async run(job: ScoringJob): Promise<ScoredCrossSection> {
    const elapsed = stopwatch();
    let score: Float32Array = new Float32Array(job.n);
    try {
      await this.predictor.predict(job.input, job.n, score);
    } finally {
      this.pool.push(job.input);
    }
    const inferenceSeconds = elapsed() / 1000;
    if (job.exposures !== undefined) score = Float32Array.from(residualize(job.exposures, score));
    const { z, rank } = standardise(score);
    return { job, score, z, rank, inferenceSeconds };
  }

  async dispose(): Promise<void> {
    await this.predictor.dispose();
  }
}
