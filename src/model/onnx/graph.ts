/**
 * The pieces the ONNX graphs of a native model are built from (export.ts: the whole
 * network; step-graphs.ts: its recurrent prefix and one step), from the tfjs weights and
 * in the layouts tfjs trained them in:
 *   GRU   tfjs kernel [F, 3H] gates (z, r, h), one bias, reset applied before the
 *         recurrent product -> ONNX W [1, 3H, F], R [1, 3H, H], B [1, 6H] with zero
 *         recurrent biases, linear_before_reset = 0 (same gate order).
 *   LSTM  tfjs gates (i, f, c, o) -> ONNX (i, o, f, c).
 *   Attention is SelfAttention.call's (division by sqrt(units), softmax over time,
 *   LayerNorm with epsilon 1e-5 for the residual head); the last-query form is reassociated
 *   to skip the per-step projections (below).
 */
import type { ModelSpec } from '../architecture.js';
import { ONNX_FLOAT, ONNX_IR_VERSION, ONNX_OPSET, type AttributeProto, type ModelProto, type NodeProto, type TensorProto, type ValueInfoProto } from './proto.js';

export interface Weight {
  shape: number[];
  data: Float32Array;
}

/** [rows, cols] row-major -> its transpose. */
export function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}

/** Reorders gate blocks of `size` elements: out block j = in block order[j]. */
function reorderBlocks(data: Float32Array, size: number, order: readonly number[]): Float32Array {
  const out = new Float32Array(data.length);
  order.forEach((from, to) => out.set(data.subarray(from * size, (from + 1) * size), to * size));
  return out;
}

export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  readonly inputs: ValueInfoProto[] = [];
  readonly outputs: ValueInfoProto[] = [];
  private counter = 0;

  constant(name: string, dims: number[], data: Float32Array | BigInt64Array, dataType = ONNX_FLOAT): string {
    this.initializers.push({ name, dims, dataType, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
    return name;
  }

  ints(name: string, values: number[]): string {
    return this.constant(name, [values.length], BigInt64Array.from(values, (v) => BigInt(v)), 7 /* INT64 */);
  }

  node(opType: string, inputs: string[], attrs: AttributeProto[] = [], outputs = 1, label = opType.toLowerCase()): string[] {
    const base = `${label}_${this.counter++}`;
    const out = Array.from({ length: outputs }, (_, i) => (outputs === 1 ? base : `${base}_${i}`));
    this.nodes.push({ name: base, opType, input: inputs, output: out, attribute: attrs });
    return out;
  }

  one(opType: string, inputs: string[], attrs: AttributeProto[] = [], label?: string): string {
    return this.node(opType, inputs, attrs, 1, label)[0];
  }

  /** A float32 graph input; a string dimension is dynamic. */
  input(name: string, dims: (number | string)[]): string {
    this.inputs.push({ name, type: tensorType(dims) });
    return name;
  }

  /** Makes `value` a graph output called `name`. */
  output(name: string, value: string, dims: (number | string)[]): void {
    this.nodes.push({ name, opType: 'Identity', input: [value], output: [name], attribute: [] });
    this.outputs.push({ name, type: tensorType(dims) });
  }

  model(name: string, producerVersion: string, doc: string): ModelProto {
    return {
      irVersion: ONNX_IR_VERSION,
      opsetImport: [{ domain: '', version: ONNX_OPSET }],
      producerName: 'factorstream',
      producerVersion,
      docString: doc,
      graph: { name, node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs },
    };
  }
}

function tensorType(dims: (number | string)[]): ValueInfoProto['type'] {
  return { tensorType: { elemType: ONNX_FLOAT, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } };
}

export const intAttr = (name: string, i: number): AttributeProto => ({ name, type: 2, i });
const floatAttr = (name: string, f: number): AttributeProto => ({ name, type: 1, f });
export const intsAttr = (name: string, ints: number[]): AttributeProto => ({ name, type: 7, ints });

function need(weights: Map<string, Weight>, name: string, shape: number[]): Float32Array {
  const w = weights.get(name);
  if (w === undefined) throw new Error(`weight ${name} is missing (have ${[...weights.keys()].join(', ')})`);
  if (w.shape.join('x') !== shape.join('x')) throw new Error(`weight ${name} has shape [${w.shape.join(', ')}], the architecture needs [${shape.join(', ')}]`);
  return w.data;
}

/** What a recurrent layer returns: its states [steps, batch, H] (time-major) and its last state(s) [1, batch, H]. */
export interface RecurrentOutputs {
  states: string;
  h: string;
  /** The LSTM's cell state; '' for a GRU. */
  c: string;
}

/**
 * Recurrent layer `l` of the model over the time-major input `x` [steps, batch, in],
 * starting from `initial` (its h and c, [1, batch, H]) or from the zero state.
 */
export function recurrentLayer(g: GraphBuilder, spec: ModelSpec, weights: Map<string, Weight>, l: number, x: string, initial?: { h: string; c: string }): RecurrentOutputs {
  const H = spec.hidden;
  const gates = spec.arch === 'gru' ? 3 : 4;
  // tfjs (i, f, c, o) -> ONNX (i, o, f, c); the GRU's (z, r, h) is ONNX's order already.
  const order = spec.arch === 'gru' ? [0, 1, 2] : [0, 3, 1, 2];
  const layer = `${spec.arch}_${l}`;
  const inDim = l === 0 ? spec.F : H;
  const W = reorderBlocks(transpose(need(weights, `${layer}/kernel`, [inDim, gates * H]), inDim, gates * H), H * inDim, order);
  const R = reorderBlocks(transpose(need(weights, `${layer}/recurrent_kernel`, [H, gates * H]), H, gates * H), H * H, order);
  const B = new Float32Array(2 * gates * H);
  B.set(reorderBlocks(need(weights, `${layer}/bias`, [gates * H]), H, order));
  const inputs = [x, g.constant(`${layer}.W`, [1, gates * H, inDim], W), g.constant(`${layer}.R`, [1, gates * H, H], R), g.constant(`${layer}.B`, [1, 2 * gates * H], B)];
  // Optional inputs: sequence_lens (none), initial_h, initial_c.
  if (initial !== undefined) inputs.push('', initial.h, ...(spec.arch === 'lstm' ? [initial.c] : []));
  const attrs = [intAttr('hidden_size', H), ...(spec.arch === 'gru' ? [intAttr('linear_before_reset', 0)] : [])];
  const outs = g.node(spec.arch === 'gru' ? 'GRU' : 'LSTM', inputs, attrs, spec.arch === 'gru' ? 2 : 3, layer); // Y [steps, 1, B, H], Y_h [1, B, H], Y_c
  return { states: g.one('Squeeze', [outs[0], g.ints(`${layer}.axes`, [1])]), h: outs[1], c: outs[2] ?? '' };
}

/** The attention head's weights as graph constants (Wk transposed for the reassociated last-query form). */
interface AttentionConstants {
  wq: string;
  wk: string;
  wkT: string;
  wv: string;
  /** sqrt(H), the scores' divisor. */
  scale: string;
}

function attentionConstants(g: GraphBuilder, spec: ModelSpec, weights: Map<string, Weight>): AttentionConstants {
  const H = spec.hidden;
  const wk = need(weights, 'attention/wk', [H, H]);
  return {
    wq: g.constant('attention.wq', [H, H], need(weights, 'attention/wq', [H, H])),
    wk: spec.pooling === 'last-query' ? '' : g.constant('attention.wk', [H, H], wk),
    wkT: spec.pooling === 'last-query' ? g.constant('attention.wk_t', [H, H], transpose(wk, H, H)) : '',
    wv: g.constant('attention.wv', [H, H], need(weights, 'attention/wv', [H, H])),
    scale: g.constant('attention.scale', [], Float32Array.of(Math.sqrt(H))),
  };
}

/** The residual head's LayerNorm(query + attended), epsilon 1e-5, over the last axis; `out` as it is for the other heads. */
function residualNorm(g: GraphBuilder, spec: ModelSpec, weights: Map<string, Weight>, query: string, out: string): string {
  if (spec.head !== 'residual') return out;
  const H = spec.hidden;
  const gamma = g.constant('attention.gamma', [H], need(weights, 'attention/gamma', [H]));
  const beta = g.constant('attention.beta', [H], need(weights, 'attention/beta', [H]));
  return g.one('LayerNormalization', [g.one('Add', [query, out]), gamma, beta], [intAttr('axis', -1), floatAttr('epsilon', 1e-5)]);
}

/** Dense(relu) -> (dropout: the identity at inference) -> Dense(1) on the pooled [batch, D]; writes the graph output `output` [batch, 1]. */
function nnHead(g: GraphBuilder, spec: ModelSpec, weights: Map<string, Weight>, pooled: string, output: string): void {
  const pooledDim = spec.head !== 'last' && spec.pooling === 'flatten' ? spec.T * spec.hidden : spec.hidden;
  const dense = g.one('Relu', [g.one('Gemm', [pooled, g.constant('nn_hidden.kernel', [pooledDim, spec.dense], need(weights, 'nn_hidden/kernel', [pooledDim, spec.dense])), g.constant('nn_hidden.bias', [spec.dense], need(weights, 'nn_hidden/bias', [spec.dense]))])]);
  g.nodes.push({ name: output, opType: 'Gemm', input: [dense, g.constant('score.kernel', [spec.dense, 1], need(weights, 'score/kernel', [spec.dense, 1])), g.constant('score.bias', [1], need(weights, 'score/bias', [1]))], output: [output], attribute: [] });
  g.outputs.push({ name: output, type: tensorType(['batch', 1]) });
}

/**
 * The top layer's states as every head takes them, whole window or step alike: the first
 * T-1 (`prefix`, batch-major [batch, T-1, H]; '' when T = 1), the last one (`last`,
 * [1, batch, H], as the recurrent op returns a step) and the layer's last state
 * (`lastState`, [1, batch, H], the query).
 */
export interface HeadStates {
  prefix: string;
  last: string;
  lastState: string;
}

/** The whole window's top-layer states ([T, batch, H], time-major) split as the heads take them (the last-state head takes none). */
export function splitStates(g: GraphBuilder, spec: ModelSpec, states: string, lastState: string): HeadStates {
  if (spec.head === 'last') return { prefix: '', last: '', lastState };
  const P = spec.T - 1;
  const axis = g.ints('split.axis', [0]);
  const last = g.one('Slice', [states, g.ints('split.last.start', [P]), g.ints('split.last.end', [P + 1]), axis]);
  if (P === 0) return { prefix: '', last, lastState };
  const prefixTimeMajor = g.one('Slice', [states, g.ints('split.prefix.start', [0]), g.ints('split.prefix.end', [P]), axis]);
  return { prefix: g.one('Transpose', [prefixTimeMajor], [intsAttr('perm', [1, 0, 2])], 'batch_major'), last, lastState };
}

/**
 * The head and the NN head on the top layer's states; writes the graph output `output`
 * [batch, 1]. The whole graph and the step graph both call it on HeadStates, so a step
 * computes every value as the whole window does.
 */
export function scoreHead(g: GraphBuilder, spec: ModelSpec, weights: Map<string, Weight>, s: HeadStates, output: string): void {
  let pooled: string;
  if (spec.head === 'last') {
    pooled = g.one('Squeeze', [s.lastState, g.ints('last.axes', [0])]); // [B, H]
  } else if (spec.pooling === 'last-query') {
    pooled = lastQueryAttention(g, spec, weights, s);
  } else {
    const c = attentionConstants(g, spec, weights);
    const last = g.one('Reshape', [s.last, g.ints('last.batch_major', [-1, 1, spec.hidden])]); // [B, 1, H]
    const states = s.prefix === '' ? last : g.one('Concat', [s.prefix, last], [intAttr('axis', 1)]); // [B, T, H]
    const q = g.one('MatMul', [states, c.wq]);
    const k = g.one('MatMul', [states, c.wk]);
    const scores = g.one('Div', [g.one('MatMul', [q, g.one('Transpose', [k], [intsAttr('perm', [0, 2, 1])])]), c.scale]);
    const a = g.one('Softmax', [scores], [intAttr('axis', -1)]);
    const out = residualNorm(g, spec, weights, states, g.one('MatMul', [a, g.one('MatMul', [states, c.wv])])); // [B, T, H]
    // The mean over time as a product with a row of 1/T: onnxruntime reduces a batch of one
    // by another path than a larger batch (1 ulp apart), and a lone symbol's whole window must
    // score as the offline path scores it in the whole cross-section.
    if (spec.pooling === 'mean') pooled = g.one('Reshape', [g.one('MatMul', [g.constant('mean.row', [1, spec.T], new Float32Array(spec.T).fill(1 / spec.T)), out]), g.ints('mean.rows', [-1, spec.hidden])]); // [B, H]
    else pooled = g.one('Flatten', [out], [intAttr('axis', 1)]); // [B, T*H], tfjs flatten's order
  }
  nnHead(g, spec, weights, pooled, output);
}

/**
 * Last-query attention, pooled (and layer-normalised for the residual head): one query per
 * sequence, the last state q. The products are reassociated so that nothing is projected
 * per time step — (q Wq)(S Wk)^T = ((q Wq) Wk^T) S^T and a (S Wv) = (a S) Wv, two
 * [B*T, H] x [H, H] products become [B, H] ones (equal to rounding) — and the prefix's
 * scores and attended sum are batched products over its batch-major states, which read
 * them once and write no [T-1, B, H] temporary (at 5,000 x 119 x 64, 152 MB: a third of
 * the time of the element-wise form it replaced). The last state's score and term are
 * added apart, the same way in the whole graph and the step.
 */
function lastQueryAttention(g: GraphBuilder, spec: ModelSpec, weights: Map<string, Weight>, s: HeadStates): string {
  const H = spec.hidden;
  const P = spec.T - 1;
  const c = attentionConstants(g, spec, weights);
  const query = g.one('Squeeze', [s.lastState, g.ints('query.axes', [0])]); // [B, H]
  const qk = g.one('Reshape', [g.one('MatMul', [g.one('MatMul', [query, c.wq]), c.wkT]), g.ints('qk.column', [-1, H, 1])]); // [B, H, 1]
  const last = g.one('Reshape', [s.last, g.ints('last.row', [-1, 1, H])]); // [B, 1, H]
  const lastScore = g.one('MatMul', [last, qk]); // [B, 1, 1]
  const scores = s.prefix === '' ? lastScore : g.one('Concat', [g.one('MatMul', [s.prefix, qk]), lastScore], [intAttr('axis', 1)]); // [B, T, 1]
  const a = g.one('Softmax', [g.one('Div', [g.one('Reshape', [scores, g.ints('scores.rows', [-1, P + 1])]), c.scale])], [intAttr('axis', -1)]); // [B, T], over time
  const aLast = g.one('Reshape', [g.one('Slice', [a, g.ints('a.last.start', [P]), g.ints('a.last.end', [P + 1]), g.ints('a.axis', [1])]), g.ints('a.last.shape', [-1, 1, 1])]); // [B, 1, 1]
  let attended = g.one('Mul', [last, aLast]); // [B, 1, H]
  if (s.prefix !== '') {
    const aPrefix = g.one('Reshape', [g.one('Slice', [a, g.ints('a.prefix.start', [0]), g.ints('a.prefix.end', [P]), g.ints('a.prefix.axis', [1])]), g.ints('a.prefix.row', [-1, 1, P])]); // [B, 1, T-1]
    attended = g.one('Add', [g.one('MatMul', [aPrefix, s.prefix]), attended]);
  }
  const out = g.one('MatMul', [g.one('Reshape', [attended, g.ints('attended.rows', [-1, H])]), c.wv]); // [B, H]
  return residualNorm(g, spec, weights, query, out);
}
