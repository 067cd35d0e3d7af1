/**
 * The onnx and tfjs engines on one model folder and the same sequences: the check
 * `factorstream export` runs on what it wrote, and the parity tests' measure.
 */
import { FEATURE_COUNT } from '../../features/feature-set.js';
import { checkedMeta } from '../artifact.js';
import { DEFAULT_ENGINE_OPTIONS, loadPredictor } from '../predictor.js';

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
