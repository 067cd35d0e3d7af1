/**
 * The JSON fast path must accept, reject and decode exactly as the JSON.parse path does.
 * Differential test over generated messages: canonical ticks, every field perturbed,
 * odd number forms, whitespace, escapes, non-ASCII, nesting and broken syntax.
 */
import { describe, expect, it } from 'vitest';
import { SymbolTable, TickBatch, tickRecordAt } from '../src/ingest/events.js';
import { decodeTickJson, TickFields } from '../src/ingest/json-codec.js';
import { decodeTickJsonBytes, scanTickJson } from '../src/ingest/json-scan.js';
import { Rng } from '../src/ingest/simulator/rng.js';
import { collectingContext, sh } from './helpers.js';

const T0 = sh('2026-11-23T10:00:01');

function viaParse(text: string): unknown {
  const ctx = collectingContext(new SymbolTable(['600000.SH']));
  const out = new TickBatch(1);
  const ok = decodeTickJson(text, 3, out, ctx);
  return { ok, row: ok ? tickRecordAt(out, ctx.symbols, 0) : undefined, slot: ok ? out.slot[0] : -1, rejects: ctx.rejects };
}

function viaBytes(text: string): { result: unknown; fast: boolean } {
  const symbols = new SymbolTable(['600000.SH']);
  const ctx = collectingContext(symbols);
  const bytes = new TextEncoder().encode(text);
  const fast = scanTickJson(bytes, 0, bytes.length, new TickFields(), collectingContext(new SymbolTable(['600000.SH'])));
  const out = new TickBatch(1);
  const ok = decodeTickJsonBytes(bytes, 0, bytes.length, 3, out, ctx);
  return { result: { ok, row: ok ? tickRecordAt(out, symbols, 0) : undefined, slot: ok ? out.slot[0] : -1, rejects: ctx.rejects }, fast };
}

const NUMBERS = ['0', '-0', '1', '10.01', '0.05', '1e3', '1E-2', '2.5e+1', '123456789012345', '1234567890123456789', '1e400', '-1', '01', '1.', '.5', '+1', '1e', '- 1', '9007199254740993', '3.141592653589793', '0.1', '100000000000000000000000'];
const VALUES = [...NUMBERS, 'null', 'true', 'false', '"x"', '"10.5"', '{}', '[]', '"\\u0042"', '"B"', '"S"', '"N"', '"trade"', '"snapshot"', '"600000.SH"', '"600001.SH"', '"900000.SH"', '"60000.SH"', '"6000001.SH"', '"２"'];
const FIELDS = ['symbol', 'ts', 'kind', 'price', 'volume', 'amount', 'side', 'seq', 'cumVolume', 'cumAmount', 'bid1', 'ask1', 'bidVol1', 'askVol1', 'extra'];

function canonical(rng: Rng): Record<string, string> {
  const snap = rng.chance(0.3);
  const f: Record<string, string> = { symbol: '"600000.SH"', ts: String(T0 + rng.int(1000)), price: (10 + rng.int(500) / 100).toFixed(2) };
  if (snap) {
    f.cumVolume = String(rng.int(1e6));
    f.cumAmount = String(rng.int(1e7) / 10);
  } else {
    f.volume = String(100 * (1 + rng.int(50)));
    if (rng.chance(0.7)) f.amount = String(rng.int(1e6) / 100);
    if (rng.chance(0.8)) f.side = ['"B"', '"S"', '"N"'][rng.int(3)];
    if (rng.chance(0.3)) f.kind = '"trade"';
  }
  if (rng.chance(0.7)) f.seq = String(rng.int(1e7));
  if (rng.chance(0.6)) {
    f.bid1 = '9.99';
    f.ask1 = '10.01';
    f.bidVol1 = String(rng.int(1e5));
    f.askVol1 = String(rng.int(1e5));
  }
  return f;
}

function render(f: Record<string, string>, rng: Rng, spaced: boolean): string {
  const ws = (): string => (spaced && rng.chance(0.3) ? [' ', '\n', '\t', '  '][rng.int(4)] : '');
  return `${ws()}{${Object.entries(f).map(([k, v]) => `${ws()}"${k}"${ws()}:${ws()}${v}${ws()}`).join(',')}}${ws()}`;
}

describe('JSON fast path equals the JSON.parse path', () => {
  it('on canonical messages, which it handles itself', () => {
    const rng = new Rng(1);
    let fast = 0;
    for (let k = 0; k < 3000; k++) {
      const text = render(canonical(rng), rng, k % 2 === 0);
      const b = viaBytes(text);
      if (b.fast) fast++;
      expect(b.result, text).toEqual(viaParse(text));
    }
    expect(fast).toBe(3000);
  });

  it('on perturbed messages (every field, odd values, broken syntax)', () => {
    const rng = new Rng(2);
    let declined = 0;
    for (let k = 0; k < 20_000; k++) {
      const f = canonical(rng);
      const edits = 1 + rng.int(3);
      for (let e = 0; e < edits; e++) {
        const field = FIELDS[rng.int(FIELDS.length)];
        if (rng.chance(0.25)) delete f[field];
        else f[field] = VALUES[rng.int(VALUES.length)];
      }
      let text = render(f, rng, rng.chance(0.5));
      const r = rng.next();
      if (r < 0.03) text = text.replace('}', ',}');
      else if (r < 0.06) text = text.slice(0, rng.int(text.length));
      else if (r < 0.08) text = text.replace('"price"', '"price":1,"price"');
      else if (r < 0.1) text = `[${text}]`;
      else if (r < 0.12) text = text.replace(':', '::');
      else if (r < 0.13) text = `\uFEFF${text}`;
      const b = viaBytes(text);
      if (!b.fast) declined++;
      expect(b.result, text).toEqual(viaParse(text));
    }
    expect(declined).toBeGreaterThan(1000);
  });
});
