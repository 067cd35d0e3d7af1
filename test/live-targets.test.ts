/**
 * Target weights (issue 16, item 5): the daemon's decision at a rebalance day's close —
 * the previous targets drifted with the closes, a suspended stock held, the premia carried
 * from one decision to the next and across a checkpoint — on a hand-computed case, and
 * the message's layout against schemas/targets.arrow.json.
 */
import { readFileSync } from 'node:fs';
import { deserialize, serialize } from 'node:v8';
import * as A from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { LiveTargets, type TargetPortfolioConfig, type TargetWeights } from '../src/eval/live-targets.js';
import { isRebalanceDay } from '../src/eval/rebalance-decision.js';
import { ReferenceBook, type ReferenceRecord } from '../src/market/reference.js';
import { isoToDay } from '../src/market/time.js';
import { targetsMessage } from '../src/sink/targets.js';
import { calendar } from './helpers.js';

const next = (d: number): number => calendar.nextTradingDay(d);

describe('rebalance days', () => {
  it('last: the week’s last trading day by the exchange calendar, a holiday Friday moving it to Thursday', () => {
    expect(isRebalanceDay('last', isoToDay('2026-11-27'), next)).toBe(true); // a Friday
    expect(isRebalanceDay('last', isoToDay('2026-11-26'), next)).toBe(false);
    expect(isRebalanceDay('last', isoToDay('2026-06-18'), next)).toBe(true); // Dragon Boat Festival on Friday 06-19
    expect(isRebalanceDay('daily', isoToDay('2026-11-26'), next)).toBe(true);
    expect(isRebalanceDay(3, isoToDay('2026-11-25'), next)).toBe(true);
    expect(isRebalanceDay(3, isoToDay('2026-11-26'), next)).toBe(false);
  });
});

describe('LiveTargets on a hand-computed case', () => {
  // Four stocks of one industry, benchmark 25% each, deviation 10%, decisions every day.
  const days = ['2026-11-23', '2026-11-24', '2026-11-25', '2026-11-26'];
  const symbols = ['600000.SH', '600004.SH', '600006.SH', '600007.SH'];
  const close = [
    [10, 10, 10, 10],
    [10.5, 10.2, 10, 9.8],
    [10.8, 10.4, 10, 9.6],
    [11, 10.5, Number.NaN, 9.5], // 600006.SH suspended on 11-26
  ];
  const book = new ReferenceBook();
  for (const [d, date] of days.entries()) {
    for (const [i, symbol] of symbols.entries()) {
      book.put({ date, symbol, prevClose: d === 0 ? 10 : close[d - 1][i], st: false, suspended: d === 3 && i === 2, industry: 'Banks', indexes: { IDX: 0.25 } } satisfies ReferenceRecord);
    }
  }
  const cfg: TargetPortfolioConfig = { name: 'enh', model: 'm', benchmark: 'IDX', deviation: 0.1, industryNeutral: true, sizeNeutral: false, factorBound: 2, extraBound: 0, neutral: [], turnoverCap: 1, rebalance: 'daily', premiumWindow: 52 };
  const scoresOf = (): Map<string, number> => new Map(symbols.map((s, i) => [s, [2, 1, -1, -2][i]]));
  const pricesOf = (d: number): Map<string, number> => new Map(symbols.flatMap((s, i) => (Number.isFinite(close[d][i]) ? [[s, close[d][i]] as [string, number]] : [])));
  const decideDay = async (t: LiveTargets, d: number): Promise<TargetWeights> => {
    const day = isoToDay(days[d]);
    t.dayClose(day, pricesOf(d));
    return (await t.dayScores('v1', day, scoresOf())) as TargetWeights;
  };

  it('the benchmark first, then the optimum from the premium, from the previous targets drifted to the close; a suspended stock held', async () => {
    const t = new LiveTargets(cfg, calendar, book);
    const first = await decideDay(t, 0);
    expect(first.kind).toBe('benchmark');
    expect(Array.from(first.weights)).toEqual([0.25, 0.25, 0.25, 0.25]);
    expect(first.barEnd).toBe(Date.parse('2026-11-23T15:00:00+08:00'));
    // The premium of the high scores is positive (they rose): the best two at 35%, the others at 15%.
    const second = await decideDay(t, 1);
    expect(second.kind).toBe('optimised');
    expect(Array.from(second.weights)).toEqual([0.35, 0.35, 0.15, 0.15].map((w) => expect.closeTo(w, 12)));
    // Held: the benchmark drifted with the closes from 11-23 to 11-24.
    const g = close[1].map((c, i) => 0.25 * (c / close[0][i]));
    const sum = g.reduce((a, b) => a + b, 0);
    expect(Array.from(second.prev)).toEqual(g.map((x) => expect.closeTo(x / sum, 14)));
    expect(second.turnover).toBeCloseTo(second.weights.reduce((s, w, i) => s + Math.abs(w - second.prev[i]), 0) / 2, 14);
    await decideDay(t, 2);
    const fourth = await decideDay(t, 3);
    // 600006.SH has no price on 11-26 and is suspended: held at its weight of 11-25 (its drift unknown: unchanged).
    expect(Array.from(fourth.canBuy)).toEqual([1, 1, 0, 1]);
    expect(Array.from(fourth.canSell)).toEqual([1, 1, 0, 1]);
    expect(fourth.weights[2]).toBeCloseTo(fourth.prev[2], 12);
    expect(fourth.weights.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });

  it('decides once per day, and not on a day that is not a rebalance day', async () => {
    const t = new LiveTargets({ ...cfg, rebalance: 'last' }, calendar, book);
    expect(t.decidesOn(isoToDay('2026-11-26'))).toBe(false);
    t.dayClose(isoToDay('2026-11-26'), pricesOf(3));
    expect(await t.dayScores('v1', isoToDay('2026-11-26'), scoresOf())).toBeUndefined();
    const d = new LiveTargets(cfg, calendar, book);
    await decideDay(d, 0);
    expect(d.decidesOn(isoToDay(days[0]))).toBe(false);
  });

  it('a restart from a checkpoint (v8-serialised state) decides as the uninterrupted run', async () => {
    const straight = new LiveTargets(cfg, calendar, book);
    const want: TargetWeights[] = [];
    for (let d = 0; d < 4; d++) want.push(await decideDay(straight, d));
    const before = new LiveTargets(cfg, calendar, book);
    await decideDay(before, 0);
    await decideDay(before, 1);
    const after = new LiveTargets(cfg, calendar, book);
    after.restore(deserialize(serialize(before.snapshot())) as ReturnType<LiveTargets['snapshot']>);
    for (let d = 2; d < 4; d++) {
      const got = await decideDay(after, d);
      expect(got.kind).toBe(want[d].kind);
      expect(Array.from(got.weights)).toEqual(Array.from(want[d].weights));
      expect(Array.from(got.prev)).toEqual(Array.from(want[d].prev));
    }
  });

  it('the message has the layout of schemas/targets.arrow.json, one row per candidate', async () => {
    const t = new LiveTargets(cfg, calendar, book);
    await decideDay(t, 0);
    const decision = await decideDay(t, 1);
    const m = targetsMessage(decision);
    expect(m.key?.toString()).toBe('enh');
    expect(m.headers).toEqual({ 'content-type': 'application/vnd.apache.arrow.stream', portfolio: 'enh', model: 'm', 'model-version': 'v1', 'bar-end': String(decision.barEnd) });
    const table = A.tableFromIPC(m.value);
    const layout = JSON.parse(readFileSync('schemas/targets.arrow.json', 'utf8')) as { fields: { name: string; nullable: boolean }[] };
    expect(table.schema.fields.map((f) => [f.name, f.nullable])).toEqual(layout.fields.map((f) => [f.name, f.nullable]));
    const rows = [...table].map((r) => r.toJSON() as Record<string, unknown>);
    expect(rows.map((r) => r.symbol)).toEqual(symbols);
    expect(rows.map((r) => r.weight)).toEqual(Array.from(decision.weights));
    expect(rows.every((r) => r.kind === 'optimised' && r.relaxed === '' && r.portfolio === 'enh' && r.benchmark === 'IDX' && Number(r.barEnd) === decision.barEnd)).toBe(true);
  });
});
