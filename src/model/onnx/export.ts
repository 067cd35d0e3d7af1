/**
 * ONNX export of a trained model folder: the whole network of src/model/architecture.ts
 * (stacked GRU or LSTM, the head, the NN head) as one graph with a dynamic batch
 * dimension, input `features` [batch, T, F] float32, output `score` [batch, 1]. Built from
 * the folder's tfjs weights file directly (no tfjs needed; graph.ts has the layouts). The
 * engines agree to float rounding (test/onnx-parity.test.ts). The orthogonal layer needs
 * the day's exposures and stays in TypeScript, after the graph. Beside it, the recurrent
 * prefix and step graphs (step-graphs.ts) that score a close incrementally.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import type { ModelSpec } from '../architecture.js';
import { factorstreamVersion, readMeta, writeMeta, type ServingMeta } from '../artifact.js';
import { encodeModel, ONNX_OPSET, type ModelProto } from './proto.js';
import { GraphBuilder, intsAttr, recurrentLayer, scoreHead, splitStates, type Weight } from './graph.js';
import { buildPrefixModel, buildStepModel, hasPrefix, PREFIX_FILE, STEP_FILE } from './step-graphs.js';

export const ONNX_FILE = 'model.onnx';
export const ONNX_INPUT = 'features';
export const ONNX_OUTPUT = 'score';

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

/** Builds the ONNX model of an architecture from its weights: input `features` [batch, T, F], output `score` [batch, 1]. */
export function buildOnnxModel(spec: ModelSpec, weights: Map<string, Weight>, producerVersion: string, doc = ''): ModelProto {
  const g = new GraphBuilder();
  let x = g.one('Transpose', [g.input(ONNX_INPUT, ['batch', spec.T, spec.F])], [intsAttr('perm', [1, 0, 2])], 'time_major'); // [T, B, F]
  let lastState = '';
  for (let l = 0; l < spec.layers; l++) {
    const r = recurrentLayer(g, spec, weights, l, x);
    x = r.states; // [T, B, H]
    lastState = r.h;
  }
  scoreHead(g, spec, weights, splitStates(g, spec, x, lastState), ONNX_OUTPUT);
  return g.model(`${spec.arch}_${spec.head}_${spec.pooling}`, producerVersion, doc);
}

export type GraphKind = 'whole' | 'prefix' | 'step';

const BUILDERS: Record<GraphKind, (spec: ModelSpec, weights: Map<string, Weight>, producerVersion: string, doc: string) => ModelProto> = {
  whole: buildOnnxModel,
  prefix: buildPrefixModel,
  step: buildStepModel,
};

/** The ONNX bytes of one graph of a single (not ensemble or rolling) tfjs model folder. */
export function onnxBytesOf(dir: string, meta: ServingMeta, kind: GraphKind = 'whole'): Uint8Array {
  if (meta.architecture === undefined) throw new Error(`${dir}: meta.json has no architecture (an external model cannot be exported; it is ONNX already)`);
  return encodeModel(BUILDERS[kind](meta.architecture, readTfjsWeights(dir), factorstreamVersion(), `${meta.name} ${meta.version}`));
}

/**
 * Writes model.onnx (and, for T >= 2, its prefix and step graphs) beside the tfjs weights
 * of a model folder, recursing into ensemble members and rolling windows, and records them
 * in each meta.json. Returns the files written.
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
  written.push(file);
  const steps = meta.architecture !== undefined && hasPrefix(meta.architecture);
  if (steps) {
    writeFileSync(join(dir, PREFIX_FILE), onnxBytesOf(dir, meta, 'prefix'));
    writeFileSync(join(dir, STEP_FILE), onnxBytesOf(dir, meta, 'step'));
    written.push(join(dir, PREFIX_FILE), join(dir, STEP_FILE));
  }
  const onnx = { file: ONNX_FILE, input: ONNX_INPUT, output: ONNX_OUTPUT, source: 'export' as const, opset: ONNX_OPSET, weightsSha256: weightsDigest(dir), ...(steps ? { prefixFile: PREFIX_FILE, stepFile: STEP_FILE } : {}) };
  writeMeta(dir, { ...meta, onnx });
  return written;
}
