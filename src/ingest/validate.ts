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
const E_SCHEMA = -errorId('E_SCHEMA');
const E_OUT_OF_SESSION = -errorId('E_OUT_OF_SESSION');
const E_BAR_INCONSISTENT = -errorId('E_BAR_INCONSISTENT');
const E_BAR_NOT_ALIGNED = -errorId('E_BAR_NOT_ALIGNED');

/** `x >= 0` and finite; NaN fails. */
function nonNegative(x: number): boolean {
  return x >= 0 && x < Infinity;
}

export function checkTick(b: TickBatch, i: number, calendar: TradingCalendar, exchange: Exchange): number {
  const price = b.price[i];
  if (b.kind[i] === KIND_TRADE) {
    if (!(price > 0 && price < Infinity)) return E_BAD_PRICE;
    const v = b.volume[i];
    if (!nonNegative(v)) return E_NEGATIVE_VOLUME;
    if (v === 0) return E_SCHEMA;
    if (b.flags[i] & HAS_AMOUNT) {
      if (!nonNegative(b.amount[i])) return E_NEGATIVE_VOLUME;
    } else {
      b.amount[i] = price * v;
    }
  } else {
    if (!nonNegative(b.cumVolume[i]) || !nonNegative(b.cumAmount[i])) return E_NEGATIVE_VOLUME;
    // Before the first trade of the day a snapshot has no last price.
    if (!(price > 0 && price < Infinity) && !(price === 0 && b.cumVolume[i] === 0)) return E_BAD_PRICE;
  }
  if (b.flags[i] & HAS_QUOTE) {
    if (!nonNegative(b.bid1[i]) || !nonNegative(b.ask1[i])) return E_BAD_PRICE;
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
  if (!(o > 0 && h > 0 && l > 0 && c > 0 && h < Infinity)) return E_BAD_PRICE;
  if (!(l <= o && l <= c && o <= h && c <= h)) return E_BAR_INCONSISTENT;
  if (!nonNegative(b.volume[i]) || !nonNegative(b.amount[i])) return E_NEGATIVE_VOLUME;
  if (!nonNegative(b.buyVolume[i]) || !nonNegative(b.sellVolume[i]) || !nonNegative(b.trades[i])) return E_NEGATIVE_VOLUME;
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
      return kind === 'trade' ? `trade at ${toLocalIso(ts)}: volume ${b.volume[i]}, amount ${b.amount[i]}` : `snapshot at ${toLocalIso(ts)}: cumVolume ${b.cumVolume[i]}, cumAmount ${b.cumAmount[i]}`;
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
