/**
 * A close's output path run once at start on a synthetic cross-section, sending and
 * writing nothing: the score records and each served model's messages (closeBatches, as a
 * close builds them), the transaction's requests (topicRounds) encoded as kafkajs encodes
 * them, and the outputs packed as a checkpoint packs them. A fresh start's first three
 * closes each spent about 70 ms more of the main thread than later ones (a CPU profile of
 * the daemon bench, 2026-12-07) in exactly that code, run for the first time: V8 had not
 * compiled it yet. Daemons restarted before the open met that at 9:40, the day's first
 * close. What cannot run without the broker (the socket, the broker's answer), the bars'
 * own close and the state's increment stay cold: the state is not touched (after a
 * restore its increment is the whole state, a different path, hundreds of milliseconds
 * to serialise at 5,000 symbols).
 */
import { encodeProduceRequest } from '../ingest/kafka-produce-encoding.js';
import { topicRounds, type PartitionOf } from '../ingest/kafka-chunks.js';
import { stopwatch } from '../market/clock.js';
import type { ServingMeta } from '../model/artifact.js';
import type { ScoredCrossSection } from '../model/scorer.js';
import { scoreRecords } from '../sink/scores.js';
import { encodeOutputs } from './checkpoint.js';
import { scoreSourceOf, type ServedModel } from './models.js';
import { closeBatches, type OutputBatch, type PipelineTopics } from './pipeline.js';

/** A whole market's cross-section: each per-message function runs thousands of times, enough for V8's optimising compiler. */
export const WARM_UP_SYMBOLS = 5_000;
/** Twice: the second round runs the code as the first compiled it. */
const ROUNDS = 2;

export interface WarmUpOptions {
  /** The served models, live and shadow. */
  models: readonly { meta: Pick<ServingMeta, 'name' | 'version' | 'freq'>; role: ServedModel['role'] }[];
  topics: Pick<PipelineTopics, 'scores' | 'scoresBatch' | 'shadowScores'>;
  partitionOf: PartitionOf | undefined;
  transactionalId: string;
  symbols?: number;
}

/** A cross-section of `n` symbols with scores spread as a model's are, at `barEnd`. */
function syntheticCrossSection(n: number, barEnd: number): ScoredCrossSection {
  const score = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 0.05);
  const ids = Int32Array.from({ length: n }, (_, i) => i);
  return {
    job: { barEnd, universe: n, n, ids, coverage: new Float64Array(n).fill(1), input: new Float32Array(0), limit: new Int8Array(n) },
    score,
    z: Float64Array.from(score, (s) => s * 20),
    rank: Float64Array.from(ids, (i) => (i + 1) / n),
    inference: { seconds: 0, waitSeconds: 0 },
    path: { step: 0, whole: n, prefixSeconds: 0, prefixWaitSeconds: 0 },
  };
}

/** Runs the output path; returns the milliseconds it took and the bytes a round would have sent. */
export async function warmUpCloseOutputs(opts: WarmUpOptions): Promise<{ ms: number; bytes: number }> {
  const elapsed = stopwatch();
  const n = opts.symbols ?? WARM_UP_SYMBOLS;
  const names = Array.from({ length: n }, (_, i) => `${String(600_000 + i).padStart(6, '0')}.SH`);
  let bytes = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const batches: OutputBatch[] = [];
    for (const model of opts.models) {
      const source = scoreSourceOf(model);
      batches.push(...closeBatches(model.role, scoreRecords(syntheticCrossSection(n, Date.UTC(2026, 0, 5, 2, 10 + round)), names, source), source, opts.topics));
    }
    for (const request of topicRounds(batches, opts.partitionOf)) bytes += (await encodeProduceRequest(request, opts.transactionalId)).length;
    encodeOutputs(batches);
  }
  return { ms: elapsed(), bytes: bytes / ROUNDS };
}
