/**
 * Loads the models a daemon serves, on the tfjs backend chosen once for the process, and
 * reports them (log line and the factorstream_model_info metric).
 */
import { resolve } from 'node:path';
import type { Logger } from '../log.js';
import { loadPredictor } from '../model/predictor.js';
import { selectAndLogBackend, type BackendInfo, type BackendPreference } from '../model/backend.js';
import { CrossSectionScorer } from '../model/scorer.js';
import type { Metrics } from '../sink/metrics.js';
import type { ServedModel } from './pipeline.js';

export async function loadServedModels(
  dirs: readonly string[],
  preference: BackendPreference,
  minCoverage: number,
  metrics: Metrics,
  log: Logger,
): Promise<{ models: ServedModel[]; backend: BackendInfo }> {
  const backend = await selectAndLogBackend(preference, log);
  metrics.backendInfo.set({ backend: backend.name, tensorflow: backend.tensorflowVersion ?? '', threads: String(backend.threads) }, 1);
  const models: ServedModel[] = [];
  for (const dir of dirs) {
    const { predictor, meta } = await loadPredictor(resolve(dir));
    if (meta.orthogonal) {
      throw new Error(`model ${meta.name} (${dir}) was trained with the orthogonal layer, which needs the day's exposures; serve does not have them yet — train without --orthogonal for live scoring`);
    }
    const served: ServedModel = { dir, meta, scorer: new CrossSectionScorer(predictor, meta, minCoverage), engine: 'tfjs' };
    models.push(served);
    const a = meta.architecture;
    metrics.modelInfo.set({ model: meta.name, version: meta.version, arch: a.arch, head: a.head, freq: meta.freq, engine: served.engine, backend: backend.name, role: 'live' }, 1);
    log.info({ model: meta.name, version: meta.version, freq: meta.freq, T: meta.T, arch: a.arch, head: a.head, engine: served.engine, backend: backend.name, dir }, 'model loaded');
  }
  return { models, backend };
}
