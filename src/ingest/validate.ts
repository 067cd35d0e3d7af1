/**
 * Stateless checks of one decoded event (ranges, session). Shared by every codec so that
 * a tick means the same thing whether it came as JSON, Arrow or CSV. Stateful checks
 * (duplicates, cumulative decreases, lateness) belong to the aggregator, which holds the
 * state they need. Each check returns the 1-minute slot (>= 0) or a negative error id.
 */
import { errorId } from '../errors.js';
import type { TradingCalendar } from '../market/calendar.js';
import { slotEndingAt, slotOfTimeOfDay, AUCTION_MATCH, MORNING_OPEN } from '../market/sessions.js';
import { localDay, msOfLocalDay } from '../market/time.js';
import { HAS_AMOUNT, HAS_QUOTE, KIND_TRADE, type BarBatch, type TickBatch } from './events.js';

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

export function checkTick(b: TickBatch, i: number, calendar: TradingCalendar): number {
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
  const slot = calendar.slotOf(b.ts[i]);
  return slot < 0 ? E_OUT_OF_SESSION : slot;
}

export function checkBar(b: BarBatch, i: number, calendar: TradingCalendar): number {
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
  // A vendor's opening-auction bar (labelled 09:25 or 09:30) merges into the first minute.
  if (ms === AUCTION_MATCH || ms === MORNING_OPEN) return 0;
  const slot = slotEndingAt(ms);
  if (slot >= 0) return slot;
  return slotOfTimeOfDay(ms) >= 0 ? E_BAR_NOT_ALIGNED : E_OUT_OF_SESSION;
}
