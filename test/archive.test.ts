/**
 * The daily score archive (src/sink/archive.ts): each close written through at once, the
 * file the bytes Arrow's own stream writer makes of the same closes, readable without its
 * end marker (a killed run's), read up to its last whole batch when cut short, and asked
 * whether it holds a close.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as A from 'apache-arrow';
import { afterEach, describe, expect, it } from 'vitest';
import { readArchiveFile, ScoreArchive } from '../src/sink/archive.js';
import { scoreTable, type ScoreRecord, type ScoreSource } from '../src/sink/scores.js';

const SRC: ScoreSource = { model: 'gru-10m', modelVersion: 'v1', freq: '10m' };
/** 10:00 and 10:10 Shanghai on two trading days. */
const DAY1 = Date.parse('2026-11-23T10:00:00+08:00');
const DAY2 = Date.parse('2026-11-24T10:00:00+08:00');
const TEN_MINUTES = 600_000;

function close(barEnd: number, n: number, src = SRC, seed = 1): ScoreRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    symbol: `${String(600000 + ((i * 7 + seed) % 997)).padStart(6, '0')}.SH`,
    barEnd,
    freq: src.freq,
    model: src.model,
    modelVersion: src.modelVersion,
    score: Math.sin(i + seed),
    z: Math.cos(i * seed),
    rank: i / n,
    universe: n,
    coverage: 1 - (i % 3) / 10,
    limit: (i % 5) - 2 === 0 ? 0 : Math.sign((i % 5) - 2),
  }));
}

/** The rows of an Arrow table as plain objects of the archive's identity and values. */
function rowsOf(table: A.Table): unknown[] {
  return table.toArray().map((r: { symbol: string; barEnd: number | bigint; freq: string; model: string; modelVersion: string; score: number; z: number; rank: number; limit: number }) => [r.symbol, Number(r.barEnd), r.freq, r.model, r.modelVersion, r.score, r.z, r.rank, r.limit]);
}

describe('score archive', () => {
  const dirs: string[] = [];
  const temp = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'fs-archive-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it("writes each close through at once, as the bytes Arrow's stream writer makes of the same closes", () => {
    const dir = temp();
    const archive = new ScoreArchive(dir, 'run1');
    const closes = [close(DAY1, 40), close(DAY1 + TEN_MINUTES, 37, SRC, 2), close(DAY1 + 2 * TEN_MINUTES, 41, SRC, 3)];
    const path = join(dir, '2026-11-23', 'gru-10m.run1.arrow');
    let written = 0;
    for (const [k, records] of closes.entries()) {
      archive.append(records, SRC);
      // On disk before append returns: the file so far reads as the closes so far (no end marker yet).
      expect(statSync(path).size).toBeGreaterThan(written);
      written = statSync(path).size;
      expect(rowsOf(A.tableFromIPC(readFileSync(path)))).toEqual(closes.slice(0, k + 1).flatMap((c) => rowsOf(scoreTable(c, SRC))));
    }
    archive.close();
    // The reference: apache-arrow's streaming writer over the same batches, as the archive wrote it before.
    const reference = new A.RecordBatchStreamWriter();
    for (const c of closes) for (const batch of scoreTable(c, SRC).batches) reference.write(batch);
    reference.finish();
    expect(Buffer.compare(readFileSync(path), Buffer.from(reference.toUint8Array(true)))).toBe(0);
  });

  it('one file per model, day and run; a new day finishes the previous day’s file', () => {
    const dir = temp();
    const other: ScoreSource = { model: 'gru-30m', modelVersion: 'v3', freq: '30m' };
    const archive = new ScoreArchive(dir, 'r');
    archive.append(close(DAY1, 5), SRC);
    archive.append(close(DAY1, 6, other), other);
    archive.append(close(DAY2, 7), SRC);
    archive.append([], SRC);
    archive.close();
    expect(readdirSync(join(dir, '2026-11-23')).sort()).toEqual(['gru-10m.r.arrow', 'gru-30m.r.arrow']);
    expect(readdirSync(join(dir, '2026-11-24'))).toEqual(['gru-10m.r.arrow']);
    expect(A.tableFromIPC(readFileSync(join(dir, '2026-11-24', 'gru-10m.r.arrow'))).numRows).toBe(7);
    // A second run never appends to another run's file.
    expect(() => new ScoreArchive(dir, 'r').append(close(DAY1, 1), SRC)).toThrow(/EEXIST/);
  });

  it('hands over what it wrote since the last look, to be fsynced: the files and each folder that gained an entry', () => {
    const root = join(temp(), 'scores');
    const archive = new ScoreArchive(root, 'r');
    const other: ScoreSource = { model: 'gru-30m', modelVersion: 'v3', freq: '30m' };
    const file = (day: string, model = SRC.model): string => join(root, day, `${model}.r.arrow`);
    expect(archive.takeUnsynced()).toEqual([]);
    // A first run: the archive's own folder is new, so its parent gained an entry too.
    archive.append(close(DAY1, 5), SRC);
    expect(archive.takeUnsynced().sort()).toEqual([dirname(root), root, join(root, '2026-11-23'), file('2026-11-23')].sort());
    expect(archive.takeUnsynced()).toEqual([]);
    archive.append(close(DAY1 + TEN_MINUTES, 5), SRC);
    archive.append(close(DAY1 + 2 * TEN_MINUTES, 5), SRC);
    expect(archive.takeUnsynced()).toEqual([file('2026-11-23')]);
    // A second model's file: its day's folder gained an entry, the archive's did not.
    archive.append(close(DAY1, 6, other), other);
    expect(archive.takeUnsynced().sort()).toEqual([join(root, '2026-11-23'), file('2026-11-23', 'gru-30m')].sort());
    // A new day: its folder and the archive's; the previous day's file, finished, was written to (its end marker).
    archive.append(close(DAY2, 7), SRC);
    expect(archive.takeUnsynced().sort()).toEqual([root, file('2026-11-23'), join(root, '2026-11-24'), file('2026-11-24')].sort());
    archive.close();
    expect(archive.takeUnsynced()).toEqual([]);
  });

  it('a file cut short reads up to its last whole batch, and says so', () => {
    const dir = temp();
    const archive = new ScoreArchive(dir, 'cut');
    const first = close(DAY1, 30);
    archive.append(first, SRC);
    const path = join(dir, '2026-11-23', 'gru-10m.cut.arrow');
    const whole = statSync(path).size;
    archive.append(close(DAY1 + TEN_MINUTES, 30), SRC);
    archive.close();
    expect(readArchiveFile(path)).toMatchObject({ truncated: false });
    expect(readArchiveFile(path).batches.map((b) => b.numRows)).toEqual([30, 30]);
    truncateSync(path, statSync(path).size - 100);
    // Arrow's table reader refuses the whole file; the archive's reader keeps the first close.
    expect(() => A.tableFromIPC(readFileSync(path))).toThrow();
    const cut = readArchiveFile(path);
    expect(cut.truncated).toBe(true);
    expect(rowsOf(new A.Table(cut.batches))).toEqual(rowsOf(scoreTable(first, SRC)));
    truncateSync(path, whole);
    expect(readArchiveFile(path)).toMatchObject({ truncated: false });
    // A file that cannot be read is an error, not a file cut short.
    expect(() => readArchiveFile(join(dir, 'absent.arrow'))).toThrow(/ENOENT/);
  });

  it('holds: the close of that model, version, frequency and bar end, in any run’s file of its day', () => {
    const dir = temp();
    const dotted: ScoreSource = { model: 'gru-10m.b', modelVersion: 'v1', freq: '10m' };
    const first = new ScoreArchive(dir, 'a');
    first.append(close(DAY1, 3), SRC);
    first.append(close(DAY1 + TEN_MINUTES, 3, dotted), dotted);
    // A killed run: its files are never finished.
    const second = new ScoreArchive(dir, 'b');
    second.append(close(DAY1 + 2 * TEN_MINUTES, 3), SRC);
    const reader = new ScoreArchive(dir, 'c');
    expect(reader.holds(SRC, DAY1)).toBe(true);
    expect(reader.holds(SRC, DAY1 + 2 * TEN_MINUTES)).toBe(true);
    expect(reader.holds(dotted, DAY1 + TEN_MINUTES)).toBe(true);
    // A model whose name the other's files start with, another version, another frequency, another bar end, another day.
    expect(reader.holds(SRC, DAY1 + TEN_MINUTES)).toBe(false);
    expect(reader.holds({ ...SRC, modelVersion: 'v2' }, DAY1)).toBe(false);
    expect(reader.holds({ ...SRC, freq: '30m' }, DAY1)).toBe(false);
    expect(reader.holds(SRC, DAY1 + 3 * TEN_MINUTES)).toBe(false);
    expect(reader.holds(SRC, DAY2)).toBe(false);
    // A close whose batch a power cut left unwritten is not held.
    const path = join(dir, '2026-11-23', 'gru-10m.b.arrow');
    truncateSync(path, statSync(path).size - 10);
    expect(reader.holds(SRC, DAY1 + 2 * TEN_MINUTES)).toBe(false);
    first.close();
  });
});
