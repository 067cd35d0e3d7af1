/**
 * What scoring calls: a Predictor maps a [n, T, F] batch to n scores. A plain model folder
 * is one tfjs model; a seed ensemble averages its members' outputs, each multiplied by
 * the scale fixed at training (one over the member's mean cross-sectional spread on the
 * validation dates), so that no member dominates by the size of its outputs; a rolling
 * set is served by its newest window.
 */
import { join } from 'node:path';
import { predictAll } from './architecture.js';
import { checkedMeta, loadModel, type ModelMeta } from './artifact.js';
import { tf } from './backend.js';

export interface Predictor {
  /** Scores [n, T, F] -> [n] (or [n, 1]); the caller disposes the result. */
  predict(x: tf.Tensor3D): tf.Tensor;
  dispose(): void;
}

export class ModelPredictor implements Predictor {
  constructor(readonly model: tf.LayersModel) {}

  predict(x: tf.Tensor3D): tf.Tensor {
    return predictAll(this.model, x);
  }

  dispose(): void {
    this.model.dispose();
  }
}

export class EnsemblePredictor implements Predictor {
  constructor(
    readonly members: Predictor[],
    readonly scales: readonly number[],
  ) {}

  predict(x: tf.Tensor3D): tf.Tensor {
    return tf.tidy(() => {
      let sum: tf.Tensor | undefined;
      this.members.forEach((m, i) => {
        const y = tf.mul(tf.reshape(m.predict(x), [-1]), this.scales[i]);
        sum = sum === undefined ? y : tf.add(sum, y);
      });
      return tf.div(sum as tf.Tensor, this.members.length);
    });
  }

  dispose(): void {
    for (const m of this.members) m.dispose();
  }
}

/** Loads any model folder (single, seed ensemble, or rolling set: its newest window). */
export async function loadPredictor(dir: string): Promise<{ predictor: Predictor; meta: ModelMeta }> {
  const meta = checkedMeta(dir);
  if (meta.rolling !== undefined) {
    const newest = meta.rolling[meta.rolling.length - 1];
    const inner = await loadPredictor(join(dir, newest.dir));
    return { predictor: inner.predictor, meta };
  }
  if (meta.ensemble !== undefined) {
    const members: Predictor[] = [];
    for (const m of meta.ensemble.members) members.push((await loadPredictor(join(dir, m.dir))).predictor);
    return { predictor: new EnsemblePredictor(members, meta.ensemble.members.map((m) => m.scale)), meta };
  }
  const { model } = await loadModel(dir);
  return { predictor: new ModelPredictor(model), meta };
}
