/**
 * File sources: CSV, JSONL and Arrow IPC files of ticks or 1-minute bars, decoded through
 * the same codecs as Kafka messages. Files are read as streams in chunks; each chunk is
 * decoded into the source's own batches. Several files are merged by event time
 * (`mergeByTime`), so ticks and bars for different symbols may come in separate files.
 */
import { createReadStream, readdirSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { extname, join } from 'node:path';
import * as A from 'apache-arrow';
import { parse as parseCsv } from 'csv-parse';
import { ArrowBarDecoder, ArrowTickDecoder } from './arrow-codec.js';
import type { DecodeContext } from './decode.js';
import { BarBatch, TickBatch } from './events.js';
import { decodeBarObject, decodeTickObject, parseObject, type Json } from './json-codec.js';

export type FileFormat = 'csv' | 'jsonl' | 'arrow';
export type EventKind = 'ticks' | 'bars';

export function formatOfPath(path: string): FileFormat {
  const ext = extname(path).toLowerCase();
  if (ext === '.csv') return 'csv';
  if (ext === '.jsonl' || ext === '.ndjson' || ext === '.json') return 'jsonl';
  if (ext === '.arrow' || ext === '.arrows' || ext === '.ipc' || ext === '.feather') return 'arrow';
  throw new RangeError(`cannot tell the format of ${path} (expected .csv, .jsonl or .arrow)`);
}

/** Fields that CSV keeps as text; every other non-empty field is read as a number when it is one. */
const TEXT_FIELDS = new Set(['symbol', 'kind', 'side']);

function csvRecord(header: string[], row: string[]): Json {
  const o: Json = {};
  for (let c = 0; c < header.length; c++) {
    const name = header[c];
    const text = row[c];
    if (text === undefined || text === '') continue;
    if (TEXT_FIELDS.has(name)) o[name] = text;
    else {
      const x = Number(text);
      o[name] = Number.isNaN(x) ? text : x;
    }
  }
  return o;
}

/** A decoded chunk of one source: which batch got rows. */
export interface SourceChunk {
  kind: EventKind;
}

const CHUNK_ROWS = 65_536;

/**
 * One input file, decoded chunk by chunk into `ticks` or `bars`. `origin` of each row is
 * its line number (CSV: data row number, 1-based after the header; JSONL: line number)
 * or its row number (Arrow, 0-based).
 */
export class FileSource {
  readonly path: string;
  readonly format: FileFormat;
  readonly ticks = new TickBatch(CHUNK_ROWS);
  readonly bars = new BarBatch(1024);
  kind: EventKind | undefined;

  constructor(path: string) {
    this.path = path;
    this.format = formatOfPath(path);
  }

  /** Yields after each decoded chunk; the batches hold that chunk's valid rows until the next call. */
  async *chunks(ctx: DecodeContext): AsyncGenerator<EventKind> {
    if (this.format === 'arrow') yield* this.arrowChunks(ctx);
    else if (this.format === 'jsonl') yield* this.lineChunks(ctx);
    else yield* this.csvChunks(ctx);
  }

  private decodeRecord(o: Json, origin: number, ctx: DecodeContext): void {
    if (this.kind === undefined) this.kind = 'open' in o ? 'bars' : 'ticks';
    if (this.kind === 'bars') decodeBarObject(o, origin, this.bars, ctx);
    else decodeTickObject(o, origin, this.ticks, ctx);
  }

  private pending(): number {
    return this.kind === 'bars' ? this.bars.length : this.ticks.length;
  }

  private reset(): void {
    this.ticks.clear();
    this.bars.clear();
  }

  private async *lineChunks(ctx: DecodeContext): AsyncGenerator<EventKind> {
    const lines = createInterface({ input: createReadStream(this.path), crlfDelay: Infinity });
    let lineNo = 0;
    this.reset();
    for await (const line of lines) {
      lineNo++;
      if (line.trim() === '') continue;
      const o = parseObject(line, lineNo, ctx);
      if (o !== undefined) this.decodeRecord(o, lineNo, ctx);
      if (this.pending() >= CHUNK_ROWS) {
        yield this.kind as EventKind;
        this.reset();
      }
    }
    if (this.pending() > 0) yield this.kind as EventKind;
  }

  private async *csvChunks(ctx: DecodeContext): AsyncGenerator<EventKind> {
    const parser = createReadStream(this.path).pipe(parseCsv({ relax_column_count: true, skip_empty_lines: true, trim: true }));
    let header: string[] | undefined;
    let rowNo = 0;
    this.reset();
    for await (const row of parser as AsyncIterable<string[]>) {
      if (header === undefined) {
        header = row;
        continue;
      }
      rowNo++;
      if (row.length !== header.length) {
        ctx.reject('E_MALFORMED', `CSV row has ${row.length} fields, the header ${header.length}`, rowNo, -1, undefined);
        continue;
      }
      this.decodeRecord(csvRecord(header, row), rowNo, ctx);
      if (this.pending() >= CHUNK_ROWS) {
        yield this.kind as EventKind;
        this.reset();
      }
    }
    if (this.pending() > 0) yield this.kind as EventKind;
  }

  private async *arrowChunks(ctx: DecodeContext): AsyncGenerator<EventKind> {
    const handle = await open(this.path);
    let reader: A.RecordBatchReader;
    try {
      reader = await A.RecordBatchReader.from(handle);
    } catch (err) {
      await handle.close();
      throw new Error(`${this.path}: not an Arrow IPC file or stream: ${(err as Error).message}`, { cause: err });
    }
    const tickDecoder = new ArrowTickDecoder();
    const barDecoder = new ArrowBarDecoder();
    let rowBase = 0;
    try {
      for await (const rb of reader) {
        if (this.kind === undefined) {
          this.kind = rb.schema.fields.some((f) => f.name === 'open') ? 'bars' : 'ticks';
          const problem = this.kind === 'bars' ? barDecoder.schemaProblem(rb.schema) : tickDecoder.schemaProblem(rb.schema);
          if (problem !== undefined) throw new Error(`${this.path}: ${problem}`);
        }
        this.reset();
        if (this.kind === 'bars') barDecoder.decodeBatch(rb, -1, rowBase, this.bars, ctx);
        else tickDecoder.decodeBatch(rb, -1, rowBase, this.ticks, ctx);
        rowBase += rb.numRows;
        yield this.kind;
      }
    } finally {
      await handle.close();
    }
  }
}

/** What a merged stream hands over: one row of one source's current batch. */
export interface EventSink {
  ticks(batch: TickBatch, from: number, to: number, source: FileSource): void | Promise<void>;
  bars(batch: BarBatch, from: number, to: number, source: FileSource): void | Promise<void>;
}

interface Cursor {
  source: FileSource;
  it: AsyncGenerator<EventKind>;
  kind: EventKind | undefined;
  row: number;
  done: boolean;
}

function rowTime(c: Cursor): number {
  // A bar is ordered by its last covered instant, as the aggregator does.
  return c.kind === 'bars' ? c.source.bars.ts[c.row] - 1 : c.source.ticks.ts[c.row];
}

function rowsIn(c: Cursor): number {
  return c.kind === 'bars' ? c.source.bars.length : c.source.ticks.length;
}

/**
 * Merges time-ordered sources by event time and hands each row to `sink`, runs of rows
 * from one source at a time. Each source's own order is kept (a source that goes back in
 * time is not re-sorted: the aggregator judges such rows late, as it would live).
 */
export async function mergeByTime(
  sources: FileSource[],
  contextOf: (source: FileSource) => DecodeContext,
  sink: EventSink,
): Promise<void> {
  const cursors: Cursor[] = sources.map((source) => ({ source, it: source.chunks(contextOf(source)), kind: undefined, row: 0, done: false }));
  const advance = async (c: Cursor): Promise<void> => {
    while (true) {
      const next = await c.it.next();
      if (next.done === true) {
        c.done = true;
        return;
      }
      c.kind = next.value;
      c.row = 0;
      if (rowsIn(c) > 0) return;
    }
  };
  for (const c of cursors) await advance(c);
  while (true) {
    let best: Cursor | undefined;
    let second = Infinity;
    for (const c of cursors) {
      if (c.done) continue;
      const t = rowTime(c);
      if (best === undefined || t < rowTime(best)) {
        if (best !== undefined) second = Math.min(second, rowTime(best));
        best = c;
      } else second = Math.min(second, t);
    }
    if (best === undefined) return;
    // Hand over the run of rows of `best` up to the next source's time.
    const n = rowsIn(best);
    let end = best.row + 1;
    while (end < n && (best.kind === 'bars' ? best.source.bars.ts[end] - 1 : best.source.ticks.ts[end]) <= second) end++;
    // A sink may return a promise (a producer applying back-pressure): wait for it.
    if (best.kind === 'bars') await sink.bars(best.source.bars, best.row, end, best.source);
    else await sink.ticks(best.source.ticks, best.row, end, best.source);
    best.row = end;
    if (best.row >= n) await advance(best);
  }
}

/** Input paths: files as given, folders expanded to their data files (sorted by name). */
export function expandInputs(paths: string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    if (statSync(p).isDirectory()) {
      const files = readdirSync(p)
        .filter((f) => /\.(csv|jsonl|ndjson|arrow|arrows|ipc|feather)$/i.test(f))
        .sort();
      if (files.length === 0) throw new Error(`${p}: no .csv, .jsonl or .arrow files in this folder`);
      for (const f of files) out.push(join(p, f));
    } else {
      formatOfPath(p);
      out.push(p);
    }
  }
  return out;
}
