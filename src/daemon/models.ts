/**
 * Loads the models a daemon serves on the engine the configuration asks for, and reports
 * them: one log line per model and the factorstream_model_info metric (engine, backend,
 * and why not what was asked for where a fallback happened).
 */
import { resolve } from 'node:path';
import type { Logger } from '../log.js';
import { selectBackend } from '../model/backend.js';
import { loadPredictor, type EngineOptions } from '../model/predictor.js';
import { onnxRuntimeInfo } from '../model/onnx/session.js';
import { CrossSectionScorer } from '../model/scorer.js';
import type { ServingMeta } from '../model/artifact.js';
import type { Metrics } from '../sink/metrics.js';
import type { ScoreSource } from '../sink/scores.js';

/** A model the daemon serves. */
export interface ServedModel {
  dir: string;
  meta: ServingMeta;
  /** Scores on its engine (scorer.engine, scorer.backend). */
  scorer: CrossSectionScorer;
  /** live: published to the score topics; shadow: scored and measured, published to the shadow topic only. */
  role: 'live' | 'shadow';
  /** Why the engine or provider asked for is not in use ('' when it is). */
  fallback: string;
}

/** What a served model's score messages name as their producer. */
export function scoreSourceOf(m: { meta: Pick<ServingMeta, 'name' | 'version' | 'freq'> }): ScoreSource {
  return { model: m.meta.name, modelVersion: m.meta.version, freq: m.meta.freq };
}

/** The labels of a served model's factorstream_model_info series. */
export function modelInfoLabels(m: ServedModel): Record<string, string> {
  return { model: m.meta.name, version: m.meta.version, arch: m.meta.architecture?.arch ?? 'external', head: m.meta.architecture?.head ?? 'external', freq: m.meta.freq, engine: m.scorer.engine, backend: m.scorer.backend, role: m.role, fallback: m.fallback };
}

export async function loadServedModels(dirs: readonly string[], engine: EngineOptions, minCoverage: number, metrics: Metrics, log: Logger, role: ServedModel['role'] = 'live'): Promise<ServedModel[]> {
  const models: ServedModel[] = [];
  for (const dir of dirs) {
    const { predictor, meta, fallback } = await loadPredictor(resolve(dir), { ...engine, log });
    const served: ServedModel = { dir, meta, scorer: new CrossSectionScorer(predictor, meta, minCoverage), role, fallback };
    models.push(served);
    const labels = modelInfoLabels(served);
    metrics.modelInfo.set(labels, 1);
    const runtime = predictor.engine === 'onnx' ? { onnxruntime: (await onnxRuntimeInfo()).version, threads: engine.onnx.threads, spinWait: engine.onnx.spinWait } : {};
    log.info({ ...labels, T: meta.T, ...runtime, dir }, 'model loaded');
  }
  if (models.some((m) => m.scorer.engine === 'tfjs')) {
    const b = await selectBackend(engine.backend);
    metrics.backendInfo.set({ backend: b.name, tensorflow: b.tensorflowVersion ?? '', threads: String(b.threads) }, 1);
  }
  return models;
}
