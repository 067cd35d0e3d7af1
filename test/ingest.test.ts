import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as A from 'apache-arrow';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { ArrowBarDecoder, ArrowTickDecoder, barsToTable, encodeBarsArrow, encodeTicksArrow, ticksToTable } from '../src/ingest/arrow-codec.js';
import { codecOf } from '../src/ingest/decode.js';
import { BAR_SESSION_PRINT, BarBatch, SymbolTable, TickBatch, barRecordAt, tickRecordAt, type TickRecord } from '../src/ingest/events.js';
import { FileSource, mergeByTime } from '../src/ingest/file-source.js';
import { decodeBarJson, decodeTickJson, encodeTickJson } from '../src/ingest/json-codec.js';
import { TableWriter } from '../src/ingest/table-writer.js';
import { collectingContext, sh } from './helpers.js';

const T0 = sh('2026-11-23T10:00:01');

function decodeOne(msg: unknown, symbols?: SymbolTable): { ctx: ReturnType<typeof collectingContext>; batch: TickBatch } {
  const ctx = collectingContext(symbols);
  const batch = new TickBatch(4);
  decodeTickJson(typeof msg === 'string' ? msg : JSON.stringify(msg), 7, batch, ctx);
  return { ctx, batch };
}

const trade = { symbol: '600000.SH', ts: T0, price: 10.01, volume: 300, amount: 3003, side: 'B', seq: 12 };
const snapshot = { symbol: '000001.SZ', ts: T0, price: 11.5, cumVolume: 1e6, cumAmount: 1.15e7, bid1: 11.49, ask1: 11.5, bidVol1: 12_000, askVol1: 8_000 };

describe('JSON tick codec', () => {
  it('decodes a trade and a snapshot (kind inferred), quotes and optional fields', () => {
    const { ctx, batch } = decodeOne(trade);
    expect(ctx.rejects).toEqual([]);
    expect(tickRecordAt(batch, ctx.symbols, 0)).toEqual({ ...trade, kind: 'trade' });
    expect(batch.slot[0]).toBe(30);
    const s = decodeOne(snapshot);
    expect(s.ctx.rejects).toEqual([]);
    expect(tickRecordAt(s.batch, s.ctx.symbols, 0)).toEqual({ ...snapshot, kind: 'snapshot' });
  });
  it('accepts ISO-8601 times with an offset and defaults amount to price * volume', () => {
    const { ctx, batch } = decodeOne({ symbol: '600000.SH', ts: '2026-11-23T10:00:01+08:00', price: 10, volume: 100, amount: null });
    expect(ctx.rejects).toEqual([]);
    expect(batch.ts[0]).toBe(T0);
    expect(batch.amount[0]).toBe(1000);
  });
  it.each([
    ['{"symbol": "600000.SH", ', 'E_MALFORMED'],
    [[1, 2], 'E_SCHEMA'],
    [{ ...trade, symbol: undefined }, 'E_SCHEMA'],
    [{ ...trade, symbol: '600000.XX' }, 'E_BAD_SYMBOL'],
    [{ ...trade, symbol: '900000.SH' }, 'E_BAD_SYMBOL'],
    [{ ...trade, ts: '2026-11-23T10:00:01' }, 'E_SCHEMA'],
    [{ ...trade, ts: 'soon' }, 'E_SCHEMA'],
    [{ ...trade, price: '10.01' }, 'E_SCHEMA'],
    [{ ...trade, price: 0 }, 'E_BAD_PRICE'],
    [{ ...trade, price: -1 }, 'E_BAD_PRICE'],
    [{ ...trade, volume: -100 }, 'E_NEGATIVE_VOLUME'],
    [{ ...trade, volume: 0 }, 'E_SCHEMA'],
    [{ ...trade, volume: undefined }, 'E_SCHEMA'],
    [{ ...trade, amount: -5 }, 'E_NEGATIVE_AMOUNT'],
    // Impossible prints (issue 19): a unit error or a corrupt field, never a market.
    [{ ...trade, volume: 1e308 }, 'E_IMPLAUSIBLE_SIZE'],
    [{ ...trade, price: 1e-300 }, 'E_BAD_PRICE'],
    [{ ...trade, price: 10_000_000, amount: undefined }, 'E_BAD_PRICE'],
    [{ ...trade, volume: 100, amount: 1e12 }, 'E_AMOUNT_MISMATCH'],
    [{ ...trade, amount: 3003 * 100 }, 'E_AMOUNT_MISMATCH'],
    [{ ...trade, side: 'X' }, 'E_SCHEMA'],
    [{ ...trade, seq: 1.5 }, 'E_SCHEMA'],
    [{ ...trade, kind: 'quote' }, 'E_SCHEMA'],
    [{ ...trade, bid1: 10 }, 'E_SCHEMA'],
    [{ ...snapshot, cumAmount: undefined }, 'E_SCHEMA'],
    [{ ...snapshot, cumVolume: -1 }, 'E_NEGATIVE_VOLUME'],
    [{ ...snapshot, cumAmount: -1 }, 'E_NEGATIVE_AMOUNT'],
    [{ ...snapshot, cumVolume: 1e13 }, 'E_IMPLAUSIBLE_SIZE'],
    [{ ...snapshot, bid1: -1 }, 'E_BAD_PRICE'],
    [{ ...trade, ts: sh('2026-11-23T12:00:00') }, 'E_OUT_OF_SESSION'],
    [{ ...trade, ts: sh('2026-11-23T09:14:00') }, 'E_OUT_OF_SESSION'],
    [{ ...trade, ts: sh('2026-11-22T10:00:00') }, 'E_OUT_OF_SESSION'],
  ])('rejects %j with %s', (msg, code) => {
    const { ctx, batch } = decodeOne(msg);
    expect(batch.length).toBe(0);
    expect(ctx.rejects.map((r) => r.code)).toEqual([code]);
    expect(ctx.rejects[0].origin).toBe(7);
  });
  it('rejects symbols outside a frozen universe with E_UNKNOWN_SYMBOL', () => {
    const symbols = new SymbolTable(['600000.SH']);
    symbols.frozen = true;
    expect(decodeOne(trade, symbols).ctx.rejects).toEqual([]);
    expect(decodeOne({ ...trade, symbol: '600004.SH' }, symbols).ctx.rejects.map((r) => r.code)).toEqual(['E_UNKNOWN_SYMBOL']);
  });
});

describe('JSON bar codec', () => {
  const bar = { symbol: '600000.SH', ts: sh('2026-11-23T09:31:00'), open: 10, high: 10.2, low: 9.9, close: 10.1, volume: 5000, amount: 50_500, buyVolume: 3000, sellVolume: 2000, trades: 12 };
  const decode = (msg: unknown): { ctx: ReturnType<typeof collectingContext>; b: BarBatch } => {
    const ctx = collectingContext();
    const b = new BarBatch(2);
    decodeBarJson(JSON.stringify(msg), 1, b, ctx);
    return { ctx, b };
  };
  it('decodes a bar labelled by its end into that minute', () => {
    const { ctx, b } = decode(bar);
    expect(ctx.rejects).toEqual([]);
    expect(b.slot[0]).toBe(0);
    expect(barRecordAt(b, ctx.symbols, 0)).toEqual(bar);
    expect(decode({ ...bar, ts: sh('2026-11-23T11:30:00') }).b.slot[0]).toBe(119);
    expect(decode({ ...bar, ts: sh('2026-11-23T15:00:00') }).b.slot[0]).toBe(239);
    expect(decode({ ...bar, ts: sh('2026-11-23T09:30:00') }).b.slot[0]).toBe(0); // vendor auction bar
  });
  it('decodes bars labelled by their start (bars.label start) into the minute they start, and encodes them back the same way, session print bars included', () => {
    const start = (msg: unknown): { ctx: ReturnType<typeof collectingContext>; b: BarBatch } => {
      const ctx = { ...collectingContext(), barLabel: 'start' as const };
      const b = new BarBatch(2);
      decodeBarJson(JSON.stringify(msg), 1, b, ctx);
      return { ctx, b };
    };
    for (const [label, slot, end, print] of [
      ['09:30', 0, '09:31', false],
      ['11:29', 119, '11:30', false],
      ['13:00', 120, '13:01', false],
      ['14:59', 239, '15:00', false],
      ['09:25', 0, '09:25', true],
      ['11:30', 119, '11:30', true],
      ['15:00', 239, '15:00', true],
    ] as const) {
      const msg = { ...bar, ts: sh(`2026-11-23T${label}:00`) };
      const { ctx, b } = start(msg);
      expect(ctx.rejects, label).toEqual([]);
      expect([b.slot[0], b.ts[0], (b.flags[0] & BAR_SESSION_PRINT) !== 0], label).toEqual([slot, sh(`2026-11-23T${end}:00`), print]);
      expect(barRecordAt(b, ctx.symbols, 0, 'start')).toEqual(msg);
      const out = new BarBatch(1);
      expect(new ArrowBarDecoder().decodeMessage(encodeBarsArrow(b, ctx.symbols, 0, 1, 'start'), 1, out, { ...collectingContext(), barLabel: 'start' })).toBe(1);
      expect([out.slot[0], out.ts[0]]).toEqual([slot, b.ts[0]]);
    }
    // 13:00 labelled by its end is no bar; 12:59 by its start neither; the end-labelled 09:30 auction bar is a session print.
    expect(start({ ...bar, ts: sh('2026-11-23T12:59:00') }).ctx.rejects.map((r) => [r.code, r.detail])).toEqual([['E_OUT_OF_SESSION', '1-minute bar labelled by its start 2026-11-23 12:59:00.000 Asia/Shanghai is in the lunch break (after 11:30:00 + 3 s, before 13:00:00)']]);
    expect(decode({ ...bar, ts: sh('2026-11-23T09:30:00') }).b.flags[0] & BAR_SESSION_PRINT).toBe(BAR_SESSION_PRINT);
  });
  it.each([
    [{ ...bar, high: 9.95 }, 'E_BAR_INCONSISTENT'],
    [{ ...bar, low: 10.05 }, 'E_BAR_INCONSISTENT'],
    [{ ...bar, ts: sh('2026-11-23T09:31:30') }, 'E_BAR_NOT_ALIGNED'],
    [{ ...bar, ts: sh('2026-11-23T13:00:00') }, 'E_BAR_NOT_ALIGNED'],
    [{ ...bar, ts: sh('2026-11-23T12:00:00') }, 'E_OUT_OF_SESSION'],
    [{ ...bar, volume: -1 }, 'E_NEGATIVE_VOLUME'],
    [{ ...bar, amount: -1 }, 'E_NEGATIVE_AMOUNT'],
    [{ ...bar, volume: 1e11 }, 'E_IMPLAUSIBLE_SIZE'],
    [{ ...bar, amount: 1e9 }, 'E_AMOUNT_MISMATCH'],
    [{ ...bar, high: 1e9 }, 'E_BAD_PRICE'],
    [{ ...bar, close: 0 }, 'E_BAD_PRICE'],
    [{ ...bar, sellVolume: undefined }, 'E_SCHEMA'],
    [{ ...bar, trades: 1.5 }, 'E_SCHEMA'],
  ])('rejects %j with %s', (msg, code) => {
    const { ctx, b } = decode(msg);
    expect(b.length).toBe(0);
    expect(ctx.rejects.map((r) => r.code)).toEqual([code]);
  });
});

function sampleTicks(symbols: SymbolTable): TickBatch {
  const ctx = collectingContext(symbols);
  const b = new TickBatch(4);
  for (const m of [trade, { ...trade, seq: undefined, side: undefined, ts: T0 + 5 }, snapshot, { ...snapshot, bid1: 0, ask1: 11.51, bidVol1: 0, askVol1: 500, ts: T0 + 3000 }]) {
    decodeTickJson(JSON.stringify(m), 0, b, ctx);
  }
  expect(ctx.rejects).toEqual([]);
  return b;
}

describe('Arrow IPC codec', () => {
  it('round-trips ticks: encode then decode gives the same records', () => {
    const symbols = new SymbolTable();
    const b = sampleTicks(symbols);
    const bytes = encodeTicksArrow(b, symbols);
    const ctx = collectingContext(new SymbolTable());
    const out = new TickBatch(2);
    expect(new ArrowTickDecoder().decodeMessage(bytes, 42, out, ctx)).toBe(4);
    expect(ctx.rejects).toEqual([]);
    for (let i = 0; i < 4; i++) expect(tickRecordAt(out, ctx.symbols, i)).toEqual(tickRecordAt(b, symbols, i));
  });
  it('decodes a message at any byte offset (a Kafka value is a slice of the fetch buffer)', () => {
    const symbols = new SymbolTable();
    const bytes = encodeTicksArrow(sampleTicks(symbols), symbols);
    const carrier = new Uint8Array(bytes.length + 3);
    carrier.set(bytes, 3);
    const ctx = collectingContext(new SymbolTable());
    expect(new ArrowTickDecoder().decodeMessage(carrier.subarray(3), 0, new TickBatch(2), ctx)).toBe(4);
    expect(ctx.rejects).toEqual([]);
  });
  it('round-trips 1-minute bars', () => {
    const ctx = collectingContext();
    const b = new BarBatch(2);
    decodeBarJson(JSON.stringify({ symbol: '600000.SH', ts: sh('2026-11-23T09:32:00'), open: 10, high: 10.2, low: 9.9, close: 10.1, volume: 5000, amount: 50_500 }), 0, b, ctx);
    decodeBarJson(JSON.stringify({ symbol: '300750.SZ', ts: sh('2026-11-23T09:32:00'), open: 200, high: 201, low: 199, close: 200.5, volume: 100, amount: 20_050, buyVolume: 60, sellVolume: 40, trades: 3 }), 0, b, ctx);
    const out = new BarBatch(1);
    const ctx2 = collectingContext();
    expect(new ArrowBarDecoder().decodeMessage(encodeBarsArrow(b, ctx.symbols), 1, out, ctx2)).toBe(2);
    for (let i = 0; i < 2; i++) expect(barRecordAt(out, ctx2.symbols, i)).toEqual(barRecordAt(b, ctx.symbols, i));
  });
  it('rejects truncated bytes as a whole with E_MALFORMED', () => {
    const symbols = new SymbolTable();
    const bytes = encodeTicksArrow(sampleTicks(symbols), symbols);
    const ctx = collectingContext();
    expect(new ArrowTickDecoder().decodeMessage(bytes.subarray(0, bytes.length - 40), 3, new TickBatch(), ctx)).toBe(0);
    expect(ctx.rejects.map((r) => [r.code, r.origin, r.row])).toEqual([['E_MALFORMED', 3, -1]]);
    const junk = collectingContext();
    new ArrowTickDecoder().decodeMessage(new TextEncoder().encode('{"not":"arrow"}'), 4, new TickBatch(), junk);
    expect(junk.rejects.map((r) => r.code)).toEqual(['E_MALFORMED']);
  });
  it('rejects a message without required columns with E_SCHEMA', () => {
    const t = new A.Table({ symbol: A.vectorFromArray(['600000.SH']), price: A.vectorFromArray([10]) });
    const ctx = collectingContext();
    new ArrowTickDecoder().decodeMessage(A.tableToIPC(t), 0, new TickBatch(), ctx);
    expect(ctx.rejects.map((r) => [r.code, r.detail])).toEqual([['E_SCHEMA', 'missing column ts']]);
  });
  it('accepts plain utf8 symbols, int64 or second timestamps and other numeric types; rejects bad rows one by one', () => {
    const ts = BigInt(T0);
    const t = new A.Table({
      symbol: A.vectorFromArray(['600000.SH', 'bad', '600000.SH', '600000.SH'], new A.Utf8()),
      ts: A.vectorFromArray([ts, ts, ts, BigInt(sh('2026-11-23T12:00:00'))], new A.Int64()),
      price: A.vectorFromArray([10, 10, -1, 10], new A.Float32()),
      volume: A.vectorFromArray([100, 100, 100, 100], new A.Int32()),
    });
    const ctx = collectingContext();
    const out = new TickBatch();
    expect(new ArrowTickDecoder().decodeMessage(A.tableToIPC(t), 9, out, ctx)).toBe(1);
    expect(out.ts[0]).toBe(T0);
    expect(out.price[0]).toBe(10);
    expect(ctx.rejects.map((r) => [r.code, r.row])).toEqual([
      ['E_BAD_SYMBOL', 1],
      ['E_BAD_PRICE', 2],
      ['E_OUT_OF_SESSION', 3],
    ]);
    const secs = new A.Table({
      symbol: A.vectorFromArray(['600000.SH']),
      ts: A.vectorFromArray([T0 - 1000], new A.TimestampSecond()), // the builder takes ms, stores seconds
      price: A.vectorFromArray([10]),
      volume: A.vectorFromArray([100]),
    });
    const out2 = new TickBatch();
    new ArrowTickDecoder().decodeMessage(A.tableToIPC(secs), 0, out2, collectingContext());
    expect(out2.ts[0]).toBe(T0 - 1000);
  });
});

describe('content-type selects the codec', () => {
  it.each([
    ['application/json', 'json'],
    ['application/json; charset=utf-8', 'json'],
    ['Application/Vnd.Apache.Arrow.Stream', 'arrow'],
    ['text/plain', undefined],
    [undefined, undefined],
  ])('%s -> %s', (ct, codec) => expect(codecOf(ct)).toBe(codec));
});

describe('JSON Schemas in schemas/ agree with the codecs', () => {
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  const tickSchema = ajv.compile(JSON.parse(readFileSync('schemas/tick.schema.json', 'utf8')));
  const barSchema = ajv.compile(JSON.parse(readFileSync('schemas/bar-1m.schema.json', 'utf8')));
  it('encoded ticks and bars validate', () => {
    const symbols = new SymbolTable();
    const b = sampleTicks(symbols);
    for (let i = 0; i < b.length; i++) {
      const msg = JSON.parse(encodeTickJson(tickRecordAt(b, symbols, i))) as TickRecord;
      expect(tickSchema(msg), JSON.stringify(tickSchema.errors)).toBe(true);
      const ctx = collectingContext();
      expect(decodeTickJson(JSON.stringify(msg), 0, new TickBatch(), ctx)).toBe(true);
    }
    expect(barSchema({ symbol: '600000.SH', ts: sh('2026-11-23T09:31:00'), open: 1, high: 1, low: 1, close: 1, volume: 0, amount: 0 })).toBe(true);
  });
  it.each([
    { ...trade, symbol: 'x' },
    { ...trade, volume: undefined },
    { ...trade, side: 'X' },
    { ...trade, bid1: 10 },
    { ...snapshot, kind: 'snapshot', cumVolume: undefined },
    { ...trade, ts: '2026-11-23T10:00:01' },
  ])('schema and decoder both refuse %j', (msg) => {
    expect(tickSchema(JSON.parse(JSON.stringify(msg)))).toBe(false);
    const ctx = collectingContext();
    expect(decodeTickJson(JSON.stringify(msg), 0, new TickBatch(), ctx)).toBe(false);
  });
  it('the Arrow layouts in schemas/*.arrow.json are what the encoders write', () => {
    const symbols = new SymbolTable();
    const ticks = ticksToTable(sampleTicks(symbols), symbols);
    const tickDoc = JSON.parse(readFileSync('schemas/tick.arrow.json', 'utf8')) as { fields: { name: string; type: string }[] };
    expect(ticks.schema.fields.map((f) => [f.name, String(f.type)])).toEqual(tickDoc.fields.map((f) => [f.name, f.type]));
    const barDoc = JSON.parse(readFileSync('schemas/bar-1m.arrow.json', 'utf8')) as { fields: { name: string; type: string }[] };
    const bars = barsToTable(new BarBatch(1), symbols);
    expect(bars.schema.fields.map((f) => [f.name, String(f.type)])).toEqual(barDoc.fields.map((f) => [f.name, f.type]));
  });
});

describe('file sources', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fs-files-'));
  it('CSV, JSONL and Arrow files of the same ticks decode to the same rows', async () => {
    const symbols = new SymbolTable();
    const b = sampleTicks(symbols);
    const table = ticksToTable(b, symbols);
    for (const fmt of ['arrow', 'csv', 'jsonl'] as const) {
      const w = new TableWriter(join(dir, `ticks.${fmt}`), fmt);
      w.write(table);
      await w.close();
    }
    const read = async (name: string): Promise<TickRecord[]> => {
      const ctx = collectingContext();
      const src = new FileSource(join(dir, name));
      const rows: TickRecord[] = [];
      for await (const kind of src.chunks(ctx)) {
        expect(kind).toBe('ticks');
        for (let i = 0; i < src.ticks.length; i++) rows.push(tickRecordAt(src.ticks, ctx.symbols, i));
      }
      expect(ctx.rejects).toEqual([]);
      return rows;
    };
    const want = Array.from({ length: b.length }, (_, i) => tickRecordAt(b, symbols, i));
    expect(await read('ticks.arrow')).toEqual(want);
    expect(await read('ticks.csv')).toEqual(want);
    expect(await read('ticks.jsonl')).toEqual(want);
  });
  it('reports bad lines with their line numbers and keeps going', async () => {
    const path = join(dir, 'bad.jsonl');
    writeFileSync(path, [JSON.stringify(trade), 'not json', '', JSON.stringify({ ...trade, volume: -1 }), JSON.stringify({ ...trade, seq: 13 })].join('\n'));
    const ctx = collectingContext();
    const src = new FileSource(path);
    let rows = 0;
    for await (const _ of src.chunks(ctx)) rows += src.ticks.length;
    expect(rows).toBe(2);
    expect(ctx.rejects.map((r) => [r.code, r.origin])).toEqual([
      ['E_MALFORMED', 2],
      ['E_NEGATIVE_VOLUME', 4],
    ]);
  });
  it('CSV rows with the wrong number of fields are E_MALFORMED', async () => {
    const path = join(dir, 'bad.csv');
    writeFileSync(path, 'symbol,ts,price,volume\n600000.SH,1795399201000,10,100\n600000.SH,1795399202000,10\n');
    const ctx = collectingContext();
    const src = new FileSource(path);
    for await (const _ of src.chunks(ctx)) expect(src.ticks.length).toBe(1);
    expect(ctx.rejects.map((r) => [r.code, r.origin])).toEqual([['E_MALFORMED', 2]]);
  });
  it('merges files by event time, bars ordered by their last covered instant', async () => {
    const tp = join(dir, 'm-ticks.jsonl');
    const bp = join(dir, 'm-bars.jsonl');
    writeFileSync(tp, [sh('2026-11-23T09:30:10'), sh('2026-11-23T09:31:00'), sh('2026-11-23T09:32:30')].map((ts, i) => JSON.stringify({ ...trade, ts, seq: i })).join('\n'));
    writeFileSync(
      bp,
      [sh('2026-11-23T09:31:00'), sh('2026-11-23T09:32:00')]
        .map((ts) => JSON.stringify({ symbol: '000001.SZ', ts, open: 1, high: 1, low: 1, close: 1, volume: 1, amount: 1 }))
        .join('\n'),
    );
    const order: string[] = [];
    await mergeByTime([new FileSource(tp), new FileSource(bp)], () => collectingContext(), {
      ticks: (b, from, to) => {
        for (let i = from; i < to; i++) order.push(`t${new Date(b.ts[i]).toISOString().slice(14, 19)}`);
      },
      bars: (b, from, to) => {
        for (let i = from; i < to; i++) order.push(`b${new Date(b.ts[i]).toISOString().slice(14, 19)}`);
      },
    });
    expect(order).toEqual(['t30:10', 'b31:00', 't31:00', 'b32:00', 't32:30']);
  });
});
