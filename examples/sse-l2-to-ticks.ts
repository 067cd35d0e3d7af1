/**
 * Bring your own feed: a converter from a Chinese vendor's SSE Level-2 CSV layout (the
 * layout of test/fixtures/real/, one file per security and day: trades with `TradTime`,
 * `TradPrice`, `TradVolume`, `TradeMoney`, `TradeBSFlag`, `BizIndex`; snapshots with
 * `UpdateTime`, `LastPrice`, cumulative `TradVolume` and `Turnover`, level-1 book) to
 * factorstream's tick format (README *Message formats*: JSON lines, or an Arrow IPC stream
 * with the layout of schemas/tick.arrow.json), ready for `factorstream features`,
 * `replay` or a producer of your own.
 *
 *   node --import tsx examples/sse-l2-to-ticks.ts --input trades.csv[.gz|.br] --date 2023-02-01 --out ticks.jsonl
 *   node --import tsx examples/sse-l2-to-ticks.ts --input snapshots.csv.br --date 2023-02-01 --out snapshots.arrow
 *
 * The vendor's times carry no date (--date gives it) and are exchange time (Asia/Shanghai,
 * UTC+8); prices carry binary float noise (rounded to the fen). Nothing is filtered here:
 * what factorstream cannot use (a print outside the sessions, a duplicate) it rejects with
 * a code, as it would live. Snapshots before the first trade carry price 0.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import * as A from 'apache-arrow';
import { parse } from 'csv-parse/sync';
import type { TickRecord } from '../src/ingest/events.js';

export interface ConvertOptions {
  /** The trading day of the file, YYYY-MM-DD (the vendor's times have none). */
  date: string;
  /** The exchange suffix of SecurityID: SH for this SSE layout. */
  exchange?: 'SH' | 'SZ' | 'BJ';
}

/** A vendor file's text, decompressed by its extension (.gz, .br) when it is compressed. */
export function readVendorFile(path: string): string {
  const bytes = readFileSync(path);
  if (path.endsWith('.br')) return brotliDecompressSync(bytes).toString('utf8');
  if (path.endsWith('.gz')) return gunzipSync(bytes).toString('utf8');
  return bytes.toString('utf8');
}

const fen = (x: string): number => Math.round(Number(x) * 100) / 100;

/** HH:MM:SS.mmm exchange time of `date` as epoch milliseconds. */
function epochMs(date: string, time: string): number {
  const ts = Date.parse(`${date}T${time}+08:00`);
  if (!Number.isFinite(ts)) throw new Error(`not a time of day: ${JSON.stringify(time)}`);
  return ts;
}

/** Converts one vendor CSV (trades or snapshots, told apart by their columns) to tick records, in file order. */
export function sseL2ToTicks(csv: string, opts: ConvertOptions): TickRecord[] {
  const rows = parse(csv, { columns: true, skip_empty_lines: true, trim: true }) as Record<string, string>[];
  const suffix = opts.exchange ?? 'SH';
  const out: TickRecord[] = [];
  for (const r of rows) {
    const symbol = `${r.SecurityID.padStart(6, '0')}.${suffix}`;
    if ('TradTime' in r) {
      const side = r.TradeBSFlag === 'B' || r.TradeBSFlag === 'S' ? r.TradeBSFlag : 'N';
      out.push({ symbol, ts: epochMs(opts.date, r.TradTime), kind: 'trade', price: fen(r.TradPrice), volume: Number(r.TradVolume), amount: Number(r.TradeMoney), side, seq: Number(r.BizIndex) });
    } else if ('UpdateTime' in r) {
      const t: TickRecord = { symbol, ts: epochMs(opts.date, r.UpdateTime), kind: 'snapshot', price: fen(r.LastPrice), cumVolume: Number(r.TradVolume), cumAmount: Number(r.Turnover) };
      // The book is a group: only when both sides are there (empty before the auction).
      if (r.BidPrice1 !== '' && r.AskPrice1 !== '' && r.BidVolume1 !== '' && r.AskVolume1 !== '') {
        Object.assign(t, { bid1: fen(r.BidPrice1), ask1: fen(r.AskPrice1), bidVol1: Number(r.BidVolume1), askVol1: Number(r.AskVolume1) });
      }
      out.push(t);
    } else {
      throw new Error('neither a trades file (TradTime) nor a snapshots file (UpdateTime)');
    }
  }
  return out;
}

/** Tick records as an Arrow IPC stream with factorstream's tick layout (schemas/tick.arrow.json). */
export function ticksToArrow(ticks: readonly TickRecord[]): Uint8Array {
  const num = (f: (t: TickRecord) => number | undefined): (number | null)[] => ticks.map((t) => f(t) ?? null);
  const table = new A.Table({
    symbol: A.vectorFromArray(ticks.map((t) => t.symbol), new A.Dictionary(new A.Utf8(), new A.Int32())),
    ts: A.vectorFromArray(ticks.map((t) => t.ts), new A.TimestampMillisecond()),
    kind: A.vectorFromArray(ticks.map((t) => t.kind ?? 'trade'), new A.Dictionary(new A.Utf8(), new A.Int32())),
    price: A.makeVector(Float64Array.from(ticks, (t) => t.price)),
    volume: A.vectorFromArray(num((t) => t.volume), new A.Float64()),
    amount: A.vectorFromArray(num((t) => t.amount), new A.Float64()),
    side: A.vectorFromArray(ticks.map((t) => t.side ?? null), new A.Dictionary(new A.Utf8(), new A.Int32())),
    seq: A.vectorFromArray(num((t) => t.seq), new A.Float64()),
    cumVolume: A.vectorFromArray(num((t) => t.cumVolume), new A.Float64()),
    cumAmount: A.vectorFromArray(num((t) => t.cumAmount), new A.Float64()),
    bid1: A.vectorFromArray(num((t) => t.bid1), new A.Float64()),
    ask1: A.vectorFromArray(num((t) => t.ask1), new A.Float64()),
    bidVol1: A.vectorFromArray(num((t) => t.bidVol1), new A.Float64()),
    askVol1: A.vectorFromArray(num((t) => t.askVol1), new A.Float64()),
  });
  return A.tableToIPC(table, 'stream');
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { input: { type: 'string' }, date: { type: 'string' }, out: { type: 'string' }, exchange: { type: 'string' } } });
  if (values.input === undefined || values.date === undefined || values.out === undefined) {
    process.stderr.write('usage: sse-l2-to-ticks --input FILE.csv[.gz|.br] --date YYYY-MM-DD --out FILE.jsonl|FILE.arrow [--exchange SH|SZ|BJ]\n');
    process.exit(2);
  }
  const ticks = sseL2ToTicks(readVendorFile(values.input), { date: values.date, exchange: values.exchange as ConvertOptions['exchange'] });
  if (values.out.endsWith('.arrow')) writeFileSync(values.out, ticksToArrow(ticks));
  else writeFileSync(values.out, ticks.map((t) => JSON.stringify(t)).join('\n') + '\n');
  process.stdout.write(`${ticks.length.toLocaleString('en-US')} ticks -> ${values.out}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) await main();
