/**
 * Arrow IPC codec: one stream message carries one or more record batches, many events.
 * Tick columns: symbol (utf8 or dictionary<utf8>), ts (timestamp of any unit, or int64/
 * float64 epoch ms), kind (utf8/dictionary, optional: inferred from cumVolume), price,
 * volume, amount, side, seq, cumVolume, cumAmount, bid1, ask1, bidVol1, askVol1
 * (numeric, nullable, optional columns). Bar columns: symbol, ts (bar end), open, high,
 * low, close, volume, amount, buyVolume, sellVolume, trades. README "Message formats"
 * documents them; bad rows are rejected one by one, a bad message as a whole.
 */
import * as A from 'apache-arrow';
import { isNumericType, isStringType, readCodes, readNumeric, readSymbolIds, Scratch, type NumericColumn } from './arrow-columns.js';
import { rejectSymbol, type DecodeContext } from './decode.js';
import { barLabelOf, type BarLabel } from '../market/sessions.js';
import {
  BAR_SESSION_PRINT,
  HAS_AMOUNT,
  HAS_QUOTE,
  HAS_SEQ,
  HAS_SIDES,
  HAS_TRADES,
  KIND_SNAPSHOT,
  KIND_TRADE,
  SIDE_BUY,
  SIDE_SELL,
  SIDE_UNKNOWN,
  type BarBatch,
  type TickBatch,
} from './events.js';
import { acceptBar, acceptTick } from './validate.js';
import {
  tableOf,
  DICT_KIND,
  DICT_SIDE,
  DICT_SYMBOL,
  dictionaryVector,
  float64Vector,
  int64Vector,
  timestampMsVector,
} from './arrow-columns.js';
import type { SymbolTable } from './events.js';

const TICK_NUMERIC = ['price', 'volume', 'amount', 'seq', 'cumVolume', 'cumAmount', 'bid1', 'ask1', 'bidVol1', 'askVol1'] as const;
const BAR_NUMERIC = ['open', 'high', 'low', 'close', 'volume', 'amount', 'buyVolume', 'sellVolume', 'trades'] as const;
const BAR_REQUIRED = ['open', 'high', 'low', 'close', 'volume', 'amount'] as const;

const KIND_NULL = -1;
const KIND_BAD = -2;
function kindCode(s: string): number {
  return s === 'trade' ? KIND_TRADE : s === 'snapshot' ? KIND_SNAPSHOT : KIND_BAD;
}
function sideCode(s: string): number {
  return s === 'B' ? SIDE_BUY : s === 'S' ? SIDE_SELL : s === 'N' ? SIDE_UNKNOWN : -2;
}

function has(col: NumericColumn | undefined, i: number): col is NumericColumn {
  return col !== undefined && (col.valid === null || col.valid[i] === 1) && !Number.isNaN(col.values[i]);
}

/**
 * Parses an IPC stream message. Returns undefined (after rejecting the whole message
 * with E_MALFORMED) when the bytes are not a complete Arrow stream.
 */
export function parseArrow(bytes: Uint8Array, origin: number, ctx: DecodeContext): A.Table | undefined {
  try {
    // Arrow views columns as typed arrays in place: a Kafka message value (a slice of the
    // fetch response at any offset) is copied when it is not 8-byte aligned.
    return A.tableFromIPC(bytes.byteOffset % 8 === 0 ? bytes : new Uint8Array(bytes));
  } catch (err) {
    ctx.reject('E_MALFORMED', `not a complete Arrow IPC stream: ${(err as Error).message}`, origin, -1, undefined);
    return undefined;
  }
}

/** Column check shared by ticks and bars: required names with the right kind of type. */
function schemaProblem(schema: A.Schema, strings: readonly string[], numerics: readonly string[]): string | undefined {
  for (const name of strings) {
    const f = schema.fields.find((x) => x.name === name);
    if (f === undefined) return `missing column ${name}`;
    if (!isStringType(f.type)) return `column ${name} must be utf8 or dictionary<utf8>, got ${String(f.type)}`;
  }
  for (const name of numerics) {
    const f = schema.fields.find((x) => x.name === name);
    if (f === undefined) return `missing column ${name}`;
    if (!isNumericType(f.type)) return `column ${name} must be numeric, got ${String(f.type)}`;
  }
  return undefined;
}

function optionalTypeProblem(schema: A.Schema, strings: readonly string[], numerics: readonly string[]): string | undefined {
  for (const f of schema.fields) {
    if (strings.includes(f.name) && !isStringType(f.type)) return `column ${f.name} must be utf8 or dictionary<utf8>`;
    if (numerics.includes(f.name) && !isNumericType(f.type)) return `column ${f.name} must be numeric`;
  }
  return undefined;
}

interface BatchDecoder<Out> {
  schemaProblem(schema: A.Schema): string | undefined;
  decodeBatch(rb: A.RecordBatch, origin: number, rowBase: number, out: Out, ctx: DecodeContext): number;
}

/** A whole IPC message: parse, check the schema once, decode each record batch. */
function decodeMessage<Out>(decoder: BatchDecoder<Out>, bytes: Uint8Array, origin: number, out: Out, ctx: DecodeContext): number {
  const table = parseArrow(bytes, origin, ctx);
  if (table === undefined) return 0;
  const problem = decoder.schemaProblem(table.schema);
  if (problem !== undefined) {
    ctx.reject('E_SCHEMA', problem, origin, -1, undefined);
    return 0;
  }
  let appended = 0;
  let rowBase = 0;
  for (const rb of table.batches) {
    appended += decoder.decodeBatch(rb, origin, rowBase, out, ctx);
    rowBase += rb.numRows;
  }
  return appended;
}

/** Decodes the tick rows of Arrow record batches; per-row rejects carry the row number. */
export class ArrowTickDecoder {
  private readonly scratch = new Scratch();

  /** Decodes a whole IPC message. */
  decodeMessage(bytes: Uint8Array, origin: number, out: TickBatch, ctx: DecodeContext): number {
    return decodeMessage(this, bytes, origin, out, ctx);
  }

  schemaProblem(schema: A.Schema): string | undefined {
    return schemaProblem(schema, ['symbol'], ['ts', 'price']) ?? optionalTypeProblem(schema, ['kind', 'side'], TICK_NUMERIC);
  }

  /**
   * Decodes one record batch (schema already checked). `origin` is the message offset,
   * or -1 for files, in which case each row's origin is its row number in the file.
   */
  decodeBatch(rb: A.RecordBatch, origin: number, rowBase: number, out: TickBatch, ctx: DecodeContext): number {
    const n = rb.numRows;
    const s = this.scratch;
    const child = (name: string): A.Data | undefined => rb.getChild(name)?.data[0];
    const symbols = readSymbolIds(child('symbol') as A.Data, s, ctx.symbols);
    const tsCol = readNumeric(child('ts') as A.Data, 'ts', s);
    const kindData = child('kind');
    const kinds = kindData === undefined ? undefined : readCodes(kindData, 'kind', s, kindCode, KIND_NULL);
    const sideData = child('side');
    const sides = sideData === undefined ? undefined : readCodes(sideData, 'side', s, sideCode, SIDE_UNKNOWN);
    const num: Partial<Record<(typeof TICK_NUMERIC)[number], NumericColumn>> = {};
    for (const name of TICK_NUMERIC) {
      const d = child(name);
      if (d !== undefined) num[name] = readNumeric(d, name, s);
    }
    const { price, volume, amount, seq, cumVolume, cumAmount, bid1, ask1, bidVol1, askVol1 } = num;
    out.reserve(n);
    let appended = 0;
    for (let r = 0; r < n; r++) {
      const row = rowBase + r;
      const rowOrigin = origin < 0 ? row : origin;
      const rowNo = origin < 0 ? -1 : row;
      const id = symbols[r];
      if (id < 0) {
        rejectSymbol(ctx, id, undefined, rowOrigin, rowNo);
        continue;
      }
      const symbol = ctx.symbols.names[id];
      if (!has(tsCol, r) || !has(price, r)) {
        ctx.reject('E_SCHEMA', 'ts and price must not be null', rowOrigin, rowNo, symbol);
        continue;
      }
      let kind = kinds === undefined ? KIND_NULL : kinds[r];
      if (kind === KIND_NULL) kind = has(cumVolume, r) ? KIND_SNAPSHOT : KIND_TRADE;
      if (kind === KIND_BAD) {
        ctx.reject('E_SCHEMA', 'kind must be "trade" or "snapshot"', rowOrigin, rowNo, symbol);
        continue;
      }
      const i = out.length;
      let flags = 0;
      out.symbol[i] = id;
      out.ts[i] = tsCol.values[r];
      out.kind[i] = kind;
      out.price[i] = price.values[r];
      out.side[i] = SIDE_UNKNOWN;
      if (kind === KIND_TRADE) {
        if (!has(volume, r)) {
          ctx.reject('E_SCHEMA', 'a trade needs a volume', rowOrigin, rowNo, symbol);
          continue;
        }
        out.volume[i] = volume.values[r];
        if (has(amount, r)) {
          out.amount[i] = amount.values[r];
          flags |= HAS_AMOUNT;
        }
        if (sides !== undefined) {
          const side = sides[r];
          if (side < 0) {
            ctx.reject('E_SCHEMA', 'side must be "B", "S" or "N"', rowOrigin, rowNo, symbol);
            continue;
          }
          out.side[i] = side;
        }
      } else {
        if (!has(cumVolume, r) || !has(cumAmount, r)) {
          ctx.reject('E_SCHEMA', 'a snapshot needs cumVolume and cumAmount', rowOrigin, rowNo, symbol);
          continue;
        }
        out.cumVolume[i] = cumVolume.values[r];
        out.cumAmount[i] = cumAmount.values[r];
      }
      if (has(seq, r)) {
        out.seq[i] = seq.values[r];
        flags |= HAS_SEQ;
      }
      if (has(bid1, r) && has(ask1, r) && has(bidVol1, r) && has(askVol1, r)) {
        out.bid1[i] = bid1.values[r];
        out.ask1[i] = ask1.values[r];
        out.bidVol1[i] = bidVol1.values[r];
        out.askVol1[i] = askVol1.values[r];
        flags |= HAS_QUOTE;
      }
      out.flags[i] = flags;
      out.origin[i] = rowOrigin;
      if (!acceptTick(out, i, ctx, rowOrigin, rowNo)) continue;
      out.length = i + 1;
      appended++;
    }
    return appended;
  }
}

export class ArrowBarDecoder {
  private readonly scratch = new Scratch();

  decodeMessage(bytes: Uint8Array, origin: number, out: BarBatch, ctx: DecodeContext): number {
    return decodeMessage(this, bytes, origin, out, ctx);
  }

  schemaProblem(schema: A.Schema): string | undefined {
    return schemaProblem(schema, ['symbol'], ['ts', ...BAR_REQUIRED]) ?? optionalTypeProblem(schema, [], BAR_NUMERIC);
  }

  decodeBatch(rb: A.RecordBatch, origin: number, rowBase: number, out: BarBatch, ctx: DecodeContext): number {
    const n = rb.numRows;
    const s = this.scratch;
    const child = (name: string): A.Data | undefined => rb.getChild(name)?.data[0];
    const symbols = readSymbolIds(child('symbol') as A.Data, s, ctx.symbols);
    const tsCol = readNumeric(child('ts') as A.Data, 'ts', s);
    const num: Partial<Record<(typeof BAR_NUMERIC)[number], NumericColumn>> = {};
    for (const name of BAR_NUMERIC) {
      const d = child(name);
      if (d !== undefined) num[name] = readNumeric(d, name, s);
    }
    const { open, high, low, close, volume, amount, buyVolume, sellVolume, trades } = num as Required<typeof num>;
    out.reserve(n);
    let appended = 0;
    for (let r = 0; r < n; r++) {
      const row = rowBase + r;
      const rowOrigin = origin < 0 ? row : origin;
      const rowNo = origin < 0 ? -1 : row;
      const id = symbols[r];
      if (id < 0) {
        rejectSymbol(ctx, id, undefined, rowOrigin, rowNo);
        continue;
      }
      const symbol = ctx.symbols.names[id];
      if (!has(tsCol, r) || !has(open, r) || !has(high, r) || !has(low, r) || !has(close, r) || !has(volume, r) || !has(amount, r)) {
        ctx.reject('E_SCHEMA', 'ts, open, high, low, close, volume and amount must not be null', rowOrigin, rowNo, symbol);
        continue;
      }
      const i = out.length;
      let flags = 0;
      out.symbol[i] = id;
      out.ts[i] = tsCol.values[r];
      out.open[i] = open.values[r];
      out.high[i] = high.values[r];
      out.low[i] = low.values[r];
      out.close[i] = close.values[r];
      out.volume[i] = volume.values[r];
      out.amount[i] = amount.values[r];
      out.buyVolume[i] = 0;
      out.sellVolume[i] = 0;
      out.trades[i] = 0;
      if (has(buyVolume, r) && has(sellVolume, r)) {
        out.buyVolume[i] = buyVolume.values[r];
        out.sellVolume[i] = sellVolume.values[r];
        flags |= HAS_SIDES;
      }
      if (has(trades, r)) {
        out.trades[i] = trades.values[r];
        flags |= HAS_TRADES;
      }
      out.flags[i] = flags;
      out.origin[i] = rowOrigin;
      if (!acceptBar(out, i, ctx, rowOrigin, rowNo)) continue;
      out.length = i + 1;
      appended++;
    }
    return appended;
  }
}

// ---- encoding ----

/** Symbol dictionary restricted to the symbols present in rows [from, to). */
function compactSymbols(ids: Int32Array, from: number, to: number, symbols: SymbolTable): { dict: string[]; idx: Int32Array } {
  const local = new Map<number, number>();
  const dict: string[] = [];
  const idx = new Int32Array(to - from);
  for (let i = from; i < to; i++) {
    let j = local.get(ids[i]);
    if (j === undefined) {
      j = dict.length;
      local.set(ids[i], j);
      dict.push(symbols.names[ids[i]]);
    }
    idx[i - from] = j;
  }
  return { dict, idx };
}

/** Rows [from, to) of a tick batch as an Arrow table (the wire and file layout). */
export function ticksToTable(b: TickBatch, symbols: SymbolTable, from = 0, to = b.length): A.Table {
  const n = to - from;
  const { dict, idx } = compactSymbols(b.symbol, from, to, symbols);
  const isTrade = new Uint8Array(n);
  const isSnap = new Uint8Array(n);
  const hasAmount = new Uint8Array(n);
  const hasSeq = new Uint8Array(n);
  const hasQuote = new Uint8Array(n);
  const kinds = new Int32Array(n);
  const sides = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    const i = from + r;
    const trade = b.kind[i] === KIND_TRADE;
    isTrade[r] = trade ? 1 : 0;
    isSnap[r] = trade ? 0 : 1;
    kinds[r] = b.kind[i];
    sides[r] = b.side[i];
    hasAmount[r] = trade ? 1 : 0;
    hasSeq[r] = b.flags[i] & HAS_SEQ ? 1 : 0;
    hasQuote[r] = b.flags[i] & HAS_QUOTE ? 1 : 0;
  }
  const col = (a: Float64Array): Float64Array => a.slice(from, to);
  return tableOf([
    ['symbol', dictionaryVector(DICT_SYMBOL, dict, idx), false],
    ['ts', timestampMsVector(col(b.ts)), false],
    ['kind', dictionaryVector(DICT_KIND, ['trade', 'snapshot'], kinds), false],
    ['price', float64Vector(col(b.price)), false],
    ['volume', float64Vector(col(b.volume), isTrade), true],
    ['amount', float64Vector(col(b.amount), hasAmount), true],
    ['side', dictionaryVector(DICT_SIDE, ['N', 'B', 'S'], sides, isTrade), true],
    ['seq', int64Vector(col(b.seq), hasSeq), true],
    ['cumVolume', float64Vector(col(b.cumVolume), isSnap), true],
    ['cumAmount', float64Vector(col(b.cumAmount), isSnap), true],
    ['bid1', float64Vector(col(b.bid1), hasQuote), true],
    ['ask1', float64Vector(col(b.ask1), hasQuote), true],
    ['bidVol1', float64Vector(col(b.bidVol1), hasQuote), true],
    ['askVol1', float64Vector(col(b.askVol1), hasQuote), true],
  ]);
}

/** Bar rows as an Arrow table, ts labelled in the `label` convention (bars.label). */
export function barsToTable(b: BarBatch, symbols: SymbolTable, from = 0, to = b.length, label: BarLabel = 'end'): A.Table {
  const n = to - from;
  const { dict, idx } = compactSymbols(b.symbol, from, to, symbols);
  const hasSides = new Uint8Array(n);
  const hasTrades = new Uint8Array(n);
  const ts = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    hasSides[r] = b.flags[from + r] & HAS_SIDES ? 1 : 0;
    hasTrades[r] = b.flags[from + r] & HAS_TRADES ? 1 : 0;
    ts[r] = barLabelOf(b.ts[from + r], (b.flags[from + r] & BAR_SESSION_PRINT) !== 0, label);
  }
  const col = (a: Float64Array): Float64Array => a.slice(from, to);
  return tableOf([
    ['symbol', dictionaryVector(DICT_SYMBOL, dict, idx), false],
    ['ts', timestampMsVector(ts), false],
    ['open', float64Vector(col(b.open)), false],
    ['high', float64Vector(col(b.high)), false],
    ['low', float64Vector(col(b.low)), false],
    ['close', float64Vector(col(b.close)), false],
    ['volume', float64Vector(col(b.volume)), false],
    ['amount', float64Vector(col(b.amount)), false],
    ['buyVolume', float64Vector(col(b.buyVolume), hasSides), true],
    ['sellVolume', float64Vector(col(b.sellVolume), hasSides), true],
    ['trades', int64Vector(col(b.trades), hasTrades), true],
  ]);
}

export function encodeTicksArrow(b: TickBatch, symbols: SymbolTable, from = 0, to = b.length): Uint8Array {
  return A.tableToIPC(ticksToTable(b, symbols, from, to), 'stream');
}

export function encodeBarsArrow(b: BarBatch, symbols: SymbolTable, from = 0, to = b.length, label: BarLabel = 'end'): Uint8Array {
  return A.tableToIPC(barsToTable(b, symbols, from, to, label), 'stream');
}
