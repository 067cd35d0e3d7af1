import { describe, expect, it } from 'vitest';
import { HAS_QUOTE, KIND_SNAPSHOT, SIDE_BUY, SIDE_SELL, SIDE_UNKNOWN, tickRecordAt, type TickRecord } from '../src/ingest/events.js';
import { MarketSimulator, SIGNALS, type DailyRow } from '../src/ingest/simulator/market.js';
import { Rng } from '../src/ingest/simulator/rng.js';
import { checkTick } from '../src/ingest/validate.js';
import { priceLimits } from '../src/market/symbols.js';
import { msOfLocalDay, hm } from '../src/market/time.js';
import { calendar } from './helpers.js';

function runDay(sim: MarketSimulator, d: number, visit: (m: { slot: number; ticks: import('../src/ingest/events.js').TickBatch; bars: import('../src/ingest/events.js').BarBatch }) => void): DailyRow[] {
  const gen = sim.generateDay(d);
  while (true) {
    const n = gen.next();
    if (n.done === true) return n.value;
    visit(n.value);
  }
}

describe('simulator', () => {
  it('is deterministic by seed and differs across seeds', () => {
    const records = (seed: number): TickRecord[] => {
      const sim = new MarketSimulator({ symbols: 12, days: 1, seed }, calendar);
      const out: TickRecord[] = [];
      runDay(sim, 0, (m) => {
        for (let i = 0; i < m.ticks.length; i++) out.push(tickRecordAt(m.ticks, sim.symbols, i));
      });
      return out;
    };
    const a = records(5);
    expect(a.length).toBeGreaterThan(1000);
    expect(records(5)).toEqual(a);
    expect(records(6)).not.toEqual(a);
  });

  it('random streams are independent per (seed, stream, substream)', () => {
    const a = new Rng(1, 2, 3);
    const b = new Rng(1, 2, 3);
    const c = new Rng(1, 2, 4);
    const xs = Array.from({ length: 5 }, () => a.next());
    expect(Array.from({ length: 5 }, () => b.next())).toEqual(xs);
    expect(Array.from({ length: 5 }, () => c.next())).not.toEqual(xs);
    const r = new Rng(9);
    let sum = 0;
    let sq = 0;
    for (let i = 0; i < 20_000; i++) {
      const z = r.normal();
      sum += z;
      sq += z * z;
    }
    expect(Math.abs(sum / 20_000)).toBeLessThan(0.03);
    expect(Math.abs(sq / 20_000 - 1)).toBeLessThan(0.05);
  });

  const sim = new MarketSimulator({ symbols: 60, days: 4, seed: 3, snapshotShare: 0.2, limitEventRate: 0.03, suspensionRate: 0.02 }, calendar);
  const days: DailyRow[][] = [];
  const perSlotTrades = new Float64Array(240);
  const seen = { inClosingCall: 0, lunch: 0, invalid: 0, beyondLimits: 0, sides: [0, 0, 0], snapshots: 0, trades: 0, quotes: 0, oneSided: 0 };
  const auction = new Set<string>();
  const closeAuction = new Set<string>();
  for (let d = 0; d < sim.days.length; d++) {
    const limits = sim.universe.map(() => ({ up: Infinity, down: 0 }));
    let daily: DailyRow[] | undefined;
    const gen = sim.generateDay(d);
    const rows: { slot: number; sym: number; price: number; ts: number; kind: number; side: number; flags: number; ask1: number; bid1: number }[] = [];
    while (daily === undefined) {
      const n = gen.next();
      if (n.done === true) {
        daily = n.value;
        break;
      }
      const t = n.value.ticks;
      for (let i = 0; i < t.length; i++) {
        if (checkTick(t, i, calendar, sim.symbols.exchanges[t.symbol[i]]) < 0) seen.invalid++;
        rows.push({ slot: n.value.slot, sym: t.symbol[i], price: t.price[i], ts: t.ts[i], kind: t.kind[i], side: t.side[i], flags: t.flags[i], ask1: t.ask1[i], bid1: t.bid1[i] });
      }
    }
    days.push(daily);
    for (const r of daily) limits[r.symbol] = priceLimits(r.prevClose, sim.universe[r.symbol].board, sim.universe[r.symbol].isST);
    for (const r of rows) {
      const ms = msOfLocalDay(r.ts);
      if (r.price > limits[r.sym].up + 1e-9 || (r.price < limits[r.sym].down - 1e-9 && r.price > 0)) seen.beyondLimits++;
      if (r.flags & HAS_QUOTE) seen.quotes++;
      if (ms === hm(9, 25)) auction.add(`${d} ${r.sym}`);
      if (ms === hm(15, 0)) closeAuction.add(`${d} ${r.sym}`);
      if (r.kind === KIND_SNAPSHOT) {
        seen.snapshots++;
        continue;
      }
      seen.trades++;
      seen.sides[r.side]++;
      if ((r.price >= limits[r.sym].up - 1e-9 && r.ask1 === 0) || (r.price <= limits[r.sym].down + 1e-9 && r.bid1 === 0)) seen.oneSided++;
      if (ms === hm(9, 25) || ms === hm(15, 0)) continue;
      if (ms >= hm(14, 57)) seen.inClosingCall++;
      else if (ms > hm(11, 30) && ms < hm(13, 0)) seen.lunch++;
      else perSlotTrades[r.slot]++;
    }
  }

  it('follows the session rules: auction prints at 09:25 and 15:00, nothing at lunch or in the closing call', () => {
    expect(seen.invalid).toBe(0);
    expect(seen.lunch).toBe(0);
    expect(seen.inClosingCall).toBe(0);
    const active = days.flat().filter((r) => !r.suspended).length;
    expect(auction.size).toBe(active);
    expect(closeAuction.size).toBe(active);
  });

  it('respects daily price limits and produces limit moves with a one-sided book', () => {
    expect(seen.beyondLimits).toBe(0);
    const atLimit = days.flat().filter((r) => {
      const l = priceLimits(r.prevClose, sim.universe[r.symbol].board, sim.universe[r.symbol].isST);
      return !r.suspended && (r.close >= l.up - 1e-9 || r.close <= l.down + 1e-9);
    });
    expect(atLimit.length).toBeGreaterThan(0);
    expect(seen.oneSided).toBeGreaterThan(0);
  });

  it('has U-shaped intraday volume, trade sides, quotes, snapshots and suspensions', () => {
    const avg = (from: number, to: number): number => perSlotTrades.slice(from, to).reduce((a, b) => a + b, 0) / (to - from);
    expect(avg(0, 15)).toBeGreaterThan(1.5 * avg(60, 110));
    expect(avg(215, 237)).toBeGreaterThan(1.3 * avg(150, 200));
    expect(seen.sides[SIDE_BUY]).toBeGreaterThan(0.3 * seen.trades);
    expect(seen.sides[SIDE_SELL]).toBeGreaterThan(0.3 * seen.trades);
    expect(seen.sides[SIDE_UNKNOWN]).toBeGreaterThan(0);
    expect(seen.snapshots).toBeGreaterThan(0);
    expect(seen.quotes).toBe(seen.trades + seen.snapshots);
    expect(days.flat().filter((r) => r.suspended).length).toBeGreaterThan(0);
  });

  it('daily closes chain: each day opens from the previous close, but for one ex-dividend symbol a day from the second (2% less, as its reference record says)', () => {
    for (let d = 1; d < days.length; d++) {
      const exDividend = days[d].filter((r) => r.prevClose !== days[d - 1][r.symbol].close);
      expect(exDividend.length).toBe(1);
      const [r] = exDividend;
      expect(r.prevClose / days[d - 1][r.symbol].close).toBeCloseTo(0.98, 2);
      expect(sim.reference(d).find((x) => x.symbol === sim.universe[r.symbol].symbol)?.prevClose).toBe(r.prevClose);
    }
  });

  it('plants a short-memory signal whose strength matches its documentation', () => {
    // Oracle check on the daily data: the short latent of day d against the sum of the
    // planted drift over the next horizon days equals shortSignal * latent by construction.
    const big = new MarketSimulator({ symbols: 400, days: 30, seed: 2 }, calendar);
    let cov = 0;
    let vu = 0;
    for (let d = 0; d < 20; d++) {
      for (let i = 0; i < big.universe.length; i++) {
        const u = big.latent('short', d, i);
        let drift = 0;
        for (let h = 1; h <= SIGNALS.horizon; h++) drift += big.alpha(d + h, i);
        cov += u * drift;
        vu += u * u;
      }
    }
    expect(cov / vu).toBeCloseTo(big.params.shortSignal, 3);
  });
});
