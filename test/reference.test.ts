/**
 * Daily reference data (issue 19): the codecs, and what it drives in the aggregation —
 * ST limits at ±5%, an ex-dividend day's limits from the exchange's reference price, given
 * limit prices, a symbol without a record (W_NO_REFERENCE), an update during the day, and
 * prints outside the day's band rejected — checked through `factorstream features` as a
 * user runs it, against limits computed here by hand.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as A from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { FeatureEngine } from '../src/features/engine.js';
import { SymbolTable, TickBatch } from '../src/ingest/events.js';
import { decodeTickJson } from '../src/ingest/json-codec.js';
import { decodeReferenceMessage, readReference, readReferenceFile, referenceMessages, writeReferenceFile } from '../src/ingest/reference-codec.js';
import { ReferenceBook, referenceLimits, type ReferenceRecord } from '../src/market/reference.js';
import { isoToDay } from '../src/market/time.js';
import { eligibleSymbols, orthogonalProjection, referenceExposures } from '../src/model/cross-section.js';
import { exposureProjection, residualize } from '../src/model/labels.js';
import { checkedMeta } from '../src/model/artifact.js';
import { calendar, cli, sh } from './helpers.js';

const D1 = '2026-11-23';
const D2 = '2026-11-24';
const rec = (r: Partial<ReferenceRecord> & Pick<ReferenceRecord, 'date' | 'symbol' | 'prevClose'>): ReferenceRecord => ({ st: false, suspended: false, indexes: {}, ...r });

describe('reference codecs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fs-reference-'));
  const records = [
    rec({ date: D1, symbol: '600000.SH', prevClose: 10, industry: 'Banks', floatMarketValue: 2.5e11, indexes: { CSI300: 0.012, CSI500: 0 } }),
    rec({ date: D1, symbol: '600001.SH', prevClose: 4.2, st: true, suspended: true }),
    rec({ date: D2, symbol: '688001.SH', prevClose: 30, upperLimit: 45, lowerLimit: 15 }),
  ];
  it.each(['csv', 'jsonl', 'arrow'])('%s files read back the records written', (ext) => {
    const path = join(dir, `ref.${ext}`);
    writeReferenceFile(path, records);
    expect(readReferenceFile(path)).toEqual(records);
  });
  it('a folder of files is one book, later files winning; topic messages decode as JSON or Arrow', () => {
    const folder = join(dir, 'days');
    mkdirSync(folder);
    writeReferenceFile(join(folder, `${D1}.csv`), records.slice(0, 2));
    writeReferenceFile(join(folder, `${D1}b.jsonl`), [{ ...records[0], prevClose: 9.9 }]);
    const book = readReference(folder);
    expect(book.size).toBe(2);
    expect(book.get(isoToDay(D1), '600000.SH')?.prevClose).toBe(9.9);
    const [json] = referenceMessages([records[2]]);
    expect(json.key.toString()).toBe('688001.SH');
    expect(decodeReferenceMessage(json.value, json.headers['content-type'], 'test')).toEqual([records[2]]);
    const arrow = Buffer.from(readFileSync(join(dir, 'ref.arrow')));
    expect(decodeReferenceMessage(arrow, 'application/vnd.apache.arrow.stream', 'test')).toEqual(records);
    expect([...A.tableFromIPC(arrow).schema.fields].map((f) => `${f.name}:${String(f.type)}`)).toEqual(
      (JSON.parse(readFileSync('schemas/reference.arrow.json', 'utf8')) as { fields: { name: string; type: string }[] }).fields.map((f) => `${f.name}:${f.type}`),
    );
  });
  it('a bad record is refused with where it is and what is wrong, with a stable code', () => {
    const path = join(dir, 'bad.csv');
    writeFileSync(path, 'date,symbol,prevClose,st\n2026-11-23,600000.SH,10,0\n2026-11-23,600000.SH,-1,0\n');
    expect(() => readReferenceFile(path)).toThrow(`E_SCHEMA: ${path}:3: reference record prevClose`);
    writeFileSync(path, 'date,symbol,prevClose,st\n2026-11-23,600000.XX,10,0\n');
    expect(() => readReferenceFile(path)).toThrow(/E_SCHEMA: .*:2: reference record symbol/);
    expect(() => decodeReferenceMessage(Buffer.from('{'), 'application/json', 'md.reference/0@7')).toThrow(/E_MALFORMED: md.reference\/0@7/);
    expect(() => decodeReferenceMessage(Buffer.from('{}'), 'text/plain', 'md.reference/0@8')).toThrow(/E_UNKNOWN_CONTENT_TYPE/);
    expect(() => decodeReferenceMessage(Buffer.from(JSON.stringify({ ...records[2], lowerLimit: 50 })), undefined, 'x')).toThrow(/lowerLimit must be below upperLimit/);
  });
  it('limits: given prices override the board rule; ST is ±5% of the reference price', () => {
    expect(referenceLimits(records[2], 'star')).toEqual({ up: 45, down: 15 });
    expect(referenceLimits(rec({ date: D1, symbol: '600001.SH', prevClose: 4.2, st: true }), 'main')).toEqual({ up: 4.41, down: 3.99 });
    expect(referenceLimits(rec({ date: D1, symbol: '600000.SH', prevClose: 9.8 }), 'main')).toEqual({ up: 10.78, down: 8.82 });
  });
});

interface BarRow {
  symbol: string;
  barEnd: number;
  close: number | null;
  limit: number;
}

/** Runs `factorstream features` on tick records (JSON lines), with or without reference data. */
function features(name: string, ticks: object[], reference: ReferenceRecord[] | undefined): { bars: BarRow[]; rejects: { code: string; detail: string; symbol: string }[]; summary: { noReference: number; noReferenceExamples: string[] } } {
  const dir = mkdtempSync(join(tmpdir(), `fs-ref-${name}-`));
  writeFileSync(join(dir, 'ticks.jsonl'), ticks.map((t) => JSON.stringify(t)).join('\n') + '\n');
  const args = ['features', '--input', join(dir, 'ticks.jsonl'), '--freq', '10m', '--out', join(dir, 'out')];
  if (reference !== undefined) {
    writeReferenceFile(join(dir, 'reference.csv'), reference);
    args.push('--reference', join(dir, 'reference.csv'));
  }
  const r = cli(args);
  expect(r.code, r.stderr).toBe(0);
  const bars = [...A.tableFromIPC(readFileSync(join(dir, 'out', 'bars-10m.arrow')))].map((b) => ({ symbol: String(b.symbol), barEnd: Number(b.barEnd), close: b.close as number | null, limit: Number(b.limit) }));
  const rejects = readFileSync(join(dir, 'out', 'rejects.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { code: string; detail: string; symbol: string });
  return { bars, rejects, summary: JSON.parse(readFileSync(join(dir, 'out', 'summary.json'), 'utf8')) as { noReference: number; noReferenceExamples: string[] } };
}

const trade = (symbol: string, local: string, price: number, volume = 100): object => ({ symbol, ts: sh(local), price, volume, amount: Math.round(price * volume * 100) / 100 });
const limitAt = (bars: BarRow[], symbol: string, local: string): number => {
  const b = bars.find((x) => x.symbol === symbol && x.barEnd === sh(local));
  if (b === undefined) throw new Error(`no bar of ${symbol} at ${local}`);
  return b.limit;
};

describe('reference data in the aggregation (factorstream features --reference)', () => {
  // Day 1: every symbol at 10.00; 600001.SH is ST. Day 2: 600004.SH goes ex-dividend (reference
  // price 9.80 after a close of 10.00), 600001.SH has exchange-given limits, 600000.SH has no record.
  const reference = [
    rec({ date: D1, symbol: '600000.SH', prevClose: 10 }),
    rec({ date: D1, symbol: '600001.SH', prevClose: 10, st: true }),
    rec({ date: D1, symbol: '600004.SH', prevClose: 10 }),
    rec({ date: D2, symbol: '600001.SH', prevClose: 10.5, st: true, upperLimit: 10.8, lowerLimit: 9.9 }),
    rec({ date: D2, symbol: '600004.SH', prevClose: 9.8 }),
  ];
  const ticks = [
    trade('600000.SH', `${D1}T09:31:00`, 10),
    trade('600001.SH', `${D1}T09:31:00`, 10),
    trade('600004.SH', `${D1}T09:31:00`, 10),
    trade('600001.SH', `${D1}T09:45:00`, 10.5), // ST: the upper limit is 10.50
    trade('600000.SH', `${D1}T09:45:00`, 10.5), // not ST: 10.50 is inside ±10%
    trade('600001.SH', `${D1}T09:52:00`, 10.6), // ST: above its band
    trade('600000.SH', `${D1}T09:53:00`, 100), // a tenfold unit error
    trade('600000.SH', `${D1}T14:59:00`, 11), // closes the day at its upper limit
    trade('600004.SH', `${D1}T14:59:00`, 10),
    trade('600004.SH', `${D2}T09:31:00`, 9.5),
    trade('600004.SH', `${D2}T09:45:00`, 8.82), // ex-dividend: the lower limit is 9.80 x 0.9 = 8.82, not 9.00
    trade('600001.SH', `${D2}T09:45:00`, 10.8), // the exchange's upper limit, not the rule's 11.03
    trade('600000.SH', `${D2}T09:45:00`, 12.1), // no record: the rule on its last price 11.00
  ];

  it('flags ST stocks at ±5%, ex-dividend days from the reference price, given limit prices, and rejects prints outside the band', () => {
    const { bars, rejects, summary } = features('with', ticks, reference);
    expect(limitAt(bars, '600001.SH', `${D1}T09:50:00`)).toBe(1);
    expect(limitAt(bars, '600000.SH', `${D1}T09:50:00`)).toBe(0);
    expect(limitAt(bars, '600000.SH', `${D1}T15:00:00`)).toBe(1);
    expect(limitAt(bars, '600004.SH', `${D2}T09:50:00`)).toBe(-1);
    expect(limitAt(bars, '600001.SH', `${D2}T09:50:00`)).toBe(1);
    expect(limitAt(bars, '600000.SH', `${D2}T09:50:00`)).toBe(1);
    expect(rejects.map((r) => [r.code, r.symbol])).toEqual([
      ['E_PRICE_LIMIT', '600001.SH'],
      ['E_PRICE_LIMIT', '600000.SH'],
    ]);
    expect(rejects[0].detail).toBe("trade 10.6 at 2026-11-23T09:52:00+08:00 is outside the day's band 9.5 - 10.5 (the reference data)");
    expect(rejects[1].detail).toBe("trade 100 at 2026-11-23T09:53:00+08:00 is outside the day's band 9 - 11 (the reference data)");
    // 600000.SH trades on day 2 without a record: counted, limits from its last price.
    expect(summary.noReference).toBe(1);
    expect(summary.noReferenceExamples).toEqual([`${D2} 600000.SH`]);
  });

  it('without reference data the same day is wrong in the ways reference data fixes', () => {
    const { bars, rejects, summary } = features('without', ticks, undefined);
    // ST unknown: 10.50 is not a limit (nor is 10.60 outside the band).
    expect(limitAt(bars, '600001.SH', `${D1}T09:50:00`)).toBe(0);
    // The first day has no previous close: no band (only the fixed bounds: the tenfold print at
    // 100.00 passes), no limit flag.
    expect(limitAt(bars, '600000.SH', `${D1}T15:00:00`)).toBe(0);
    // Ex-dividend unknown: 8.82 is below the rule's 9.00 on the last close, but without a record the lower
    // side rejects only under a third of it (ex-rights days): kept, and flagged at the limit by the rule.
    expect(limitAt(bars, '600004.SH', `${D2}T09:50:00`)).toBe(-1);
    expect(rejects).toEqual([]);
    expect(summary.noReference).toBe(0);
  });

  it('without a record the upper side still catches a tenfold print, the lower only a gross one', () => {
    const { rejects } = features('gross', [trade('600000.SH', `${D1}T14:59:00`, 10), trade('600000.SH', `${D2}T09:31:00`, 100), trade('600000.SH', `${D2}T09:32:00`, 2.9), trade('600000.SH', `${D2}T09:33:00`, 3.1)], undefined);
    expect(rejects.map((r) => r.detail)).toEqual([
      "trade 100 at 2026-11-24T09:31:00+08:00 is outside the day's band 3 - 11 (the board rule on the last price 10)",
      "trade 2.9 at 2026-11-24T09:32:00+08:00 is outside the day's band 3 - 11 (the board rule on the last price 10)",
    ]);
  });

  it('a reference update during the day applies from its arrival: the ST flag narrows the band of later bars', () => {
    const symbols = new SymbolTable();
    const book = new ReferenceBook();
    book.put(rec({ date: D1, symbol: '600000.SH', prevClose: 10 }));
    const rejects: string[] = [];
    const limits: [number, number][] = [];
    const engine = new FeatureEngine({ calendar, symbols, freqs: ['10m'], reference: book, onReject: (r) => rejects.push(`${r.code} ${r.detail}`) });
    engine.onBarClose((e) => limits.push([e.bars.barEnd, e.bars.limit[0]]));
    const ctx = engine.context('test');
    const batch = new TickBatch(4);
    const send = (t: object): void => {
      batch.clear();
      if (decodeTickJson(JSON.stringify(t), 0, batch, ctx)) engine.ingestTicks(batch, 0, 1, 'test');
    };
    send(trade('600000.SH', `${D1}T09:31:00`, 10));
    send(trade('600000.SH', `${D1}T09:45:00`, 10.5));
    engine.advanceWatermark(sh(`${D1}T09:55:00`));
    expect(engine.putReference(rec({ date: D1, symbol: '600000.SH', prevClose: 10, st: true }))).toBe(true);
    expect(engine.putReference(rec({ date: D1, symbol: '600000.SH', prevClose: 10, st: true }))).toBe(false);
    send(trade('600000.SH', `${D1}T10:05:00`, 10.5));
    send(trade('600000.SH', `${D1}T10:06:00`, 10.6));
    send(trade('600000.SH', `${D1}T10:15:00`, 10.2));
    engine.advanceWatermark(sh(`${D1}T10:20:00`));
    expect(limits.filter(([, l]) => l !== 0).map(([t]) => t)).toEqual([sh(`${D1}T10:10:00`)]);
    expect(limits.find(([t]) => t === sh(`${D1}T09:50:00`))?.[1]).toBe(0);
    expect(rejects).toEqual(["E_PRICE_LIMIT trade 10.6 at 2026-11-23T10:06:00+08:00 is outside the day's band 9.5 - 10.5 (the reference data)"]);
    // The book and the day's references are in the snapshot: a restored engine keeps the ST band.
    const restored = new FeatureEngine({ calendar, symbols: new SymbolTable(), freqs: ['10m'], reference: new ReferenceBook(), onReject: (r) => rejects.push(`${r.code} ${r.detail}`) });
    restored.restore(structuredClone(engine.snapshot()));
    expect(restored.reference?.get(isoToDay(D1), '600000.SH')?.st).toBe(true);
    const again = restored.context('test');
    batch.clear();
    if (decodeTickJson(JSON.stringify(trade('600000.SH', `${D1}T10:25:00`, 10.7)), 0, batch, again)) restored.ingestTicks(batch, 0, 1, 'test');
    expect(rejects.at(-1)).toMatch(/^E_PRICE_LIMIT trade 10.7 /);
  });
});

describe("a model's cross-section from the day's reference data", () => {
  const day = isoToDay(D1);
  const names = ['600000.SH', '600001.SH', '600004.SH', '600006.SH', '600007.SH'];
  const book = new ReferenceBook();
  book.put(rec({ date: D1, symbol: names[0], prevClose: 10, industry: 'Banks', floatMarketValue: 1e11, indexes: { CSI500: 0.2 } }));
  book.put(rec({ date: D1, symbol: names[1], prevClose: 10, st: true, industry: 'Banks', floatMarketValue: 2e10, indexes: { CSI500: 0.1 } }));
  book.put(rec({ date: D1, symbol: names[2], prevClose: 10, suspended: true, industry: 'Energy', floatMarketValue: 5e10, indexes: { CSI500: 0.3 } }));
  book.put(rec({ date: D1, symbol: names[3], prevClose: 10, industry: 'Energy', floatMarketValue: 8e10 }));
  // names[4] has no record.
  const inputs = { reference: book, exposures: referenceExposures(book) };
  const meta = checkedMeta('models/demo-10m');
  const eligible = new Uint8Array(names.length);
  it('universe filters: index member, not ST, not suspended; a symbol without a record is out', () => {
    expect(eligibleSymbols({ ...meta, universe: { index: 'CSI500', excludeST: true, excludeSuspended: true } }, inputs, day, names, names.length, eligible)).toBe(1);
    expect(Array.from(eligible)).toEqual([1, 0, 0, 0, 0]);
    expect(eligibleSymbols({ ...meta, universe: { index: 'CSI500', excludeST: false, excludeSuspended: false } }, inputs, day, names, names.length, eligible)).toBe(3);
    expect(eligibleSymbols({ ...meta, universe: { excludeST: false, excludeSuspended: false } }, inputs, day, names, names.length, eligible)).toBe(4);
    expect(eligibleSymbols(meta, inputs, day, names, names.length, eligible)).toBe(5);
  });
  it('the orthogonal layer takes industry and ln float market value, and leaves out symbols without them', () => {
    expect(eligibleSymbols({ ...meta, orthogonal: true }, inputs, day, names, names.length, eligible)).toBe(4);
    const ids = Int32Array.from([0, 1, 2, 3]);
    const scores = [0.3, -0.1, 0.7, 0.2];
    // The plain regression: industry dummies and standardised log size, by hand.
    const expected = residualize(exposureProjection(Int32Array.from([0, 0, 1, 1]), Float64Array.from([1e11, 2e10, 5e10, 8e10], Math.log)), scores);
    const got = residualize(orthogonalProjection(inputs.exposures, day, names, ids), scores);
    for (let i = 0; i < 4; i++) expect(got[i]).toBeCloseTo(expected[i], 12);
  });
});
