/**
 * The model (DESIGN §6): input [B, T, F] -> GRU | LSTM (H units, every state) -> head ->
 * Dense(relu) -> Dropout -> Dense(1).
 *
 * Heads:
 *   last       h_T, the final hidden state
 *   attention  scaled dot-product self-attention (query, key, value projections) over
 *              every hidden state, then pooled
 *   residual   LayerNorm(H + Attention(H)), Transformer style, then pooled
 * Pooling of the attended states:
 *   last-query  one attention row: the query of the last state over all T states
 *               (T times cheaper than full attention; the output is that one row)
 *   mean        full T x T attention, mean over time
 *   flatten     full T x T attention, every state concatenated (T*H inputs to the NN)
 *
 * tfjs-layers defaults that would silently break parity with PyTorch and ONNX are set
 * explicitly: recurrentActivation 'sigmoid' (tfjs defaults to hardSigmoid). tfjs's GRU
 * applies the reset gate before the recurrent product (ONNX linear_before_reset = 0).
 */
import * as tf from '@tensorflow/tfjs';

export const ARCHS = ['gru', 'lstm'] as const;
export const HEADS = ['last', 'attention', 'residual'] as const;
export const POOLINGS = ['last-query', 'mean', 'flatten'] as const;
export type Arch = (typeof ARCHS)[number];
export type Head = (typeof HEADS)[number];
export type Pooling = (typeof POOLINGS)[number];

export interface ModelSpec {
  arch: Arch;
  head: Head;
  pooling: Pooling;
  /** Sequence length and feature count of the input. */
  T: number;
  F: number;
  /** Hidden units of each recurrent layer (H). */
  hidden: number;
  /** Stacked recurrent layers. */
  layers: number;
  /** Units of the Dense(relu) layer of the NN head. */
  dense: number;
  dropout: number;
  seed: number;
}

export const DEFAULT_MODEL_SPEC: Omit<ModelSpec, 'T' | 'F'> = {
  arch: 'gru',
  head: 'attention',
  pooling: 'last-query',
  hidden: 64,
  layers: 1,
  dense: 32,
  dropout: 0.1,
  seed: 1,
};

interface SelfAttentionArgs {
  units: number;
  /** 'last-query': one query (the last state); 'full': every state queries every state. */
  queries: 'last' | 'full';
  /** Add the attended values to the states and layer-normalise (the residual head). */
  residual: boolean;
  seed: number;
  name?: string;
}

/**
 * Scaled dot-product self-attention over the recurrent states [B, T, H]. Output: [B, H]
 * with one query (the last state), [B, T, H] with full attention. With `residual`, the
 * output is LayerNorm(query states + attention) — gain and bias learned per unit.
 */
export class SelfAttention extends tf.layers.Layer {
  static className = 'FactorstreamSelfAttention';
  private readonly units: number;
  private readonly queries: 'last' | 'full';
  private readonly residual: boolean;
  private readonly seed: number;
  private wq!: tf.LayerVariable;
  private wk!: tf.LayerVariable;
  private wv!: tf.LayerVariable;
  private gamma?: tf.LayerVariable;
  private beta?: tf.LayerVariable;

  constructor(args: SelfAttentionArgs) {
    super({ name: args.name });
    this.units = args.units;
    this.queries = args.queries;
    this.residual = args.residual;
    this.seed = args.seed;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const h = shape[shape.length - 1] as number;
    const init = (k: number): ReturnType<typeof tf.initializers.glorotUniform> => tf.initializers.glorotUniform({ seed: this.seed + k });
    this.wq = this.addWeight('wq', [h, this.units], 'float32', init(1));
    this.wk = this.addWeight('wk', [h, this.units], 'float32', init(2));
    this.wv = this.addWeight('wv', [h, h], 'float32', init(3));
    if (this.residual) {
      this.gamma = this.addWeight('gamma', [h], 'float32', tf.initializers.ones());
      this.beta = this.addWeight('beta', [h], 'float32', tf.initializers.zeros());
    }
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    return this.queries === 'last' ? [shape[0], shape[2]] : shape;
  }

  /** Attention weights [B, Q, T] (Q = 1 for the last-query form); rows sum to one. */
  attentionWeights(states: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const [, t, h] = states.shape;
      const flat = states.reshape([-1, h]);
      const k = flat.matMul(this.wk.read()).reshape([-1, t, this.units]);
      const qStates = this.queries === 'last' ? states.slice([0, t - 1, 0], [-1, 1, -1]) : states;
      const q = qStates.reshape([-1, h]).matMul(this.wq.read()).reshape([-1, qStates.shape[1], this.units]);
      const scores = tf.matMul(q, k, false, true).div(Math.sqrt(this.units));
      return tf.softmax(scores, -1) as tf.Tensor3D;
    });
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const states = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor3D;
      const [, t, h] = states.shape;
      const a = this.attentionWeights(states);
      const v = states.reshape([-1, h]).matMul(this.wv.read()).reshape([-1, t, h]);
      let out: tf.Tensor = tf.matMul(a, v); // [B, Q, H]
      if (this.residual) {
        const query = this.queries === 'last' ? states.slice([0, t - 1, 0], [-1, 1, -1]) : states;
        const x = query.add(out);
        const { mean, variance } = tf.moments(x, -1, true);
        out = x
          .sub(mean)
          .div(variance.add(1e-5).sqrt())
          .mul((this.gamma as tf.LayerVariable).read())
          .add((this.beta as tf.LayerVariable).read());
      }
      return this.queries === 'last' ? out.squeeze([1]) : out;
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), units: this.units, queries: this.queries, residual: this.residual, seed: this.seed };
  }

  static override fromConfig<T extends tf.serialization.Serializable>(cls: tf.serialization.SerializableConstructor<T>, config: tf.serialization.ConfigDict): T {
    return new cls(config);
  }
}
tf.serialization.registerClass(SelfAttention);

/** Mean over the time axis, [B, T, H] -> [B, H]. */
export class TimeMean extends tf.layers.Layer {
  static className = 'FactorstreamTimeMean';
  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    return [shape[0], shape[2]];
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    return tf.mean(x, 1);
  }
  static override fromConfig<T extends tf.serialization.Serializable>(cls: tf.serialization.SerializableConstructor<T>, config: tf.serialization.ConfigDict): T {
    return new cls(config);
  }
}
tf.serialization.registerClass(TimeMean);

/**
 * Keras's default recurrent initializer, without the line tfjs writes to stderr for a
 * matrix over 2,000 elements ("Slowness may result"): it is one QR of hidden × 3·hidden
 * (GRU) or 4·hidden (LSTM) per layer and model built, 0.3 s at hidden 64 and 1 s at 128
 * on the 2-core development machine, against minutes of training. Loading a saved model
 * initialises nothing.
 */
function quietOrthogonal(seed: number): ReturnType<typeof tf.initializers.orthogonal> {
  const init = tf.initializers.orthogonal({ seed, gain: 1 });
  (init as unknown as { ELEMENTS_WARN_SLOW: number }).ELEMENTS_WARN_SLOW = Number.POSITIVE_INFINITY;
  return init;
}

/** The attention layer of a built model, if its head has one (for inspection and tests). */
export function attentionLayer(model: tf.LayersModel): SelfAttention | undefined {
  return model.layers.find((l): l is SelfAttention => l instanceof SelfAttention);
}

export function buildModel(spec: ModelSpec): tf.LayersModel {
  const input = tf.input({ shape: [spec.T, spec.F], name: 'features' });
  let x: tf.SymbolicTensor = input;
  for (let l = 0; l < spec.layers; l++) {
    const lastLayer = l === spec.layers - 1;
    const options = {
      units: spec.hidden,
      returnSequences: !(lastLayer && spec.head === 'last'),
      recurrentActivation: 'sigmoid',
      kernelInitializer: tf.initializers.glorotUniform({ seed: spec.seed + 10 * l }),
      recurrentInitializer: quietOrthogonal(spec.seed + 10 * l + 1),
      name: `${spec.arch}_${l}`,
    } as const;
    x = (spec.arch === 'gru' ? tf.layers.gru(options) : tf.layers.lstm(options)).apply(x) as tf.SymbolicTensor;
  }
  if (spec.head !== 'last') {
    const attention = new SelfAttention({
      units: spec.hidden,
      queries: spec.pooling === 'last-query' ? 'last' : 'full',
      residual: spec.head === 'residual',
      seed: spec.seed + 100,
      name: 'attention',
    });
    x = attention.apply(x) as tf.SymbolicTensor;
    if (spec.pooling === 'mean') x = new TimeMean({ name: 'mean_pool' }).apply(x) as tf.SymbolicTensor;
    else if (spec.pooling === 'flatten') x = tf.layers.flatten({ name: 'flatten' }).apply(x) as tf.SymbolicTensor;
  }
  x = tf.layers.dense({ units: spec.dense, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: spec.seed + 200 }), name: 'nn_hidden' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.dropout({ rate: spec.dropout, seed: spec.seed + 300, name: 'nn_dropout' }).apply(x) as tf.SymbolicTensor;
  const output = tf.layers.dense({ units: 1, kernelInitializer: tf.initializers.glorotUniform({ seed: spec.seed + 400 }), name: 'score' }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: output, name: `${spec.arch}_${spec.head}_${spec.pooling}` });
}

/**
 * Scores a whole cross-section in one batched inference. (tfjs-layers' predict() splits
 * its input into batches of 32 by default: 157 sequential passes for 5,000 symbols.)
 */
export function predictAll(model: tf.LayersModel, x: tf.Tensor3D): tf.Tensor {
  return model.predict(x, { batchSize: Math.max(1, x.shape[0]) }) as tf.Tensor;
}
