/**
 * A restart from a checkpoint continues exactly: a feature engine restored from a
 * serialised snapshot taken mid-day — or from a chain of a full snapshot and the
 * increments after it — closes the same bars with the same features and sequences as one
 * that never stopped.
 */
import { deserialize, serialize } from 'node:v8';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { gatherColumns, scatterColumns } from '../src/features/state.js';
import { FeatureEngine, type BarCloseEvent, type EngineIncrement, type EngineState } from '../src/features/engine.js';
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

/** Two simulated days as their minutes, each copied (the simulator reuses one batch for every minute it yields). */
function twoDays(): { sim: MarketSimulator; minutes: { ticks: TickBatch }[] } {
    const sim = new MarketSimulator({ symbols: 16, days: 2, seed: 5, tradesPerDay: 200, snapshotShare: 0.3, start: '2026-03-02' }, calendar);
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
  return { sim, minutes };
}

/** An uninterrupted run over the minutes: the reference every restored run must equal. */
function wholeRun(sim: MarketSimulator, minutes: { ticks: TickBatch }[]): string[] {
  const whole = makeEngine(sim);
  const ctx = whole.engine.context('sim');
  for (const m of minutes) feedTicks(m.ticks, ctx, (b, f, t) => whole.engine.ingestTicks(b, f, t, 'sim'));
  whole.engine.flush();
  expect(whole.rejects).toEqual([]);
  return whole.closes;
}

/**
 * Restores `chain` into a new engine, checks its whole state equals `first`'s, then feeds
 * both the rest of the minutes: returns the restored engine's closes (and checks neither
 * rejects anything).
 */
function restoreAndGoOn(sim: MarketSimulator, first: ReturnType<typeof makeEngine>, chain: readonly Buffer[], rest: readonly { ticks: TickBatch }[]): string[] {
  const second = makeEngine(sim);
  for (const b of chain) second.engine.restore(deserialize(b) as EngineState | EngineIncrement);
  expect(serialize(second.engine.snapshot()).equals(serialize(first.engine.snapshot()))).toBe(true);
  const c1 = first.engine.context('sim');
  const c2 = second.engine.context('sim');
  for (const m of rest) {
    feedTicks(m.ticks, c1, (b, f, t) => first.engine.ingestTicks(b, f, t, 'sim'));
    feedTicks(m.ticks, c2, (b, f, t) => second.engine.ingestTicks(b, f, t, 'sim'));
  }
  first.engine.flush();
  second.engine.flush();
  expect([...first.rejects, ...second.rejects]).toEqual([]);
  return second.closes;
}

describe('increment columns', () => {
  it('gatherColumns is column c of every row, cell by cell, in the order asked; scatterColumns puts them back', () => {
    const shape = fc.record({ rows: fc.integer({ min: 0, max: 9 }), columns: fc.integer({ min: 1, max: 7 }), width: fc.integer({ min: 1, max: 5 }) });
    fc.assert(
      fc.property(shape.chain((l) => fc.tuple(fc.constant(l), fc.uniqueArray(fc.integer({ min: 0, max: l.columns - 1 }), { maxLength: l.columns }))), ([layout, which]) => {
        const { rows, columns, width } = layout;
        const a = Float64Array.from({ length: rows * columns * width }, (_, i) => i + 0.5);
        // The plain way: for each column asked, each row, each value of its cell.
        const expected: number[] = [];
        for (const c of which) for (let r = 0; r < rows; r++) for (let k = 0; k < width; k++) expected.push(a[(r * columns + c) * width + k]);
        const gathered = gatherColumns(a, layout, which);
        expect([...gathered]).toEqual(expected);
        const b = new Float64Array(a.length);
        scatterColumns(b, layout, which, gathered);
        for (let r = 0; r < rows; r++) for (let c = 0; c < columns; c++) for (let k = 0; k < width; k++) {
          const i = (r * columns + c) * width + k;
          expect(b[i]).toBe(which.includes(c) ? a[i] : 0);
        }
      }),
    );
  });
});

describe('feature engine checkpoints', () => {
  it('restored mid-day from a serialised snapshot, closes the same bars as an uninterrupted run', () => {
    const { sim, minutes } = twoDays();
    const whole = wholeRun(sim, minutes);

    for (const cut of [37, 250, 301]) {
      const first = makeEngine(sim);
      const c1 = first.engine.context('sim');
      for (const m of minutes.slice(0, cut)) feedTicks(m.ticks, c1, (b, f, t) => first.engine.ingestTicks(b, f, t, 'sim'));
      const bytes = serialize(first.engine.snapshot());
      const second = makeEngine(sim);
      second.engine.restore(deserialize(bytes) as EngineState);
      const c2 = second.engine.context('sim');
      for (const m of minutes.slice(cut)) feedTicks(m.ticks, c2, (b, f, t) => second.engine.ingestTicks(b, f, t, 'sim'));
      second.engine.flush();
      // The cut is inside the data: both halves close bars, and neither rejects what the whole run took.
      expect(first.closes.length, `cut ${cut}`).toBeGreaterThan(0);
      expect(second.closes.length, `cut ${cut}`).toBeGreaterThan(0);
      expect([...first.rejects, ...second.rejects], `cut ${cut}`).toEqual([]);
      expect([...first.closes, ...second.closes]).toEqual(whole);
    }
  });

  it('restored from a chain — a full snapshot, increments every few minutes, a full one again between — closes the same bars', () => {
    const { sim, minutes } = twoDays();
    const whole = wholeRun(sim, minutes);
    for (const cut of [37, 250, 301, 470]) {
      const first = makeEngine(sim);
      const c1 = first.engine.context('sim');
      let chain: Buffer[] = [];
      for (const [i, m] of minutes.slice(0, cut).entries()) {
        feedTicks(m.ticks, c1, (b, f, t) => first.engine.ingestTicks(b, f, t, 'sim'));
        if (i % 3 !== 0) continue;
        // A full snapshot every 40 checkpoints, increments between.
        if (chain.length === 0 || chain.length >= 40) chain = [serialize(first.engine.snapshot())];
        else chain.push(serialize(first.engine.increment()));
        first.engine.saved();
      }
      chain.push(serialize(first.engine.increment()));
      const increments = chain.slice(1).map((b) => deserialize(b) as EngineIncrement);
      // Increments, not whole states: the minute store's part names only the ring minutes written since.
      expect(increments.some((d) => 'columns' in d.aggregator.minutes)).toBe(true);
      const second = makeEngine(sim);
      for (const b of chain) second.engine.restore(deserialize(Buffer.from(b)) as EngineState | EngineIncrement);
      // The chain restores the whole state, every store and ring, not only what the closes read.
      expect(serialize(second.engine.snapshot()).equals(serialize(first.engine.snapshot())), `cut ${cut}`).toBe(true);
      const c2 = second.engine.context('sim');
      for (const m of minutes.slice(cut)) feedTicks(m.ticks, c2, (b, f, t) => second.engine.ingestTicks(b, f, t, 'sim'));
      second.engine.flush();
      expect([...first.rejects, ...second.rejects], `cut ${cut}`).toEqual([]);
      expect([...first.closes, ...second.closes], `cut ${cut}, chain of ${chain.length}`).toEqual(whole);
    }
  });

  it('keeps increments small when the stores grow between two checkpoints (new symbols), and the chain restores the grown state exactly', () => {
    const { sim, minutes } = twoDays();
    const first = makeEngine(sim);
    const c1 = first.engine.context('sim');
    for (const m of minutes.slice(0, 50)) feedTicks(m.ticks, c1, (b, f, t) => first.engine.ingestTicks(b, f, t, 'sim'));
    const full = serialize(first.engine.snapshot());
    const chain = [full];
    first.engine.saved();
    // Twenty symbols new to the table (listed today, no trades yet): every store grows past its 16 at the next row or close.
    for (let k = 0; k < 20; k++) first.engine.symbols.intern(`6889${String(k).padStart(2, '0')}.SH`);
    for (const [i, m] of minutes.slice(50, 140).entries()) {
      feedTicks(m.ticks, c1, (b, f, t) => first.engine.ingestTicks(b, f, t, 'sim'));
      if (i % 3 !== 2) continue;
      const increment = first.engine.increment();
      // What changed, gathered over the grown capacity, not the grown stores whole.
      expect('seqWrites' in increment.aggregator && 'columns' in increment.aggregator.minutes && increment.aggregator.freqs.every((f) => 'slots' in f.reducer), `increment ${i}`).toBe(true);
      expect(Object.values(increment.sequences).every((s) => 'rows' in s), `increment ${i}`).toBe(true);
      chain.push(serialize(increment));
      first.engine.saved();
    }
    expect(first.engine.snapshot().aggregator.capacity).toBeGreaterThanOrEqual(36);
    expect(first.engine.sequences('10m')?.capacity).toBeGreaterThanOrEqual(36);
    // Each increment is a fraction of a full state at the grown size.
    const grownFull = serialize(first.engine.snapshot()).length;
    expect(Math.max(...chain.slice(1).map((b) => b.length))).toBeLessThan(grownFull / 4);
    const closes = restoreAndGoOn(sim, first, chain, minutes.slice(140));
    expect(closes.length).toBeGreaterThan(20);
    expect(closes).toEqual(first.closes.slice(-closes.length));
  });

  it('restores a chain whose full snapshot was taken with symbols known but not yet aggregated (rows waiting for a close), at the capacity it was written with', () => {
    const { sim, minutes } = twoDays();
    const first = makeEngine(sim);
    const c1 = first.engine.context('sim');
    for (const m of minutes.slice(0, 50)) feedTicks(m.ticks, c1, (b, f, t) => first.engine.ingestTicks(b, f, t, 'sim'));
    // A partition decoded a message of a symbol new to the table; its rows wait for the close, so nothing has grown yet.
    first.engine.symbols.intern('688999.SH');
    const chain = [serialize(first.engine.snapshot())];
    first.engine.saved();
    // The next commit comes before any row is aggregated (its fetch's rows wait too, or only
    // transaction markers moved the position): an increment on stores that have not grown.
    const increment = first.engine.increment() as EngineIncrement;
    expect('seqWrites' in increment.aggregator).toBe(true);
    chain.push(serialize(increment));
    first.engine.saved();
    // And it goes on as the uninterrupted one does.
    expect(restoreAndGoOn(sim, first, chain, minutes.slice(50)).slice(-40)).toEqual(first.closes.slice(-40));
  });
});
