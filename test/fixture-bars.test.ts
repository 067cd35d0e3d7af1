/**
 * The boundary fixture (DESIGN §3): ticks at every boundary instant over two days must
 * produce exactly the expected 10- and 30-minute bars, through the file source, the JSON
 * codec, validation and the aggregator, with zero and with non-zero allowed lateness.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FeatureEngine } from '../src/features/engine.js';
import { FileSource, mergeByTime } from '../src/ingest/file-source.js';
import { SymbolTable } from '../src/ingest/events.js';
import type { Freq } from '../src/market/sessions.js';
import { toLocalIso } from '../src/market/time.js';
import { calendar, fixture } from './helpers.js';

interface Row {
  symbol: string;
  barEnd: number;
  barEndLocal: string;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  amount: number;
  vwap: number;
  trades: number;
}

function expected(freq: string): Row[] {
  const [header, ...lines] = readFileSync(fixture(`expected-bars-${freq}.csv`), 'utf8').trim().split(/\r?\n/);
  const cols = header.split(',');
  return lines.map((l) => {
    const v = l.split(',');
    const o: Record<string, string | number> = {};
    cols.forEach((c, i) => (o[c] = c === 'symbol' || c === 'barEndLocal' ? v[i] : Number(v[i])));
    return o as unknown as Row;
  });
}

async function aggregate(latenessMs: number): Promise<{ rows: Map<Freq, Row[]>; missing: Map<Freq, number>; rejects: number }> {
  const symbols = new SymbolTable();
  let rejects = 0;
  const engine = new FeatureEngine({ calendar, symbols, freqs: ['10m', '30m'], allowedLatenessMs: latenessMs, onReject: () => rejects++ });
  const rows = new Map<Freq, Row[]>([['10m', []], ['30m', []]]);
  const missing = new Map<Freq, number>([['10m', 0], ['30m', 0]]);
  engine.onBarClose(({ bars }) => {
    for (let s = 0; s < bars.n; s++) {
      if (bars.missing[s] === 1) {
        missing.set(bars.freq, (missing.get(bars.freq) ?? 0) + 1);
        continue;
      }
      rows.get(bars.freq)?.push({
        symbol: symbols.names[s],
        barEnd: bars.barEnd,
        barEndLocal: toLocalIso(bars.barEnd),
        open: bars.open[s],
        high: bars.high[s],
        low: bars.low[s],
        close: bars.close[s],
        volume: bars.volume[s],
        amount: bars.amount[s],
        vwap: bars.vwap[s],
        trades: bars.trades[s],
      });
    }
  });
  const source = new FileSource(fixture('ticks-boundaries.jsonl'));
  await mergeByTime([source], (s) => engine.context(s.path), {
    ticks: (b, from, to, s) => engine.ingestTicks(b, from, to, s.path),
    bars: (b, from, to, s) => engine.ingestBars(b, from, to, s.path),
  });
  engine.flush();
  return { rows, missing, rejects };
}

function sorted(rows: Row[]): Row[] {
  return [...rows].sort((a, b) => (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : a.barEnd - b.barEnd));
}

describe.each([0, 2_000, 120_000])('boundary fixture, allowed lateness %i ms', (lateness) => {
  it.each(['10m', '30m'] as const)('reproduces expected-bars-%s.csv exactly', async (freq) => {
    const { rows, missing, rejects } = await aggregate(lateness);
    expect(rejects).toBe(0);
    const got = sorted(rows.get(freq) ?? []);
    const want = expected(freq);
    expect(got.map((r) => `${r.symbol} ${r.barEndLocal}`)).toEqual(want.map((r) => `${r.symbol} ${r.barEndLocal}`));
    for (let i = 0; i < want.length; i++) {
      const g = got[i];
      const w = want[i];
      expect(g.barEnd).toBe(w.barEnd);
      expect([g.open, g.high, g.low, g.close]).toEqual([w.open, w.high, w.low, w.close]);
      expect(g.volume).toBe(w.volume);
      expect(g.amount).toBeCloseTo(w.amount, 6);
      expect(g.vwap).toBeCloseTo(w.vwap, 5);
      expect(g.trades).toBe(w.trades);
    }
    // 4 symbols x 2 days x bars a day, minus the bars with trades, are missing bars.
    const perDay = freq === '10m' ? 24 : 8;
    expect((missing.get(freq) ?? 0) + want.length).toBe(4 * 2 * perDay);
  });
});
