/**
 * A restart from a checkpoint continues exactly: a feature engine restored from a
 * serialised snapshot taken mid-day closes the same bars with the same features and
 * sequences as one that never stopped.
 */
import { deserialize, serialize } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { FeatureEngine, type BarCloseEvent } from '../src/features/engine.js';
import { copyTickRow, SymbolTable, TickBatch } from '../src/ingest/events.js';
import { feedTicks } from '../src/ingest/simulator/feed.js';
import { MarketSimulator } from '../src/ingest/simulator/market.js';
import { calendar } from './helpers.js';

function makeEngine(sim: MarketSimulator): { engine: FeatureEngine; closes: string[]; rejects: string[] } {
  const closes: string[] = [];
  const rejects: string[] = [];
  const engine = new FeatureEngine({
    calendar,
    symbols: new SymbolTable(sim.symbols.names),
    freqs: ['10m', '30m'],
    allowedLatenessMs: 2_000,
    sequenceLength: { '10m': 12, '30m': 4 },
    onReject: (r) => rejects.push(`${r.code} ${r.detail}`),
  });
  engine.onBarClose((e: BarCloseEvent) => {
    const n = e.bars.n;
    const seq = e.sequences;
    const window = new Float32Array(n * (seq?.T ?? 0) * seq!.F);
    seq?.fill(Int32Array.from({ length: n }, (_, i) => i), n, window);
    closes.push(`${e.bars.freq} ${e.bars.barEnd} ${Array.from(e.normalized.subarray(0, n * 14), (x) => x.toFixed(6)).join(',')} ${Array.from(window, (x) => x.toFixed(6)).join(',')}`);
  });
  return { engine, closes, rejects };
}

describe('feature engine checkpoints', () => {
  it('restored mid-day from a serialised snapshot, closes the same bars as an uninterrupted run', () => {
    const sim = new MarketSimulator({ symbols: 16, days: 2, seed: 5, tradesPerDay: 200, snapshotShare: 0.3, start: '2026-03-02' }, calendar);
    // The simulator reuses one batch for every minute it yields: each minute is copied as it comes.
    const minutes: { ticks: TickBatch }[] = [];
    for (let d = 0; d < sim.days.length; d++) {
      for (const m of sim.generateDay(d)) {
        const ticks = new TickBatch(Math.max(1, m.ticks.length));
        for (let i = 0; i < m.ticks.length; i++) copyTickRow(m.ticks, i, ticks);
        minutes.push({ ticks });
      }
    }
    // Distinct minutes (not one batch seen many times), two days of them.
    expect(new Set(minutes.map((m) => m.ticks.ts[0])).size).toBeGreaterThan(400);
    const whole = makeEngine(sim);
    const ctx = whole.engine.context('sim');
    for (const m of minutes) feedTicks(m.ticks, ctx, (b, f, t) => whole.engine.ingestTicks(b, f, t, 'sim'));
    whole.engine.flush();
    expect(whole.rejects).toEqual([]);

    for (const cut of [37, 250, 301]) {
      const first = makeEngine(sim);
      const c1 = first.engine.context('sim');
      for (const m of minutes.slice(0, cut)) feedTicks(m.ticks, c1, (b, f, t) => first.engine.ingestTicks(b, f, t, 'sim'));
      const bytes = serialize(first.engine.snapshot());
      const second = makeEngine(sim);
      second.engine.restore(deserialize(bytes) as Record<string, unknown>);
      const c2 = second.engine.context('sim');
      for (const m of minutes.slice(cut)) feedTicks(m.ticks, c2, (b, f, t) => second.engine.ingestTicks(b, f, t, 'sim'));
      second.engine.flush();
      // The cut is inside the data: both halves close bars, and neither rejects what the whole run took.
      expect(first.closes.length, `cut ${cut}`).toBeGreaterThan(0);
      expect(second.closes.length, `cut ${cut}`).toBeGreaterThan(0);
      expect([...first.rejects, ...second.rejects], `cut ${cut}`).toEqual([]);
      expect(first.closes.length + second.closes.length).toBe(whole.closes.length);
      expect([...first.closes, ...second.closes]).toEqual(whole.closes);
    }
  });
});
