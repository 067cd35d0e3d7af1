/**
 * JSON codec: one event per message (DESIGN §2). Parsing uses JSON.parse; field checks
 * are written out by hand (no schema library on the hot path) and mirror
 * schemas/tick.schema.json and schemas/bar-1m.schema.json, which a test ties together.
 */
import { acceptBar, acceptTick } from './validate.js';
import { rejectSymbol, SYMBOL_MISSING, type DecodeContext } from './decode.js';
import {
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
  const id = typeof sym === 'string' ? ctx.symbols.intern(sym) : SYMBOL_MISSING;
  if (id < 0) rejectSymbol(ctx, id, typeof sym === 'string' ? sym : undefined, origin, -1);
  return id;
}

/** Numeric tick fields, in the order of TICK_NUMBER_FIELDS. */
export const TICK_NUMBER_FIELDS = ['ts', 'price', 'volume', 'amount', 'seq', 'cumVolume', 'cumAmount', 'bid1', 'ask1', 'bidVol1', 'askVol1'] as const;
export const TF_TS = 0;
const TF_PRICE = 1;
const TF_VOLUME = 2;
const TF_AMOUNT = 3;
const TF_SEQ = 4;
const TF_CUM_VOLUME = 5;
const TF_CUM_AMOUNT = 6;
const TF_BID1 = 7;
const TF_ASK1 = 8;
const TF_BID_VOL1 = 9;
const TF_ASK_VOL1 = 10;

/** Field states. */
export const FIELD_ABSENT = 0; // missing or null
export const FIELD_NUMBER = 1;
export const FIELD_OTHER = 2; // present with a type the field does not take

export const CODE_ABSENT = -1;
export const CODE_INVALID = 9;

/**
 * A tick's fields as read from JSON, before any check: filled either from a parsed
 * object (fromObject) or straight from bytes (json-scan.ts), then checked once by
 * decodeTickFields, so both readers reject exactly the same messages the same way.
 */
export class TickFields {
  readonly num = new Float64Array(TICK_NUMBER_FIELDS.length);
  readonly state = new Uint8Array(TICK_NUMBER_FIELDS.length);
  /** Interned id, or SYMBOL_MALFORMED, SYMBOL_OUTSIDE_UNIVERSE, SYMBOL_MISSING (decode.ts). */
  symbolId = SYMBOL_MISSING;
  /** The symbol text when it was rejected (for the reject detail). */
  symbolText = '';
  kind = CODE_ABSENT;
  side = CODE_ABSENT;

  reset(): void {
    this.state.fill(FIELD_ABSENT);
    this.symbolId = SYMBOL_MISSING;
    this.symbolText = '';
    this.kind = CODE_ABSENT;
    this.side = CODE_ABSENT;
  }

  fromObject(o: Json, ctx: DecodeContext): this {
    this.reset();
    const sym = o.symbol;
    if (typeof sym === 'string') {
      this.symbolId = ctx.symbols.intern(sym);
      if (this.symbolId < 0) this.symbolText = sym;
    }
    for (let f = 0; f < TICK_NUMBER_FIELDS.length; f++) {
      const v = o[TICK_NUMBER_FIELDS[f]];
      if (isAbsent(v)) continue;
      if (typeof v === 'number') {
        this.num[f] = v;
        this.state[f] = FIELD_NUMBER;
      } else if (f === TF_TS && typeof v === 'string') {
        this.num[f] = parseIsoWithOffset(v);
        this.state[f] = FIELD_NUMBER;
      } else this.state[f] = FIELD_OTHER;
    }
    const kind = o.kind;
    if (!isAbsent(kind)) this.kind = kind === 'trade' ? KIND_TRADE : kind === 'snapshot' ? KIND_SNAPSHOT : CODE_INVALID;
    const side = o.side;
    if (!isAbsent(side)) this.side = side === 'B' ? SIDE_BUY : side === 'S' ? SIDE_SELL : side === 'N' ? SIDE_UNKNOWN : CODE_INVALID;
    return this;
  }
}

const scratchFields = new TickFields();

/** Decodes one JSON tick message into `out`. Returns true when a row was appended. */
export function decodeTickJson(text: string, origin: number, out: TickBatch, ctx: DecodeContext): boolean {
  const o = parseObject(text, origin, ctx);
  return o !== undefined && decodeTickObject(o, origin, out, ctx);
}

/** Decodes a parsed tick (JSON message, JSONL line, CSV row) into `out`. */
export function decodeTickObject(o: Json, origin: number, out: TickBatch, ctx: DecodeContext): boolean {
  return decodeTickFields(scratchFields.fromObject(o, ctx), origin, out, ctx);
}

/** The checks of DESIGN §2 on a tick's fields; appends the row or rejects it once. */
export function decodeTickFields(t: TickFields, origin: number, out: TickBatch, ctx: DecodeContext): boolean {
  const id = t.symbolId;
  if (id < 0) {
    rejectSymbol(ctx, id, t.symbolText, origin, -1);
    return false;
  }
  const symbol = ctx.symbols.names[id];
  const st = t.state;
  const num = t.num;
  const ts = num[TF_TS];
  if (st[TF_TS] !== FIELD_NUMBER || !Number.isFinite(ts)) return schemaError(ctx, 'ts must be epoch milliseconds or ISO-8601 with an offset', origin, symbol);
  if (st[TF_PRICE] !== FIELD_NUMBER) return schemaError(ctx, 'price must be a number', origin, symbol);
  let kind = t.kind;
  if (kind === CODE_ABSENT) kind = st[TF_CUM_VOLUME] === FIELD_ABSENT ? KIND_TRADE : KIND_SNAPSHOT;
  else if (kind === CODE_INVALID) return schemaError(ctx, 'kind must be "trade" or "snapshot"', origin, symbol);

  out.reserve(1);
  const i = out.length;
  let flags = 0;
  out.symbol[i] = id;
  out.ts[i] = ts;
  out.kind[i] = kind;
  out.price[i] = num[TF_PRICE];
  out.side[i] = SIDE_UNKNOWN;
  if (kind === KIND_TRADE) {
    if (st[TF_VOLUME] !== FIELD_NUMBER) return schemaError(ctx, 'a trade needs a numeric volume', origin, symbol);
    out.volume[i] = num[TF_VOLUME];
    if (st[TF_AMOUNT] === FIELD_OTHER) return schemaError(ctx, 'amount must be a number', origin, symbol);
    if (st[TF_AMOUNT] === FIELD_NUMBER) {
      out.amount[i] = num[TF_AMOUNT];
      flags |= HAS_AMOUNT;
    }
    if (t.side === CODE_INVALID) return schemaError(ctx, 'side must be "B", "S" or "N"', origin, symbol);
    if (t.side !== CODE_ABSENT) out.side[i] = t.side;
  } else {
    if (st[TF_CUM_VOLUME] !== FIELD_NUMBER || st[TF_CUM_AMOUNT] !== FIELD_NUMBER) {
      return schemaError(ctx, 'a snapshot needs numeric cumVolume and cumAmount', origin, symbol);
    }
    out.cumVolume[i] = num[TF_CUM_VOLUME];
    out.cumAmount[i] = num[TF_CUM_AMOUNT];
  }
  if (st[TF_SEQ] !== FIELD_ABSENT) {
    if (st[TF_SEQ] !== FIELD_NUMBER || !Number.isSafeInteger(num[TF_SEQ])) return schemaError(ctx, 'seq must be an integer', origin, symbol);
    out.seq[i] = num[TF_SEQ];
    flags |= HAS_SEQ;
  }
  const q = st[TF_BID1] | st[TF_ASK1] | st[TF_BID_VOL1] | st[TF_ASK_VOL1];
  if (q !== FIELD_ABSENT) {
    if (st[TF_BID1] !== FIELD_NUMBER || st[TF_ASK1] !== FIELD_NUMBER || st[TF_BID_VOL1] !== FIELD_NUMBER || st[TF_ASK_VOL1] !== FIELD_NUMBER) {
      return schemaError(ctx, 'bid1, ask1, bidVol1 and askVol1 come together, as numbers', origin, symbol);
    }
    out.bid1[i] = num[TF_BID1];
    out.ask1[i] = num[TF_ASK1];
    out.bidVol1[i] = num[TF_BID_VOL1];
    out.askVol1[i] = num[TF_ASK_VOL1];
    flags |= HAS_QUOTE;
  }
  out.flags[i] = flags;
  out.origin[i] = origin;
  if (!acceptTick(out, i, ctx, origin, -1)) return false;
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
  if (!acceptBar(out, i, ctx, origin, -1)) return false;
  out.length = i + 1;
  return true;
}

/** The JSON wire form of a tick: only the fields its kind uses. */
export function encodeTickJson(t: TickRecord): string {
  return JSON.stringify(t);
}

