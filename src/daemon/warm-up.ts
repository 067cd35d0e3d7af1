/**
 * A close's output path run once at start on a synthetic cross-section, sending and
 * writing nothing: the score records, their messages and the Arrow batch of each served
 * model, the transaction's requests (topicRounds) encoded as kafkajs encodes them, and the
 * checkpoint's bytes. A fresh start's first three closes each spent about 70 ms more of the
 * main thread than later ones (a CPU profile of the daemon bench, 2026-12-07) in exactly
 * that code, run for the first time: V8 had not compiled it yet. Daemons restarted before
 * the open met that at 9:40, the day's first close. What cannot run without the broker
 * (the socket, the broker's answer) and the bars' own close stay cold.
 */
import { encodeProduceRequest } from '../ingest/kafka-produce-encoding.js';
import { topicRounds, type PartitionOf } from '../ingest/kafka-chunks.js';
import { stopwatch } from '../market/clock.js';
import type { ScoredCrossSection } from '../model/scorer.js';
import { scoreBatchMessage, scoreMessages, scoreRecords, type ScoreSource } from '../sink/scores.js';
import { CHECKPOINT_FORMAT, encodeCheckpoint } from './checkpoint.js';
import type { OutputBatch, PipelineState } from './pipeline.js';

/** A whole market's cross-section: each per-message function runs thousands of times, enough for V8's optimising compiler. */
export const WARM_UP_SYMBOLS = 5_000;
/** Twice: the second round runs the code as the first compiled it. */
const ROUNDS = 2;

export interface WarmUpOptions {
  /** The served models, live and shadow. */
  models: readonly { source: ScoreSource; role: 'live' | 'shadow' }[];
  topics: { scores: string; scoresBatch: string; shadowScores: string };
  partitionOf: PartitionOf | undefined;
  transactionalId: string;
  /** The pipeline's state as a checkpoint would take it (read, not changed). */
  state: () => PipelineState;
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

/** Runs the output path; returns the milliseconds it took and the bytes it would have sent. */
export async function warmUpCloseOutputs(opts: WarmUpOptions): Promise<{ ms: number; bytes: number }> {
  const elapsed = stopwatch();
  const n = opts.symbols ?? WARM_UP_SYMBOLS;
  const names = Array.from({ length: n }, (_, i) => `${String(600_000 + i).padStart(6, '0')}.SH`);
  let bytes = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const batches: OutputBatch[] = [];
    for (const { source, role } of opts.models) {
      const records = scoreRecords(syntheticCrossSection(n, Date.UTC(2026, 0, 5, 2, 10 + round)), names, source);
      if (role === 'shadow') batches.push({ topic: opts.topics.shadowScores, messages: scoreMessages(records, source) });
      else batches.push({ topic: opts.topics.scores, messages: scoreMessages(records, source) }, { topic: opts.topics.scoresBatch, messages: [scoreBatchMessage(records, source)] });
    }
    for (const request of topicRounds(batches, opts.partitionOf)) bytes += (await encodeProduceRequest(request, opts.transactionalId)).length;
    encodeCheckpoint({ format: CHECKPOINT_FORMAT, seq: 0, kind: 'increment', writtenAt: '', models: [], positions: [], outputs: batches, state: opts.state() });
  }
  return { ms: elapsed(), bytes: bytes / ROUNDS };
}
