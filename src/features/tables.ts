/**
 * Closed bars and raw feature rows as Arrow tables, the layout of `factorstream features`
 * output: bars (symbol, barEnd, open, high, low, close, volume, amount, vwap, trades,
 * missing, limit) and features (symbol, barEnd, freq-independent feature columns; a masked
 * feature is null). One row per symbol per bar end.
 */
import * as A from 'apache-arrow';
import { DICT_SYMBOL, dictionaryVector, float64Vector, tableOf, timestampMsVector } from '../ingest/arrow-columns.js';
import type { SymbolTable } from '../ingest/events.js';
import type { ClosedBars } from './closed-bars.js';
import { FEATURE_COUNT, FEATURE_NAMES } from './feature-set.js';

function symbolColumn(n: number, symbols: SymbolTable): A.Vector {
  const idx = new Int32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  return dictionaryVector(DICT_SYMBOL, symbols.names.slice(0, n), idx);
}

function present(bars: ClosedBars, values: Float64Array): Uint8Array {
  const v = new Uint8Array(bars.n);
  for (let i = 0; i < bars.n; i++) v[i] = bars.missing[i] === 0 && Number.isFinite(values[i]) ? 1 : 0;
  return v;
}

export function barsTable(bars: ClosedBars, symbols: SymbolTable): A.Table {
  const n = bars.n;
  const col = (a: Float64Array): Float64Array => a.slice(0, n);
  const valid = present(bars, bars.close);
  const tradesValid = new Uint8Array(n);
  for (let i = 0; i < n; i++) tradesValid[i] = Number.isFinite(bars.trades[i]) ? 1 : 0;
  return tableOf([
    ['symbol', symbolColumn(n, symbols), false],
    ['barEnd', timestampMsVector(new Float64Array(n).fill(bars.barEnd)), false],
    ['open', float64Vector(col(bars.open), valid), true],
    ['high', float64Vector(col(bars.high), valid), true],
    ['low', float64Vector(col(bars.low), valid), true],
    ['close', float64Vector(col(bars.close), valid), true],
    ['volume', float64Vector(col(bars.volume)), false],
    ['amount', float64Vector(col(bars.amount)), false],
    ['vwap', float64Vector(col(bars.vwap), valid), true],
    ['trades', float64Vector(col(bars.trades), tradesValid), true],
    ['missing', A.makeVector(bars.missing.slice(0, n)), false],
    ['limit', A.makeVector(bars.limit.slice(0, n)), false],
  ]);
}

export function featuresTable(bars: ClosedBars, symbols: SymbolTable): A.Table {
  const n = bars.n;
  const F = FEATURE_COUNT;
  const columns: [string, A.Vector, boolean][] = [
    ['symbol', symbolColumn(n, symbols), false],
    ['barEnd', timestampMsVector(new Float64Array(n).fill(bars.barEnd)), false],
  ];
  for (let f = 0; f < F; f++) {
    const values = new Float64Array(n);
    const valid = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      values[i] = bars.features[i * F + f];
      valid[i] = bars.featureMask[i * F + f];
    }
    columns.push([FEATURE_NAMES[f], float64Vector(values, valid), true]);
  }
  return tableOf(columns);
}
