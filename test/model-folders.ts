/** Model folders for tests: a built architecture with randomised weights, saved and exported as `train` leaves one. */
import { join } from 'node:path';
import { ARCHS, buildModel, POOLINGS, type ModelSpec } from '../src/model/architecture.js';
import { FEATURE_COUNT } from '../src/features/feature-set.js';
import { saveModel, untrainedMeta, type ModelMeta } from '../src/model/artifact.js';
import { tf } from '../src/model/backend.js';
import { exportOnnx } from '../src/model/onnx/export.js';
import type { Freq } from '../src/market/sessions.js';

export function metaFor(name: string, spec: ModelSpec, freq: Freq = '10m'): ModelMeta {
  return untrainedMeta(name, spec, freq, { name: 'cpu', tfjsBackend: 'cpu', tfjsVersion: tf.version.tfjs, threads: 1, skipped: [] });
}

/**
 * Builds a model, replaces every weight with N(0, 0.4) values (biases, LayerNorm gain and
 * bias included, so that a gate or bias in the wrong place shows), saves it under
 * root/name and exports its graphs.
 */
export async function randomModelFolder(root: string, name: string, spec: ModelSpec, freq: Freq = '10m'): Promise<string> {
  const dir = join(root, name);
  const model = buildModel(spec);
  let k = 0;
  model.setWeights(model.getWeights().map((w) => tf.randomNormal(w.shape, 0, 0.4, 'float32', spec.seed * 100 + k++)));
  await saveModel(dir, model, metaFor(name, spec, freq));
  model.dispose();
  exportOnnx(dir);
  return dir;
}

/** Every architecture the engines must agree on: GRU and LSTM; last head (1 and 2 layers); attention and residual heads with every pooling; a 2-layer residual. H = 16. */
export function everyArchitecture(T: number, firstSeed: number): ModelSpec[] {
  const shapes: Pick<ModelSpec, 'head' | 'pooling' | 'layers'>[] = [
    { head: 'last', pooling: 'last-query', layers: 1 },
    { head: 'last', pooling: 'last-query', layers: 2 },
    ...(['attention', 'residual'] as const).flatMap((head) => POOLINGS.map((pooling) => ({ head, pooling, layers: 1 }))),
    { head: 'residual', pooling: 'last-query', layers: 2 },
  ];
  return ARCHS.flatMap((arch) => shapes.map((shape) => ({ arch, ...shape }))).map((s, i) => ({ ...s, T, F: FEATURE_COUNT, hidden: 16, dense: 8, dropout: 0.1, seed: firstSeed + i }));
}
