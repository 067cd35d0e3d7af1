/**
 * A close scored in one recurrent step (DESIGN §6, "incremental scoring"): the window
 * scored at close t is rows t-T+1 … t, and all but the last are known one bar earlier.
 *   prefix  features [batch, T-1, F] (the rows the next window shares) -> each layer's
 *           last state h_l (and c_l for an LSTM) [1, batch, H], and for an attention head
 *           the top layer's states: the recurrence from the zero state, as the full
 *           window runs it
 *   step    row [1, batch, F] (the new bar's row) and the prefix's outputs -> score
 *           [batch, 1]: one step of every layer from its state, then the head on the T
 *           states
 * The states are time-major, [T-1, batch, H], as the recurrent op returns them. The
 * last-query heads attend in two parts — the prefix states, then the new one — with the
 * whole graph's nodes, so the step never copies the [T, batch, H] window (at 5,000 x 120
 * x 64, 150 MB) and computes every value as the whole graph does (an earlier form with
 * batched products was 1e-7 off, enough to swap the ranks of near-tied scores). The
 * full-attention poolings (mean, flatten) attend from every state, so their step joins
 * the states and runs the whole graph's head nodes. The step's score equals the whole
 * graph's (test/incremental.test.ts, and the parity suites compare ranks).
 */
import type { ModelSpec } from '../architecture.js';
import type { ModelProto } from './proto.js';
import { attentionConstants, GraphBuilder, intAttr, intsAttr, nnHead, recurrentLayer, residualNorm, scoreHead, type Weight } from './graph.js';

export const PREFIX_FILE = 'model.prefix.onnx';
export const STEP_FILE = 'model.step.onnx';
export const PREFIX_INPUT = 'features';
export const STEP_ROW = 'row';
export const PREFIX_STATES = 'states';
export const STEP_OUTPUT = 'score';

/** The names of the state tensors a prefix hands to the step, in layer order. */
export function stateNames(spec: Pick<ModelSpec, 'arch' | 'head' | 'layers'>): string[] {
  const names: string[] = [];
  for (let l = 0; l < spec.layers; l++) names.push(`h_${l}`, ...(spec.arch === 'lstm' ? [`c_${l}`] : []));
  if (spec.head !== 'last') names.push(PREFIX_STATES);
  return names;
}

/** Whether an architecture can be scored incrementally (a window of one row has no prefix). */
export function hasPrefix(spec: Pick<ModelSpec, 'T'>): boolean {
  return spec.T >= 2;
}

export function buildPrefixModel(spec: ModelSpec, weights: Map<string, Weight>, producerVersion: string, doc = ''): ModelProto {
  const g = new GraphBuilder();
  const P = spec.T - 1;
  let x = g.one('Transpose', [g.input(PREFIX_INPUT, ['batch', P, spec.F])], [intsAttr('perm', [1, 0, 2])], 'time_major'); // [T-1, B, F]
  for (let l = 0; l < spec.layers; l++) {
    const r = recurrentLayer(g, spec, weights, l, x);
    g.output(`h_${l}`, r.h, [1, 'batch', spec.hidden]);
    if (spec.arch === 'lstm') g.output(`c_${l}`, r.c, [1, 'batch', spec.hidden]);
    x = r.states;
  }
  if (spec.head !== 'last') g.output(PREFIX_STATES, x, [P, 'batch', spec.hidden]);
  return g.model(`${spec.arch}_${spec.head}_${spec.pooling}_prefix`, producerVersion, doc);
}

export function buildStepModel(spec: ModelSpec, weights: Map<string, Weight>, producerVersion: string, doc = ''): ModelProto {
  const g = new GraphBuilder();
  const H = spec.hidden;
  let x = g.input(STEP_ROW, [1, 'batch', spec.F]);
  let lastState = '';
  for (let l = 0; l < spec.layers; l++) {
    const h = g.input(`h_${l}`, [1, 'batch', H]);
    const c = spec.arch === 'lstm' ? g.input(`c_${l}`, [1, 'batch', H]) : '';
    const r = recurrentLayer(g, spec, weights, l, x, { h, c });
    x = r.states; // [1, B, H]
    lastState = r.h;
  }
  if (spec.head !== 'last' && spec.pooling === 'last-query') {
    nnHead(g, spec, weights, lastQueryStep(g, spec, weights, g.input(PREFIX_STATES, [spec.T - 1, 'batch', H]), x, lastState), STEP_OUTPUT);
  } else {
    // The top layer's T states: the prefix's T-1, then the new one.
    const states = spec.head === 'last' ? x : g.one('Concat', [g.input(PREFIX_STATES, [spec.T - 1, 'batch', H]), x], [intAttr('axis', 0)]);
    scoreHead(g, spec, weights, states, lastState, STEP_OUTPUT);
  }
  return g.model(`${spec.arch}_${spec.head}_${spec.pooling}_step`, producerVersion, doc);
}

/**
 * The last-query attention of the new state q ([1, B, H], time-major) over the prefix
 * states S [T-1, B, H] and q itself, pooled (and layer-normalised for the residual head):
 * the whole graph's nodes (graph.ts) applied to the two parts — scores per state, softmax
 * over the T of them, the attended sum over the prefix and then the new state's term —
 * so that nothing joins a [T, B, H] copy and every value is computed as the whole graph
 * computes it.
 */
function lastQueryStep(g: GraphBuilder, spec: ModelSpec, weights: Map<string, Weight>, prefixStates: string, newState: string, lastState: string): string {
  const P = spec.T - 1;
  const c = attentionConstants(g, spec, weights);
  const query = g.one('Squeeze', [lastState, g.ints('query.axes', [0])]); // [B, H]
  const qk = g.one('MatMul', [g.one('MatMul', [query, c.wq]), c.wkT]); // [B, H]
  const hAxis = g.ints('scores.axes', [2]);
  const score = (states: string): string => g.one('ReduceSum', [g.one('Mul', [states, qk]), hAxis], [intAttr('keepdims', 1)]);
  const a = g.one('Softmax', [g.one('Div', [g.one('Concat', [score(prefixStates), score(newState)], [intAttr('axis', 0)]), c.scale])], [intAttr('axis', 0)]); // [T, B, 1]
  const tAxis = g.ints('time.axis', [0]);
  const aPrefix = g.one('Slice', [a, g.ints('prefix.start', [0]), g.ints('prefix.end', [P]), tAxis]); // [T-1, B, 1]
  const aNew = g.one('Slice', [a, g.ints('new.start', [P]), g.ints('new.end', [P + 1]), tAxis]); // [1, B, 1]
  const attended = (states: string, weight: string): string => g.one('ReduceSum', [g.one('Mul', [states, weight]), tAxis], [intAttr('keepdims', 0)]); // [B, H]
  const out = g.one('MatMul', [g.one('Add', [attended(prefixStates, aPrefix), attended(newState, aNew)]), c.wv]); // [B, H]
  return residualNorm(g, spec, weights, query, out);
}
