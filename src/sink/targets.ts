/**
 * Target-weight messages (topic `factor.targets`, schemas/targets.arrow.json): one Arrow
 * IPC stream per portfolio and rebalance day holding every candidate of the decision —
 * the benchmark's members and whatever was held — with its target weight. Key: the
 * portfolio's name. Headers: content-type, portfolio, model, model-version, bar-end.
 * The portfolio-level figures (kind, relaxations, turnover) are columns too, one value
 * per message, so that an Arrow file of many decisions (`factorstream targets`) stays
 * one table.
 */
import * as A from 'apache-arrow';
import type { TargetWeights } from '../eval/live-targets.js';
import type { Relaxation } from '../eval/portfolio.js';
import { DICT_BENCHMARK, DICT_DECISION, DICT_MODEL, DICT_MODEL_VERSION, DICT_PORTFOLIO, DICT_RELAXED, DICT_SYMBOL, dictionaryVector, float64Vector, tableOf, timestampMsVector } from '../ingest/arrow-columns.js';
import { ARROW_CONTENT_TYPE, type OutMessage } from './scores.js';

/** One decision as a table, its rows in symbol order. */
export function targetsTable(t: TargetWeights): A.Table {
  const n = t.symbols.length;
  const zeros = (): Int32Array => new Int32Array(n);
  const repeat = (x: number): Float64Array => new Float64Array(n).fill(x);
  return tableOf([
    ['portfolio', dictionaryVector(DICT_PORTFOLIO, [t.portfolio], zeros()), false],
    ['barEnd', timestampMsVector(repeat(t.barEnd)), false],
    ['model', dictionaryVector(DICT_MODEL, [t.model], zeros()), false],
    ['modelVersion', dictionaryVector(DICT_MODEL_VERSION, [t.modelVersion], zeros()), false],
    ['benchmark', dictionaryVector(DICT_BENCHMARK, [t.benchmark], zeros()), false],
    ['symbol', dictionaryVector(DICT_SYMBOL, t.symbols, Int32Array.from(t.symbols, (_, i) => i)), false],
    ['weight', float64Vector(Float64Array.from(t.weights, (w) => (Math.abs(w) < 1e-15 ? 0 : w))), false],
    ['benchmarkWeight', float64Vector(Float64Array.from(t.bench)), false],
    ['previousWeight', float64Vector(Float64Array.from(t.prev)), false],
    ['expectedReturn', float64Vector(Float64Array.from(t.mu)), false],
    ['canBuy', A.makeVector(Int8Array.from(t.canBuy)), false],
    ['canSell', A.makeVector(Int8Array.from(t.canSell)), false],
    ['kind', dictionaryVector(DICT_DECISION, [t.kind], zeros()), false],
    ['relaxed', dictionaryVector(DICT_RELAXED, [t.relaxed.join(',')], zeros()), false],
    ['solved', A.makeVector(new Int8Array(n).fill(t.solved ? 1 : 0)), false],
    ['turnover', float64Vector(repeat(t.turnover)), false],
  ]);
}

/** What a decision's metrics count (ScoringPipeline.markTargetsPublished). */
export type TargetsOutcome = Pick<TargetWeights, 'portfolio' | 'kind' | 'relaxed' | 'solved' | 'turnover'>;

/**
 * A decision's portfolio-level figures read back from its message (the columns repeat them
 * on every row): what a checkpoint keeps of it, counted when recovery publishes it again.
 * Undefined for a decision without candidates (no row holds them).
 */
export function outcomeOfTargetsMessage(value: Uint8Array): TargetsOutcome | undefined {
  const table = A.tableFromIPC(value);
  if (table.numRows === 0) return undefined;
  const first = (name: string): unknown => table.getChild(name)?.get(0);
  const relaxed = String(first('relaxed'));
  return {
    portfolio: String(first('portfolio')),
    kind: String(first('kind')) as TargetsOutcome['kind'],
    relaxed: relaxed === '' ? [] : (relaxed.split(',') as Relaxation[]),
    solved: first('solved') === 1,
    turnover: Number(first('turnover')),
  };
}

export function targetsMessage(t: TargetWeights): OutMessage {
  return {
    key: Buffer.from(t.portfolio),
    value: Buffer.from(A.tableToIPC(targetsTable(t), 'stream')),
    headers: { 'content-type': ARROW_CONTENT_TYPE, portfolio: t.portfolio, model: t.model, 'model-version': t.modelVersion, 'bar-end': String(t.barEnd) },
  };
}
