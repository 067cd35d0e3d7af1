/**
 * The event-time rules (src/daemon/event-time.ts) against their definition: the watermark
 * is the minimum over partitions that are not idle of newest event time minus lateness,
 * never moves back; a partition is idle only when caught up and silent for the timeout,
 * and holds the watermark at what the feed had delivered when its end was last seen (the
 * source is asked to look again when that alone holds a close back);
 * a quiet feed follows the wall clock a grace behind, capped at its day's last close; and
 * the deadlines the daemon arms alarms at are exactly the instants where that changes.
 * A property test drives random interleavings of deliveries, catch-ups and clock steps
 * and checks each watermark against a plain recomputation from the history.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EventTime } from '../src/daemon/event-time.js';

const LATE = 2_000;
const IDLE = 5_000;
const GRACE = 5_000;
const T0 = Date.parse('2026-11-23T10:00:00+08:00');
const DAY_END = Date.parse('2026-11-23T15:00:00.001+08:00');

function clock(): EventTime {
  return new EventTime({ latenessMs: LATE, idleTimeoutMs: IDLE, graceMs: GRACE, lastCloseOfDay: () => DAY_END });
}

describe('event time', () => {
  it('is the minimum over partitions minus the lateness, and holds at -Infinity until every tracked partition delivered', () => {
    const et = clock();
    et.track('a', 0);
    et.track('b', 0);
    et.observe('a', T0 + 60_000, 10);
    expect(et.advance(10)).toBe(-Infinity);
    et.observe('b', T0 + 30_000, 20);
    expect(et.advance(20)).toBe(T0 + 30_000 - LATE);
    et.observe('b', T0 + 90_000, 30);
    expect(et.advance(30)).toBe(T0 + 60_000 - LATE);
  });

  it('a partition caught up for a moment still holds the watermark back; only the idle timeout releases it', () => {
    const et = clock();
    et.observe('a', T0, 0);
    et.observe('b', T0 + 600_000, 0);
    et.setCaughtUp('a', true, 100);
    et.confirmEnd('a', 100);
    expect(et.advance(100)).toBe(T0 - LATE);
    // 4.9 s after catching up: not idle yet.
    expect(et.advance(100 + IDLE - 1)).toBe(T0 - LATE);
    expect(et.isIdle('a', 100 + IDLE - 1)).toBe(false);
    expect(et.nextDeadline(100, Infinity)).toBe(100 + IDLE);
    expect(et.advance(100 + IDLE)).toBe(T0 + 600_000 - LATE);
    expect(et.isIdle('a', 100 + IDLE)).toBe(true);
  });

  it('a partition with more to read is never idle, however long it is silent', () => {
    const et = clock();
    et.observe('a', T0, 0);
    et.observe('b', T0 + 600_000, 0);
    expect(et.advance(3_600_000)).toBe(T0 - LATE);
    expect(et.nextDeadline(3_600_000, T0 + 60_000)).toBe(Infinity);
  });

  it('never moves back when an idle partition delivers again with older events', () => {
    const et = clock();
    et.observe('a', T0, 0);
    et.observe('b', T0 + 600_000, 0);
    et.setCaughtUp('a', true, 0);
    et.confirmEnd('a', 0);
    expect(et.advance(IDLE)).toBe(T0 + 600_000 - LATE);
    et.setCaughtUp('a', false, IDLE);
    et.observe('a', T0 + 1_000, IDLE + 1);
    expect(et.advance(IDLE + 1)).toBe(T0 + 600_000 - LATE);
  });

  it('a quiet feed follows the wall clock a grace period behind, from the newest event, never past the day\'s last close', () => {
    const et = clock();
    const newest = Date.parse('2026-11-23T11:29:59.500+08:00');
    et.observe('a', newest, 1_000);
    et.setCaughtUp('a', true, 1_000);
    const close1130 = Date.parse('2026-11-23T11:30:00.001+08:00');
    // Not quiet before the idle timeout; then the close is due when newest + elapsed - grace reaches it.
    expect(et.nextDeadline(1_000, close1130)).toBe(1_000 + IDLE);
    const due = 1_000 + (close1130 + GRACE - newest);
    expect(et.nextDeadline(1_000 + IDLE, close1130)).toBe(due);
    expect(et.advance(due - 1)).toBeLessThan(close1130);
    expect(et.advance(due)).toBe(close1130);
    // Hours later the watermark stops at the day's last close.
    expect(et.advance(due + 10 * 3_600_000)).toBe(DAY_END);
    expect(et.nextDeadline(due + 10 * 3_600_000, DAY_END + 1)).toBe(Infinity);
  });

  it('restores the watermark and newest event times; idle timers and the quiet clock restart from the restore', () => {
    const et = clock();
    et.observe('a', T0, 0);
    et.observe('b', T0 + 60_000, 0);
    et.advance(0);
    const restored = clock();
    restored.restore(structuredClone(et.snapshot()), 50_000);
    expect(restored.watermark).toBe(T0 - LATE);
    restored.setCaughtUp('a', true, 50_000);
    restored.confirmEnd('a', 50_000);
    expect(restored.advance(50_000 + IDLE - 1)).toBe(T0 - LATE);
    expect(restored.advance(50_000 + IDLE)).toBe(T0 + 60_000 - LATE);
  });

  it('property: over random deliveries, catch-ups and clock steps the watermark equals its definition recomputed from the history', () => {
    type Op = { kind: 'observe'; p: number; dt: number } | { kind: 'caught'; p: number; on: boolean } | { kind: 'wait'; ms: number };
    const op = fc.oneof(
      fc.record({ kind: fc.constant('observe' as const), p: fc.integer({ min: 0, max: 3 }), dt: fc.integer({ min: -3_000, max: 120_000 }) }),
      fc.record({ kind: fc.constant('caught' as const), p: fc.integer({ min: 0, max: 3 }), on: fc.boolean() }),
      fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 12_000 }) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.array(op, { maxLength: 80 }), (n, ops: Op[]) => {
        const et = clock();
        let now = 0;
        const maxTs = Array.from({ length: n }, () => -Infinity);
        const quietSince = Array.from({ length: n }, () => 0);
        const caught = Array.from({ length: n }, () => false);
        const confirmedAt = Array.from({ length: n }, () => -Infinity);
        let newest = -Infinity;
        let lastArrival = -Infinity;
        let event = T0;
        let previous = -Infinity;
        for (let p = 0; p < n; p++) et.track(`p${p}`, 0);
        for (const o of ops) {
          if (o.kind === 'wait') now += o.ms;
          else if (o.p < n && o.kind === 'observe') {
            event = Math.max(T0, event + o.dt);
            et.observe(`p${o.p}`, event, now);
            maxTs[o.p] = Math.max(maxTs[o.p], event);
            newest = Math.max(newest, event);
            quietSince[o.p] = now;
            lastArrival = now;
          } else if (o.p < n && o.kind === 'caught') {
            et.setCaughtUp(`p${o.p}`, o.on, now);
            // The source saying caught up is a look at the end.
            if (o.on) et.confirmEnd(`p${o.p}`, now);
            if (o.on) confirmedAt[o.p] = newest;
            if (o.on && !caught[o.p]) quietSince[o.p] = now;
            caught[o.p] = o.on;
          }
          const idle = (p: number): boolean => caught[p] && now - quietSince[p] >= IDLE;
          const active = maxTs.filter((_, p) => !idle(p));
          // An idle partition lets the watermark go only to what the feed held when its end was last seen.
          const seen = confirmedAt.filter((_, p) => idle(p));
          const candidate = active.length > 0 ? Math.min(...active, ...seen) - LATE : newest === -Infinity ? -Infinity : Math.min(newest + Math.max(0, now - lastArrival) - GRACE, DAY_END);
          const expected = Math.max(previous, candidate);
          const w = et.advance(now);
          expect(w).toBe(expected);
          previous = w;
          // The deadline is never in the past unless due now, and nothing changes before it without input.
          const close = w + 1;
          // The source is asked to look at the ends exactly when the idle ones' confirmations alone keep the watermark from the close.
          const awaits = active.length > 0 && Math.min(...active) - LATE >= close && Math.min(...seen) - LATE < close;
          expect(et.awaitsEnds(now, close)).toBe(awaits);
          const at = et.nextDeadline(now, close);
          if (at < Infinity && at > now) expect(et.advance(Math.max(now, at - 1))).toBe(w);
        }
      }),
      { numRuns: 300 },
    );
  });
});
