/**
 * What scoring calls: a Predictor maps n packed sequences ([n, T, F] row-major float32) to
 * n scores, on one of two engines:
 *   onnx  onnxruntime-node on the folder's model.onnx (factorstream export, or an
 *         external model trained elsewhere); the default where onnxruntime loads
 *   tfjs  the folder's tfjs layers weights on the best tfjs backend present
 * Both score the same artifact the same way (test/onnx-parity.test.ts). A seed ensemble
 * averages its members' outputs, each multiplied by the scale fixed at training (one over
 * the member's mean cross-sectional spread on the validation dates), so that no member
 * dominates by the size of its outputs; a rolling set is served by its newest window.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { FEATURE_COUNT } from '../features/feature-set.js';
import { addComputeTime, computeStopwatch, NO_COMPUTE, type ComputeTime } from '../market/clock.js';
import { predictAll, type ModelSpec } from './architecture.js';
import { TfjsIncremental } from './tfjs-step.js';
import { checkedMeta, loadModel, type ServingMeta } from './artifact.js';
import { selectAndLogBackend, tf, type BackendPreference } from './backend.js';
import { ONNX_FILE, onnxBytesOf, weightsDigest, type GraphKind } from './onnx/export.js';
import { hasPrefix } from './onnx/step-graphs.js';
import { OnnxIncremental } from './onnx/step-session.js';
import { MAX_WORKERS, onnxWorkerPool } from './onnx/worker-pool.js';
import { checkSignature, createOnnxSession, loadOnnxRuntime, OnnxSessionPredictor, type OnnxOptions } from './onnx/session.js';

export const ENGINES = ['auto', 'onnx', 'tfjs'] as const;
export type EnginePreference = (typeof ENGINES)[number];
export type EngineName = Exclude<EnginePreference, 'auto'>;

export interface Predictor {
  readonly engine: EngineName;
  /** onnx: the execution provider (cpu, cuda); tfjs: the backend (tensorflow, wasm, ...). */
  readonly backend: string;
  /**
   * Scores the first n sequences of `input` into out[0..n); resolves to the time the
   * engine computed, measured where it runs (on an inference worker, there: not the time
   * the calling thread, busy at a close, takes to see the answer), with how long of it the
   * thread that ran it waited for a core.
   */
  predict(input: Float32Array, n: number, out: Float32Array): Promise<ComputeTime>;
  /** Present where the model scores a close in one recurrent step (a native model with T >= 2). */
  readonly incremental?: IncrementalScoring;
  /** A buffer of `length` floats the engine reads without a copy (shared memory for a worker thread); absent: any Float32Array. */
  allocate?(length: number): Float32Array;
  /** True where the engine computes on another thread (an inference worker): the calling thread reads on meanwhile. */
  readonly offThread?: boolean;
  dispose(): Promise<void>;
}

/**
 * The recurrent state after the first T-1 rows of n windows, from the zero state (each
 * layer's last state, and the top layer's states where the head attends over them). Held
 * by the engine; opaque to the scorer.
 */
export interface WindowPrefix {
  readonly n: number;
  dispose(): void;
}

/**
 * Scoring a close incrementally: `prefix` runs between closes, `step` at the close; the
 * scores equal predict's on the T rows to float rounding (test/incremental.test.ts).
 */
export interface IncrementalScoring {
  /** Runs the recurrence over n windows' first T-1 rows, [n, T-1, F] row-major. */
  prefix(rows: Float32Array, n: number): Promise<WindowPrefix>;
  /** Scores the prefix's n windows extended by one row each ([n, F]) into out[0..n); the time computed, as predict's. */
  step(prefix: WindowPrefix, rows: Float32Array, out: Float32Array): Promise<ComputeTime>;
}

export interface EngineOptions {
  engine: EnginePreference;
  /** The tfjs backend, when the tfjs engine is used. */
  backend: BackendPreference;
  onnx: OnnxOptions;
  /** onnx engine: worker threads the sessions run in (onnx/worker-pool.ts): 'per-model' one per model folder; 0 (the default) on the calling thread. */
  workers?: number | 'per-model';
  log?: Logger;
}

export const DEFAULT_ENGINE_OPTIONS: EngineOptions = { engine: 'auto', backend: 'auto', onnx: { threads: 0, provider: 'cpu', spinWait: false } };

/**
 * The engine options of a configuration (daemon.engine, onnxThreads, onnxProvider, onnxSpinWait,
 * backend, and for the daemon inferenceWorkers: offline commands score on their own
 * thread, nothing else runs beside them).
 */
export function engineOptionsOf(daemon: Pick<Config['daemon'], 'engine' | 'onnxThreads' | 'onnxProvider' | 'onnxSpinWait' | 'backend' | 'inferenceWorkers' | 'models' | 'shadowModels'>, log?: Logger, where: 'daemon' | 'offline' = 'offline'): EngineOptions {
  const workers = where === 'daemon' ? (daemon.inferenceWorkers ?? 'per-model') : 0;
  return { engine: daemon.engine, backend: daemon.backend, onnx: { threads: onnxThreadsOf(daemon, workers), provider: daemon.onnxProvider, spinWait: daemon.onnxSpinWait }, workers, log };
}

/**
 * Intra-op threads per onnx session: daemon.onnxThreads where set; on inference workers,
 * which infer at once (at :00 and :30 both models' steps), the cores shared between them
 * (at least one each), since each session taking every core oversubscribes them —
 * measured on 2 cores with two workers, one thread each cut the 10m close → publish p99
 * from 336–399 to 210–273 ms (bench/RESULTS.md); elsewhere onnxruntime's default (0: one
 * per physical core).
 */
function onnxThreadsOf(daemon: Pick<Config['daemon'], 'onnxThreads' | 'inferenceWorkers' | 'models' | 'shadowModels'>, workers: number | 'per-model'): number {
  if (daemon.onnxThreads > 0 || workers === 0) return daemon.onnxThreads;
  const folders = daemon.models.length + daemon.shadowModels.length;
  const running = Math.max(1, workers === 'per-model' ? folders : Math.min(workers, folders));
  return Math.max(1, Math.floor(availableParallelism() / running));
}

export class TfjsPredictor implements Predictor {
  readonly engine = 'tfjs' as const;
  readonly incremental?: TfjsIncremental;

  constructor(
    readonly model: tf.LayersModel,
    private readonly T: number,
    spec?: ModelSpec,
  ) {
    if (spec !== undefined && hasPrefix(spec)) this.incremental = new TfjsIncremental(model, spec);
  }

  get backend(): string {
    return tf.getBackend();
  }

  async predict(input: Float32Array, n: number, out: Float32Array): Promise<ComputeTime> {
    const elapsed = computeStopwatch();
    const y = tf.tidy(() => predictAll(this.model, tf.tensor3d(input.subarray(0, n * this.T * FEATURE_COUNT), [n, this.T, FEATURE_COUNT])));
    out.set((await y.data()) as Float32Array);
    y.dispose();
    return elapsed();
  }

  async dispose(): Promise<void> {
    this.model.dispose();
  }
}

export class EnsemblePredictor implements Predictor {
  private member = new Float32Array(0);
  readonly incremental?: IncrementalScoring;

  constructor(
    readonly members: Predictor[],
    readonly scales: readonly number[],
  ) {
    const steps = members.map((m) => m.incremental);
    if (steps.every((s) => s !== undefined)) this.incremental = new EnsembleIncremental(steps, scales);
    const first = members[0];
    if (first.allocate !== undefined) this.allocate = (length) => (first.allocate as (n: number) => Float32Array)(length);
    this.offThread = members.every((m) => m.offThread === true);
  }

  readonly allocate?: (length: number) => Float32Array;
  readonly offThread: boolean;

  get engine(): EngineName {
    return this.members[0].engine;
  }

  get backend(): string {
    return this.members[0].backend;
  }

  async predict(input: Float32Array, n: number, out: Float32Array): Promise<ComputeTime> {
    if (this.member.length < n) this.member = new Float32Array(n);
    return averageMembers(this.members.length, this.scales, this.member, n, out, (m, o) => this.members[m].predict(input, n, o));
  }

  async dispose(): Promise<void> {
    for (const m of this.members) await m.dispose();
  }
}

/** out[0..n) = the mean of the members' scores (run(m, buffer) writes member m's and resolves to its time), each times its scale; the members' times summed. */
async function averageMembers(count: number, scales: readonly number[], member: Float32Array, n: number, out: Float32Array, run: (m: number, out: Float32Array) => Promise<ComputeTime>): Promise<ComputeTime> {
  out.fill(0, 0, n);
  let time = NO_COMPUTE;
  for (let m = 0; m < count; m++) {
    time = addComputeTime(time, await run(m, member));
    const scale = scales[m] / count;
    for (let i = 0; i < n; i++) out[i] += member[i] * scale;
  }
  return time;
}

class EnsemblePrefix implements WindowPrefix {
  constructor(
    readonly n: number,
    readonly members: WindowPrefix[],
  ) {}

  dispose(): void {
    for (const p of this.members) p.dispose();
  }
}

/** A seed ensemble's incremental scoring: each member's prefix and step, averaged as predict averages. */
class EnsembleIncremental implements IncrementalScoring {
  private member = new Float32Array(0);

  constructor(
    private readonly members: IncrementalScoring[],
    private readonly scales: readonly number[],
  ) {}

  async prefix(rows: Float32Array, n: number): Promise<WindowPrefix> {
    const members: WindowPrefix[] = [];
    for (const m of this.members) members.push(await m.prefix(rows, n));
    return new EnsemblePrefix(n, members);
  }

  async step(prefix: WindowPrefix, rows: Float32Array, out: Float32Array): Promise<ComputeTime> {
    const p = prefix as EnsemblePrefix;
    if (this.member.length < p.n) this.member = new Float32Array(p.n);
    return averageMembers(this.members.length, this.scales, this.member, p.n, out, (m, o) => this.members[m].step(p.members[m], rows, o));
  }
}

/** Which engine a folder is served on, given the preference and what this machine can load. */
async function resolveEngine(dir: string, meta: ServingMeta, opts: EngineOptions): Promise<{ engine: EngineName; fallback: string }> {
  const external = meta.onnx?.source === 'external';
  if (opts.engine === 'tfjs') {
    if (external) throw new Error(`${dir} is an external ONNX model: only the onnx engine serves it (daemon.engine: onnx or auto)`);
    return { engine: 'tfjs', fallback: '' };
  }
  try {
    await loadOnnxRuntime();
    return { engine: 'onnx', fallback: '' };
  } catch (err) {
    const reason = `onnxruntime-node does not load: ${(err as Error).message.split('\n')[0]}`;
    if (opts.engine === 'onnx' || external) throw new Error(`${dir}: ${reason}`, { cause: err });
    return { engine: 'tfjs', fallback: reason };
  }
}

/**
 * One ONNX graph of a folder: the file export wrote, or, for a native folder whose graphs
 * are not all there or are older than its weights, the graph built from the weights in
 * memory (warned for the whole graph: `factorstream export` stores them). The whole graph
 * and the step graphs come from one place, all stored or all built, because a step equals
 * the whole window bit for bit only against the whole graph of its own export (a folder
 * exported before the step graphs existed has a whole graph of an older form).
 */
function graphOf(dir: string, meta: ServingMeta, kind: GraphKind, log?: Logger): string | Uint8Array {
  const fileOf = (k: GraphKind): string | undefined => (k === 'whole' ? (meta.onnx?.file ?? ONNX_FILE) : k === 'prefix' ? meta.onnx?.prefixFile : meta.onnx?.stepFile);
  const name = fileOf(kind);
  const file = name === undefined ? '' : join(dir, name);
  if (meta.onnx?.source === 'external') {
    if (!existsSync(file)) throw new Error(`${dir}: meta.json names ${meta.onnx.file}, which is not there`);
    return file;
  }
  const kinds: GraphKind[] = meta.architecture !== undefined && hasPrefix(meta.architecture) ? ['whole', 'prefix', 'step'] : ['whole'];
  const missing = kinds.find((k) => {
    const f = fileOf(k);
    return f === undefined || !existsSync(join(dir, f));
  });
  const stale = missing !== undefined ? `${fileOf(missing) ?? `the ${missing} graph`} is missing` : meta.onnx?.weightsSha256 !== weightsDigest(dir) ? `${name} was not exported from these weights` : '';
  if (stale === '') return file;
  if (kind === 'whole') log?.warn({ dir, reason: stale }, 'ONNX graph built from the tfjs weights in memory; run `factorstream export --model` to store it');
  return onnxBytesOf(dir, meta, kind);
}

async function loadLeaf(dir: string, meta: ServingMeta, opts: EngineOptions): Promise<Predictor & { fallback: string }> {
  const { engine, fallback } = await resolveEngine(dir, meta, opts);
  if (engine === 'tfjs') {
    await selectAndLogBackend(opts.backend, opts.log);
    const { model } = await loadModel(dir);
    return Object.assign(new TfjsPredictor(model, meta.T, meta.architecture), { fallback });
  }
  const ort = await loadOnnxRuntime();
  if (opts.workers === 'per-model' || (opts.workers ?? 0) > 0) return loadOnWorker(dir, meta, opts);
  const s = await createOnnxSession(graphOf(dir, meta, 'whole', opts.log), opts.onnx);
  if (s.fallback !== '') opts.log?.warn({ dir, reason: s.fallback }, 'onnx: CUDA provider unavailable, running on the CPU provider');
  const input = meta.onnx?.input ?? 'features';
  const output = meta.onnx?.output ?? 'score';
  const rank = checkSignature(s.session, input, output, meta.T, dir);
  const spec = meta.architecture;
  let incremental: OnnxIncremental | undefined;
  if (spec !== undefined && hasPrefix(spec)) {
    // The same provider as the whole graph's session (no second fallback warning).
    const onnx = { ...opts.onnx, provider: s.provider };
    const prefix = await createOnnxSession(graphOf(dir, meta, 'prefix', opts.log), onnx);
    const step = await createOnnxSession(graphOf(dir, meta, 'step', opts.log), onnx);
    incremental = new OnnxIncremental(ort, prefix.session, step.session, spec);
  }
  return Object.assign(new OnnxSessionPredictor(ort, s.session, input, output, meta.T, rank, s.provider, incremental), { fallback: s.fallback });
}

/** A leaf on the onnx engine in the worker pool: the same graphs, read here and handed over. */
async function loadOnWorker(dir: string, meta: ServingMeta, opts: EngineOptions): Promise<Predictor & { fallback: string }> {
  const spec = meta.architecture;
  const steps = spec !== undefined && hasPrefix(spec);
  const graphs = { whole: graphOf(dir, meta, 'whole', opts.log), ...(steps ? { prefix: graphOf(dir, meta, 'prefix', opts.log), step: graphOf(dir, meta, 'step', opts.log) } : {}) };
  const p = await onnxWorkerPool(opts.workers === 'per-model' || opts.workers === undefined ? MAX_WORKERS : opts.workers).load(dir, graphs, spec, meta.T, { input: meta.onnx?.input ?? 'features', output: meta.onnx?.output ?? 'score' }, opts.onnx);
  if (p.fallback !== '') opts.log?.warn({ dir, reason: p.fallback }, 'onnx: CUDA provider unavailable, running on the CPU provider');
  return p;
}

export interface LoadedPredictor {
  predictor: Predictor;
  meta: ServingMeta;
  /** Empty when the engine and provider asked for are in use; else why not. */
  fallback: string;
}

/** Loads any model folder (single, seed ensemble, or rolling set: its newest window) on the engine asked for. */
export async function loadPredictor(dir: string, opts: EngineOptions = DEFAULT_ENGINE_OPTIONS): Promise<LoadedPredictor> {
  const meta = checkedMeta(dir);
  if (meta.rolling !== undefined) {
    const newest = meta.rolling[meta.rolling.length - 1];
    const inner = await loadPredictor(join(dir, newest.dir), opts);
    return { ...inner, meta };
  }
  if (meta.ensemble !== undefined) {
    const members: Predictor[] = [];
    let fallback = '';
    for (const m of meta.ensemble.members) {
      const inner = await loadPredictor(join(dir, m.dir), opts);
      members.push(inner.predictor);
      fallback ||= inner.fallback;
    }
    return { predictor: new EnsemblePredictor(members, meta.ensemble.members.map((m) => m.scale)), meta, fallback };
  }
  const leaf = await loadLeaf(dir, meta, opts);
  return { predictor: leaf, meta, fallback: leaf.fallback };
}
