/**
 * JSON codec: one event per message (DESIGN §2). Parsing uses JSON.parse; field checks
 * are written out by hand (no schema library on the hot path) and mirror
 * schemas/tick.schema.json and schemas/bar-1m.schema.json, which a test ties together.
 */
import { checkBar, checkTick } from './validate.js';
import { codeOf, type DecodeContext } from './decode.js';
import {
  HAS_AMOUNT,
  HAS_QUOTE,
  HAS_SEQ,
  HAS_SIDES,
  HAS_TRADES,
  KIND_SNAPSHOT,
  KIND_TRADE,
  SIDE_BUY,
  SIDE_CODES,
  SIDE_SELL,
  SIDE_UNKNOWN,
  type BarBatch,
  type BarRecord,
  type TickBatch,
  type TickRecord,
} from './events.js';
import { parseIsoWithOffset } from '../market/time.js';

export type Json = Record<string, unknown>;

function isAbsent(v: unknown): boolean {
  return v === undefined || v === null;
}

/** Epoch ms from a JSON number or an ISO-8601 string with offset; NaN otherwise. */
function timeOf(v: unknown): number {
  if (typeof v === 'number') return Number.isFinite(v) ? v : Number.NaN;
  if (typeof v === 'string') return parseIsoWithOffset(v);
  return Number.NaN;
}

export function parseObject(text: string, origin: number, ctx: DecodeContext): Json | undefined {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch (err) {
    ctx.reject('E_MALFORMED', `invalid JSON: ${(err as Error).message}`, origin, -1, undefined);
    return undefined;
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) {
    ctx.reject('E_SCHEMA', 'the message is not a JSON object', origin, -1, undefined);
    return undefined;
  }
  return o as Json;
}

function schemaError(ctx: DecodeContext, detail: string, origin: number, symbol: string): false {
  ctx.reject('E_SCHEMA', detail, origin, -1, symbol);
  return false;
}

/** Resolves the symbol field to an id, or rejects. */
function symbolOf(o: Json, origin: number, ctx: DecodeContext): number {
  const sym = o.symbol;
  if (typeof sym !== 'string') {
    ctx.reject('E_SCHEMA', 'symbol must be a string', origin, -1, undefined);
    return -1;
  }
  const id = ctx.symbols.intern(sym);
  if (id === -1) ctx.reject('E_BAD_SYMBOL', `bad symbol "${sym.slice(0, 32)}"`, origin, -1, undefined);
  else if (id === -2) ctx.reject('E_UNKNOWN_SYMBOL', `symbol ${sym} is outside the universe`, origin, -1, sym);
  return id;
}

/** Decodes one JSON tick message into `out`. Returns true when a row was appended. */
export function decodeTickJson(text: string, origin: number, out: TickBatch, ctx: DecodeContext): boolean {
  const o = parseObject(text, origin, ctx);
  return o !== undefined && decodeTickObject(o, origin, out, ctx);
}

/** Decodes a parsed tick (JSON message, JSONL line, CSV row) into `out`. */
export function decodeTickObject(o: Json, origin: number, out: TickBatch, ctx: DecodeContext): boolean {
  const id = symbolOf(o, origin, ctx);
  if (id < 0) return false;
  const symbol = ctx.symbols.names[id];

  const ts = timeOf(o.ts);
  if (Number.isNaN(ts)) return schemaError(ctx, 'ts must be epoch milliseconds or ISO-8601 with an offset', origin, symbol);
  if (typeof o.price !== 'number') return schemaError(ctx, 'price must be a number', origin, symbol);
  let kind: number;
  if (isAbsent(o.kind)) kind = isAbsent(o.cumVolume) ? KIND_TRADE : KIND_SNAPSHOT;
  else if (o.kind === 'trade') kind = KIND_TRADE;
  else if (o.kind === 'snapshot') kind = KIND_SNAPSHOT;
  else return schemaError(ctx, 'kind must be "trade" or "snapshot"', origin, symbol);

  out.reserve(1);
  const i = out.length;
  let flags = 0;
  out.symbol[i] = id;
  out.ts[i] = ts;
  out.kind[i] = kind;
  out.price[i] = o.price;
  out.side[i] = SIDE_UNKNOWN;
  if (kind === KIND_TRADE) {
    if (typeof o.volume !== 'number') return schemaError(ctx, 'a trade needs a numeric volume', origin, symbol);
    out.volume[i] = o.volume;
    if (!isAbsent(o.amount)) {
      if (typeof o.amount !== 'number') return schemaError(ctx, 'amount must be a number', origin, symbol);
      out.amount[i] = o.amount;
      flags |= HAS_AMOUNT;
    }
    const side = o.side;
    if (!isAbsent(side)) {
      if (side === 'B') out.side[i] = SIDE_BUY;
      else if (side === 'S') out.side[i] = SIDE_SELL;
      else if (side !== 'N') return schemaError(ctx, 'side must be "B", "S" or "N"', origin, symbol);
    }
  } else {
    if (typeof o.cumVolume !== 'number' || typeof o.cumAmount !== 'number') {
      return schemaError(ctx, 'a snapshot needs numeric cumVolume and cumAmount', origin, symbol);
    }
    out.cumVolume[i] = o.cumVolume;
    out.cumAmount[i] = o.cumAmount;
  }
  if (!isAbsent(o.seq)) {
    if (typeof o.seq !== 'number' || !Number.isSafeInteger(o.seq)) return schemaError(ctx, 'seq must be an integer', origin, symbol);
    out.seq[i] = o.seq;
    flags |= HAS_SEQ;
  }
  const quotes = (isAbsent(o.bid1) ? 0 : 1) + (isAbsent(o.ask1) ? 0 : 1) + (isAbsent(o.bidVol1) ? 0 : 1) + (isAbsent(o.askVol1) ? 0 : 1);
  if (quotes !== 0) {
    if (typeof o.bid1 !== 'number' || typeof o.ask1 !== 'number' || typeof o.bidVol1 !== 'number' || typeof o.askVol1 !== 'number') {
      return schemaError(ctx, 'bid1, ask1, bidVol1 and askVol1 come together, as numbers', origin, symbol);
    }
    out.bid1[i] = o.bid1;
    out.ask1[i] = o.ask1;
    out.bidVol1[i] = o.bidVol1;
    out.askVol1[i] = o.askVol1;
    flags |= HAS_QUOTE;
  }
  out.flags[i] = flags;
  out.origin[i] = origin;
  const slot = checkTick(out, i, ctx.calendar);
  if (slot < 0) {
    ctx.reject(codeOf(slot), `tick rejected at ts ${ts}`, origin, -1, symbol);
    return false;
  }
  out.slot[i] = slot;
  out.length = i + 1;
  return true;
}

/** Decodes one JSON 1-minute bar message into `out`. */
export function decodeBarJson(text: string, origin: number, out: BarBatch, ctx: DecodeContext): boolean {
  const o = parseObject(text, origin, ctx);
  return o !== undefined && decodeBarObject(o, origin, out, ctx);
}

/** Decodes a parsed 1-minute bar into `out`. */
export function decodeBarObject(o: Json, origin: number, out: BarBatch, ctx: DecodeContext): boolean {
  const id = symbolOf(o, origin, ctx);
  if (id < 0) return false;
  const symbol = ctx.symbols.names[id];
  const ts = timeOf(o.ts);
  if (Number.isNaN(ts)) return schemaError(ctx, 'ts must be epoch milliseconds or ISO-8601 with an offset', origin, symbol);
  if (typeof o.open !== 'number' || typeof o.high !== 'number' || typeof o.low !== 'number' || typeof o.close !== 'number') {
    return schemaError(ctx, 'open, high, low and close must be numbers', origin, symbol);
  }
  if (typeof o.volume !== 'number' || typeof o.amount !== 'number') return schemaError(ctx, 'volume and amount must be numbers', origin, symbol);
  out.reserve(1);
  const i = out.length;
  let flags = 0;
  out.symbol[i] = id;
  out.ts[i] = ts;
  out.open[i] = o.open;
  out.high[i] = o.high;
  out.low[i] = o.low;
  out.close[i] = o.close;
  out.volume[i] = o.volume;
  out.amount[i] = o.amount;
  out.buyVolume[i] = 0;
  out.sellVolume[i] = 0;
  out.trades[i] = 0;
  if (!isAbsent(o.buyVolume) || !isAbsent(o.sellVolume)) {
    if (typeof o.buyVolume !== 'number' || typeof o.sellVolume !== 'number') return schemaError(ctx, 'buyVolume and sellVolume come together, as numbers', origin, symbol);
    out.buyVolume[i] = o.buyVolume;
    out.sellVolume[i] = o.sellVolume;
    flags |= HAS_SIDES;
  }
  if (!isAbsent(o.trades)) {
    if (typeof o.trades !== 'number' || !Number.isSafeInteger(o.trades)) return schemaError(ctx, 'trades must be an integer', origin, symbol);
    out.trades[i] = o.trades;
    flags |= HAS_TRADES;
  }
  out.flags[i] = flags;
  out.origin[i] = origin;
  const slot = checkBar(out, i, ctx.calendar);
  if (slot < 0) {
    ctx.reject(codeOf(slot), `bar rejected at ts ${ts}`, origin, -1, symbol);
    return false;
  }
  out.slot[i] = slot;
  out.length = i + 1;
  return true;
}

/** The JSON wire form of a tick: only the fields its kind uses. */
export function encodeTickJson(t: TickRecord): string {
  return JSON.stringify(t);
}

export function encodeBarJson(b: BarRecord): string {
  return JSON.stringify(b);
}

export { SIDE_CODES };
