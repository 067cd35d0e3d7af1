/**
 * A model artifact is a folder: `model.json` + `weights.bin` (tfjs layers format) and
 * `meta.json` (what the model needs to be served: feature set and order, T, frequency,
 * normalisation, architecture, training window, validation metrics, backend, version).
 * Loading checks the feature set first and refuses a model trained on other features.
 *
 * Two compositions keep that shape: a seed ensemble (`meta.ensemble`: member folders
 * `seed-<s>/`, each a model folder, whose outputs are averaged after scaling each to unit
 * cross-sectional spread) and a rolling set (`meta.rolling`: one folder per training
 * window, each scoring the dates after its window; meta.json at the top is the newest
 * window's, so that serving the set serves its newest model).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FEATURE_NAMES, FEATURE_SET_ID } from '../features/feature-set.js';
import { z } from 'zod';
import { FREQUENCIES, type Freq } from '../market/sessions.js';
import type { ModelSpec } from './architecture.js';
import type { BackendInfo } from './backend.js';
import { tf } from './backend.js';
import './architecture.js';
import { systemClock } from '../market/clock.js';

/** Where a folder's ONNX graph is and what its input and output are called. */
export interface OnnxInfo {
  /** File name in the model folder. */
  file: string;
  /** Input [batch, T, F] float32 and output [batch] or [batch, 1] float32. */
  input: string;
  output: string;
  /** `export`: written by factorstream export from this folder's tfjs weights; `external`: trained elsewhere. */
  source: 'export' | 'external';
  opset?: number;
  /** sha256 of weights.bin at export: a stale graph (weights changed since) is rebuilt at load. */
  weightsSha256?: string;
  /** Exported native models: the recurrent prefix and step graphs (onnx/step-graphs.ts) beside the whole one. */
  prefixFile?: string;
  stepFile?: string;
}

/** A model's universe filter (meta.json `universe`): index membership, ST and suspension from the day's reference data. */
export interface UniverseFilter {
  index?: string;
  excludeST: boolean;
  excludeSuspended: boolean;
}

export const ServingMetaSchema = z
  .object({
    name: z.string().min(1),
    version: z.string().min(1),
    featureSet: z.string(),
    features: z.array(z.string()),
    freq: z.enum(FREQUENCIES),
    T: z.number().int().min(1),
    normalisation: z.object({ method: z.literal('robust-z'), clip: z.number().positive(), minCoverage: z.number().min(0).max(1) }),
    orthogonal: z.boolean().default(false),
    universe: z
      .object({
        /** Only members of this index (reference data `indexes`, weight > 0). */
        index: z.string().min(1).optional(),
        excludeST: z.boolean().default(false),
        excludeSuspended: z.boolean().default(false),
      })
      .strict()
      .optional(),
    onnx: z
      .object({
        file: z.string().min(1),
        input: z.string().min(1),
        output: z.string().min(1),
        source: z.enum(['export', 'external']),
        opset: z.number().int().optional(),
        weightsSha256: z.string().optional(),
        prefixFile: z.string().min(1).optional(),
        stepFile: z.string().min(1).optional(),
      })
      .optional(),
  })
  .loose();

/**
 * What serving needs of any model folder, native or external: the feature contract (set,
 * order, T, normalisation), frequency, identity, and where its graph is.
 */
export interface ServingMeta {
  name: string;
  /** Identifies the trained weights: creation time and seed. */
  version: string;
  featureSet: string;
  features: string[];
  freq: Freq;
  T: number;
  normalisation: { method: 'robust-z'; clip: number; minCoverage: number };
  /** Outputs are made orthogonal per date to industry and log size (scoring then needs daily data). */
  orthogonal: boolean;
  /** Which symbols the model scores, by the day's reference data (none: every covered symbol). */
  universe?: UniverseFilter;
  onnx?: OnnxInfo;
  /** Native models only: external ONNX models have no architecture here. */
  architecture?: ModelSpec;
  /** A seed ensemble: its members (sub-folders) and the scale applied to each member's output. */
  ensemble?: { members: { dir: string; seed: number; scale: number; validationIc: number }[] };
  /** A rolling set: the windows (sub-folders) and the dates each one scores (inclusive, ISO). */
  rolling?: RollingWindow[];
}

/** A model trained by factorstream: the serving part plus how it was made. */
export interface ModelMeta extends ServingMeta {
  factorstreamVersion: string;
  architecture: ModelSpec;
  label: { kind: 'raw' | 'risk-adjusted'; horizonDays: number };
  training: {
    loss: string;
    learningRate: number;
    epochs: number;
    bestEpoch: number;
    trainDates: [string, string];
    validationDates: [string, string];
    samplesPerSecond: number;
  };
  validation: { ic: number };
  backend: BackendInfo;
  createdAt: string;
}

export interface RollingWindow {
  dir: string;
  trainFrom: string;
  trainTo: string;
  scoreFrom: string;
  scoreTo: string;
  validationIc: number;
}

export function factorstreamVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** The meta.json of a model that was built but not trained (benchmarks and tests: its cost and layout are a trained one's). */
export function untrainedMeta(name: string, spec: ModelSpec, freq: Freq, backend: BackendInfo, minCoverage = 0.5): ModelMeta {
  return {
    name,
    version: `untrained-s${spec.seed}`,
    factorstreamVersion: factorstreamVersion(),
    featureSet: FEATURE_SET_ID,
    features: [...FEATURE_NAMES],
    freq,
    T: spec.T,
    normalisation: { method: 'robust-z', clip: 5, minCoverage },
    architecture: spec,
    orthogonal: false,
    label: { kind: 'raw', horizonDays: 5 },
    training: { loss: 'ic', learningRate: 0, epochs: 0, bestEpoch: 0, trainDates: ['', ''], validationDates: ['', ''], samplesPerSecond: 0 },
    validation: { ic: 0 },
    backend,
    createdAt: new Date(systemClock.now()).toISOString(),
  };
}

export async function saveModel(dir: string, model: tf.LayersModel, meta: ModelMeta): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weights = artifacts.weightData === undefined ? new Uint8Array(0) : new Uint8Array(artifacts.weightData as ArrayBuffer);
      writeFileSync(join(dir, 'weights.bin'), weights);
      const modelJson = {
        format: 'layers-model',
        generatedBy: `TensorFlow.js tfjs-layers v${tf.version.tfjs}`,
        convertedBy: null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
      };
      writeFileSync(join(dir, 'model.json'), JSON.stringify(modelJson));
      return { modelArtifactsInfo: { dateSaved: new Date(systemClock.now()), modelTopologyType: 'JSON', weightDataBytes: weights.byteLength } };
    }),
  );
  writeMeta(dir, meta);
}

export function readMeta(dir: string): ModelMeta {
  // Unchecked: callers that serve a folder go through checkedMeta.
  return JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as ModelMeta;
}

export function writeMeta(dir: string, meta: ServingMeta): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'meta.json'), JSON.stringify(meta, null, 1) + '\n');
}

/**
 * Reads and checks a folder's meta.json: the serving fields must be there (the contract of
 * an external model), and the feature set must be the one this build computes.
 */
export function checkedMeta(dir: string): ServingMeta {
  const parsed = ServingMetaSchema.safeParse(readMeta(dir));
  if (!parsed.success) throw new Error(`${join(dir, 'meta.json')} is not a valid model description: ${z.prettifyError(parsed.error).replace(/\n/g, '; ')}`);
  const meta = parsed.data as ServingMeta;
  if (meta.featureSet !== FEATURE_SET_ID || meta.features.join(',') !== FEATURE_NAMES.join(',')) {
    throw new Error(
      `model ${dir} was trained on feature set ${meta.featureSet} (${meta.features.join(', ')}); this build computes ${FEATURE_SET_ID} (${FEATURE_NAMES.join(', ')})`,
    );
  }
  return meta;
}

/** Loads a single model folder's tfjs layers model; throws a clear error when it was trained on another feature set or has no tfjs weights. */
export async function loadModel(dir: string): Promise<{ model: tf.LayersModel; meta: ServingMeta }> {
  const meta = checkedMeta(dir);
  if (meta.ensemble !== undefined || meta.rolling !== undefined) throw new Error(`${dir} is a ${meta.ensemble !== undefined ? 'seed ensemble' : 'rolling set'}: load it with loadPredictor`);
  if (!existsSync(join(dir, 'model.json'))) throw new Error(`${dir} has no tfjs weights (model.json): it is served by the onnx engine only`);
  const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as { modelTopology: object; weightsManifest: { weights: tf.io.WeightsManifestEntry[] }[] };
  const weights = readFileSync(join(dir, 'weights.bin'));
  const model = await tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs: json.weightsManifest.flatMap((m) => m.weights),
      weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
    }),
  );
  return { model, meta };
}
