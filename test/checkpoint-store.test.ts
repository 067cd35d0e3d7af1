/**
 * The checkpoint chain on disk (daemon/checkpoint.ts) survives a crash between any two
 * writes: a pipeline scores a simulated day with a full checkpoint every sixth commit
 * and increments between, and for every checkpoint the files as a crash would leave them
 * — after it completed; an increment's record torn (in its header, half-way, one byte
 * short) or with its bytes never written (zeros); a full one's temporary file
 * written but not renamed; renamed but the old increments not yet truncated — read back
 * to the newest complete checkpoint, whose restored pipeline state is byte for byte the
 * state the daemon had when it wrote it (and whose positions and outputs are its). The
 * writer thread (durable-writer.ts) keeps call order and fails every write after a failed one.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serialize } from 'node:v8';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { CHECKPOINT_FORMAT, CheckpointStore, type Checkpoint } from '../src/daemon/checkpoint.js';
import { DurableWriter } from '../src/daemon/durable-writer.js';
import { threadTime } from '../src/market/clock.js';
import { loadServedModels } from '../src/daemon/models.js';
import { ScoringPipeline, type OutputBatch } from '../src/daemon/pipeline.js';
import { encodeTicksArrow } from '../src/ingest/arrow-codec.js';
import { MarketSimulator } from '../src/ingest/simulator/market.js';
import { createLogger } from '../src/log.js';
import { DEFAULT_ENGINE_OPTIONS } from '../src/model/predictor.js';
import { Metrics } from '../src/sink/metrics.js';
import { calendar } from './helpers.js';
import { TOPICS } from './partitioned-feed.js';

/** Outputs as comparable values: each message's bytes as text, its headers. */
function plainOutputs(batches: readonly OutputBatch[]): unknown {
  return batches.map((b) => ({ topic: b.topic, messages: b.messages.map((m) => ({ key: m.key === null ? null : Buffer.from(m.key).toString('base64'), value: Buffer.from(m.value).toString('base64'), headers: m.headers })) }));
}

const work = mkdtempSync(join(tmpdir(), 'fs-checkpoint-store-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface Disk {
  label: string;
  full: Buffer;
  log: Buffer;
  tmp?: Buffer;
  /** The checkpoint a read must find. */
  seq: number;
}

describe('checkpoint chain on disk', () => {
  it('a crash between any two writes recovers the newest complete checkpoint, its state byte for byte', async () => {
    const config = loadConfig({ flags: { features: { freqs: ['10m'] } } });
    const models = await loadServedModels(['models/demo-10m'], DEFAULT_ENGINE_OPTIONS, 0.5, new Metrics({ defaultMetrics: false }), createLogger('silent'));
    const make = (): ScoringPipeline => new ScoringPipeline({ config, calendar, topics: TOPICS, models, metrics: new Metrics({ defaultMetrics: false }), now: () => 0 });
    const pipeline = make();
    pipeline.assign(TOPICS.ticks, 0, 0, true);
    const dir = join(work, 'live');
    const store = new CheckpointStore(dir);
    const expected = new Map<number, { state: Buffer; checkpoint: Checkpoint }>();
    const disks: Disk[] = [];
    const files = (): { full: Buffer; log: Buffer } => ({ full: readFileSync(store.path), log: readFileSync(store.logPath) });
    const sim = new MarketSimulator({ symbols: 40, days: 1, seed: 13, tradesPerDay: 300, start: '2026-11-23' }, calendar);
    let offset = 0;
    let seq = 0;
    let minute = 0;
    for (const m of sim.generateDay(0)) {
      if (m.ticks.length === 0) continue;
      pipeline.ingest({ topic: TOPICS.ticks, partition: 0, offset: offset++, key: null, value: Buffer.from(encodeTicksArrow(m.ticks, sim.symbols)), headers: { 'content-type': 'application/vnd.apache.arrow.stream' } });
      if (minute++ % 3 !== 0) continue;
      const { batches } = await pipeline.takeOutputs();
      const kind = seq % 6 === 0 ? 'full' : 'increment';
      const before = seq === 0 ? undefined : files();
      const checkpoint: Checkpoint = { format: CHECKPOINT_FORMAT, seq: ++seq, kind, writtenAt: new Date(0).toISOString(), models: ['demo-10m'], positions: pipeline.positions(), outputs: batches, state: pipeline.snapshot(kind) };
      const bytes = serialize(checkpoint);
      await store.write(checkpoint).durable;
      pipeline.saved();
      expected.set(seq, { state: serialize(pipeline.snapshot('full')), checkpoint });
      const after = files();
      disks.push({ label: `after ${kind} #${seq}`, ...after, seq });
      if (before === undefined) continue;
      if (kind === 'increment') {
        const record = after.log.subarray(before.log.length);
        for (const cut of [4, 8 + Math.floor((record.length - 8) / 2), record.length - 1]) disks.push({ label: `increment #${seq} torn at byte ${cut} of ${record.length}`, full: before.full, log: Buffer.concat([before.log, record.subarray(0, cut)]), seq: seq - 1 });
        // The file grew but the record's bytes never reached the disk (zeros after its header).
        const unwritten = Buffer.concat([record.subarray(0, 8), Buffer.alloc(record.length - 8)]);
        disks.push({ label: `increment #${seq} with its payload unwritten`, full: before.full, log: Buffer.concat([before.log, unwritten]), seq: seq - 1 });
      } else {
        disks.push({ label: `full #${seq} written, not renamed`, ...before, tmp: bytes, seq: seq - 1 });
        disks.push({ label: `full #${seq} renamed, old increments not truncated`, full: after.full, log: before.log, seq });
      }
    }
    expect(seq).toBeGreaterThan(30);
    // Scores among the outputs (and their recovery below), not only empty commits.
    expect([...expected.values()].filter((e) => e.checkpoint.outputs.some((b) => b.topic === TOPICS.scores && b.messages.length > 0)).length).toBeGreaterThan(3);
    // Increments are what changed, a small part of a full checkpoint.
    expect(store.logBytes).toBeGreaterThan(0);
    let k = 0;
    for (const disk of disks) {
      const at = join(work, `crash-${k++}`);
      mkdirSync(at);
      const crashed = new CheckpointStore(at);
      writeFileSync(crashed.path, disk.full);
      writeFileSync(crashed.logPath, disk.log);
      if (disk.tmp !== undefined) writeFileSync(`${crashed.path}.tmp`, disk.tmp);
      const chain = crashed.read();
      expect(chain?.seq, disk.label).toBe(disk.seq);
      const want = expected.get(disk.seq) as { state: Buffer; checkpoint: Checkpoint };
      expect(chain?.positions, disk.label).toEqual(want.checkpoint.positions);
      expect(plainOutputs(chain?.outputs ?? []), disk.label).toEqual(plainOutputs(want.checkpoint.outputs));
      for (const m of chain?.outputs.flatMap((b) => b.messages) ?? []) expect(Buffer.isBuffer(m.value) && (m.key === null || Buffer.isBuffer(m.key))).toBe(true);
      const restored = make();
      restored.restoreChain(chain?.states ?? []);
      expect(serialize(restored.snapshot('full')).equals(want.state), disk.label).toBe(true);
    }
    for (const m of models) await m.scorer.dispose();
  }, 120_000);

  it('a checkpoint of format 4 (outputs as whole messages) is still read, its outputs as the producer sends them', async () => {
    const at = join(work, 'format-4');
    mkdirSync(at);
    const store = new CheckpointStore(at);
    const headers = { 'content-type': 'application/json', model: 'demo-10m' };
    const outputs: OutputBatch[] = [
      { topic: TOPICS.scores, messages: [{ key: Buffer.from('600000.SH'), value: Buffer.from('{"score":1}'), headers }, { key: Buffer.from('600001.SH'), value: Buffer.from('{"score":2}'), headers }] },
      { topic: TOPICS.deadLetter, messages: [{ key: null, value: Buffer.alloc(0), headers: { error: 'E_TEST' } }] },
    ];
    writeFileSync(store.path, serialize({ format: 4, seq: 7, kind: 'full', writtenAt: new Date(0).toISOString(), models: ['demo-10m'], positions: [], outputs, state: {} }));
    const chain = store.read();
    expect(chain?.seq).toBe(7);
    expect(plainOutputs(chain?.outputs ?? [])).toEqual(plainOutputs(outputs));
    for (const m of chain?.outputs.flatMap((b) => b.messages) ?? []) expect(Buffer.isBuffer(m.value) && (m.key === null || Buffer.isBuffer(m.key))).toBe(true);
    await store.close();
  });

  it('the writer thread writes in call order, says when the bytes were on disk, and fails every write after a failed one (a failed sync of other files fails alone)', async () => {
    const writer = new DurableWriter();
    const path = join(work, 'writer', 'log');
    const before = threadTime();
    const parts = (text: string): Uint8Array[] => [Buffer.from(text)];
    const done = await Promise.all(['a', 'b', 'c'].map((t) => writer.write({ kind: 'append', path, parts: parts(t) })));
    expect(readFileSync(path, 'utf8')).toBe('abc');
    expect(done[0]).toBeGreaterThanOrEqual(before);
    expect(done[2]).toBeGreaterThanOrEqual(done[0]);
    await writer.write({ kind: 'replace', path: join(work, 'writer', 'full'), parts: parts('whole'), truncate: path });
    expect(readFileSync(join(work, 'writer', 'full'), 'utf8')).toBe('whole');
    expect(readFileSync(path, 'utf8')).toBe('');
    // A sync of other files, in order with the writes; one that fails (a file not there) fails alone.
    const synced = writer.write({ kind: 'sync', paths: [path, join(work, 'writer')] });
    const missing = writer.write({ kind: 'sync', paths: [join(work, 'writer', 'absent'), path] });
    const next = writer.write({ kind: 'append', path, parts: parts('z') });
    expect(await synced).toBeGreaterThanOrEqual(done[2]);
    await expect(missing).rejects.toThrow(/ENOENT/);
    expect(await next).toBeGreaterThanOrEqual(await synced);
    expect(readFileSync(path, 'utf8')).toBe('z');
    await writer.write({ kind: 'replace', path: join(work, 'writer', 'full'), parts: parts('whole'), truncate: path });
    // A file where a folder should be: the append fails, and so does the good one after it (the chain would have a gap).
    writeFileSync(join(work, 'writer', 'blocker'), '');
    const failing = writer.write({ kind: 'append', path: join(work, 'writer', 'blocker', 'log'), parts: parts('x') });
    const after = writer.write({ kind: 'append', path, parts: parts('d') });
    await expect(failing).rejects.toThrow();
    await expect(after).rejects.toThrow();
    await expect(writer.write({ kind: 'append', path, parts: parts('e') })).rejects.toThrow();
    expect(readFileSync(path, 'utf8')).toBe('');
    // A sync of other files still runs.
    expect(await writer.write({ kind: 'sync', paths: [path] })).toBeGreaterThan(0);
    await writer.close();
  });
});
