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
import type { Metrics } from '../sink/metrics.js';
import type { ServedModel } from './pipeline.js';

export async function loadServedModels(dirs: readonly string[], engine: EngineOptions, minCoverage: number, metrics: Metrics, log: Logger): Promise<ServedModel[]> {
  const models: ServedModel[] = [];
  for (const dir of dirs) {
    const { predictor, meta, fallback } = await loadPredictor(resolve(dir), { ...engine, log });
    if (meta.orthogonal) {
      await predictor.dispose();
      throw new Error(`model ${meta.name} (${dir}) was trained with the orthogonal layer, which needs the day's exposures; serve does not have them yet — train without --orthogonal for live scoring`);
    }
    const served: ServedModel = { dir, meta, scorer: new CrossSectionScorer(predictor, meta, minCoverage), engine: predictor.engine };
    models.push(served);
    const arch = meta.architecture?.arch ?? 'external';
    const head = meta.architecture?.head ?? 'external';
    metrics.modelInfo.set({ model: meta.name, version: meta.version, arch, head, freq: meta.freq, engine: predictor.engine, backend: predictor.backend, role: 'live', fallback }, 1);
    const runtime = predictor.engine === 'onnx' ? { onnxruntime: (await onnxRuntimeInfo()).version, threads: engine.onnx.threads } : {};
    log.info({ model: meta.name, version: meta.version, freq: meta.freq, T: meta.T, arch, head, engine: predictor.engine, backend: predictor.backend, ...runtime, ...(fallback === '' ? {} : { fallback }), dir }, 'model loaded');
  }
  if (models.some((m) => m.engine === 'tfjs')) {
    const b = await selectBackend(engine.backend);
    metrics.backendInfo.set({ backend: b.name, tensorflow: b.tensorflowVersion ?? '', threads: String(b.threads) }, 1);
  }
  return models;
}
