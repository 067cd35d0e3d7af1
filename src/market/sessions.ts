/**
 * A-share trading sessions and bar boundaries (DESIGN §3).
 *
 *   09:15–09:25 opening call auction (order entry; the match print is stamped 09:25)
 *   09:25–09:30 pause                 -> all of it belongs to the first 1-minute bar
 *   09:30–11:30 continuous            -> 1-minute slots 0..119, half-open [start, end)
 *   11:30:00.000 exactly              -> slot 119 (the bar that ends then)
 *   13:00–14:57 continuous            -> slots 120..236
 *   14:57–15:00 closing call auction  -> slots 237..239; the 15:00:00 print -> slot 239
 *
 * Everything else on a trading day is out of session. Bars of every frequency are
 * labelled by their end time and are unions of whole 1-minute slots, so a 10- or
 * 30-minute bar never straddles the lunch break.
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

/** 1-minute slot (0..239) of a local time of day, or -1 when out of session. */
export function slotOfTimeOfDay(ms: number): number {
  if (ms < AUCTION_OPEN) return -1;
  if (ms < MORNING_OPEN) return 0;
  if (ms < MORNING_CLOSE) return Math.floor((ms - MORNING_OPEN) / MS_PER_MINUTE);
  if (ms === MORNING_CLOSE) return MORNING_SLOTS - 1;
  if (ms < AFTERNOON_OPEN) return -1;
  if (ms < DAY_CLOSE) return MORNING_SLOTS + Math.floor((ms - AFTERNOON_OPEN) / MS_PER_MINUTE);
  if (ms === DAY_CLOSE) return SLOTS_PER_DAY - 1;
  return -1;
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
  /** First time of day that is not part of bar k: its end, or end + 1 ms at 11:30 and 15:00. */
  readonly closeTimeOfDay: Float64Array;

  constructor(freq: Freq) {
    this.freq = freq;
    this.minutes = freqMinutes(freq);
    this.barsPerDay = SLOTS_PER_DAY / this.minutes;
    this.endTimeOfDay = new Float64Array(this.barsPerDay);
    this.closeTimeOfDay = new Float64Array(this.barsPerDay);
    for (let k = 0; k < this.barsPerDay; k++) {
      const end = slotEndTimeOfDay((k + 1) * this.minutes - 1);
      this.endTimeOfDay[k] = end;
      this.closeTimeOfDay[k] = end === MORNING_CLOSE || end === DAY_CLOSE ? end + 1 : end;
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
