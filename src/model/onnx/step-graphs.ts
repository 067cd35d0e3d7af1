/**
 * A close scored in one recurrent step (DESIGN §6, "incremental scoring"): the window
 * scored at close t is rows t-T+1 … t, and all but the last are known one bar earlier.
 *   prefix  features [batch, T-1, F] (the rows the next window shares) -> each layer's
 *           last state h_l (and c_l for an LSTM) [1, batch, H], and for an attention head
 *           the top layer's states [T-1, batch, H] (time-major): the recurrence from the
 *           zero state, as the full window runs it
 *   step    row [1, batch, F] (the new bar's row) and the prefix's outputs -> score
 *           [batch, 1]: one step of every layer from its state, then the head on the T
 *           states, the same nodes as the whole graph's (graph.ts)
 * The step's score equals the whole graph's on the T rows to float rounding
 * (test/incremental.test.ts).
 */
import type { ModelSpec } from '../architecture.js';
import type { ModelProto } from './proto.js';
import { GraphBuilder, intAttr, intsAttr, recurrentLayer, scoreHead, type Weight } from './graph.js';

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
  // The top layer's T states: the prefix's T-1, then the new one.
  const states = spec.head === 'last' ? x : g.one('Concat', [g.input(PREFIX_STATES, [spec.T - 1, 'batch', H]), x], [intAttr('axis', 0)]);
  scoreHead(g, spec, weights, states, lastState, STEP_OUTPUT);
  return g.model(`${spec.arch}_${spec.head}_${spec.pooling}_step`, producerVersion, doc);
}
