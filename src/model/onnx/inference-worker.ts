/**
 * The worker thread of the onnx engine (worker-pool.ts): holds onnxruntime sessions for
 * the model folders it was given — the whole graph and, for a native model, its prefix and
 * step graphs — and the prefixes it computed (they never leave it; the main thread holds
 * handles). Inputs arrive in shared memory and are copied once into the worker's own
 * buffers (onnxruntime-node takes no SharedArrayBuffer); scores go back by message.
 * Requests run one at a time, in arrival order.
 */
import { parentPort } from 'node:worker_threads';
import type { ComputeTime } from '../../market/clock.js';
import type { ModelSpec } from '../architecture.js';
import type { WindowPrefix } from '../predictor.js';
import { checkSignature, createOnnxSession, loadOnnxRuntime, OnnxSessionPredictor, type OnnxOptions, type OnnxProvider } from './session.js';
import { OnnxIncremental } from './step-session.js';

export type WorkerRequest =
  | { id: number; op: 'load'; key: number; where: string; whole: string | Uint8Array; prefix?: string | Uint8Array; step?: string | Uint8Array; spec?: ModelSpec; T: number; input: string; output: string; onnx: OnnxOptions }
  | { id: number; op: 'predict'; key: number; input: Float32Array; n: number }
  | { id: number; op: 'prefix'; key: number; rows: Float32Array; n: number }
  | { id: number; op: 'step'; key: number; handle: number; rows: Float32Array; n: number }
  | { id: number; op: 'release'; handle: number }
  | { id: number; op: 'dispose'; key: number };

export type WorkerReply = { id: number; ok: true; scores?: Float32Array; time?: ComputeTime; handle?: number; provider?: OnnxProvider; fallback?: string } | { id: number; ok: false; error: string };

interface Loaded {
  predictor: OnnxSessionPredictor;
  /** The worker's own copy of the last input (grown as needed). */
  scratch: Float32Array;
}

const models = new Map<number, Loaded>();
const prefixes = new Map<number, WindowPrefix>();
let nextHandle = 1;

/** The shared input copied into the model's own buffer. */
function own(m: Loaded, shared: Float32Array, length: number): Float32Array {
  if (m.scratch.length < length) m.scratch = new Float32Array(length);
  m.scratch.set(shared.subarray(0, length));
  return m.scratch;
}

function model(key: number): Loaded {
  const m = models.get(key);
  if (m === undefined) throw new Error(`no model ${key} in this inference worker`);
  return m;
}

async function handle(r: WorkerRequest): Promise<WorkerReply> {
  switch (r.op) {
    case 'load': {
      const ort = await loadOnnxRuntime();
      const s = await createOnnxSession(r.whole, r.onnx);
      const rank = checkSignature(s.session, r.input, r.output, r.T, r.where);
      let incremental: OnnxIncremental | undefined;
      if (r.spec !== undefined && r.prefix !== undefined && r.step !== undefined) {
        const onnx = { ...r.onnx, provider: s.provider };
        incremental = new OnnxIncremental(ort, (await createOnnxSession(r.prefix, onnx)).session, (await createOnnxSession(r.step, onnx)).session, r.spec);
      }
      models.set(r.key, { predictor: new OnnxSessionPredictor(ort, s.session, r.input, r.output, r.T, rank, s.provider, incremental), scratch: new Float32Array(0) });
      return { id: r.id, ok: true, provider: s.provider, fallback: s.fallback };
    }
    case 'predict': {
      const m = model(r.key);
      const scores = new Float32Array(r.n);
      const time = await m.predictor.predict(own(m, r.input, r.input.length), r.n, scores);
      return { id: r.id, ok: true, scores, time };
    }
    case 'prefix': {
      const m = model(r.key);
      const state = await (m.predictor.incremental as OnnxIncremental).prefix(own(m, r.rows, r.rows.length), r.n);
      const h = nextHandle++;
      prefixes.set(h, state);
      return { id: r.id, ok: true, handle: h };
    }
    case 'step': {
      const m = model(r.key);
      const state = prefixes.get(r.handle);
      if (state === undefined) throw new Error(`prefix ${r.handle} is not held by this inference worker`);
      const scores = new Float32Array(r.n);
      const time = await (m.predictor.incremental as OnnxIncremental).step(state, own(m, r.rows, r.rows.length), scores);
      return { id: r.id, ok: true, scores, time };
    }
    case 'release': {
      prefixes.get(r.handle)?.dispose();
      prefixes.delete(r.handle);
      return { id: r.id, ok: true };
    }
    case 'dispose': {
      await models.get(r.key)?.predictor.dispose();
      models.delete(r.key);
      return { id: r.id, ok: true };
    }
  }
}

const port = parentPort;
if (port !== null) {
  let queue: Promise<void> = Promise.resolve();
  port.on('message', (r: WorkerRequest) => {
    queue = queue.then(async () => {
      let reply: WorkerReply;
      try {
        reply = await handle(r);
      } catch (err) {
        reply = { id: r.id, ok: false, error: (err as Error).message };
      }
      port.postMessage(reply);
    });
  });
}
