/**
 * A-share trading sessions and bar boundaries (DESIGN §3).
 *
 *   09:15–09:25 opening call auction (order entry; the match print is stamped 09:25)
 *   09:25–09:30 pause                 -> all of it belongs to the first 1-minute bar
 *   09:30–11:30 continuous            -> 1-minute slots 0..119, half-open [start, end)
 *   11:30:00.000 and up to the grace  -> slot 119 (the bar that ends then)
 *   13:00–14:57 continuous            -> slots 120..236
 *   14:57–15:00 closing call auction  -> slots 237..239; the 15:00:00 print, and what is
 *                                        stamped up to the grace after it -> slot 239
 *
 * Real feeds stamp late: SSE Level-2 closing-auction trades carry 15:00:01.060, snapshots
 * a few seconds after 11:30:00 and 15:00:00 report the session's last trades. A grace per
 * session end (SessionGrace, per exchange) assigns them to the bar that ended. Everything
 * else on a trading day is out of session. Bars of every frequency are labelled by their
 * end time and are unions of whole 1-minute slots, so a 10- or 30-minute bar never
 * straddles the lunch break.
 */
import { MS_PER_MINUTE, dayStart, hm, localDay, msOfLocalDay } from './time.js';

export const SLOTS_PER_DAY = 240;
export const MORNING_SLOTS = 120;

export const AUCTION_OPEN = hm(9, 15);
export const AUCTION_MATCH = hm(9, 25);
export const MORNING_OPEN = hm(9, 30);
export const MORNING_CLOSE = hm(11, 30);
export const AFTERNOON_OPEN = hm(13, 0);
export const CLOSING_AUCTION = hm(14, 57);
export const DAY_CLOSE = hm(15, 0);

/** How long after each session end (ms) an event still belongs to the bar that ended then. */
export interface SessionGrace {
  /** After 11:30:00. */
  morning: number;
  /** After 15:00:00 (the closing auction). */
  close: number;
}

export const NO_GRACE: SessionGrace = { morning: 0, close: 0 };

/** 1-minute slot (0..239) of a local time of day, or -1 when out of session. */
export function slotOfTimeOfDay(ms: number, grace: SessionGrace = NO_GRACE): number {
  if (ms < AUCTION_OPEN) return -1;
  if (ms < MORNING_OPEN) return 0;
  if (ms < MORNING_CLOSE) return Math.floor((ms - MORNING_OPEN) / MS_PER_MINUTE);
  if (ms <= MORNING_CLOSE + grace.morning) return MORNING_SLOTS - 1;
  if (ms < AFTERNOON_OPEN) return -1;
  if (ms < DAY_CLOSE) return MORNING_SLOTS + Math.floor((ms - AFTERNOON_OPEN) / MS_PER_MINUTE);
  if (ms <= DAY_CLOSE + grace.close) return SLOTS_PER_DAY - 1;
  return -1;
}

/** A local time of day as HH:MM:SS.mmm. */
export function timeOfDayText(ms: number): string {
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / MS_PER_MINUTE);
  const sec = (ms % MS_PER_MINUTE) / 1000;
  const pad = (x: number): string => String(x).padStart(2, '0');
  return `${pad(h)}:${pad(m)}:${sec.toFixed(3).padStart(6, '0')}`;
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

/** Why a time of day on a trading day is out of session, naming the rule (slotOfTimeOfDay gave -1). */
export function outOfSessionReason(ms: number, grace: SessionGrace): string {
  const at = `${timeOfDayText(ms)} Asia/Shanghai`;
  if (ms < AUCTION_OPEN) return `${at} is before the opening auction (09:15:00)`;
  if (ms < AFTERNOON_OPEN) return `${at} is in the lunch break (after 11:30:00 + ${seconds(grace.morning)}, before 13:00:00)`;
  return `${at} is after the closing auction (15:00:00 + ${seconds(grace.close)})`;
}

/** Local time of day at which 1-minute slot `slot` ends (its label). */
export function slotEndTimeOfDay(slot: number): number {
  return slot < MORNING_SLOTS
    ? MORNING_OPEN + (slot + 1) * MS_PER_MINUTE
    : AFTERNOON_OPEN + (slot - MORNING_SLOTS + 1) * MS_PER_MINUTE;
}

/** 1-minute slot whose end (label) is this time of day, or -1. */
export function slotEndingAt(ms: number): number {
  if (ms > MORNING_OPEN && ms <= MORNING_CLOSE && (ms - MORNING_OPEN) % MS_PER_MINUTE === 0) {
    return (ms - MORNING_OPEN) / MS_PER_MINUTE - 1;
  }
  if (ms > AFTERNOON_OPEN && ms <= DAY_CLOSE && (ms - AFTERNOON_OPEN) % MS_PER_MINUTE === 0) {
    return MORNING_SLOTS + (ms - AFTERNOON_OPEN) / MS_PER_MINUTE - 1;
  }
  return -1;
}

/**
 * How a feed labels its 1-minute bars (bars.label): by their end (09:31 … 11:30,
 * 13:01 … 15:00; the opening-auction bar, where a vendor sends one, 09:25 or 09:30), or
 * by their start (09:30 … 11:29, 13:00 … 14:59; an opening-auction bar 09:25, and the
 * prints at exactly 11:30:00 and 15:00:00, where a vendor sends them apart, 11:30 and 15:00).
 * Inside factorstream a bar is always labelled by its end.
 */
export type BarLabel = 'end' | 'start';
export const BAR_LABELS = ['end', 'start'] as const;

/** A bar's label in `label` convention from its end; a session print bar (auction, 11:30:00 or 15:00:00 prints) keeps the label it came with. */
export function barLabelOf(end: number, sessionPrint: boolean, label: BarLabel): number {
  return sessionPrint || label === 'end' ? end : end - MS_PER_MINUTE;
}

/** Bar frequencies the engine aggregates to; each divides both sessions evenly. */
export const FREQUENCIES = ['1m', '10m', '30m'] as const;
export type Freq = (typeof FREQUENCIES)[number];

export function freqMinutes(freq: Freq): number {
  return freq === '1m' ? 1 : freq === '10m' ? 10 : 30;
}

export function parseFreq(text: string): Freq {
  if ((FREQUENCIES as readonly string[]).includes(text)) return text as Freq;
  throw new RangeError(`unknown bar frequency "${text}" (expected one of ${FREQUENCIES.join(', ')})`);
}

/**
 * Bar geometry of one frequency: which bar a slot falls in, when each bar ends, and the
 * first instant that no longer belongs to it (its close instant). Precomputed once.
 */
export class BarSchedule {
  readonly freq: Freq;
  readonly minutes: number;
  readonly barsPerDay: number;
  /** End time of day of bar k (its label). */
  readonly endTimeOfDay: Float64Array;
  /**
   * First time of day that is not part of bar k: its end, or past the session end's grace
   * at 11:30 and 15:00 (end + grace + 1 ms), since events stamped up to then belong to it.
   */
  readonly closeTimeOfDay: Float64Array;

  /** `grace`: the longest grace of any exchange, since one close covers the whole market. */
  constructor(freq: Freq, grace: SessionGrace = NO_GRACE) {
    this.freq = freq;
    this.minutes = freqMinutes(freq);
    this.barsPerDay = SLOTS_PER_DAY / this.minutes;
    this.endTimeOfDay = new Float64Array(this.barsPerDay);
    this.closeTimeOfDay = new Float64Array(this.barsPerDay);
    for (let k = 0; k < this.barsPerDay; k++) {
      const end = slotEndTimeOfDay((k + 1) * this.minutes - 1);
      this.endTimeOfDay[k] = end;
      this.closeTimeOfDay[k] = end === MORNING_CLOSE ? end + grace.morning + 1 : end === DAY_CLOSE ? end + grace.close + 1 : end;
    }
  }

  barOfSlot(slot: number): number {
    return Math.floor(slot / this.minutes);
  }

  firstSlot(bar: number): number {
    return bar * this.minutes;
  }

  barEnd(day: number, bar: number): number {
    return dayStart(day) + this.endTimeOfDay[bar];
  }

  closeAt(day: number, bar: number): number {
    return dayStart(day) + this.closeTimeOfDay[bar];
  }

  /** Bar index whose label is this instant, or -1. */
  barEndingAt(ts: number): number {
    const slot = slotEndingAt(msOfLocalDay(ts));
    if (slot < 0 || (slot + 1) % this.minutes !== 0) return -1;
    return this.barOfSlot(slot);
  }
}

/** Bar end (label) of the bar at `freq` that contains `ts`, or NaN out of session. */
export function barEndOf(ts: number, schedule: BarSchedule): number {
  const slot = slotOfTimeOfDay(msOfLocalDay(ts));
  if (slot < 0) return Number.NaN;
  return schedule.barEnd(localDay(ts), schedule.barOfSlot(slot));
}
