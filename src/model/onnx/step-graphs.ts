/**
 * A close scored in one recurrent step (DESIGN §6, "incremental scoring"): the window
 * scored at close t is rows t-T+1 … t, and all but the last are known one bar earlier.
 *   prefix  features [batch, T-1, F] (the rows the next window shares) -> each layer's
 *           last state h_l (and c_l for an LSTM) [1, batch, H], and for an attention head
 *           the top layer's states, batch-major [batch, T-1, H]: the recurrence from the
 *           zero state, as the full window runs it
 *   step    row [1, batch, F] (the new bar's row) and the prefix's outputs -> score
 *           [batch, 1]: one step of every layer from its state, then the head
 * The head is the whole graph's own (graph.ts scoreHead on HeadStates): the whole graph
 * splits its states into the same prefix and last state, so the step computes every value
 * as the whole window does and its score is the whole graph's, bit for bit
 * (test/incremental.test.ts; an earlier step with products of its own was 1e-7 off, enough
 * to swap the ranks of near-tied scores). The prefix's states are transposed to batch-major
 * between closes, so the step's last-query attention reads them once in two batched
 * products and copies nothing of the [T-1, batch, H] window (at 5,000 x 119 x 64, 152 MB).
 */
import type { ModelSpec } from '../architecture.js';
import type { ModelProto } from './proto.js';
import { GraphBuilder, intsAttr, recurrentLayer, scoreHead, type Weight } from './graph.js';

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
  // Batch-major, as the head reads them (graph.ts, HeadStates): transposed here, between closes, not at the close.
  if (spec.head !== 'last') g.output(PREFIX_STATES, g.one('Transpose', [x], [intsAttr('perm', [1, 0, 2])], 'batch_major'), ['batch', P, spec.hidden]);
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
  const prefix = spec.head === 'last' ? '' : g.input(PREFIX_STATES, ['batch', spec.T - 1, H]);
  scoreHead(g, spec, weights, { prefix, last: x, lastState }, STEP_OUTPUT);
  return g.model(`${spec.arch}_${spec.head}_${spec.pooling}_step`, producerVersion, doc);
}
