/**
 * Real exchange data against the exchange's own totals: one SSE stock-day (600519.SH,
 * 2023-02-01, test/fixtures/real/) as the vendor ships it, converted by the example
 * converter (examples/sse-l2-to-ticks.ts) and run through `factorstream features` as a
 * user would. Trades and snapshots separately: every trade aggregated, none rejected; the
 * day's bars add up to the last snapshot's cumulative 3,397,389 shares and
 * CNY 6,244,678,924.61; the day's last 10m and 30m bars close at the official close
 * 1844.97 (the closing auction, stamped 15:00:01.060); the snapshot-fed day gives the same
 * totals. And what the grace does not cover is rejected with the rule and the local time.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as A from 'apache-arrow';
import { beforeAll, describe, expect, it } from 'vitest';
import { readVendorFile, sseL2ToTicks, ticksToArrow } from '../examples/sse-l2-to-ticks.js';
import { cli, fixture } from './helpers.js';

const DATE = '2023-02-01';
const DAY_VOLUME = 3_397_389;
const DAY_AMOUNT = 6_244_678_924.61;
const OFFICIAL_CLOSE = 1844.97;
const LAST_BAR = Date.parse(`${DATE}T15:00:00+08:00`);

interface Bar {
  barEnd: number;
  close: number;
  volume: number;
  amount: number;
  missing: number;
}

function bars(dir: string, freq: '10m' | '30m'): Bar[] {
  return [...A.tableFromIPC(readFileSync(join(dir, `bars-${freq}.arrow`)))].map((r) => ({ barEnd: Number(r.barEnd), close: Number(r.close), volume: Number(r.volume), amount: Number(r.amount), missing: Number(r.missing) }));
}

function features(input: string, out: string): { summary: { ticks: number; rejected: Record<string, number> }; rejects: { code: string; detail: string }[] } {
  const r = cli(['features', '--input', input, '--freq', '10m', '--freq', '30m', '--out', out]);
  expect(r.code, r.stderr).toBe(0);
  const rejects = readFileSync(join(out, 'rejects.jsonl'), 'utf8').trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { code: string; detail: string });
  return { summary: JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { ticks: number; rejected: Record<string, number> }, rejects };
}

describe('real SSE Level-2 data (600519.SH, 2023-02-01)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fs-real-'));
  const trades = sseL2ToTicks(readVendorFile(fixture('real/sse-600519-20230201-trades.csv.br')), { date: DATE });
  const snapshots = sseL2ToTicks(readVendorFile(fixture('real/sse-600519-20230201-snapshots.csv.br')), { date: DATE });

  beforeAll(() => {
    writeFileSync(join(dir, 'trades.jsonl'), trades.map((t) => JSON.stringify(t)).join('\n') + '\n');
    writeFileSync(join(dir, 'snapshots.arrow'), ticksToArrow(snapshots));
  });

  it('the converter reads the vendor layout: 27,135 trades adding up to the exchange totals, 5,109 snapshots', () => {
    expect(trades.length).toBe(27_135);
    expect(snapshots.length).toBe(5_109);
    expect(trades.reduce((n, t) => n + (t.volume ?? 0), 0)).toBe(DAY_VOLUME);
    expect(trades.reduce((n, t) => n + (t.amount ?? 0), 0)).toBeCloseTo(DAY_AMOUNT, 1);
    const last = snapshots[snapshots.length - 1];
    expect([last.cumVolume, last.cumAmount]).toEqual([DAY_VOLUME, DAY_AMOUNT]);
    expect(trades.filter((t) => t.ts === Date.parse(`${DATE}T15:00:01.060+08:00`)).length).toBe(303);
  });

  it('trades: every one aggregated (the closing auction at 15:00:01.060 in the 15:00 bar), the bars add up to the day, the last bars close at the official close', () => {
    const out = join(dir, 'trades-out');
    const { summary, rejects } = features(join(dir, 'trades.jsonl'), out);
    expect(summary.ticks).toBe(27_135);
    expect(rejects).toEqual([]);
    for (const freq of ['10m', '30m'] as const) {
      const b = bars(out, freq);
      expect(b.length).toBe(freq === '10m' ? 24 : 8);
      expect(b.reduce((n, x) => n + x.volume, 0)).toBe(DAY_VOLUME);
      expect(b.reduce((n, x) => n + x.amount, 0)).toBeCloseTo(DAY_AMOUNT, 1);
      const last = b[b.length - 1];
      expect(last.barEnd).toBe(LAST_BAR);
      expect(last.close).toBe(OFFICIAL_CLOSE);
    }
    // The opening auction (09:25:00.940) is in the first bar, with the first minutes.
    const first = bars(out, '10m')[0];
    expect(first.barEnd).toBe(Date.parse(`${DATE}T09:40:00+08:00`));
    const auction = trades.filter((t) => t.ts < Date.parse(`${DATE}T09:30:00+08:00`)).reduce((n, t) => n + (t.volume ?? 0), 0);
    expect(auction).toBe(32_800);
    expect(first.volume).toBeGreaterThan(auction);
  });

  it('snapshots: the same daily totals and close, the closing auction in the 15:00 bar, the morning in the morning; heartbeats in the breaks accepted, same-second repeats rejected as duplicates', () => {
    const out = join(dir, 'snapshots-out');
    const { summary, rejects } = features(join(dir, 'snapshots.arrow'), out);
    expect(summary.ticks).toBe(5_109);
    // The vendor repeats a few snapshots within the same second with the same totals.
    expect(summary.rejected).toEqual({ E_DUPLICATE: 7 });
    expect(rejects.every((r) => /repeats the snapshot at 2023-02-01T\d\d:\d\d:\d\d\+08:00/.test(r.detail))).toBe(true);
    const tradeBars = bars(join(dir, 'trades-out'), '30m');
    for (const freq of ['10m', '30m'] as const) {
      const b = bars(out, freq);
      expect(b.reduce((n, x) => n + x.volume, 0)).toBe(DAY_VOLUME);
      expect(b.reduce((n, x) => n + x.amount, 0)).toBeCloseTo(DAY_AMOUNT, 1);
      expect(b[b.length - 1].close).toBe(OFFICIAL_CLOSE);
    }
    // Snapshots report trades up to 3 s late: the morning's last seconds stay in the 11:30 bar
    // and the closing auction in the 15:00 bar, so each session's total is the trades' own.
    // (Inside a session, a snapshot just after a bar end carries the trades of the seconds
    // before it into the next bar: snapshot attribution, not an error.)
    const snap30 = bars(out, '30m');
    const session = (xs: Bar[], morning: boolean): number => xs.filter((x) => (x.barEnd <= Date.parse(`${DATE}T11:30:00+08:00`)) === morning).reduce((n, x) => n + x.volume, 0);
    expect(session(snap30, true)).toBe(session(tradeBars, true));
    expect(session(snap30, false)).toBe(session(tradeBars, false));
    const closingAuction = trades.filter((t) => t.ts > Date.parse(`${DATE}T15:00:00+08:00`)).reduce((n, t) => n + (t.volume ?? 0), 0);
    expect(closingAuction).toBe(45_912);
    const last10 = bars(out, '10m').at(-1) as Bar;
    expect(last10.volume).toBeGreaterThanOrEqual(closingAuction);
  });

  it('what the grace does not cover is E_OUT_OF_SESSION, with the rule and the local time', () => {
    const late = { ...trades[trades.length - 1], ts: Date.parse(`${DATE}T15:00:05.200+08:00`) };
    const lunch = { ...trades[100], ts: Date.parse(`${DATE}T11:31:10+08:00`) };
    const file = join(dir, 'late.jsonl');
    writeFileSync(file, [lunch, late].map((t) => JSON.stringify(t)).join('\n') + '\n');
    const { rejects } = features(file, join(dir, 'late-out'));
    expect(rejects.map((r) => [r.code, r.detail])).toEqual([
      ['E_OUT_OF_SESSION', 'trade: 2023-02-01 11:31:10.000 Asia/Shanghai is in the lunch break (after 11:30:00 + 3 s, before 13:00:00)'],
      ['E_OUT_OF_SESSION', 'trade: 2023-02-01 15:00:05.200 Asia/Shanghai is after the closing auction (15:00:00 + 3 s)'],
    ]);
  });
});
