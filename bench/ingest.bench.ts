/**
 * Ingest throughput: decode -> validate -> aggregate -> feature update (bar closes at
 * 10 and 30 minutes included) for one simulated day of N symbols, on one process.
 * JSON: one tick per message, each a Buffer slice the way a Kafka fetch hands them over,
 * decoded by the codec's byte path (fast scan, JSON.parse for anything unusual). Arrow: messages of `--arrow-batch` ticks.
 * The same messages are also only decoded, to show what decoding alone costs.
 */
import * as A from 'apache-arrow';
import { FeatureEngine } from '../src/features/engine.js';
import { ArrowTickDecoder, ticksToTable } from '../src/ingest/arrow-codec.js';
import type { DecodeContext } from '../src/ingest/decode.js';
import { copyTickRow, SymbolTable, TickBatch, tickRecordAt } from '../src/ingest/events.js';
import { encodeTickJson } from '../src/ingest/json-codec.js';
import { decodeTickJsonBytes } from '../src/ingest/json-scan.js';
import { MarketSimulator } from '../src/ingest/simulator/market.js';
import { ReferenceBook } from '../src/market/reference.js';
import { TradingCalendar } from '../src/market/calendar.js';
import { fmt, now, type Benchmark, type ResultRow, option } from './harness.js';


export const ingestBenchmark: Benchmark = {
  name: 'ingest',
  description: 'Ticks/s through decode -> validate -> aggregate -> feature update (10m + 30m bar closes), one simulated day, one process.',
  async run(args) {
    const symbolsN = option(args, 'symbols', 5000);
    const batchArg = args.indexOf('--arrow-batch');
    const arrowBatches = (batchArg >= 0 ? args[batchArg + 1] : '1000,5000').split(',').map(Number);
    const calendar = TradingCalendar.load();
    const sim = new MarketSimulator({ symbols: symbolsN, days: 1, seed: 42 }, calendar);
    process.stderr.write(`ingest: simulating ${symbolsN} symbols x 1 day\n`);
    const all = new TickBatch(1 << 20);
    for (const m of sim.generateDay(0)) for (let i = 0; i < m.ticks.length; i++) copyTickRow(m.ticks, i, all);
    const n = all.length;
    // The day's reference data, as the daemon holds it: limits from it, one lookup per symbol and day.
    const book = new ReferenceBook();
    for (const r of sim.reference(0)) book.put(r);
    let snapshots = 0;
    for (let i = 0; i < n; i++) snapshots += all.kind[i];

    process.stderr.write(`ingest: encoding ${fmt(n)} ticks\n`);
    const arrowMessagesBy = new Map<number, Uint8Array[]>();
    for (const size of arrowBatches) {
      const messages: Uint8Array[] = [];
      for (let i = 0; i < n; i += size) messages.push(A.tableToIPC(ticksToTable(all, sim.symbols, i, Math.min(n, i + size)), 'stream'));
      arrowMessagesBy.set(size, messages);
    }
    const jsonParts: string[] = [];
    for (let i = 0; i < n; i++) jsonParts.push(encodeTickJson(tickRecordAt(all, sim.symbols, i)));
    const offsets = new Int32Array(n + 1);
    for (let i = 0; i < n; i++) offsets[i + 1] = offsets[i] + Buffer.byteLength(jsonParts[i]);
    // One Buffer holding every message back to back (a joined string would exceed V8's limit).
    const jsonBytes = Buffer.allocUnsafe(offsets[n]);
    for (let i = 0; i < n; i++) jsonBytes.write(jsonParts[i], offsets[i]);
    jsonParts.length = 0;
    const run = (codec: 'json' | 'arrow', pipeline: boolean, arrowMessages: Uint8Array[] = []): { seconds: number; rejects: number; closes: number } => {
      const symbols = new SymbolTable(sim.symbols.names);
      let rejects = 0;
      let closes = 0;
      const engine = new FeatureEngine({ calendar, symbols, freqs: ['10m', '30m'], allowedLatenessMs: 2000, sequenceLength: { '10m': 120, '30m': 40 }, reference: book, onReject: () => rejects++ });
      engine.onBarClose(() => closes++);
      const ctx: DecodeContext = engine.context('md.ticks');
      const batch = new TickBatch(1 << 16);
      const decoder = new ArrowTickDecoder();
      const t0 = now();
      if (codec === 'arrow') {
        for (let k = 0; k < arrowMessages.length; k++) {
          batch.clear();
          decoder.decodeMessage(arrowMessages[k], k, batch, ctx);
          if (pipeline) engine.ingestTicks(batch, 0, batch.length, 'md.ticks');
        }
      } else {
        const chunk = 1000;
        for (let k = 0; k < n; k += chunk) {
          batch.clear();
          const end = Math.min(n, k + chunk);
          for (let i = k; i < end; i++) decodeTickJsonBytes(jsonBytes, offsets[i], offsets[i + 1], i, batch, ctx);
          if (pipeline) engine.ingestTicks(batch, 0, batch.length, 'md.ticks');
        }
      }
      if (pipeline) engine.flush();
      return { seconds: (now() - t0) / 1000, rejects, closes };
    };

    const rows: ResultRow[] = [];
    const figures: Record<string, number> = {};
    const only = args.includes('--codec') ? args[args.indexOf('--codec') + 1] : undefined;
    const cases: { codec: 'arrow' | 'json'; size: number }[] = [...arrowBatches.map((size) => ({ codec: 'arrow' as const, size })), { codec: 'json', size: 1 }];
    for (const { codec, size } of cases) {
      if (only !== undefined && only !== codec) continue;
      const messages = arrowMessagesBy.get(size) ?? [];
      // One warm-up pass so that the JIT has seen the code, then the measured passes.
      run(codec, true, messages);
      const decodeOnly = run(codec, false, messages);
      const full = run(codec, true, messages);
      const full2 = run(codec, true, messages);
      const best = Math.min(full.seconds, full2.seconds);
      figures[codec] = Math.max(figures[codec] ?? 0, n / best);
      const bytes = codec === 'arrow' ? messages.reduce((a, m) => a + m.length, 0) : jsonBytes.length;
      rows.push({
        codec: codec === 'arrow' ? `Arrow IPC (${fmt(size)} ticks/message)` : 'JSON (1 tick/message)',
        ticks: fmt(n),
        'bytes/tick': fmt(bytes / n, 1),
        'decode only, ticks/s': fmt(n / decodeOnly.seconds),
        'full path, ticks/s': fmt(n / best),
        'full path, s': fmt(best, 2),
        'bar closes': full.closes,
        rejects: full.rejects,
      });
    }
    const notes = [
      `Universe ${fmt(symbolsN)} symbols, ${fmt(n)} ticks (${fmt(snapshots)} Level-1 snapshots, the rest trades) in one simulated day; 24 + 8 bar closes with features, robust z-scores and T=120/40 sequence pushes included in the full path.`,
      ...(figures.arrow === undefined ? [] : [`Target Arrow >= 1,000,000 ticks/s: ${figures.arrow >= 1e6 ? 'met' : 'missed'} (best ${fmt(figures.arrow)}). Arrow cost per tick falls with message size: each message carries its own symbol dictionary (up to one entry per symbol), so small messages pay for dictionary decoding and mapping; a Kafka message of 5,000 ticks is about 0.5 MB, under the 1 MB default limit.`]),
      ...(figures.json === undefined ? [] : [`Target JSON >= 300,000 ticks/s: ${figures.json >= 3e5 ? 'met' : 'missed'} (${fmt(figures.json)}).`]),
      "Best of two measured passes after a warm-up pass; each pass builds a fresh engine. JSON messages take the codec's byte scanner (no string or object per message); JSON.parse alone costs about 2 us per 170-byte tick here, a ceiling near 500,000 ticks/s before any other work.",
    ];
    return { rows, notes };
  },
};
