/**
 * ONNX export of a trained model folder: the whole network of src/model/architecture.ts
 * (stacked GRU or LSTM, the head, the NN head) as one graph with a dynamic batch
 * dimension, input `features` [batch, T, F] float32, output `score` [batch, 1]. Built from
 * the folder's tfjs weights file directly (no tfjs needed), with the layouts tfjs trained
 * them in:
 *   GRU   tfjs kernel [F, 3H] gates (z, r, h), one bias, reset applied before the
 *         recurrent product -> ONNX W [1, 3H, F], R [1, 3H, H], B [1, 6H] with zero
 *         recurrent biases, linear_before_reset = 0 (same gate order).
 *   LSTM  tfjs gates (i, f, c, o) -> ONNX (i, o, f, c).
 *   Attention is SelfAttention.call's (division by sqrt(units), softmax over time,
 *   LayerNorm with epsilon 1e-5 for the residual head); the last-query form is reassociated
 *   to skip the per-step projections (below). The engines agree to float rounding
 *   (test/onnx-parity.test.ts). The orthogonal layer needs the day's exposures and stays in
 *   TypeScript, after the graph.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import type { ModelSpec } from '../architecture.js';
import { factorstreamVersion, readMeta, writeMeta, type ServingMeta } from '../artifact.js';
import { encodeModel, ONNX_FLOAT, ONNX_IR_VERSION, ONNX_OPSET, type AttributeProto, type ModelProto, type NodeProto, type TensorProto } from './proto.js';

export const ONNX_FILE = 'model.onnx';
export const ONNX_INPUT = 'features';
export const ONNX_OUTPUT = 'score';

interface Weight {
  shape: number[];
  data: Float32Array;
}

/**
 * Reads a tfjs layers artifact's weights by name (`layer/weight`). tfjs may suffix the
 * weight part with `_<n>` when several models lived in one process; the suffix is dropped.
 */
export function readTfjsWeights(dir: string): Map<string, Weight> {
  const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as { weightsManifest: { weights: { name: string; shape: number[]; dtype: string }[] }[] };
  const bin = readFileSync(join(dir, 'weights.bin'));
  const out = new Map<string, Weight>();
  let offset = 0;
  for (const w of json.weightsManifest.flatMap((m) => m.weights)) {
    if (w.dtype !== 'float32') throw new Error(`${dir}: weight ${w.name} is ${w.dtype}; export handles float32 weights`);
    const size = w.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    new Uint8Array(data.buffer).set(bin.subarray(offset, offset + size * 4));
    offset += size * 4;
    const [layer, name] = w.name.split('/');
    out.set(`${layer}/${name.replace(/_\d+$/, '')}`, { shape: w.shape, data });
  }
  if (offset !== bin.byteLength) throw new Error(`${dir}: weights.bin has ${bin.byteLength} bytes, the manifest describes ${offset}`);
  return out;
}

/** The weights of a tfjs model in memory, by the names its artifact would store (benchmarks, tests). */
export function weightsOfModel(model: tf.LayersModel): Map<string, Weight> {
  return new Map(model.weights.map((w) => [w.originalName.replace(/_\d+$/, ''), { shape: w.shape as number[], data: w.read().dataSync() as Float32Array }]));
}

/** sha256 of the weights a graph was exported from: serving compares it to catch a stale model.onnx. */
export function weightsDigest(dir: string): string {
  return createHash('sha256').update(readFileSync(join(dir, 'weights.bin'))).digest('hex');
}

/** [rows, cols] row-major -> its transpose. */
function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
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

class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
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
}

const intAttr = (name: string, i: number): AttributeProto => ({ name, type: 2, i });
const floatAttr = (name: string, f: number): AttributeProto => ({ name, type: 1, f });
const intsAttr = (name: string, ints: number[]): AttributeProto => ({ name, type: 7, ints });

function need(weights: Map<string, Weight>, name: string, shape: number[]): Float32Array {
  const w = weights.get(name);
  if (w === undefined) throw new Error(`weight ${name} is missing (have ${[...weights.keys()].join(', ')})`);
  if (w.shape.join('x') !== shape.join('x')) throw new Error(`weight ${name} has shape [${w.shape.join(', ')}], the architecture needs [${shape.join(', ')}]`);
  return w.data;
}

/** Builds the ONNX model of an architecture from its weights. */
export function buildOnnxModel(spec: ModelSpec, weights: Map<string, Weight>, producerVersion: string, doc = ''): ModelProto {
  const g = new GraphBuilder();
  const { T, F, hidden: H } = spec;
  const gates = spec.arch === 'gru' ? 3 : 4;
  // tfjs (i, f, c, o) -> ONNX (i, o, f, c); the GRU's (z, r, h) is ONNX's order already.
  const order = spec.arch === 'gru' ? [0, 1, 2] : [0, 3, 1, 2];
  let x = g.one('Transpose', [ONNX_INPUT], [intsAttr('perm', [1, 0, 2])], 'time_major'); // [T, B, F]
  let lastState = '';
  for (let l = 0; l < spec.layers; l++) {
    const layer = `${spec.arch}_${l}`;
    const inDim = l === 0 ? F : H;
    const W = reorderBlocks(transpose(need(weights, `${layer}/kernel`, [inDim, gates * H]), inDim, gates * H), H * inDim, order);
    const R = reorderBlocks(transpose(need(weights, `${layer}/recurrent_kernel`, [H, gates * H]), H, gates * H), H * H, order);
    const B = new Float32Array(2 * gates * H);
    B.set(reorderBlocks(need(weights, `${layer}/bias`, [gates * H]), H, order));
    const inputs = [x, g.constant(`${layer}.W`, [1, gates * H, inDim], W), g.constant(`${layer}.R`, [1, gates * H, H], R), g.constant(`${layer}.B`, [1, 2 * gates * H], B)];
    const attrs = [intAttr('hidden_size', H), ...(spec.arch === 'gru' ? [intAttr('linear_before_reset', 0)] : [])];
    const [y, yh] = g.node(spec.arch === 'gru' ? 'GRU' : 'LSTM', inputs, attrs, 2, layer); // Y [T, 1, B, H], Y_h [1, B, H]
    x = g.one('Squeeze', [y, g.ints(`${layer}.axes`, [1])]); // [T, B, H]
    lastState = yh;
  }
  let pooled: string;
  if (spec.head === 'last') {
    pooled = g.one('Squeeze', [lastState, g.ints('last.axes', [0])]); // [B, H]
  } else {
    const lastQuery = spec.pooling === 'last-query';
    const wq = g.constant('attention.wq', [H, H], need(weights, 'attention/wq', [H, H]));
    const wkData = need(weights, 'attention/wk', [H, H]);
    const wv = g.constant('attention.wv', [H, H], need(weights, 'attention/wv', [H, H]));
    const scale = g.constant('attention.scale', [], Float32Array.of(Math.sqrt(H)));
    let out: string;
    let query: string;
    if (lastQuery) {
      // One query per sequence, computed on the time-major states [T, B, H] the recurrent
      // op returns (no [B*T, H] transpose), with the products reassociated so that nothing
      // is projected per time step: (q Wq)(S Wk)^T = ((q Wq) Wk^T) S^T and a (S Wv) =
      // (a S) Wv — two [B*T, H] x [H, H] products become [B, H] ones (equal to rounding).
      query = g.one('Squeeze', [lastState, g.ints('query.axes', [0])]); // [B, H]
      const qk = g.one('MatMul', [g.one('MatMul', [query, wq]), g.constant('attention.wk_t', [H, H], transpose(wkData, H, H))]); // [B, H]
      const scores = g.one('Div', [g.one('ReduceSum', [g.one('Mul', [x, qk]), g.ints('scores.axes', [2])], [intAttr('keepdims', 1)]), scale]); // [T, B, 1]
      const a = g.one('Softmax', [scores], [intAttr('axis', 0)]); // over time
      out = g.one('MatMul', [g.one('ReduceSum', [g.one('Mul', [x, a]), g.ints('pool.axes0', [0])], [intAttr('keepdims', 0)]), wv]); // [B, H]
    } else {
      const states = g.one('Transpose', [x], [intsAttr('perm', [1, 0, 2])], 'batch_major'); // [B, T, H]
      query = states;
      const q = g.one('MatMul', [query, wq]);
      const k = g.one('MatMul', [states, g.constant('attention.wk', [H, H], wkData)]);
      const scores = g.one('Div', [g.one('MatMul', [q, g.one('Transpose', [k], [intsAttr('perm', [0, 2, 1])])]), scale]);
      const a = g.one('Softmax', [scores], [intAttr('axis', -1)]);
      out = g.one('MatMul', [a, g.one('MatMul', [states, wv])]); // [B, T, H]
    }
    if (spec.head === 'residual') {
      const gamma = g.constant('attention.gamma', [H], need(weights, 'attention/gamma', [H]));
      const beta = g.constant('attention.beta', [H], need(weights, 'attention/beta', [H]));
      out = g.one('LayerNormalization', [g.one('Add', [query, out]), gamma, beta], [intAttr('axis', -1), floatAttr('epsilon', 1e-5)]);
    }
    if (lastQuery) pooled = out;
    else if (spec.pooling === 'mean') pooled = g.one('ReduceMean', [out], [intsAttr('axes', [1]), intAttr('keepdims', 0)]);
    else pooled = g.one('Flatten', [out], [intAttr('axis', 1)]); // [B, T*H], tfjs flatten's order
  }
  const pooledDim = spec.head !== 'last' && spec.pooling === 'flatten' ? T * H : H;
  const dense = g.one('Relu', [g.one('Gemm', [pooled, g.constant('nn_hidden.kernel', [pooledDim, spec.dense], need(weights, 'nn_hidden/kernel', [pooledDim, spec.dense])), g.constant('nn_hidden.bias', [spec.dense], need(weights, 'nn_hidden/bias', [spec.dense]))])]);
  // Dropout is the identity at inference.
  g.nodes.push({ name: 'score', opType: 'Gemm', input: [dense, g.constant('score.kernel', [spec.dense, 1], need(weights, 'score/kernel', [spec.dense, 1])), g.constant('score.bias', [1], need(weights, 'score/bias', [1]))], output: [ONNX_OUTPUT], attribute: [] });
  const tensorType = (dims: (number | string)[]): ModelProto['graph']['input'][number]['type'] => ({
    tensorType: { elemType: ONNX_FLOAT, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } },
  });
  return {
    irVersion: ONNX_IR_VERSION,
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    producerName: 'factorstream',
    producerVersion,
    docString: doc,
    graph: {
      name: `${spec.arch}_${spec.head}_${spec.pooling}`,
      node: g.nodes,
      initializer: g.initializers,
      input: [{ name: ONNX_INPUT, type: tensorType(['batch', T, F]) }],
      output: [{ name: ONNX_OUTPUT, type: tensorType(['batch', 1]) }],
    },
  };
}

/** The ONNX bytes of a single (not ensemble or rolling) tfjs model folder. */
export function onnxBytesOf(dir: string, meta: ServingMeta): Uint8Array {
  if (meta.architecture === undefined) throw new Error(`${dir}: meta.json has no architecture (an external model cannot be exported; it is ONNX already)`);
  return encodeModel(buildOnnxModel(meta.architecture, readTfjsWeights(dir), factorstreamVersion(), `${meta.name} ${meta.version}`));
}

/**
 * Writes model.onnx beside the tfjs weights of a model folder, recursing into ensemble
 * members and rolling windows, and records it in each meta.json. Returns the files written.
 */
export function exportOnnx(dir: string): string[] {
  const meta = readMeta(dir);
  const written: string[] = [];
  if (meta.rolling !== undefined || meta.ensemble !== undefined) {
    const subdirs = meta.rolling?.map((w) => w.dir) ?? meta.ensemble?.members.map((m) => m.dir) ?? [];
    for (const sub of subdirs) written.push(...exportOnnx(join(dir, sub)));
    return written;
  }
  if (meta.onnx?.source === 'external') throw new Error(`${dir} is an external ONNX model; there is nothing to export`);
  const file = join(dir, ONNX_FILE);
  writeFileSync(file, onnxBytesOf(dir, meta));
  writeMeta(dir, { ...meta, onnx: { file: ONNX_FILE, input: ONNX_INPUT, output: ONNX_OUTPUT, source: 'export', opset: ONNX_OPSET, weightsSha256: weightsDigest(dir) } });
  written.push(file);
  return written;
}
