/**
 * Reference data on the wire and on disk (schemas/reference.json, schemas/reference.arrow.json):
 * CSV, JSON lines and Arrow IPC files (one per day or many days, or a folder of them),
 * and the messages of the compacted `md.reference` topic (one JSON record, or an Arrow
 * stream of many, keyed by symbol). Every record is checked with the one zod schema;
 * a file with a bad record is refused whole with its line, a topic message is rejected.
 *
 * CSV columns: date, symbol, prevClose, st, upperLimit, lowerLimit, suspended, industry,
 * floatMarketValue, indexes — booleans as 1/0 or true/false, empty cells absent, and
 * indexes as `CSI300:0.0012;CSI500:0.0031` (name:weight pairs).
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import * as A from 'apache-arrow';
import { FactorstreamError } from '../errors.js';
import { ReferenceBook, ReferenceRecordSchema, type ReferenceRecord } from '../market/reference.js';
import { CONTENT_TYPE_JSON, codecOf } from './decode.js';

export const REFERENCE_COLUMNS = ['date', 'symbol', 'prevClose', 'st', 'upperLimit', 'lowerLimit', 'suspended', 'industry', 'floatMarketValue', 'indexes'] as const;

const REFERENCE_EXTENSIONS = new Set(['.csv', '.jsonl', '.json', '.arrow', '.arrows']);

/** Checks one record; the error names where it came from and what is wrong. */
export function parseReferenceRecord(value: unknown, where: string): ReferenceRecord {
  const r = ReferenceRecordSchema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw new FactorstreamError('E_SCHEMA', `${where}: reference record ${issue.path.join('.') || '(record)'}: ${issue.message}`);
}

function csvBool(text: string): boolean | undefined {
  if (text === '') return undefined;
  if (text === '1' || text === 'true') return true;
  if (text === '0' || text === 'false') return false;
  return text as unknown as boolean; // left for the schema to name
}

function csvNumber(text: string): number | undefined {
  return text === '' ? undefined : Number(text);
}

function csvIndexes(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const pair of text.split(';')) {
    if (pair.trim() === '') continue;
    const at = pair.lastIndexOf(':');
    out[pair.slice(0, at).trim()] = at < 0 ? Number.NaN : Number(pair.slice(at + 1));
  }
  return out;
}

function csvRecord(row: Record<string, string>): unknown {
  const unknown = Object.keys(row).filter((k) => !(REFERENCE_COLUMNS as readonly string[]).includes(k));
  if (unknown.length > 0) return { ...row };
  const out: Record<string, unknown> = { date: row.date, symbol: row.symbol, prevClose: csvNumber(row.prevClose ?? '') };
  const put = (k: string, v: unknown): void => {
    if (v !== undefined) out[k] = v;
  };
  put('st', csvBool(row.st ?? ''));
  put('upperLimit', csvNumber(row.upperLimit ?? ''));
  put('lowerLimit', csvNumber(row.lowerLimit ?? ''));
  put('suspended', csvBool(row.suspended ?? ''));
  put('industry', row.industry === '' ? undefined : row.industry);
  put('floatMarketValue', csvNumber(row.floatMarketValue ?? ''));
  put('indexes', row.indexes === undefined ? undefined : csvIndexes(row.indexes));
  return out;
}

function arrowRecords(table: A.Table): unknown[] {
  const out: unknown[] = [];
  for (const row of table) {
    const o: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(row.toJSON() as Record<string, unknown>)) {
      if (v === null || v === undefined) continue;
      o[k] = k === 'indexes' ? Object.fromEntries([...(v as Iterable<[string, number]>)]) : v;
    }
    out.push(o);
  }
  return out;
}

/** The records of one file, checked. */
export function readReferenceFile(path: string): ReferenceRecord[] {
  const ext = extname(path).toLowerCase();
  if (ext === '.csv') {
    const rows = parseCsv(readFileSync(path, 'utf8'), { columns: true, skip_empty_lines: true, trim: true }) as Record<string, string>[];
    return rows.map((row, i) => parseReferenceRecord(csvRecord(row), `${path}:${i + 2}`));
  }
  if (ext === '.jsonl' || ext === '.json') {
    const lines = readFileSync(path, 'utf8').split('\n');
    const out: ReferenceRecord[] = [];
    lines.forEach((line, i) => {
      if (line.trim() === '') return;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (err) {
        throw new FactorstreamError('E_MALFORMED', `${path}:${i + 1}: not JSON (${(err as Error).message})`);
      }
      out.push(parseReferenceRecord(value, `${path}:${i + 1}`));
    });
    return out;
  }
  if (ext === '.arrow' || ext === '.arrows') return arrowRecords(A.tableFromIPC(readFileSync(path))).map((r, i) => parseReferenceRecord(r, `${path} row ${i}`));
  throw new Error(`${path}: reference data is read from .csv, .jsonl or .arrow files`);
}

/** Reads a reference file, or every reference file of a folder (sorted by name, later ones winning), into a book. */
export function readReference(path: string): ReferenceBook {
  const files = statSync(path).isDirectory()
    ? readdirSync(path)
        .filter((f) => REFERENCE_EXTENSIONS.has(extname(f).toLowerCase()))
        .sort()
        .map((f) => join(path, f))
    : [path];
  if (files.length === 0) throw new Error(`${path}: no reference files (.csv, .jsonl, .arrow) in the folder`);
  const book = new ReferenceBook();
  for (const f of files) for (const r of readReferenceFile(f)) book.put(r);
  return book;
}

/** The Arrow layout of reference records (schemas/reference.arrow.json). */
export function referenceTable(records: readonly ReferenceRecord[]): A.Table {
  const mapType = new A.Map_<A.Utf8, A.Float64>(new A.Field('entries', new A.Struct<{ key: A.Utf8; value: A.Float64 }>([new A.Field('key', new A.Utf8(), false), new A.Field('value', new A.Float64(), false)])), false);
  const col = <T>(f: (r: ReferenceRecord) => T): T[] => records.map(f);
  return new A.Table({
    date: A.vectorFromArray(col((r) => r.date), new A.Utf8()),
    symbol: A.vectorFromArray(col((r) => r.symbol), new A.Utf8()),
    prevClose: A.vectorFromArray(col((r) => r.prevClose), new A.Float64()),
    st: A.vectorFromArray(col((r) => r.st), new A.Bool()),
    upperLimit: A.vectorFromArray(col((r) => r.upperLimit ?? null), new A.Float64()),
    lowerLimit: A.vectorFromArray(col((r) => r.lowerLimit ?? null), new A.Float64()),
    suspended: A.vectorFromArray(col((r) => r.suspended), new A.Bool()),
    industry: A.vectorFromArray(col((r) => r.industry ?? null), new A.Utf8()),
    floatMarketValue: A.vectorFromArray(col((r) => r.floatMarketValue ?? null), new A.Float64()),
    indexes: A.vectorFromArray(col((r) => new Map(Object.entries(r.indexes))), mapType),
  });
}

function csvLine(r: ReferenceRecord): string {
  const opt = (v: number | string | undefined): string => (v === undefined ? '' : String(v));
  const indexes = Object.entries(r.indexes)
    .map(([k, w]) => `${k}:${w}`)
    .join(';');
  return [r.date, r.symbol, r.prevClose, r.st ? 1 : 0, opt(r.upperLimit), opt(r.lowerLimit), r.suspended ? 1 : 0, opt(r.industry), opt(r.floatMarketValue), indexes].join(',');
}

/** Writes records as CSV, JSON lines or Arrow, by the path's extension. */
export function writeReferenceFile(path: string, records: readonly ReferenceRecord[]): void {
  const ext = extname(path).toLowerCase();
  if (ext === '.csv') writeFileSync(path, [REFERENCE_COLUMNS.join(','), ...records.map(csvLine)].join('\n') + '\n');
  else if (ext === '.jsonl') writeFileSync(path, records.map((r) => JSON.stringify(r) + '\n').join(''));
  else if (ext === '.arrow') writeFileSync(path, A.tableToIPC(referenceTable(records), 'stream'));
  else throw new Error(`${path}: reference data is written as .csv, .jsonl or .arrow`);
}

/** A reference topic message as records: one JSON record, or an Arrow stream of many. Throws a coded error when it is not one. */
export function decodeReferenceMessage(value: Buffer, contentType: string | undefined, where: string): ReferenceRecord[] {
  const codec = codecOf(contentType) ?? (contentType === undefined ? 'json' : undefined);
  if (codec === undefined) throw new FactorstreamError('E_UNKNOWN_CONTENT_TYPE', `${where}: content-type ${contentType} (reference messages are application/json or application/vnd.apache.arrow.stream)`);
  if (codec === 'arrow') {
    let table: A.Table;
    try {
      table = A.tableFromIPC(value);
    } catch (err) {
      throw new FactorstreamError('E_MALFORMED', `${where}: not an Arrow IPC stream (${(err as Error).message})`);
    }
    return arrowRecords(table).map((r, i) => parseReferenceRecord(r, `${where} row ${i}`));
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(value.toString('utf8'));
  } catch (err) {
    throw new FactorstreamError('E_MALFORMED', `${where}: not JSON (${(err as Error).message})`);
  }
  return [parseReferenceRecord(parsed, where)];
}

/** Reference records as topic messages: JSON, keyed by symbol (the topic is compacted by key: the newest record per symbol stays). */
export function referenceMessages(records: readonly ReferenceRecord[]): { key: Buffer; value: Buffer; headers: Record<string, string> }[] {
  return records.map((r) => ({ key: Buffer.from(r.symbol), value: Buffer.from(JSON.stringify(r)), headers: { 'content-type': CONTENT_TYPE_JSON } }));
}
