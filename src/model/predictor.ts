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
import { join } from 'node:path';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { FEATURE_COUNT } from '../features/feature-set.js';
import { predictAll } from './architecture.js';
import { checkedMeta, loadModel, type ServingMeta } from './artifact.js';
import { selectAndLogBackend, tf, type BackendPreference } from './backend.js';
import { ONNX_FILE, onnxBytesOf, weightsDigest } from './onnx/export.js';
import { checkSignature, createOnnxSession, loadOnnxRuntime, OnnxSessionPredictor, type OnnxOptions } from './onnx/session.js';

export const ENGINES = ['auto', 'onnx', 'tfjs'] as const;
export type EnginePreference = (typeof ENGINES)[number];
export type EngineName = Exclude<EnginePreference, 'auto'>;

export interface Predictor {
  readonly engine: EngineName;
  /** onnx: the execution provider (cpu, cuda); tfjs: the backend (tensorflow, wasm, ...). */
  readonly backend: string;
  /** Scores the first n sequences of `input` into out[0..n). */
  predict(input: Float32Array, n: number, out: Float32Array): Promise<void>;
  dispose(): Promise<void>;
}

export interface EngineOptions {
  engine: EnginePreference;
  /** The tfjs backend, when the tfjs engine is used. */
  backend: BackendPreference;
  onnx: OnnxOptions;
  log?: Logger;
}

export const DEFAULT_ENGINE_OPTIONS: EngineOptions = { engine: 'auto', backend: 'auto', onnx: { threads: 0, provider: 'cpu' } };

/** The engine options of a configuration (daemon.engine, onnxThreads, onnxProvider, backend). */
export function engineOptionsOf(daemon: Pick<Config['daemon'], 'engine' | 'onnxThreads' | 'onnxProvider' | 'backend'>, log?: Logger): EngineOptions {
  return { engine: daemon.engine, backend: daemon.backend, onnx: { threads: daemon.onnxThreads, provider: daemon.onnxProvider }, log };
}

export class TfjsPredictor implements Predictor {
  readonly engine = 'tfjs' as const;

  constructor(
    readonly model: tf.LayersModel,
    private readonly T: number,
  ) {}

  get backend(): string {
    return tf.getBackend();
  }

  async predict(input: Float32Array, n: number, out: Float32Array): Promise<void> {
    const y = tf.tidy(() => predictAll(this.model, tf.tensor3d(input.subarray(0, n * this.T * FEATURE_COUNT), [n, this.T, FEATURE_COUNT])));
    out.set((await y.data()) as Float32Array);
    y.dispose();
  }

  async dispose(): Promise<void> {
    this.model.dispose();
  }
}

export class EnsemblePredictor implements Predictor {
  private member = new Float32Array(0);

  constructor(
    readonly members: Predictor[],
    readonly scales: readonly number[],
  ) {}

  get engine(): EngineName {
    return this.members[0].engine;
  }

  get backend(): string {
    return this.members[0].backend;
  }

  async predict(input: Float32Array, n: number, out: Float32Array): Promise<void> {
    if (this.member.length < n) this.member = new Float32Array(n);
    out.fill(0, 0, n);
    for (let m = 0; m < this.members.length; m++) {
      await this.members[m].predict(input, n, this.member);
      const scale = this.scales[m] / this.members.length;
      for (let i = 0; i < n; i++) out[i] += this.member[i] * scale;
    }
  }

  async dispose(): Promise<void> {
    for (const m of this.members) await m.dispose();
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
 * The ONNX graph of a folder: its model.onnx, or, for a native folder whose model.onnx is
 * missing or older than its weights, the graph built from the weights in memory (warned:
 * `factorstream export` stores it).
 */
function graphOf(dir: string, meta: ServingMeta, log?: Logger): string | Uint8Array {
  const file = join(dir, meta.onnx?.file ?? ONNX_FILE);
  if (meta.onnx?.source === 'external') {
    if (!existsSync(file)) throw new Error(`${dir}: meta.json names ${meta.onnx.file}, which is not there`);
    return file;
  }
  const stale = !existsSync(file) ? 'model.onnx is missing' : meta.onnx?.weightsSha256 !== weightsDigest(dir) ? 'model.onnx was not exported from these weights' : '';
  if (stale === '') return file;
  log?.warn({ dir, reason: stale }, 'ONNX graph built from the tfjs weights in memory; run `factorstream export --model` to store it');
  return onnxBytesOf(dir, meta);
}

async function loadLeaf(dir: string, meta: ServingMeta, opts: EngineOptions): Promise<Predictor & { fallback: string }> {
  const { engine, fallback } = await resolveEngine(dir, meta, opts);
  if (engine === 'tfjs') {
    await selectAndLogBackend(opts.backend, opts.log);
    const { model } = await loadModel(dir);
    return Object.assign(new TfjsPredictor(model, meta.T), { fallback });
  }
  const ort = await loadOnnxRuntime();
  const graph = graphOf(dir, meta, opts.log);
  const s = await createOnnxSession(graph, opts.onnx);
  if (s.fallback !== '') opts.log?.warn({ dir, reason: s.fallback }, 'onnx: CUDA provider unavailable, running on the CPU provider');
  const input = meta.onnx?.input ?? 'features';
  const output = meta.onnx?.output ?? 'score';
  const rank = checkSignature(s.session, input, output, meta.T, dir);
  return Object.assign(new OnnxSessionPredictor(ort, s.session, input, output, meta.T, rank, s.provider), { fallback: s.fallback });
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
