/**
 * Score messages (DESIGN §2, schemas/score.json and schemas/score-batch.arrow.json):
 * per symbol on `factor.scores` (JSON, keyed by symbol) and the whole cross-section of
 * one close on `factor.scores.batch` (one Arrow IPC stream). Both carry the headers
 * content-type, model-version, bar-end (epoch ms as text), freq and model.
 */
import * as A from 'apache-arrow';
import { DICT_FREQ, DICT_MODEL, DICT_MODEL_VERSION, DICT_SYMBOL, dictionaryVector, float64Vector, tableOf, timestampMsVector } from '../ingest/arrow-columns.js';
import type { Freq } from '../market/sessions.js';
import type { ScoredCrossSection } from '../model/scorer.js';

export const JSON_CONTENT_TYPE = 'application/json';
export const ARROW_CONTENT_TYPE = 'application/vnd.apache.arrow.stream';

/** What identifies the producer of a cross-section. */
export interface ScoreSource {
  model: string;
  modelVersion: string;
  freq: Freq;
}

export interface OutMessage {
  key: Buffer | null;
  value: Buffer;
  headers: Record<string, string>;
}

/** One score as subscribers see it (JSON on factor.scores). */
export interface ScoreRecord {
  symbol: string;
  barEnd: number;
  freq: Freq;
  model: string;
  modelVersion: string;
  score: number;
  z: number;
  rank: number;
  universe: number;
  coverage: number;
  /** The bar closed at the day's upper limit (1), lower limit (-1) or neither (0): a locked stock cannot be bought (1) or sold (-1) at the close. */
  limit: number;
}

function headers(src: ScoreSource, barEnd: number, contentType: string): Record<string, string> {
  return { 'content-type': contentType, 'model-version': src.modelVersion, 'bar-end': String(barEnd), freq: src.freq, model: src.model };
}

/** Rounds to what float32 scores can carry, so that JSON stays short and stable. */
function round(x: number): number {
  return Number(x.toPrecision(9));
}

export function scoreRecords(cs: ScoredCrossSection, names: readonly string[], src: ScoreSource): ScoreRecord[] {
  const { job } = cs;
  const out: ScoreRecord[] = [];
  for (let i = 0; i < job.n; i++) {
    out.push({
      symbol: names[job.ids[i]],
      barEnd: job.barEnd,
      freq: src.freq,
      model: src.model,
      modelVersion: src.modelVersion,
      score: round(cs.score[i]),
      z: round(cs.z[i]),
      rank: round(cs.rank[i]),
      universe: job.n,
      coverage: round(job.coverage[i]),
      limit: job.limit?.[i] ?? 0,
    });
  }
  return out;
}

/**
 * One message per score on factor.scores: the record's JSON, keyed by symbol. The messages
 * of one bar end share one headers object (kafkajs only reads them), which a checkpoint
 * then serialises once: at 5,000 symbols a close's outputs take 1.37 MB instead of 1.95 MB
 * and 5.5 ms instead of 7.0 ms to serialise (2-core machine, idle).
 */
export function scoreMessages(records: readonly ScoreRecord[], src: ScoreSource): OutMessage[] {
  let shared: Record<string, string> = {};
  let sharedBarEnd = Number.NaN;
  return records.map((r) => {
    if (r.barEnd !== sharedBarEnd) {
      shared = headers(src, r.barEnd, JSON_CONTENT_TYPE);
      sharedBarEnd = r.barEnd;
    }
    return { key: Buffer.from(r.symbol), value: Buffer.from(JSON.stringify(r)), headers: shared };
  });
}

/** The cross-section as one Arrow table (the batch topic's message and the archive's rows). */
export function scoreTable(records: readonly ScoreRecord[], src: ScoreSource): A.Table {
  const n = records.length;
  // Each column its own index buffer: Arrow JS's IPC writer mis-sizes a body whose columns share one.
  const zeros = (): Int32Array => new Int32Array(n);
  const col = (f: (r: ScoreRecord) => number): Float64Array => Float64Array.from(records, f);
  return tableOf([
    ['symbol', dictionaryVector(DICT_SYMBOL, records.map((r) => r.symbol), Int32Array.from(records, (_, i) => i)), false],
    ['barEnd', timestampMsVector(col((r) => r.barEnd)), false],
    ['freq', dictionaryVector(DICT_FREQ, [src.freq], zeros()), false],
    ['model', dictionaryVector(DICT_MODEL, [src.model], zeros()), false],
    ['modelVersion', dictionaryVector(DICT_MODEL_VERSION, [src.modelVersion], zeros()), false],
    ['score', float64Vector(col((r) => r.score)), false],
    ['z', float64Vector(col((r) => r.z)), false],
    ['rank', float64Vector(col((r) => r.rank)), false],
    ['universe', float64Vector(col((r) => r.universe)), false],
    ['coverage', float64Vector(col((r) => r.coverage)), false],
    ['limit', A.makeVector(Int8Array.from(records, (r) => r.limit)), false],
  ]);
}

export function scoreBatchMessage(records: readonly ScoreRecord[], src: ScoreSource): OutMessage {
  const barEnd = records.length > 0 ? records[0].barEnd : 0;
  return { key: Buffer.from(`${src.model}/${src.freq}`), value: Buffer.from(A.tableToIPC(scoreTable(records, src), 'stream')), headers: headers(src, barEnd, ARROW_CONTENT_TYPE) };
}
