/**
 * Stateless checks of one decoded event (ranges, session). Shared by every codec so that
 * a tick means the same thing whether it came as JSON, Arrow or CSV. Stateful checks
 * (duplicates, cumulative decreases, lateness) belong to the aggregator, which holds the
 * state they need. Each check returns the 1-minute slot (>= 0) or a negative error id;
 * acceptTick / acceptBar run it, set the slot and report a reject with a detail that
 * names the rule, the value and the local time.
 */
import { errorId, type ErrorCode } from '../errors.js';
import type { TradingCalendar } from '../market/calendar.js';
import { slotEndingAt, slotOfTimeOfDay, AUCTION_MATCH, DAY_CLOSE, MORNING_CLOSE, MORNING_OPEN, MORNING_SLOTS, SLOTS_PER_DAY, type BarLabel } from '../market/sessions.js';
import type { Exchange } from '../market/symbols.js';
import { localDay, msOfLocalDay, MS_PER_MINUTE, toLocalIso } from '../market/time.js';
import { codeOf, type DecodeContext } from './decode.js';
import { BAR_SESSION_PRINT, HAS_AMOUNT, HAS_QUOTE, KIND_SNAPSHOT, KIND_TRADE, type BarBatch, type TickBatch } from './events.js';

/**
 * The slot of a snapshot outside the sessions of a trading day (the lunch break, before
 * the open, after the close): valid only when it reports nothing new since the symbol's
 * previous snapshot (a heartbeat), which the aggregator, holding that snapshot, decides.
 */
export const SLOT_BREAK = 255;

const E_BAD_PRICE = -errorId('E_BAD_PRICE');
const E_NEGATIVE_VOLUME = -errorId('E_NEGATIVE_VOLUME');
const E_NEGATIVE_AMOUNT = -errorId('E_NEGATIVE_AMOUNT');
const E_IMPLAUSIBLE_SIZE = -errorId('E_IMPLAUSIBLE_SIZE');
const E_AMOUNT_MISMATCH = -errorId('E_AMOUNT_MISMATCH');
const E_SCHEMA = -errorId('E_SCHEMA');
const E_OUT_OF_SESSION = -errorId('E_OUT_OF_SESSION');
const E_BAR_INCONSISTENT = -errorId('E_BAR_INCONSISTENT');
const E_BAR_NOT_ALIGNED = -errorId('E_BAR_NOT_ALIGNED');

/**
 * Bounds of a plausible event (README *Message formats*): no A-share trades below one fen
 * or above CNY 100,000; one trade or 1-minute bar carries at most 1e10 shares and CNY 1e12
 * (the largest floats are about 3e11 shares); a snapshot's day totals at most 1e12 shares
 * and CNY 1e14. Beyond them a value is a unit error or a corrupt field, not a market.
 */
export const MIN_PRICE = 0.01;
export const MAX_PRICE = 100_000;
export const MAX_EVENT_VOLUME = 1e10;
export const MAX_EVENT_AMOUNT = 1e12;
export const MAX_DAY_VOLUME = 1e12;
export const MAX_DAY_AMOUNT = 1e14;
/** A trade's amount may differ from price x volume, and a bar's VWAP leave its range, by this fraction (fees, rounding to the fen). */
export const AMOUNT_TOLERANCE = 0.01;

/** `x >= 0` and finite; NaN fails. */
function nonNegative(x: number): boolean {
  return x >= 0 && x < Infinity;
}

function isPrice(x: number): boolean {
  return x >= MIN_PRICE && x <= MAX_PRICE;
}

/** A quote price: a price, or 0 for an empty side of the book. */
function isQuote(x: number): boolean {
  return x === 0 || isPrice(x);
}

/** The volume and amount of one trade or 1-minute bar: 0 when plausible, else the negative error id. */
function checkSize(volume: number, amount: number, maxVolume: number, maxAmount: number): number {
  if (!nonNegative(volume)) return E_NEGATIVE_VOLUME;
  if (!nonNegative(amount)) return E_NEGATIVE_AMOUNT;
  if (volume > maxVolume || amount > maxAmount) return E_IMPLAUSIBLE_SIZE;
  return 0;
}

export function checkTick(b: TickBatch, i: number, calendar: TradingCalendar, exchange: Exchange): number {
  const price = b.price[i];
  if (b.kind[i] === KIND_TRADE) {
    if (!isPrice(price)) return E_BAD_PRICE;
    const v = b.volume[i];
    if (!(b.flags[i] & HAS_AMOUNT)) b.amount[i] = price * v;
    const size = checkSize(v, b.amount[i], MAX_EVENT_VOLUME, MAX_EVENT_AMOUNT);
    if (size !== 0) return size;
    if (v === 0) return E_SCHEMA;
    if (Math.abs(b.amount[i] - price * v) > AMOUNT_TOLERANCE * price * v) return E_AMOUNT_MISMATCH;
  } else {
    const size = checkSize(b.cumVolume[i], b.cumAmount[i], MAX_DAY_VOLUME, MAX_DAY_AMOUNT);
    if (size !== 0) return size;
    // Before the first trade of the day a snapshot has no last price.
    if (!isPrice(price) && !(price === 0 && b.cumVolume[i] === 0)) return E_BAD_PRICE;
    if (b.cumVolume[i] === 0 && b.cumAmount[i] > 0) return E_AMOUNT_MISMATCH;
  }
  if (b.flags[i] & HAS_QUOTE) {
    if (!isQuote(b.bid1[i]) || !isQuote(b.ask1[i])) return E_BAD_PRICE;
    if (!nonNegative(b.bidVol1[i]) || !nonNegative(b.askVol1[i])) return E_NEGATIVE_VOLUME;
  }
  const slot = calendar.slotOf(b.ts[i], exchange);
  if (slot >= 0) return slot;
  return b.kind[i] === KIND_SNAPSHOT && calendar.isTradingDay(localDay(b.ts[i])) ? SLOT_BREAK : E_OUT_OF_SESSION;
}

/**
 * Checks bar row i labelled in the `label` convention; on success its ts is the bar's end
 * (a session print bar keeps its label and is flagged BAR_SESSION_PRINT).
 */
export function checkBar(b: BarBatch, i: number, calendar: TradingCalendar, label: BarLabel = 'end'): number {
  const o = b.open[i];
  const h = b.high[i];
  const l = b.low[i];
  const c = b.close[i];
  if (!(isPrice(o) && isPrice(h) && isPrice(l) && isPrice(c))) return E_BAD_PRICE;
  if (!(l <= o && l <= c && o <= h && c <= h)) return E_BAR_INCONSISTENT;
  const v = b.volume[i];
  const a = b.amount[i];
  const size = checkSize(v, a, MAX_EVENT_VOLUME, MAX_EVENT_AMOUNT);
  if (size !== 0) return size;
  if (!nonNegative(b.buyVolume[i]) || !nonNegative(b.sellVolume[i]) || !nonNegative(b.trades[i])) return E_NEGATIVE_VOLUME;
  if (v === 0 ? a > 0 : a > 0 && (a / v < l * (1 - AMOUNT_TOLERANCE) || a / v > h * (1 + AMOUNT_TOLERANCE))) return E_AMOUNT_MISMATCH;
  const ts = b.ts[i];
  if (!calendar.isTradingDay(localDay(ts))) return E_OUT_OF_SESSION;
  const ms = msOfLocalDay(ts);
  // A vendor's bar of session prints merges into its slot: the opening auction (labelled
  // 09:25, or 09:30 by its end), and by their start the 11:30:00 and 15:00:00 prints.
  const print = ms === AUCTION_MATCH || (label === 'end' ? ms === MORNING_OPEN : ms === MORNING_CLOSE || ms === DAY_CLOSE);
  if (print) {
    b.flags[i] |= BAR_SESSION_PRINT;
    return ms === MORNING_CLOSE ? MORNING_SLOTS - 1 : ms === DAY_CLOSE ? SLOTS_PER_DAY - 1 : 0;
  }
  const end = label === 'start' ? ms + MS_PER_MINUTE : ms;
  const slot = slotEndingAt(end);
  if (slot >= 0) {
    b.ts[i] = ts - ms + end;
    return slot;
  }
  return slotOfTimeOfDay(ms) >= 0 ? E_BAR_NOT_ALIGNED : E_OUT_OF_SESSION;
}

/** What was wrong with a rejected event, for the reject's detail. */
function tickDetail(code: ErrorCode, b: TickBatch, i: number, calendar: TradingCalendar, exchange: Exchange): string {
  const ts = b.ts[i];
  const kind = b.kind[i] === KIND_TRADE ? 'trade' : 'snapshot';
  switch (code) {
    case 'E_OUT_OF_SESSION':
      return `${kind}: ${calendar.outOfSessionReason(ts, exchange)}`;
    case 'E_BAD_PRICE':
      return `${kind} at ${toLocalIso(ts)}: price ${b.price[i]}${b.flags[i] & HAS_QUOTE ? `, bid1 ${b.bid1[i]}, ask1 ${b.ask1[i]}` : ''}`;
    case 'E_NEGATIVE_VOLUME':
    case 'E_NEGATIVE_AMOUNT':
    case 'E_IMPLAUSIBLE_SIZE':
    case 'E_AMOUNT_MISMATCH':
      return kind === 'trade'
        ? `trade at ${toLocalIso(ts)}: price ${b.price[i]}, volume ${b.volume[i]}, amount ${b.amount[i]}${code === 'E_AMOUNT_MISMATCH' ? ` (price x volume ${b.price[i] * b.volume[i]})` : ''}`
        : `snapshot at ${toLocalIso(ts)}: cumVolume ${b.cumVolume[i]}, cumAmount ${b.cumAmount[i]}`;
    case 'E_SCHEMA':
      return `trade at ${toLocalIso(ts)}: volume 0`;
    default:
      return `${kind} at ${toLocalIso(ts)}`;
  }
}

function barDetail(code: ErrorCode, b: BarBatch, i: number, calendar: TradingCalendar, label: BarLabel): string {
  const ts = b.ts[i];
  switch (code) {
    case 'E_OUT_OF_SESSION':
      return `1-minute bar labelled by its ${label} ${calendar.outOfSessionReason(ts)}`;
    case 'E_BAR_NOT_ALIGNED':
      return `1-minute bar labelled ${toLocalIso(ts)}: not the ${label} of a 1-minute slot (bars.label is ${label})`;
    case 'E_BAD_PRICE':
    case 'E_BAR_INCONSISTENT':
      return `1-minute bar ending ${toLocalIso(ts)}: open ${b.open[i]}, high ${b.high[i]}, low ${b.low[i]}, close ${b.close[i]}`;
    case 'E_AMOUNT_MISMATCH':
      return `1-minute bar ending ${toLocalIso(ts)}: amount ${b.amount[i]} / volume ${b.volume[i]} is not within low ${b.low[i]} - high ${b.high[i]}`;
    default:
      return `1-minute bar ending ${toLocalIso(ts)}: volume ${b.volume[i]}, amount ${b.amount[i]}`;
  }
}

/** Checks tick row i: sets its slot and returns true, or reports the reject (with its detail) and returns false. */
export function acceptTick(b: TickBatch, i: number, ctx: DecodeContext, origin: number, row: number): boolean {
  const exchange = ctx.symbols.exchanges[b.symbol[i]];
  const slot = checkTick(b, i, ctx.calendar, exchange);
  if (slot >= 0) {
    b.slot[i] = slot;
    return true;
  }
  const code = codeOf(slot);
  ctx.reject(code, tickDetail(code, b, i, ctx.calendar, exchange), origin, row, ctx.symbols.names[b.symbol[i]]);
  return false;
}

/** Checks bar row i: sets its slot and returns true, or reports the reject (with its detail) and returns false. */
export function acceptBar(b: BarBatch, i: number, ctx: DecodeContext, origin: number, row: number): boolean {
  const label = ctx.barLabel ?? 'end';
  const slot = checkBar(b, i, ctx.calendar, label);
  if (slot >= 0) {
    b.slot[i] = slot;
    return true;
  }
  const code = codeOf(slot);
  ctx.reject(code, barDetail(code, b, i, ctx.calendar, label), origin, row, ctx.symbols.names[b.symbol[i]]);
  return false;
}
