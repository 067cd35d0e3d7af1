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
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FEATURE_NAMES, FEATURE_SET_ID } from '../features/feature-set.js';
import type { Freq } from '../market/sessions.js';
import type { ModelSpec } from './architecture.js';
import type { BackendInfo } from './backend.js';
import { tf } from './backend.js';
import './architecture.js';

export interface ModelMeta {
  name: string;
  /** Identifies the trained weights: creation time and seed. */
  version: string;
  factorstreamVersion: string;
  featureSet: string;
  features: string[];
  freq: Freq;
  T: number;
  normalisation: { method: 'robust-z'; clip: number; minCoverage: number };
  architecture: ModelSpec;
  /** Outputs are made orthogonal per date to industry and log size (scoring then needs daily data). */
  orthogonal: boolean;
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
  /** A seed ensemble: its members (sub-folders) and the scale applied to each member's output. */
  ensemble?: { members: { dir: string; seed: number; scale: number; validationIc: number }[] };
  /** A rolling set: the windows (sub-folders) and the dates each one scores (inclusive, ISO). */
  rolling?: RollingWindow[];
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
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: weights.byteLength } };
    }),
  );
  writeMeta(dir, meta);
}

export function readMeta(dir: string): ModelMeta {
  return JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as ModelMeta;
}

export function writeMeta(dir: string, meta: ModelMeta): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'meta.json'), JSON.stringify(meta, null, 1) + '\n');
}

/** Reads a folder's meta.json, refusing a model trained on another feature set. */
export function checkedMeta(dir: string): ModelMeta {
  const meta = readMeta(dir);
  if (meta.featureSet !== FEATURE_SET_ID || meta.features.join(',') !== FEATURE_NAMES.join(',')) {
    throw new Error(
      `model ${dir} was trained on feature set ${meta.featureSet} (${meta.features.join(', ')}); this build computes ${FEATURE_SET_ID} (${FEATURE_NAMES.join(', ')})`,
    );
  }
  return meta;
}

/** Loads a single model folder (tfjs layers); throws a clear error when it was trained on another feature set. */
export async function loadModel(dir: string): Promise<{ model: tf.LayersModel; meta: ModelMeta }> {
  const meta = checkedMeta(dir);
  if (meta.ensemble !== undefined || meta.rolling !== undefined) throw new Error(`${dir} is a ${meta.ensemble !== undefined ? 'seed ensemble' : 'rolling set'}: load it with loadPredictor`);
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
