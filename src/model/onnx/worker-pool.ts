/**
 * The onnx engine off the main thread (`daemon.inferenceWorkers`): a pool of worker
 * threads (inference-worker.ts), each with its own onnxruntime sessions for the model
 * folders placed on it (round-robin; by default one worker per folder, so that one model's
 * prefix never delays another's close), so that while a close is scored, or the next
 * close's prefix computed, the main thread keeps ingesting. The scorer's batches are
 * allocated in shared memory (`allocate`), so handing one to a worker copies nothing on
 * the main thread; scores come back by message; prefixes stay in the worker that
 * computed them. The pool lives while a predictor on it does.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { FEATURE_COUNT } from '../../features/feature-set.js';
import type { ComputeTime } from '../../market/clock.js';
import type { ModelSpec } from '../architecture.js';
import type { IncrementalScoring, Predictor, WindowPrefix } from '../predictor.js';
import type { WorkerReply, WorkerRequest } from './inference-worker.js';
import type { OnnxOptions, OnnxProvider } from './session.js';

/** Distributes WorkerRequest without its id. */
type Request = WorkerRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

/** The worker script: beside this module when built; from dist/ when this runs from the TypeScript sources (tests: the build comes first). */
function workerScript(): string {
  const here = fileURLToPath(import.meta.url);
  const built = join(dirname(here), 'inference-worker.js');
  if (!here.endsWith('.ts')) return built;
  const dist = join(dirname(here), '..', '..', '..', 'dist', 'model', 'onnx', 'inference-worker.js');
  if (!existsSync(dist)) throw new Error(`${dist} is missing: run \`npm run build\` (the inference workers run the built code)`);
  return dist;
}

class InferenceWorker {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (r: WorkerReply & { ok: true }) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private failure: Error | undefined;

  constructor(index: number) {
    this.worker = new Worker(workerScript(), { name: `factorstream-inference-${index}` });
    this.worker.on('message', (r: WorkerReply) => {
      const p = this.pending.get(r.id);
      this.pending.delete(r.id);
      if (r.ok) p?.resolve(r);
      else p?.reject(new Error(r.error));
    });
    const fail = (err: Error): void => {
      this.failure = err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`inference worker ${index} exited (code ${code})`)));
  }

  request(r: Request): Promise<WorkerReply & { ok: true }> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...r, id });
    });
  }

  async terminate(): Promise<void> {
    this.failure ??= new Error('the inference worker was stopped');
    await this.worker.terminate();
  }
}

/** The most workers a pool starts ('per-model' pools: one per folder up to this). */
export const MAX_WORKERS = 64;

export class OnnxWorkerPool {
  private readonly workers: InferenceWorker[] = [];
  private next = 0;
  private nextKey = 1;
  private users = 0;

  /** `size` workers, started as folders are placed on them. */
  constructor(readonly size: number) {}

  /** Loads a model folder's graphs on the next worker. */
  async load(where: string, graphs: { whole: string | Uint8Array; prefix?: string | Uint8Array; step?: string | Uint8Array }, spec: ModelSpec | undefined, T: number, io: { input: string; output: string }, onnx: OnnxOptions): Promise<WorkerOnnxPredictor> {
    const slot = this.next++ % this.size;
    const worker = (this.workers[slot] ??= new InferenceWorker(slot));
    const key = this.nextKey++;
    this.users++;
    try {
      const r = await worker.request({ op: 'load', key, where, ...graphs, spec, T, ...io, onnx });
      return new WorkerOnnxPredictor(this, worker, key, T, r.provider ?? 'cpu', r.fallback ?? '', spec !== undefined && graphs.prefix !== undefined);
    } catch (err) {
      await this.release();
      throw err;
    }
  }

  /** One predictor fewer; the last one stops the workers. */
  async release(): Promise<void> {
    if (--this.users > 0) return;
    for (const w of this.workers) await w.terminate();
    if (shared === this) shared = undefined;
  }
}

let shared: OnnxWorkerPool | undefined;

/** The process's pool of `size` workers (one pool: the first size asked for is kept while it lives). */
export function onnxWorkerPool(size: number): OnnxWorkerPool {
  shared ??= new OnnxWorkerPool(size);
  return shared;
}

class WorkerPrefix implements WindowPrefix {
  constructor(
    readonly n: number,
    readonly handle: number,
    private readonly worker: InferenceWorker,
  ) {}

  dispose(): void {
    this.worker.request({ op: 'release', handle: this.handle }).catch(() => undefined);
  }
}

/** A model folder served by a worker: the Predictor contract, the work done there. */
export class WorkerOnnxPredictor implements Predictor {
  readonly engine = 'onnx' as const;
  readonly offThread = true;
  readonly incremental?: IncrementalScoring;

  constructor(
    private readonly pool: OnnxWorkerPool,
    private readonly worker: InferenceWorker,
    private readonly key: number,
    private readonly T: number,
    readonly backend: OnnxProvider,
    readonly fallback: string,
    steps: boolean,
  ) {
    if (steps) {
      this.incremental = {
        prefix: async (rows, n) => {
          const r = await this.worker.request({ op: 'prefix', key: this.key, rows: this.shared(rows, n * (this.T - 1) * FEATURE_COUNT), n });
          return new WorkerPrefix(n, r.handle as number, this.worker);
        },
        step: async (prefix, rows, out) => {
          const { n, handle } = prefix as WorkerPrefix;
          const r = await this.worker.request({ op: 'step', key: this.key, handle, rows: this.shared(rows, n * FEATURE_COUNT), n });
          out.set(r.scores as Float32Array);
          return r.time as ComputeTime;
        },
      };
    }
  }

  /** A buffer in shared memory: the scorer fills it and the worker reads it without a copy here. */
  allocate(length: number): Float32Array {
    return new Float32Array(new SharedArrayBuffer(length * 4));
  }

  async predict(input: Float32Array, n: number, out: Float32Array): Promise<ComputeTime> {
    const r = await this.worker.request({ op: 'predict', key: this.key, input: this.shared(input, n * this.T * FEATURE_COUNT), n });
    out.set(r.scores as Float32Array);
    return r.time as ComputeTime;
  }

  async dispose(): Promise<void> {
    await this.worker.request({ op: 'dispose', key: this.key }).catch(() => undefined);
    await this.pool.release();
  }

  /** The first `length` values as a view of shared memory (a copy when they are not: a caller that did not allocate them here; each its own, as requests overlap). */
  private shared(values: Float32Array, length: number): Float32Array {
    if (values.buffer instanceof SharedArrayBuffer) return values.subarray(0, length);
    const copy = this.allocate(length);
    copy.set(values.subarray(0, length));
    return copy;
  }
}
