/**
 * Writes Arrow tables to a file as an Arrow IPC stream, CSV or JSONL, one table (record
 * batch) at a time, so that long runs stream to disk. Nulls are empty CSV fields and
 * absent JSON keys; timestamps are epoch milliseconds in CSV and JSON; CSV and JSONL can
 * be read back by FileSource.
 */
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import { finished } from 'node:stream/promises';
import * as A from 'apache-arrow';
import type { FileFormat } from './file-source.js';

export const FILE_EXTENSIONS: Record<FileFormat, string> = { arrow: '.arrow', csv: '.csv', jsonl: '.jsonl' };

/** A column's value at row i as a plain JS value (numbers for timestamps and int64). */
function cell(vector: A.Vector, type: A.DataType, i: number): unknown {
  const v: unknown = vector.get(i);
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return Number(v);
  if (A.DataType.isTimestamp(type) && v instanceof Date) return v.getTime();
  return v;
}

function csvField(v: unknown): string {
  if (v === null) return '';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : '';
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

export class TableWriter {
  readonly path: string;
  readonly format: FileFormat;
  private readonly out: WriteStream;
  private arrow: A.RecordBatchStreamWriter | undefined;
  private headerWritten = false;
  rows = 0;

  constructor(path: string, format: FileFormat) {
    this.path = path;
    this.format = format;
    mkdirSync(dirname(path), { recursive: true });
    this.out = createWriteStream(path);
  }

  write(table: A.Table): void {
    if (table.numRows === 0) return;
    this.rows += table.numRows;
    if (this.format === 'arrow') {
      if (this.arrow === undefined) {
        this.arrow = new A.RecordBatchStreamWriter();
        this.arrow.toNodeStream().pipe(this.out);
      }
      // write(Table) would finish the stream; batches keep it open.
      for (const batch of table.batches) this.arrow.write(batch);
      return;
    }
    const fields = table.schema.fields;
    const columns = fields.map((f) => table.getChild(f.name) as A.Vector);
    const parts: string[] = [];
    if (this.format === 'csv') {
      if (!this.headerWritten) {
        parts.push(fields.map((f) => f.name).join(','));
        this.headerWritten = true;
      }
      for (let i = 0; i < table.numRows; i++) parts.push(columns.map((c, k) => csvField(cell(c, fields[k].type, i))).join(','));
    } else {
      for (let i = 0; i < table.numRows; i++) {
        const o: Record<string, unknown> = {};
        columns.forEach((c, k) => {
          const v = cell(c, fields[k].type, i);
          if (v !== null && !(typeof v === 'number' && !Number.isFinite(v))) o[fields[k].name] = v;
        });
        parts.push(JSON.stringify(o));
      }
    }
    this.out.write(parts.join('\n') + '\n');
  }

  async close(): Promise<void> {
    if (this.arrow !== undefined) {
      this.arrow.finish();
      await finished(this.out);
      return;
    }
    this.out.end();
    await finished(this.out);
  }
}
