/**
 * Incremental scoring on the onnx engine: one session on the prefix graph, one on the step
 * graph (step-graphs.ts). The prefix's output tensors are the step's state inputs as they
 * are: nothing is copied between the two.
 */
import type * as Ort from 'onnxruntime-node';
import { FEATURE_COUNT } from '../../features/feature-set.js';
import { computeStopwatch, type ComputeTime } from '../../market/clock.js';
import type { ModelSpec } from '../architecture.js';
import type { IncrementalScoring, WindowPrefix } from '../predictor.js';
import { PREFIX_INPUT, stateNames, STEP_OUTPUT, STEP_ROW } from './step-graphs.js';

class OnnxPrefix implements WindowPrefix {
  constructor(
    readonly n: number,
    readonly states: Record<string, Ort.Tensor>,
  ) {}

  dispose(): void {
    for (const t of Object.values(this.states)) t.dispose();
  }
}

export class OnnxIncremental implements IncrementalScoring {
  private readonly names: string[];

  constructor(
    private readonly ort: typeof Ort,
    private readonly prefixSession: Ort.InferenceSession,
    private readonly stepSession: Ort.InferenceSession,
    private readonly spec: ModelSpec,
  ) {
    this.names = stateNames(spec);
  }

  async prefix(rows: Float32Array, n: number): Promise<WindowPrefix> {
    const P = this.spec.T - 1;
    const x = new this.ort.Tensor('float32', rows.subarray(0, n * P * FEATURE_COUNT), [n, P, FEATURE_COUNT]);
    const result = await this.prefixSession.run({ [PREFIX_INPUT]: x });
    const states: Record<string, Ort.Tensor> = {};
    for (const name of this.names) states[name] = result[name];
    return new OnnxPrefix(n, states);
  }

  async step(prefix: WindowPrefix, rows: Float32Array, out: Float32Array): Promise<ComputeTime> {
    const elapsed = computeStopwatch();
    const { n, states } = prefix as OnnxPrefix;
    const row = new this.ort.Tensor('float32', rows.subarray(0, n * FEATURE_COUNT), [1, n, FEATURE_COUNT]);
    const y = new this.ort.Tensor('float32', out.subarray(0, n), [n, 1]);
    const result = await this.stepSession.run({ ...states, [STEP_ROW]: row }, { [STEP_OUTPUT]: y });
    const data = result[STEP_OUTPUT].data as Float32Array;
    if (data.buffer !== out.buffer || data.byteOffset !== out.byteOffset) out.set(data.subarray(0, n));
    return elapsed();
  }

  async dispose(): Promise<void> {
    await this.prefixSession.release();
    await this.stepSession.release();
  }
}
