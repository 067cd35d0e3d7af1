/**
 * Exchange time: Asia/Shanghai is UTC+8 with no daylight saving, so local wall-clock
 * arithmetic is plain integer arithmetic on epoch milliseconds. A "day number" is the
 * count of local calendar days since 1970-01-01 (local).
 */
export const MS_PER_MINUTE = 60_000;
export const MS_PER_DAY = 86_400_000;
export const SHANGHAI_OFFSET_MS = 8 * 3_600_000;

export function hm(hours: number, minutes: number, seconds = 0): number {
  return (hours * 3600 + minutes * 60 + seconds) * 1000;
}

/** Local (Shanghai) day number of an epoch-ms instant. */
export function localDay(ts: number): number {
  return Math.floor((ts + SHANGHAI_OFFSET_MS) / MS_PER_DAY);
}

/** Milliseconds since local midnight of an epoch-ms instant. */
export function msOfLocalDay(ts: number): number {
  const shifted = ts + SHANGHAI_OFFSET_MS;
  return shifted - Math.floor(shifted / MS_PER_DAY) * MS_PER_DAY;
}

/** Epoch ms of local midnight of a day number. */
export function dayStart(day: number): number {
  return day * MS_PER_DAY - SHANGHAI_OFFSET_MS;
}

/** 0 = Sunday … 6 = Saturday. 1970-01-01 was a Thursday. */
export function weekday(day: number): number {
  return (((day + 4) % 7) + 7) % 7;
}

/** The largest |epoch ms| a Date holds. */
const MAX_TIME = 8.64e15;

export function dayToIso(day: number): string {
  if (!(Math.abs(day * MS_PER_DAY) <= MAX_TIME)) return `day ${day} (not a valid date)`;
  return new Date(day * MS_PER_DAY).toISOString().slice(0, 10);
}

export function isoToDay(iso: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso);
  if (m === null) throw new RangeError(`not a YYYY-MM-DD date: ${iso}`);
  return Math.floor(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) / MS_PER_DAY);
}

/** ISO-8601 local time with the +08:00 offset, e.g. 2026-11-23T10:00:00+08:00 (milliseconds only when non-zero). */
export function toLocalIso(ts: number): string {
  // Reject details print what a feed sent, however wrong.
  if (!(Math.abs(ts + SHANGHAI_OFFSET_MS) <= MAX_TIME)) return `${ts} (not a valid time)`;
  const iso = new Date(ts + SHANGHAI_OFFSET_MS).toISOString();
  const body = iso.endsWith('.000Z') ? iso.slice(0, 19) : iso.slice(0, 23);
  return `${body}+08:00`;
}

const ISO_WITH_OFFSET = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})$/;

/**
 * Parses an ISO-8601 timestamp that carries an explicit offset (or Z). Returns NaN for
 * anything else: a time without an offset is ambiguous and is rejected, not guessed.
 */
export function parseIsoWithOffset(text: string): number {
  if (!ISO_WITH_OFFSET.test(text)) return Number.NaN;
  return Date.parse(text);
}
