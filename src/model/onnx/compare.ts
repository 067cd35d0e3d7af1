/**
 * The checks `factorstream export` runs on what it wrote, and the tests' measures: the
 * onnx and tfjs engines on one model folder and the same sequences, and one engine's
 * incremental scoring (prefix + step) against its whole-window scores.
 */
import { FEATURE_COUNT } from '../../features/feature-set.js';
import { checkedMeta } from '../artifact.js';
import { DEFAULT_ENGINE_OPTIONS, loadPredictor, type EngineName, type Predictor } from '../predictor.js';

/** The largest engine difference accepted (absolute, on raw scores). */
export const ENGINE_TOLERANCE = 1e-4;

/** n sequences [n, T, F] of standard normal values, clipped like the features (±5), from a fixed seed. */
export function randomSequences(n: number, T: number, seed = 1): Float32Array {
  const out = new Float32Array(n * T * FEATURE_COUNT);
  let s = seed >>> 0 || 1;
  const uniform = (): number => {
    // xorshift32: reproducible without a dependency on tfjs's generator.
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) + 0.5) / 4_294_967_296;
  };
  for (let i = 0; i < out.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(uniform()));
    const t = 2 * Math.PI * uniform();
    out[i] = Math.max(-5, Math.min(5, r * Math.cos(t)));
    if (i + 1 < out.length) out[i + 1] = Math.max(-5, Math.min(5, r * Math.sin(t)));
  }
  return out;
}

export interface EngineComparison {
  n: number;
  maxAbs: number;
  tolerance: number;
  onnx: Float32Array;
  tfjs: Float32Array;
}

/** Scores `input` (or n random sequences) on both engines and returns the largest absolute difference. */
export async function compareEngines(dir: string, n: number, input?: Float32Array): Promise<EngineComparison> {
  const meta = checkedMeta(dir);
  const x = input ?? randomSequences(n, meta.T);
  const onnx = await loadPredictor(dir, { ...DEFAULT_ENGINE_OPTIONS, engine: 'onnx' });
  const tfjs = await loadPredictor(dir, { ...DEFAULT_ENGINE_OPTIONS, engine: 'tfjs' });
  const a = new Float32Array(n);
  const b = new Float32Array(n);
  try {
    await onnx.predictor.predict(x, n, a);
    await tfjs.predictor.predict(x, n, b);
  } finally {
    await onnx.predictor.dispose();
    await tfjs.predictor.dispose();
  }
  let maxAbs = 0;
  for (let i = 0; i < n; i++) maxAbs = Math.max(maxAbs, Math.abs(a[i] - b[i]));
  if (!Number.isFinite(maxAbs) || a.some((v) => !Number.isFinite(v))) maxAbs = Number.POSITIVE_INFINITY;
  return { n, maxAbs, tolerance: ENGINE_TOLERANCE, onnx: a, tfjs: b };
}

/** The largest difference accepted between a step's score and the whole window's (absolute). */
export const STEP_TOLERANCE = 1e-6;

/** Splits n windows [n, T, F] into their first T-1 rows and their last row. */
export function splitWindows(x: Float32Array, n: number, T: number): { prefix: Float32Array; last: Float32Array } {
  const F = FEATURE_COUNT;
  const prefix = new Float32Array(n * (T - 1) * F);
  const last = new Float32Array(n * F);
  for (let i = 0; i < n; i++) {
    prefix.set(x.subarray(i * T * F, (i * T + T - 1) * F), i * (T - 1) * F);
    last.set(x.subarray((i * T + T - 1) * F, (i + 1) * T * F), i * F);
  }
  return { prefix, last };
}

/** n windows [n, T, F] scored whole and by the prefix of their first T-1 rows and one step, on one predictor (which must score incrementally). */
export async function wholeAndStepped(predictor: Predictor, x: Float32Array, n: number, T: number): Promise<{ whole: Float32Array; stepped: Float32Array }> {
  const steps = predictor.incremental;
  if (steps === undefined) throw new Error(`this ${predictor.engine} predictor has no incremental scoring`);
  const whole = new Float32Array(n);
  const stepped = new Float32Array(n);
  await predictor.predict(x, n, whole);
  const { prefix, last } = splitWindows(x, n, T);
  const state = await steps.prefix(prefix, n);
  await steps.step(state, last, stepped);
  state.dispose();
  return { whole, stepped };
}

/** On one engine: n windows scored whole, and by the prefix of their first T-1 rows and one step; undefined where the model has no incremental scoring. */
export async function compareSteps(dir: string, n: number, engine: EngineName, input?: Float32Array): Promise<{ n: number; maxAbs: number; tolerance: number; whole: Float32Array } | undefined> {
  const { predictor, meta } = await loadPredictor(dir, { ...DEFAULT_ENGINE_OPTIONS, engine });
  try {
    if (predictor.incremental === undefined) return undefined;
    const { whole, stepped } = await wholeAndStepped(predictor, input ?? randomSequences(n, meta.T, 7), n, meta.T);
    let maxAbs = 0;
    for (let i = 0; i < n; i++) maxAbs = Math.max(maxAbs, Math.abs(whole[i] - stepped[i]));
    if (!Number.isFinite(maxAbs) || stepped.some((v) => !Number.isFinite(v))) maxAbs = Number.POSITIVE_INFINITY;
    return { n, maxAbs, tolerance: STEP_TOLERANCE, whole };
  } finally {
    await predictor.dispose();
  }
}
