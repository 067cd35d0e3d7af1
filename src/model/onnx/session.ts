/**
 * The onnx engine: onnxruntime-node sessions, one per model folder, created once. Input and
 * output tensors wrap the caller's buffers (the scorer's pooled [n, T, F] array and the
 * score array it keeps), so a bar close allocates no tensor memory of its own.
 *
 * onnxruntime-node is loaded on first use: a machine where its native binding cannot load
 * still runs the tfjs engine. Its CPU provider ships in the npm package; the CUDA provider
 * is fetched by the package's install script, which this project skips (.npmrc) because it
 * downloads from hosts outside npm — install it where wanted (README, GPU). Asking for
 * `cuda` where it is absent falls back to the CPU provider with a warning, reported in
 * factorstream_model_info{fallback}.
 */
import type * as Ort from 'onnxruntime-node';
import { FEATURE_COUNT } from '../../features/feature-set.js';
import { computeStopwatch, type ComputeTime } from '../../market/clock.js';
import type { Predictor } from '../predictor.js';
import type { OnnxIncremental } from './step-session.js';

export type OnnxProvider = 'cpu' | 'cuda';

export interface OnnxOptions {
  /** Intra-op threads; 0 lets onnxruntime choose (one per physical core). */
  threads: number;
  provider: OnnxProvider;
  /** Whether idle intra-op threads spin waiting for work (onnxruntime's default) instead of sleeping. */
  spinWait: boolean;
}

export interface OnnxRuntimeInfo {
  version: string;
  /** Providers compiled into the installed binding, and whether their libraries ship with it. */
  backends: { name: string; bundled: boolean }[];
}

let runtime: Promise<typeof Ort> | undefined;

/** onnxruntime-node, loaded once; rejects with the loader's reason where it cannot load. */
export function loadOnnxRuntime(): Promise<typeof Ort> {
  runtime ??= import('onnxruntime-node').then((m) => {
    const ort = (m as unknown as { default?: typeof Ort }).default ?? (m as unknown as typeof Ort);
    // onnxruntime writes its own log lines raw to stderr, between the daemon's JSON lines;
    // its failures reach us as exceptions, which are logged (and a missing CUDA provider
    // is an expected fallback, not an error line).
    ort.env.logLevel = 'fatal';
    return ort;
  });
  return runtime;
}

export async function onnxRuntimeInfo(): Promise<OnnxRuntimeInfo> {
  const ort = await loadOnnxRuntime();
  const list = (ort as unknown as { listSupportedBackends?: () => { name: string; bundled: boolean }[] }).listSupportedBackends;
  return { version: ort.env.versions.common ?? 'unknown', backends: list === undefined ? [] : list() };
}

/** A session with its provider in use and, if it is not the one asked for, why. */
export interface OnnxSession {
  session: Ort.InferenceSession;
  provider: OnnxProvider;
  fallback: string;
}

/** Creates a session from a file or ONNX bytes, trying the CUDA provider first when asked. */
export async function createOnnxSession(model: string | Uint8Array, opts: OnnxOptions): Promise<OnnxSession> {
  const ort = await loadOnnxRuntime();
  const base: Ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    interOpNumThreads: 1,
    ...(opts.threads > 0 ? { intraOpNumThreads: opts.threads } : {}),
    // onnxruntime's threads spin between operators by default, waiting for the next one's
    // work: on a host whose cores the feed, the broker and the daemon's main thread share,
    // that spinning is CPU they do not get (bench/RESULTS.md).
    ...(opts.spinWait ? {} : { extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } } }),
  };
  // Two calls because InferenceSession.create's overloads take a path or bytes, not the union.
  const create = (providers: string[]): Promise<Ort.InferenceSession> =>
    typeof model === 'string' ? ort.InferenceSession.create(model, { ...base, executionProviders: providers }) : ort.InferenceSession.create(model, { ...base, executionProviders: providers });
  if (opts.provider === 'cuda') {
    try {
      return { session: await create(['cuda']), provider: 'cuda', fallback: '' };
    } catch (err) {
      const reason = (err as Error).message.split('\n')[0];
      return { session: await create(['cpu']), provider: 'cpu', fallback: `cuda unavailable: ${reason}` };
    }
  }
  return { session: await create(['cpu']), provider: 'cpu', fallback: '' };
}

/**
 * The graph contract checked at load: one float32 input [batch, T, F] and one float32
 * output [batch] or [batch, 1] (names from meta.json). Returns the output's rank.
 */
export function checkSignature(session: Ort.InferenceSession, input: string, output: string, T: number, where: string): 1 | 2 {
  const inMeta = session.inputMetadata.find((m) => m.name === input);
  const outMeta = session.outputMetadata.find((m) => m.name === output);
  if (inMeta === undefined) throw new Error(`${where}: the graph has no input ${input} (it has ${session.inputNames.join(', ')})`);
  if (outMeta === undefined) throw new Error(`${where}: the graph has no output ${output} (it has ${session.outputNames.join(', ')})`);
  if (session.inputNames.length !== 1) throw new Error(`${where}: the graph takes ${session.inputNames.length} inputs (${session.inputNames.join(', ')}); factorstream feeds one, [batch, T, F]`);
  if (!inMeta.isTensor || inMeta.type !== 'float32' || inMeta.shape.length !== 3) throw new Error(`${where}: input ${input} must be a float32 tensor [batch, T, F]`);
  const [, t, f] = inMeta.shape;
  if ((typeof t === 'number' && t !== T) || (typeof f === 'number' && f !== FEATURE_COUNT)) {
    throw new Error(`${where}: input ${input} is [${inMeta.shape.join(', ')}]; meta.json says T = ${T} and this build computes F = ${FEATURE_COUNT} features`);
  }
  if (!outMeta.isTensor || outMeta.type !== 'float32' || outMeta.shape.length < 1 || outMeta.shape.length > 2 || (outMeta.shape.length === 2 && outMeta.shape[1] !== 1)) {
    throw new Error(`${where}: output ${output} must be a float32 tensor [batch] or [batch, 1]`);
  }
  return outMeta.shape.length as 1 | 2;
}

/** Scores with one onnxruntime session: [n, T, F] -> n scores, written into the caller's array. */
export class OnnxSessionPredictor implements Predictor {
  readonly engine = 'onnx' as const;
  private readonly outputShape: (n: number) => number[];

  constructor(
    private readonly ort: typeof Ort,
    private readonly session: Ort.InferenceSession,
    private readonly input: string,
    private readonly output: string,
    private readonly T: number,
    outputRank: 1 | 2,
    readonly backend: OnnxProvider,
    readonly incremental?: OnnxIncremental,
  ) {
    this.outputShape = outputRank === 1 ? (n) => [n] : (n) => [n, 1];
  }

  async predict(input: Float32Array, n: number, out: Float32Array): Promise<ComputeTime> {
    const elapsed = computeStopwatch();
    const x = new this.ort.Tensor('float32', input.subarray(0, n * this.T * FEATURE_COUNT), [n, this.T, FEATURE_COUNT]);
    const y = new this.ort.Tensor('float32', out.subarray(0, n), this.outputShape(n));
    const result = await this.session.run({ [this.input]: x }, { [this.output]: y });
    const data = result[this.output].data as Float32Array;
    // onnxruntime writes into the pre-allocated output; copy only if a provider did not.
    if (data.buffer !== out.buffer || data.byteOffset !== out.byteOffset) out.set(data.subarray(0, n));
    return elapsed();
  }

  async dispose(): Promise<void> {
    await this.session.release();
    await this.incremental?.dispose();
  }
}
