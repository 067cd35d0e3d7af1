/**
 * Incremental scoring on the tfjs engine: the model's own recurrent cells stepped as
 * tfjs-layers' RNN steps them (time-major, from the zero state), over the first T-1 rows
 * between closes and over the new row at the close, then the model's own head layers on
 * the T states. The same operations as predict on the whole window, so the same scores to
 * float rounding (test/incremental.test.ts).
 */
import type { ModelSpec } from './architecture.js';
import { tf } from './backend.js';
import type { IncrementalScoring, WindowPrefix } from './predictor.js';
import { FEATURE_COUNT } from '../features/feature-set.js';
import { computeStopwatch, type ComputeTime } from '../market/clock.js';

/** What tfjs-layers' RNN layer calls once per time step: [input, ...states] -> [output, ...states]. */
interface RecurrentCell {
  call(inputs: tf.Tensor[], kwargs: { training: boolean }): tf.Tensor[];
}

class TfjsPrefix implements WindowPrefix {
  constructor(
    readonly n: number,
    /** Per layer: its states after the prefix (h, and c for an LSTM), [n, H] each. */
    readonly layerStates: tf.Tensor2D[][],
    /** The top layer's T-1 states [n, T-1, H], for an attention head. */
    readonly topStates: tf.Tensor3D | undefined,
  ) {}

  dispose(): void {
    for (const s of this.layerStates) for (const t of s) t.dispose();
    this.topStates?.dispose();
  }
}

export class TfjsIncremental implements IncrementalScoring {
  private readonly cells: RecurrentCell[];
  /** The layers after the recurrent ones (attention, pooling, the NN head), applied in order. */
  private readonly head: tf.layers.Layer[];

  constructor(
    model: tf.LayersModel,
    private readonly spec: ModelSpec,
  ) {
    const recurrent = model.layers.filter((l) => l.getClassName() === 'GRU' || l.getClassName() === 'LSTM');
    if (recurrent.length !== spec.layers) throw new Error(`the model has ${recurrent.length} recurrent layers, its meta.json says ${spec.layers}`);
    this.cells = recurrent.map((l) => (l as unknown as { cell: RecurrentCell }).cell);
    this.head = model.layers.slice(model.layers.indexOf(recurrent[recurrent.length - 1]) + 1);
  }

  async prefix(rows: Float32Array, n: number): Promise<WindowPrefix> {
    const P = this.spec.T - 1;
    const attends = this.spec.head !== 'last';
    const { layerStates, topStates } = tf.tidy(() => {
      // Time-major steps, as tfjs-layers' rnn() unstacks them.
      let steps = tf.unstack(tf.transpose(tf.tensor3d(rows.subarray(0, n * P * FEATURE_COUNT), [n, P, FEATURE_COUNT]), [1, 0, 2])) as tf.Tensor2D[];
      const layerStates: tf.Tensor2D[][] = [];
      for (const cell of this.cells) {
        let states = this.zeroStates(n);
        const outputs: tf.Tensor2D[] = [];
        for (const x of steps) {
          const [y, ...next] = cell.call([x, ...states], { training: false }) as tf.Tensor2D[];
          outputs.push(y);
          states = next;
        }
        layerStates.push(states);
        steps = outputs;
      }
      return { layerStates, topStates: attends ? (tf.stack(steps, 1) as tf.Tensor3D) : undefined };
    });
    return new TfjsPrefix(n, layerStates, topStates);
  }

  async step(prefix: WindowPrefix, rows: Float32Array, out: Float32Array): Promise<ComputeTime> {
    const elapsed = computeStopwatch();
    const p = prefix as TfjsPrefix;
    const y = tf.tidy(() => {
      let x = tf.tensor2d(rows.subarray(0, p.n * FEATURE_COUNT), [p.n, FEATURE_COUNT]) as tf.Tensor;
      for (let l = 0; l < this.cells.length; l++) x = this.cells[l].call([x, ...p.layerStates[l]], { training: false })[0];
      let h: tf.Tensor = p.topStates === undefined ? x : tf.concat([p.topStates, x.expandDims(1)], 1);
      for (const layer of this.head) h = layer.apply(h) as tf.Tensor;
      return h;
    });
    out.set((await y.data()) as Float32Array);
    y.dispose();
    return elapsed();
  }

  private zeroStates(n: number): tf.Tensor2D[] {
    return Array.from({ length: this.spec.arch === 'lstm' ? 2 : 1 }, () => tf.zeros([n, this.spec.hidden]) as tf.Tensor2D);
  }
}
