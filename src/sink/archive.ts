/**
 * The daily score archive: one Arrow IPC stream per model, trading day and daemon run
 * (`DIR/YYYY-MM-DD/<model>.<runId>.arrow`), appended after each commit. A run never
 * appends to another run's file (an Arrow stream cannot be reopened), so after a crash a
 * day may have two files; rows are identified by (symbol, barEnd, freq, modelVersion).
 *
 * Each close is handed to the operating system before append returns (one write of its
 * whole record batch), so a killed process loses at most the commit it was in when killed:
 * what its checkpoint's outputs hold, which a restart archives where the day's files lack
 * it (serve.ts, recovery). The files (and the folders that gained one) written since the
 * last look are the daemon's to fsync (takeUnsynced), ahead of its next checkpoint, so a
 * host that loses power loses no more than a killed process; close() fsyncs what is left.
 * A file cut short all the same (a disk that lies about its cache) is read up to its last
 * whole batch by readArchiveFile.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as A from 'apache-arrow';
import { dayToIso, localDay } from '../market/time.js';
import { scoreTable, type ScoreRecord, type ScoreSource } from './scores.js';

/** An IPC stream's end-of-stream marker: the continuation token and a zero length. */
const END_OF_STREAM = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0);

/** The byte length of a stream's first message, its schema (continuation, metadata length, metadata; no body). */
function schemaMessageLength(stream: Uint8Array): number {
  const view = new DataView(stream.buffer, stream.byteOffset, stream.byteLength);
  if (view.getUint32(0, true) !== 0xffffffff) throw new Error('not an Arrow IPC stream with continuation markers');
  return 8 + view.getInt32(4, true);
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at);
}

interface ArchiveFile {
  fd: number;
  path: string;
  /** Whether the schema is written (every later close appends its dictionaries and batch). */
  started: boolean;
}

export class ScoreArchive {
  private readonly dir: string;
  private readonly runId: string;
  private readonly files = new Map<string, ArchiveFile>();
  /** Files appended to, and folders given a new entry, since takeUnsynced() last took them. */
  private readonly unsynced = new Set<string>();

  constructor(dir: string, runId: string) {
    this.dir = dir;
    this.runId = runId;
  }

  /** One close's records (one model, one bar end), written through to the operating system; throws what the write throws. */
  append(records: readonly ScoreRecord[], src: ScoreSource): void {
    if (records.length === 0) return;
    const day = dayToIso(localDay(records[0].barEnd));
    const key = `${day}/${src.model}`;
    let f = this.files.get(key);
    if (f === undefined) {
      // A new day closes the previous day's file of this model.
      for (const [k, old] of this.files) {
        if (k.endsWith(`/${src.model}`)) {
          this.finish(old);
          this.files.delete(k);
        }
      }
      const dayDir = join(this.dir, day);
      const path = join(dayDir, `${src.model}.${this.runId}.arrow`);
      // The folders whose entries changed: the day's (a new file) and every one above it up to
      // the parent of the first folder made (a new day: the archive's; a first run: its parent).
      const made = mkdirSync(dayDir, { recursive: true });
      if (made !== undefined) {
        for (let d = dirname(dayDir); d.length >= made.length && d !== dirname(d); d = dirname(d)) this.unsynced.add(d);
        this.unsynced.add(dirname(made));
      }
      f = { fd: openSync(path, 'wx'), path, started: false };
      this.unsynced.add(dayDir);
      this.files.set(key, f);
    }
    // The close as a whole stream (schema, its dictionaries, its batch, the end marker), of which
    // the file takes the schema once and never the end marker until it is finished: the bytes
    // Arrow's stream writer appends for a batch whose dictionaries replace the previous ones.
    const stream = A.tableToIPC(scoreTable(records, src), 'stream');
    writeAll(f.fd, stream.subarray(f.started ? schemaMessageLength(stream) : 0, stream.length - END_OF_STREAM.length));
    f.started = true;
    this.unsynced.add(f.path);
  }

  /** The files and folders written since the last call, to be fsynced by the caller (then forgotten here). */
  takeUnsynced(): string[] {
    const paths = [...this.unsynced];
    this.unsynced.clear();
    return paths;
  }

  /** Whether the day's files hold the close of `src` at `barEnd` (any run's, read up to their last whole batch). */
  holds(src: ScoreSource, barEnd: number): boolean {
    const day = join(this.dir, dayToIso(localDay(barEnd)));
    if (!existsSync(day)) return false;
    for (const name of readdirSync(day)) {
      if (!name.startsWith(`${src.model}.`) || !name.endsWith('.arrow')) continue;
      for (const batch of readArchiveFile(join(day, name)).batches) {
        const [ends, models, versions, freqs] = ['barEnd', 'model', 'modelVersion', 'freq'].map((c) => batch.getChild(c) as A.Vector);
        for (let i = 0; i < batch.numRows; i++) {
          if (Number(ends.get(i)) === barEnd && models.get(i) === src.model && versions.get(i) === src.modelVersion && freqs.get(i) === src.freq) return true;
        }
      }
    }
    return false;
  }

  /** Finishes the open files and fsyncs every file and folder written since the last takeUnsynced(); throws the first failure, after trying all. */
  close(): void {
    let failure: unknown;
    for (const f of this.files.values()) {
      try {
        this.finish(f);
      } catch (err) {
        failure ??= err;
      }
    }
    this.files.clear();
    for (const path of this.takeUnsynced()) {
      try {
        const fd = openSync(path, 'r');
        try {
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
      } catch (err) {
        failure ??= err;
      }
    }
    if (failure !== undefined) throw failure;
  }

  private finish(f: ArchiveFile): void {
    try {
      if (f.started) {
        writeAll(f.fd, END_OF_STREAM);
        this.unsynced.add(f.path);
      }
    } finally {
      closeSync(f.fd);
    }
  }
}

/**
 * The whole record batches of an archive file (or any Arrow IPC stream file). A file cut
 * short (a host that lost power before the operating system wrote it out) ends at its last
 * whole batch, with `truncated` set; a file without its end marker (a killed run's) is whole.
 */
export function readArchiveFile(path: string): { batches: A.RecordBatch[]; truncated: boolean } {
  const bytes = readFileSync(path); // what reading the file throws is thrown, not taken for a file cut short
  const batches: A.RecordBatch[] = [];
  try {
    for (const batch of A.RecordBatchReader.from(bytes)) batches.push(batch);
  } catch {
    return { batches, truncated: true };
  }
  return { batches, truncated: false };
}
