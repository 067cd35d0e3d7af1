/**
 * Live IC: realised rank IC of end-of-day scores against the close-to-close returns that
 * follow, at 1 and 5 trading days, from what the daemon observes; a checkpoint keeps it.
 */
import { describe, expect, it } from 'vitest';
import { LiveIc, type LiveIcObservation } from '../src/eval/live-ic.js';
import { isoToDay } from '../src/market/time.js';
import { calendar } from './helpers.js';

const N = 50;
/** Trading days from 2026-11-16 (a Monday). */
const days = calendar.tradingDays(isoToDay('2026-11-16'), 12);

/** Prices that follow yesterday's scores exactly (rank IC 1 at one day), with symbol 7 suspended on day 3. */
function market(): { close: Float64Array[]; score: Float32Array[] } {
  const close: Float64Array[] = [];
  const score: Float32Array[] = [];
  let price = Float64Array.from({ length: N }, () => 10);
  for (let d = 0; d < days.length; d++) {
    // Today's score is tomorrow's return, up to a monotone map: a perfect 1-day factor.
    const s = Float32Array.from({ length: N }, (_, i) => Math.sin(i * 7.3 + d * 1.9));
    score.push(s);
    close.push(price);
    price = Float64Array.from(price, (p, i) => p * (1 + 0.01 * s[i]));
  }
  return { close, score };
}

describe('live IC', () => {
  it('measures each horizon once its returns are known, and averages the last 20', () => {
    const seen: LiveIcObservation[] = [];
    const live = new LiveIc(calendar, (o) => seen.push(o));
    const { close, score } = market();
    const ids = Int32Array.from({ length: N }, (_, i) => i);
    const noneMissing = new Uint8Array(N);
    for (let d = 0; d < days.length; d++) {
      const missing = d === 3 ? Uint8Array.from({ length: N }, (_, i) => (i === 7 ? 1 : 0)) : noneMissing;
      live.dayClose(days[d], close[d], missing, N);
      live.dayScores('m', days[d], ids, score[d]);
      // The 1-day IC of yesterday's scores is known at today's close, not before.
      const oneDay = seen.filter((o) => o.horizon === 1);
      expect(oneDay.length).toBe(d);
      if (d > 0) expect(oneDay[d - 1]).toMatchObject({ day: days[d - 1], ic: 1, symbols: d === 3 || d === 4 ? N - 1 : N });
    }
    const fiveDay = seen.filter((o) => o.horizon === 5);
    expect(fiveDay.map((o) => o.day)).toEqual(days.slice(0, days.length - 5));
    for (const o of fiveDay) {
      expect(o.ic).toBeGreaterThan(-1);
      expect(o.ic).toBeLessThan(1);
    }
    const last = fiveDay[fiveDay.length - 1];
    expect(last.mean).toBeCloseTo(fiveDay.reduce((a, o) => a + o.ic, 0) / fiveDay.length, 12);
  });

  it('a snapshot restores the pending scores and re-exports the last measured IC', () => {
    const { close, score } = market();
    const ids = Int32Array.from({ length: N }, (_, i) => i);
    const first = new LiveIc(calendar, () => undefined);
    for (let d = 0; d < 4; d++) {
      first.dayClose(days[d], close[d], new Uint8Array(N), N);
      first.dayScores('m', days[d], ids, score[d]);
    }
    const seen: LiveIcObservation[] = [];
    const second = new LiveIc(calendar, (o) => seen.push(o));
    second.restore(structuredClone(first.snapshot()));
    expect(seen).toEqual([expect.objectContaining({ model: 'm', horizon: 1, day: days[2], ic: 1 })]);
    second.dayClose(days[4], close[4], new Uint8Array(N), N);
    expect(seen.map((o) => [o.horizon, o.day])).toEqual([
      [1, days[2]],
      [1, days[3]],
    ]);
    second.dayScores('m', days[4], ids, score[4]);
    second.dayClose(days[5], close[5], new Uint8Array(N), N);
    // Day 0's 5-day IC needs day 5's closes: measured now, from scores that came through the snapshot.
    expect(seen.filter((o) => o.horizon === 5).map((o) => o.day)).toEqual([days[0]]);
  });
});
