import { describe, expect, it } from 'vitest';
import { BarSchedule, slotOfTimeOfDay, slotEndingAt, SLOTS_PER_DAY, barEndOf } from '../src/market/sessions.js';
import { hm, localDay, msOfLocalDay, isoToDay, dayToIso, toLocalIso, parseIsoWithOffset, weekday } from '../src/market/time.js';
import { boardOf, priceLimits, limitState, roundToFen } from '../src/market/symbols.js';
import { SimulatedClock } from '../src/market/clock.js';
import { TradingCalendar } from '../src/market/calendar.js';
import { calendar, sh } from './helpers.js';

const slot = (local: string): number => calendar.slotOf(sh(local));

describe('sessions: every boundary instant', () => {
  it('opening call auction: 09:15..09:30 belongs to the first bar, before 09:15 is out of session', () => {
    expect(slot('2026-11-23T09:14:59.999')).toBe(-1);
    expect(slot('2026-11-23T09:15:00')).toBe(0);
    expect(slot('2026-11-23T09:25:00')).toBe(0); // the auction print
    expect(slot('2026-11-23T09:29:59.999')).toBe(0);
    expect(slot('2026-11-23T09:30:00')).toBe(0);
    expect(slot('2026-11-23T09:30:59.999')).toBe(0);
    expect(slot('2026-11-23T09:31:00')).toBe(1);
  });
  it('morning close: 11:30:00.000 and the 3 s grace after it belong to the bar ending 11:30; after that, lunch is out of session', () => {
    expect(slot('2026-11-23T11:29:59.999')).toBe(119);
    expect(slot('2026-11-23T11:30:00')).toBe(119);
    expect(slot('2026-11-23T11:30:03')).toBe(119);
    expect(slot('2026-11-23T11:30:03.001')).toBe(-1);
    expect(slot('2026-11-23T12:00:00')).toBe(-1);
    expect(slot('2026-11-23T12:59:59.999')).toBe(-1);
  });
  it('afternoon: 13:00:00 opens slot 120; the closing auction 14:57..15:00; 15:00:00.000 and its 3 s grace are the last bar', () => {
    expect(slot('2026-11-23T13:00:00')).toBe(120);
    expect(slot('2026-11-23T14:56:59.999')).toBe(236);
    expect(slot('2026-11-23T14:57:00')).toBe(237);
    expect(slot('2026-11-23T14:59:59.999')).toBe(239);
    expect(slot('2026-11-23T15:00:00')).toBe(239);
    expect(slot('2026-11-23T15:00:01.060')).toBe(239);
    expect(slot('2026-11-23T15:00:03')).toBe(239);
    expect(slot('2026-11-23T15:00:03.001')).toBe(-1);
  });
  it('the grace is per exchange and session end, from the configuration; a bar closes after the widest', () => {
    const strict = TradingCalendar.load(undefined, { SH: { morning: 0, close: 0 }, SZ: { morning: 5_000, close: 6_000 }, BJ: { morning: 0, close: 0 } });
    expect(strict.slotOf(sh('2026-11-23T11:30:00.001'), 'SH')).toBe(-1);
    expect(strict.slotOf(sh('2026-11-23T11:30:05'), 'SZ')).toBe(119);
    expect(strict.slotOf(sh('2026-11-23T15:00:06'), 'SZ')).toBe(239);
    expect(strict.slotOf(sh('2026-11-23T15:00:06.001'), 'SZ')).toBe(-1);
    expect(strict.widestGrace).toEqual({ morning: 5_000, close: 6_000 });
    const s30 = new BarSchedule('30m', strict.widestGrace);
    expect(s30.closeTimeOfDay[3]).toBe(hm(11, 30) + 5_001);
    expect(s30.closeTimeOfDay[7]).toBe(hm(15, 0) + 6_001);
    expect(s30.closeTimeOfDay[0]).toBe(hm(10, 0));
    expect(strict.outOfSessionReason(sh('2026-11-23T15:00:00.500'), 'SH')).toBe('2026-11-23 15:00:00.500 Asia/Shanghai is after the closing auction (15:00:00 + 0 s)');
    expect(strict.outOfSessionReason(sh('2026-11-23T09:10:00'), 'SH')).toBe('2026-11-23 09:10:00.000 Asia/Shanghai is before the opening auction (09:15:00)');
    expect(strict.outOfSessionReason(sh('2026-11-21T10:00:00'), 'SH')).toBe('2026-11-21 is not a trading day (Saturday)');
    expect(strict.outOfSessionReason(sh('2026-10-01T10:00:00'), 'SH')).toBe('2026-10-01 is not a trading day (an exchange holiday)');
  });
  it('weekends and exchange holidays are out of session', () => {
    expect(slot('2026-11-21T10:00:00')).toBe(-1); // Saturday
    expect(slot('2026-11-22T10:00:00')).toBe(-1); // Sunday
    expect(slot('2026-10-01T10:00:00')).toBe(-1); // National Day
    expect(slot('2026-02-16T10:00:00')).toBe(-1); // Spring Festival
    expect(slot('2026-11-24T10:00:00')).toBe(30);
  });
  it('slot arithmetic is consistent in both directions', () => {
    for (let s = 0; s < SLOTS_PER_DAY; s++) {
      const end = new BarSchedule('1m').endTimeOfDay[s];
      expect(slotEndingAt(end)).toBe(s);
      // the instant just before a bar's end is inside it
      expect(slotOfTimeOfDay(end - 1)).toBe(s);
    }
  });
});

describe('bar schedules', () => {
  it('10-minute bars: 24 a day labelled 09:40 .. 11:30, 13:10 .. 15:00', () => {
    const s = new BarSchedule('10m');
    expect(s.barsPerDay).toBe(24);
    const labels = Array.from(s.endTimeOfDay, (t) => toLocalIso(t - 8 * 3_600_000).slice(11, 16));
    expect(labels.slice(0, 3)).toEqual(['09:40', '09:50', '10:00']);
    expect(labels.slice(10, 14)).toEqual(['11:20', '11:30', '13:10', '13:20']);
    expect(labels[23]).toBe('15:00');
  });
  it('30-minute bars: 8 a day', () => {
    const s = new BarSchedule('30m');
    const labels = Array.from(s.endTimeOfDay, (t) => toLocalIso(t - 8 * 3_600_000).slice(11, 16));
    expect(labels).toEqual(['10:00', '10:30', '11:00', '11:30', '13:30', '14:00', '14:30', '15:00']);
  });
  it('close instants: a bar is complete at its end, except 11:30 and 15:00 which take prints at that instant', () => {
    const s = new BarSchedule('10m');
    const day = isoToDay('2026-11-23');
    expect(s.closeAt(day, 0)).toBe(sh('2026-11-23T09:40:00'));
    expect(s.closeAt(day, 11)).toBe(sh('2026-11-23T11:30:00') + 1);
    expect(s.closeAt(day, 23)).toBe(sh('2026-11-23T15:00:00') + 1);
  });
  it('bar of an instant', () => {
    const s10 = new BarSchedule('10m');
    const s30 = new BarSchedule('30m');
    expect(barEndOf(sh('2026-11-23T09:25:00'), s10)).toBe(sh('2026-11-23T09:40:00'));
    expect(barEndOf(sh('2026-11-23T09:40:00'), s10)).toBe(sh('2026-11-23T09:50:00'));
    expect(barEndOf(sh('2026-11-23T10:00:00'), s30)).toBe(sh('2026-11-23T10:30:00'));
    expect(barEndOf(sh('2026-11-23T11:30:00'), s30)).toBe(sh('2026-11-23T11:30:00'));
    expect(barEndOf(sh('2026-11-23T13:00:00'), s30)).toBe(sh('2026-11-23T13:30:00'));
    expect(barEndOf(sh('2026-11-23T14:57:00'), s10)).toBe(sh('2026-11-23T15:00:00'));
    expect(barEndOf(sh('2026-11-23T15:00:00'), s10)).toBe(sh('2026-11-23T15:00:00'));
    expect(barEndOf(sh('2026-11-23T12:00:00'), s10)).toBeNaN();
    expect(s30.barEndingAt(sh('2026-11-23T11:30:00'))).toBe(3);
    expect(s30.barEndingAt(sh('2026-11-23T11:20:00'))).toBe(-1);
  });
});

describe('time', () => {
  it('Shanghai is UTC+8 without daylight saving', () => {
    const t = sh('2026-07-01T00:30:00');
    expect(dayToIso(localDay(t))).toBe('2026-07-01');
    expect(msOfLocalDay(t)).toBe(30 * 60_000);
    expect(toLocalIso(sh('2026-11-23T09:25:00'))).toBe('2026-11-23T09:25:00+08:00');
    expect(weekday(isoToDay('2026-11-23'))).toBe(1);
  });
  it('ISO-8601 needs an offset', () => {
    expect(parseIsoWithOffset('2026-11-23T09:25:00+08:00')).toBe(sh('2026-11-23T09:25:00'));
    expect(parseIsoWithOffset('2026-11-23T01:25:00Z')).toBe(sh('2026-11-23T09:25:00'));
    expect(parseIsoWithOffset('2026-11-23T09:25:00')).toBeNaN();
    expect(parseIsoWithOffset('yesterday')).toBeNaN();
  });
});

describe('trading calendar', () => {
  it('comes from the generated holidays file and says how far it reaches', () => {
    expect(calendar.source).toMatch(/exchange-calendars/);
    expect(calendar.covers(isoToDay('2026-11-23'))).toBe(true);
    expect(calendar.covers(isoToDay('2030-01-02'))).toBe(false);
    // beyond the file weekdays are assumed open, weekends never
    expect(calendar.isTradingDay(isoToDay('2030-01-02'))).toBe(true);
    expect(calendar.isTradingDay(isoToDay('2030-01-05'))).toBe(false);
  });
  it('steps over weekends and holidays', () => {
    expect(dayToIso(calendar.nextTradingDay(isoToDay('2026-09-30')))).toBe('2026-10-08');
    expect(dayToIso(calendar.previousTradingDay(isoToDay('2026-10-08')))).toBe('2026-09-30');
    expect(calendar.tradingDays(isoToDay('2026-11-21'), 3).map(dayToIso)).toEqual(['2026-11-23', '2026-11-24', '2026-11-25']);
    // a make-up working weekend (2026-09-20 Sunday) is closed for the exchange
    expect(calendar.isTradingDay(isoToDay('2026-09-20'))).toBe(false);
  });
});

describe('symbols and price limits', () => {
  it('boards from code ranges', () => {
    expect(boardOf('600000.SH')).toBe('main');
    expect(boardOf('688981.SH')).toBe('star');
    expect(boardOf('000001.SZ')).toBe('main');
    expect(boardOf('300750.SZ')).toBe('chinext');
    expect(boardOf('430047.BJ')).toBe('bse');
    expect(boardOf('600000.SZ')).toBeUndefined();
    expect(boardOf('60000.SH')).toBeUndefined();
    expect(boardOf('600000.sh')).toBeUndefined();
  });
  it('limits by board and ST, rounded to the fen', () => {
    expect(priceLimits(10, 'main', false)).toEqual({ up: 11, down: 9 });
    expect(priceLimits(10, 'chinext', false)).toEqual({ up: 12, down: 8 });
    expect(priceLimits(10, 'star', false)).toEqual({ up: 12, down: 8 });
    expect(priceLimits(10, 'bse', false)).toEqual({ up: 13, down: 7 });
    expect(priceLimits(10, 'main', true)).toEqual({ up: 10.5, down: 9.5 });
    expect(priceLimits(12.35, 'main', false)).toEqual({ up: 13.59, down: 11.12 });
    expect(roundToFen(1.005)).toBe(1.01);
    expect(limitState(13.59, priceLimits(12.35, 'main', false))).toBe(1);
    expect(limitState(11.12, priceLimits(12.35, 'main', false))).toBe(-1);
    expect(limitState(12, priceLimits(12.35, 'main', false))).toBe(0);
  });
});

describe('simulated clock', () => {
  it('fires alarms in time order and only once', () => {
    const clock = new SimulatedClock(0);
    const fired: number[] = [];
    clock.setAlarm(30, () => fired.push(30));
    const h = clock.setAlarm(20, () => fired.push(20));
    clock.setAlarm(10, () => fired.push(10));
    clock.cancelAlarm(h);
    clock.advanceTo(25);
    expect(fired).toEqual([10]);
    expect(clock.now()).toBe(25);
    clock.advanceTo(100);
    expect(fired).toEqual([10, 30]);
  });
});
