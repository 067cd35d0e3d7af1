import { describe, expect, it } from 'vitest';
import { FeatureEngine, type BarCloseEvent } from '../src/features/engine.js';
import { FEATURE_COUNT, FEATURE_NAMES, DEFAULT_FEATURE_PARAMS } from '../src/features/feature-set.js';
import { median, RobustZScorer } from '../src/features/normalize.js';
import { SequenceStore } from '../src/features/sequence-store.js';
import { KIND_SNAPSHOT, SIDE_CODES, SymbolTable, TickBatch, BarBatch, copyTickRow } from '../src/ingest/events.js';
import { decodeBarJson, decodeTickJson } from '../src/ingest/json-codec.js';
import { MarketSimulator } from '../src/ingest/simulator/market.js';
import { feedBars, feedTicks } from '../src/ingest/simulator/feed.js';
import type { Freq } from '../src/market/sessions.js';
import { dayToIso } from '../src/market/time.js';
import type { ErrorCode } from '../src/errors.js';
import { referenceFeatures, type RefEvent } from './features-reference.js';
import { calendar, collectingContext, sh } from './helpers.js';

interface Captured {
  freq: Freq;
  barEnd: number;
  missing: number[];
  close: number[];
  limit: number[];
  features: number[][];
  mask: number[][];
}

function capture(e: BarCloseEvent): Captured {
  const b = e.bars;
  const rows = (arr: ArrayLike<number>): number[][] => Array.from({ length: b.n }, (_, s) => Array.from({ length: FEATURE_COUNT }, (_, f) => arr[s * FEATURE_COUNT + f]));
  return {
    freq: b.freq,
    barEnd: b.barEnd,
    missing: Array.from(b.missing.subarray(0, b.n)),
    close: Array.from(b.close.subarray(0, b.n)),
    limit: Array.from(b.limit.subarray(0, b.n)),
    features: rows(b.features),
    mask: rows(b.featureMask),
  };
}

function engineFor(symbols: SymbolTable, rejects: { code: ErrorCode; symbol?: string }[] = [], latenessMs = 0): { engine: FeatureEngine; closes: Captured[] } {
  const engine = new FeatureEngine({ calendar, symbols, freqs: ['10m', '30m'], allowedLatenessMs: latenessMs, onReject: (r) => rejects.push(r) });
  const closes: Captured[] = [];
  engine.onBarClose((e) => closes.push(capture(e)));
  return { engine, closes };
}

/** Decodes JSON ticks given as records and runs them through the engine. */
function runTicks(records: object[], latenessMs = 0): { closes: Captured[]; rejects: { code: ErrorCode; symbol?: string }[]; symbols: SymbolTable } {
  const symbols = new SymbolTable();
  const rejects: { code: ErrorCode; symbol?: string }[] = [];
  const { engine, closes } = engineFor(symbols, rejects, latenessMs);
  const ctx = engine.context('test');
  const batch = new TickBatch(8);
  for (const r of records) {
    batch.clear();
    if (decodeTickJson(JSON.stringify(r), 0, batch, ctx)) engine.ingestTicks(batch, 0, 1, 'test');
  }
  engine.flush();
  return { closes, rejects, symbols };
}

const close10 = (closes: Captured[], local: string): Captured => {
  const c = closes.find((x) => x.freq === '10m' && x.barEnd === sh(local));
  if (c === undefined) throw new Error(`no 10m close at ${local}`);
  return c;
};
const feat = (c: Captured, s: number, name: string): number | undefined => {
  const f = FEATURE_NAMES.indexOf(name as (typeof FEATURE_NAMES)[number]);
  return c.mask[s][f] === 1 ? c.features[s][f] : undefined;
};

describe('features against the plain reference, on simulator data', () => {
  const sim = new MarketSimulator({ symbols: 24, days: 3, seed: 11, tradesPerDay: 300, snapshotShare: 0.25, limitEventRate: 0.05, start: '2026-03-02' }, calendar);
  const events = new Map<number, RefEvent[]>();
  const { engine, closes } = engineFor(sim.symbols);
  const ctx = engine.context('simulator');
  for (let d = 0; d < sim.days.length; d++) {
    for (const m of sim.generateDay(d)) {
      const t = m.ticks;
      for (let i = 0; i < t.length; i++) {
        const list = events.get(t.symbol[i]) ?? [];
        events.set(t.symbol[i], list);
        const snap = t.kind[i] === KIND_SNAPSHOT;
        list.push({
          ts: t.ts[i],
          price: t.price[i],
          volume: t.volume[i],
          amount: t.amount[i],
          side: SIDE_CODES[t.side[i]],
          snapshot: snap,
          cumVolume: t.cumVolume[i],
          cumAmount: t.cumAmount[i],
          bid1: t.bid1[i],
          ask1: t.ask1[i],
          bidVol1: t.bidVol1[i],
          askVol1: t.askVol1[i],
        });
      }
      feedTicks(m.ticks, ctx, (b, from, to) => engine.ingestTicks(b, from, to, 'simulator'));
    }
  }
  engine.flush();
  const days = sim.days.map(dayToIso);

  it.each([
    ['10m', 10],
    ['30m', 30],
  ] as const)('every %s feature of every symbol and bar matches', (freq, minutes) => {
    const mine = closes.filter((c) => c.freq === freq);
    expect(mine.length).toBe(days.length * (240 / minutes));
    let compared = 0;
    let masked = 0;
    for (let s = 0; s < sim.universe.length; s++) {
      const ref = referenceFeatures(events.get(s) ?? [], days, minutes, DEFAULT_FEATURE_PARAMS.largeTradeAmount, DEFAULT_FEATURE_PARAMS.volumeLookbackDays);
      expect(ref.length).toBe(mine.length);
      for (let k = 0; k < ref.length; k++) {
        const r = ref[k];
        const c = mine[k];
        expect(c.missing[s], `${sim.universe[s].symbol} bar ${k}`).toBe(r.missing ? 1 : 0);
        if (!r.missing) expect(c.close[s]).toBe(r.close);
        FEATURE_NAMES.forEach((name, f) => {
          const want = r.features[name];
          if (want === undefined) {
            expect(c.mask[s][f], `${sim.universe[s].symbol} ${freq} bar ${k} ${name} should be masked`).toBe(0);
            masked++;
          } else {
            expect(c.mask[s][f], `${sim.universe[s].symbol} ${freq} bar ${k} ${name} should be valid`).toBe(1);
            expect(c.features[s][f]).toBeCloseTo(want, 9);
            compared++;
          }
        });
      }
    }
    // The data exercise both paths: plenty of values and some masks (snapshots, first bars).
    expect(compared).toBeGreaterThan(1000);
    expect(masked).toBeGreaterThan(50);
  });

  it('features from the simulated 1-minute bar feed equal the tick-derived ones where a bar feed can supply them', () => {
    const sim2 = new MarketSimulator({ ...sim.params }, calendar);
    const bars = engineFor(sim2.symbols);
    const ctx2 = bars.engine.context('bars');
    for (let d = 0; d < sim2.days.length; d++) for (const m of sim2.generateDay(d)) feedBars(m.bars, ctx2, (b, from, to) => bars.engine.ingestBars(b, from, to, 'bars'));
    bars.engine.flush();
    const tickFeed = closes.filter((c) => c.freq === '10m');
    const barFeed = bars.closes.filter((c) => c.freq === '10m');
    expect(barFeed.length).toBe(tickFeed.length);
    const sameFromBars = ['ret', 'range', 'closeLocation', 'closeVsVwap', 'relVolume', 'realizedVol', 'upVolumeShare', 'buyVolumeShare', 'avgTradeSize'];
    let compared = 0;
    for (let k = 0; k < tickFeed.length; k++) {
      for (let s = 0; s < sim.universe.length; s++) {
        if (sim.universe[s].feed !== 'trade') continue; // snapshots attribute volume to the snapshot's minute
        expect(barFeed[k].missing[s]).toBe(tickFeed[k].missing[s]);
        for (const name of sameFromBars) {
          const a = feat(tickFeed[k], s, name);
          const b = feat(barFeed[k], s, name);
          if (a === undefined) expect(b).toBeUndefined();
          else {
            expect(b).toBeCloseTo(a, 9);
            compared++;
          }
        }
        // What bars cannot supply is masked, not invented.
        expect(feat(barFeed[k], s, 'largeNetBuyShare')).toBeUndefined();
        expect(feat(barFeed[k], s, 'orderImbalance')).toBeUndefined();
      }
    }
    expect(compared).toBeGreaterThan(1000);
  });

  it('flags bars that close at the daily limit', () => {
    const limitCloses = closes.flatMap((c) => c.limit.filter((x) => x !== 0));
    expect(limitCloses.length).toBeGreaterThan(0);
  });
});

describe('hand-made edge cases', () => {
  const base = { symbol: '600000.SH', side: 'B' };
  it('one trade in a bar', () => {
    const { closes } = runTicks([{ ...base, ts: sh('2026-11-23T09:41:10'), price: 10, volume: 100, seq: 1 }]);
    const c = close10(closes, '2026-11-23T09:50:00');
    expect(c.missing[0]).toBe(0);
    expect(feat(c, 0, 'range')).toBe(0);
    expect(feat(c, 0, 'closeLocation')).toBe(0.5);
    expect(feat(c, 0, 'closeVsVwap')).toBe(0);
    expect(feat(c, 0, 'realizedVol')).toBe(0);
    expect(feat(c, 0, 'realizedSkew')).toBeUndefined();
    expect(feat(c, 0, 'priceVolumeCorr')).toBeUndefined();
    expect(feat(c, 0, 'ret')).toBeUndefined(); // no earlier close
    expect(feat(c, 0, 'buyVolumeShare')).toBe(1);
    expect(feat(c, 0, 'avgTradeSize')).toBeCloseTo(Math.log(1000), 12);
    expect(feat(c, 0, 'orderImbalance')).toBeUndefined(); // no quotes
    // aggregation starts with the bar of the first event; the bars after it have no trades
    expect(closes.some((x) => x.barEnd === sh('2026-11-23T09:40:00'))).toBe(false);
    const after = close10(closes, '2026-11-23T10:00:00');
    expect(after.missing[0]).toBe(1);
    expect(after.mask[0].every((m) => m === 0)).toBe(true);
  });
  it('no trades all day: every bar missing', () => {
    const { closes } = runTicks([
      { ...base, ts: sh('2026-11-23T09:30:01'), price: 10, volume: 100 },
      { symbol: '000001.SZ', ts: sh('2026-11-24T09:30:01'), price: 10, volume: 100, side: 'S' },
    ]);
    const day2 = closes.filter((c) => c.freq === '10m' && c.barEnd > sh('2026-11-24T00:00:00'));
    expect(day2.length).toBe(24);
    expect(day2.every((c) => c.missing[0] === 1)).toBe(true);
  });
  it('a limit-locked bar: flagged, zero range, one-sided book', () => {
    const up = 11; // 10.00 * 1.1
    const locked = { ...base, price: up, volume: 500, side: 'S', bid1: up, ask1: 0, bidVol1: 900_000, askVol1: 0 };
    const { closes, symbols } = runTicks([
      { ...base, ts: sh('2026-11-23T14:59:59.000'), price: 10, volume: 100, side: 'N' },
      { ...locked, ts: sh('2026-11-24T09:40:01') },
      { ...locked, ts: sh('2026-11-24T09:45:00') },
    ]);
    expect(symbols.names).toEqual(['600000.SH']);
    const c = close10(closes, '2026-11-24T09:50:00');
    expect(c.limit[0]).toBe(1);
    expect(feat(c, 0, 'range')).toBe(0);
    expect(feat(c, 0, 'relSpread')).toBeUndefined();
    expect(feat(c, 0, 'orderImbalance')).toBe(1);
    expect(feat(c, 0, 'ret')).toBeCloseTo(Math.log(1.1), 12);
    expect(feat(c, 0, 'buyVolumeShare')).toBe(0);
  });
  it('snapshot gaps: the increment lands in the minute of the snapshot that reveals it', () => {
    const snap = { symbol: '000001.SZ', price: 10, bid1: 9.99, ask1: 10, bidVol1: 1000, askVol1: 3000 };
    const { closes } = runTicks([
      { ...snap, ts: sh('2026-11-23T09:25:00'), cumVolume: 10_000, cumAmount: 100_000 },
      { ...snap, ts: sh('2026-11-23T09:41:03'), cumVolume: 10_000, cumAmount: 100_000 },
      // 12 minutes without snapshots, then one that reveals 5,000 shares at 10.2
      { ...snap, ts: sh('2026-11-23T09:53:30'), price: 10.2, cumVolume: 15_000, cumAmount: 151_000 },
    ]);
    const first = close10(closes, '2026-11-23T09:40:00');
    expect(first.missing[0]).toBe(0);
    expect(feat(first, 0, 'avgTradeSize')).toBeUndefined(); // snapshots carry no trade counts
    expect(feat(first, 0, 'buyVolumeShare')).toBeUndefined(); // nor sides
    const quiet = close10(closes, '2026-11-23T09:50:00');
    expect(quiet.missing[0]).toBe(1); // a zero-increment snapshot is not a trade
    const revealed = close10(closes, '2026-11-23T10:00:00');
    expect(revealed.missing[0]).toBe(0);
    expect(feat(revealed, 0, 'closeVsVwap')).toBeCloseTo(Math.log(10.2 / (51_000 / 5_000)), 12);
    expect(feat(revealed, 0, 'ret')).toBeCloseTo(Math.log(10.2 / 10), 12);
    expect(feat(revealed, 0, 'orderImbalance')).toBeCloseTo(-0.5, 12);
    expect(feat(revealed, 0, 'relSpread')).toBeCloseTo(0.01 / 9.995, 12);
  });
});

describe('stateful checks in the aggregator', () => {
  const t = { symbol: '600000.SH', price: 10, volume: 100, side: 'B' };
  it('duplicates by sequence number are rejected, out-of-order new numbers accepted', () => {
    const { rejects, closes } = runTicks([
      { ...t, ts: sh('2026-11-23T09:30:01'), seq: 5 },
      { ...t, ts: sh('2026-11-23T09:30:02'), seq: 9 },
      { ...t, ts: sh('2026-11-23T09:30:03'), seq: 7 },
      { ...t, ts: sh('2026-11-23T09:30:04'), seq: 5 },
      { ...t, ts: sh('2026-11-23T09:30:05'), seq: 9 },
    ]);
    expect(rejects.map((r) => r.code)).toEqual(['E_DUPLICATE', 'E_DUPLICATE']);
    expect(feat(close10(closes, '2026-11-23T09:40:00'), 0, 'avgTradeSize')).toBeCloseTo(Math.log(1000), 12);
  });
  it('sequence numbers start afresh each trading day', () => {
    const { rejects } = runTicks([
      { ...t, ts: sh('2026-11-23T09:30:01'), seq: 1 },
      { ...t, ts: sh('2026-11-24T09:30:01'), seq: 1 },
    ]);
    expect(rejects).toEqual([]);
  });
  it('late events are rejected with E_LATE; within the allowed lateness they count', () => {
    const evs = [
      { ...t, ts: sh('2026-11-23T09:39:59'), seq: 1 },
      { ...t, ts: sh('2026-11-23T09:40:01'), seq: 2 },
      { ...t, ts: sh('2026-11-23T09:39:59.500'), seq: 3, volume: 300 },
    ];
    const strict = runTicks(evs, 0);
    expect(strict.rejects.map((r) => r.code)).toEqual(['E_LATE']);
    const lenient = runTicks(evs, 5_000);
    expect(lenient.rejects).toEqual([]);
    const bar = close10(lenient.closes, '2026-11-23T09:40:00');
    expect(feat(bar, 0, 'avgTradeSize')).toBeCloseTo(Math.log((4000) / 2), 12);
  });
  it('never overwrites a minute a bar not yet closed reads: writing 60 minutes past it throws instead of losing events', () => {
    // Without the event-time close rule (the daemon drives closes itself), a run of events an
    // hour long would wrap the 60-minute ring over the open 30-minute bar's minutes.
    const symbols = new SymbolTable();
    const engine = new FeatureEngine({ calendar, symbols, freqs: ['10m', '30m'], eventTimeWatermark: false, onReject: () => undefined });
    const ctx = engine.context('test');
    const batch = new TickBatch(8);
    const write = (local: string): void => {
      batch.clear();
      decodeTickJson(JSON.stringify({ ...t, ts: sh(local) }), 0, batch, ctx);
      engine.ingestTicks(batch, 0, 1, 'test');
    };
    write('2026-11-23T09:31:00');
    write('2026-11-23T10:25:00');
    expect(() => write('2026-11-23T10:31:30')).toThrow(/minute ring overrun: minute \d+ of symbol 0 would overwrite minute \d+, which a bar not yet closed still reads/);
    // Closed first, the same write is fine.
    engine.advanceWatermark(sh('2026-11-23T10:30:00'));
    expect(() => write('2026-11-23T10:31:30')).not.toThrow();
  });
  it('snapshots: repeats are duplicates, decreases and stale ones are rejected', () => {
    const s = { symbol: '000001.SZ', price: 10 };
    const { rejects } = runTicks([
      { ...s, ts: sh('2026-11-23T09:30:03'), cumVolume: 1000, cumAmount: 10_000 },
      { ...s, ts: sh('2026-11-23T09:30:03'), cumVolume: 1000, cumAmount: 10_000 },
      { ...s, ts: sh('2026-11-23T09:30:06'), cumVolume: 900, cumAmount: 9_000 },
      { ...s, ts: sh('2026-11-23T09:30:02'), cumVolume: 1200, cumAmount: 12_000 },
      { ...s, ts: sh('2026-11-23T09:30:09'), cumVolume: 1200, cumAmount: 12_000 },
    ]);
    expect(rejects.map((r) => r.code)).toEqual(['E_DUPLICATE', 'E_CUMULATIVE_DECREASE', 'E_OUT_OF_ORDER']);
  });
  it('a symbol fed by ticks rejects bars the same day (E_SOURCE_CONFLICT), and a second bar for a minute is a duplicate', () => {
    const symbols = new SymbolTable();
    const rejects: { code: ErrorCode }[] = [];
    const { engine } = engineFor(symbols, rejects);
    const ctx = collectingContext(symbols);
    const ticks = new TickBatch();
    const bars = new BarBatch();
    decodeTickJson(JSON.stringify({ ...t, ts: sh('2026-11-23T09:30:01') }), 0, ticks, ctx);
    engine.ingestTicks(ticks, 0, 1, 't');
    const bar = { symbol: '600000.SH', ts: sh('2026-11-23T09:32:00'), open: 10, high: 10, low: 10, close: 10, volume: 100, amount: 1000 };
    decodeBarJson(JSON.stringify(bar), 0, bars, ctx);
    decodeBarJson(JSON.stringify({ ...bar, symbol: '000001.SZ' }), 0, bars, ctx);
    decodeBarJson(JSON.stringify({ ...bar, symbol: '000001.SZ' }), 0, bars, ctx);
    engine.ingestBars(bars, 0, 3, 'b');
    expect(rejects.map((r) => r.code)).toEqual(['E_SOURCE_CONFLICT', 'E_DUPLICATE']);
  });
});

describe('cross-sectional robust z-score', () => {
  it('median by quickselect equals the sorted median', () => {
    for (let n = 1; n < 60; n++) {
      const xs = Array.from({ length: n }, (_, i) => Math.sin(i * 7.3 + n) * 10 + (i % 3));
      const sorted = [...xs].sort((a, b) => a - b);
      const want = n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
      expect(median(Float64Array.from(xs), n)).toBe(want);
    }
  });
  it('uses median and MAD of the valid values, clips, and zeroes masked ones', () => {
    const x = Float64Array.from([1, 2, 3, 4, 100, 7]);
    const m = Uint8Array.from([1, 1, 1, 1, 1, 0]);
    const out = new Float32Array(6);
    new RobustZScorer(5).column(x, m, 6, 1, 0, out);
    // median 3, absolute deviations 2,1,0,1,97 -> MAD 1 -> scale 1.4826
    expect(out[0]).toBeCloseTo(-2 / 1.4826, 6);
    expect(out[2]).toBe(0);
    expect(out[4]).toBe(5);
    expect(out[5]).toBe(0);
  });
  it('falls back to the mean absolute deviation when the MAD is zero, and to zero when all are equal', () => {
    const out = new Float32Array(5);
    new RobustZScorer().column(Float64Array.from([1, 1, 1, 1, 3]), new Uint8Array(5).fill(1), 5, 1, 0, out);
    expect(out[4]).toBeCloseTo(2 / ((1.2533 * 2) / 5), 5);
    new RobustZScorer().column(Float64Array.from([2, 2, 2]), new Uint8Array(3).fill(1), 3, 1, 0, out);
    expect(Array.from(out.subarray(0, 3))).toEqual([0, 0, 0]);
  });
});

describe('sequence store', () => {
  it('fills [N, T, F] oldest first, masks what is missing and reports coverage', () => {
    const T = 3;
    const F = 2;
    const store = new SequenceStore(T, F, 2);
    const push = (k: number, missing: number[]): void => {
      const rows = Float32Array.from([k, k + 0.5, 10 * k, 10 * k + 0.5]);
      store.push(rows, Uint8Array.from([1, 1, missing[1] ? 0 : 1, 1]), Uint8Array.from(missing), 2);
    };
    push(1, [0, 0]);
    push(2, [0, 1]);
    push(3, [0, 0]);
    push(4, [0, 1]);
    const out = new Float32Array(2 * T * F);
    const mask = new Uint8Array(2 * T * F);
    store.fill([1, 0], 2, out, mask);
    expect(Array.from(out.subarray(0, T * F))).toEqual([20, 20.5, 30, 30.5, 40, 40.5]);
    expect(Array.from(mask.subarray(0, T * F))).toEqual([0, 1, 1, 1, 0, 1]);
    expect(Array.from(out.subarray(T * F))).toEqual([2, 2.5, 3, 3.5, 4, 4.5]);
    expect(store.coverage(0)).toBe(1);
    expect(store.coverage(1)).toBeCloseTo(1 / 3, 12);
  });
  it('grows for symbols that appear later; their earlier rows are masked', () => {
    const store = new SequenceStore(2, 1, 1);
    store.push(Float32Array.from([1]), Uint8Array.from([1]), Uint8Array.from([0]), 1);
    store.push(Float32Array.from([2, 5]), Uint8Array.from([1, 1]), Uint8Array.from([0, 0]), 2);
    const out = new Float32Array(2);
    const mask = new Uint8Array(2);
    store.fill([1], 1, out, mask);
    expect(Array.from(out)).toEqual([0, 5]);
    expect(Array.from(mask)).toEqual([0, 1]);
    expect(store.coverage(1)).toBe(0.5);
  });
});

describe('no look-ahead in features', () => {
  it('changing every event after an instant changes no bar or feature closed before it', () => {
    const sim = new MarketSimulator({ symbols: 12, days: 2, seed: 21, snapshotShare: 0.3 }, calendar);
    const rows: { batch: TickBatch }[] = [];
    for (let d = 0; d < sim.days.length; d++) {
      for (const m of sim.generateDay(d)) {
        const copy = new TickBatch(m.ticks.length + 1);
        for (let i = 0; i < m.ticks.length; i++) copyTickRow(m.ticks, i, copy);
        rows.push({ batch: copy });
      }
    }
    const cut = sh('2026-01-06T10:37:12');
    const run = (perturb: boolean): Captured[] => {
      const { engine, closes } = engineFor(sim.symbols);
      const ctx = engine.context('s');
      for (const { batch } of rows) {
        if (perturb) {
          for (let i = 0; i < batch.length; i++) {
            if (batch.ts[i] <= cut) continue;
            batch.price[i] *= 1.07;
            batch.volume[i] *= 3;
            batch.amount[i] *= 3.21;
            batch.cumVolume[i] *= 2;
            batch.cumAmount[i] *= 2.14;
            batch.bidVol1[i] += 500;
          }
        }
        feedTicks(batch, ctx, (b, from, to) => engine.ingestTicks(b, from, to, 's'));
      }
      engine.flush();
      return closes;
    };
    const base = run(false);
    const changed = run(true);
    expect(changed.length).toBe(base.length);
    let before = 0;
    let differentAfter = 0;
    for (let k = 0; k < base.length; k++) {
      if (base[k].barEnd <= cut) {
        expect(changed[k]).toEqual(base[k]);
        before++;
      } else if (JSON.stringify(changed[k]) !== JSON.stringify(base[k])) differentAfter++;
    }
    expect(before).toBeGreaterThan(24);
    expect(differentAfter).toBeGreaterThan(10);
  });
});
