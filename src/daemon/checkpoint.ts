/**
 * Checkpoints: the pipeline's state, the input positions it reflects and the outputs of
 * the commit in flight, written before the Kafka transaction that publishes those outputs
 * and commits those positions.
 *
 * A chain: a full checkpoint (checkpoint.v8, replaced atomically: a temporary file,
 * fsync, rename, fsync the folder) and the increments written after it, appended to
 * checkpoint.log, each record framed by its length and CRC-32 and fsynced (on a thread of
 * their own: durable-writer.ts). An increment
 * holds what changed since the checkpoint before it (features/state.ts: the minutes, bar
 * slots and sequence rows written since, the small state whole), so a commit writes
 * hundreds of kilobytes instead of the whole state. A torn last record (a crash while
 * appending) fails its CRC and is not part of the chain: that checkpoint was never
 * complete, so its transaction never ran; so is one whose bytes a crash left unwritten
 * (zeros on some file systems), by its CRC. After a full checkpoint the log is truncated;
 * records left from before it (a crash between the rename and the truncation) do not
 * follow its sequence number and are not read.
 *
 * Recovery (see serve.ts): the chain's last checkpoint is the state. If the group's
 * committed offsets equal its positions, its transaction committed; if they are older, it
 * did not, and its outputs are published again with its positions, in a new
 * transaction. Either way every output is published exactly once.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import { crc32 } from 'node:zlib';
import { DurableWriter } from './durable-writer.js';
import { partitionKey, type OutputBatch, type PipelineState } from './pipeline.js';

/**
 * 5: the outputs packed as columns (PackedBatch); 4: full checkpoints and increments
 * (checkpoint.log), typed state layouts; 3 (the reference book and each symbol's day
 * reference), 2 (each partition's waiting rows and event time) and 1 (positions and
 * newest event times only) are still read, the last three as full ones.
 */
export const CHECKPOINT_FORMAT = 5;
const READABLE_FORMATS = [1, 2, 3, 4, 5];
/** Length and CRC-32 of each increment record. */
const RECORD_HEADER = 8;

export interface Position {
  topic: string;
  partition: number;
  offset: number;
}

export interface Checkpoint {
  format: number;
  /** Increases by one per checkpoint, full or increment. */
  seq: number;
  /** Format 4: whether `state` is whole or an increment on the checkpoint before it (older formats: full). */
  kind?: 'full' | 'increment';
  writtenAt: string;
  /** name@version of each model served: a checkpoint is only resumed by the same models. */
  models: string[];
  positions: Position[];
  outputs: OutputBatch[];
  state: PipelineState;
}

/**
 * A batch's messages as columns, as format 5 stores them: the keys' bytes and the values'
 * bytes each in one buffer, with their lengths (-1: no key), and each message's headers
 * as an index into the batch's distinct headers objects (a close's messages share one). A
 * close's 5,000 score messages are then a few buffers to serialise, not 15,000 objects:
 * about 3 ms with the packing instead of 6.5 ms (this machine, idle), on the close's
 * latency path.
 */
interface PackedBatch {
  topic: string;
  keys: Uint8Array;
  keyLengths: Int32Array;
  values: Uint8Array;
  valueLengths: Int32Array;
  headers: Record<string, string>[];
  headerOf: Int32Array;
}

/** A checkpoint as serialised: format 5 packs its outputs. */
type StoredCheckpoint = Omit<Checkpoint, 'outputs'> & { outputs: OutputBatch[] | PackedBatch[] };

function packOutputs(batches: readonly OutputBatch[]): PackedBatch[] {
  return batches.map(({ topic, messages }) => {
    const n = messages.length;
    const keyLengths = new Int32Array(n);
    const valueLengths = new Int32Array(n);
    const headerOf = new Int32Array(n);
    const headers: Record<string, string>[] = [];
    const seen = new Map<Record<string, string>, number>();
    const keys: Uint8Array[] = [];
    const values = new Array<Uint8Array>(n);
    for (let i = 0; i < n; i++) {
      const m = messages[i];
      keyLengths[i] = m.key === null ? -1 : m.key.length;
      if (m.key !== null) keys.push(m.key);
      values[i] = m.value;
      valueLengths[i] = m.value.length;
      let h = seen.get(m.headers);
      if (h === undefined) {
        seen.set(m.headers, (h = headers.length));
        headers.push(m.headers);
      }
      headerOf[i] = h;
    }
    return { topic, keys: Buffer.concat(keys), keyLengths, values: Buffer.concat(values), valueLengths, headers, headerOf };
  });
}

/** A commit's outputs alone, packed and serialised as its checkpoint holds them (the start's warm-up: warm-up.ts). */
export function encodeOutputs(batches: readonly OutputBatch[]): Buffer {
  return serialize(packOutputs(batches));
}

/** The messages of packed batches, their keys and values views of the stored buffers. */
function unpackOutputs(packed: readonly PackedBatch[]): OutputBatch[] {
  const view = (bytes: Uint8Array, at: number, length: number): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset + at, length);
  return packed.map(({ topic, keys, keyLengths, values, valueLengths, headers, headerOf }) => {
    const messages: OutputBatch['messages'] = [];
    let keyAt = 0;
    let valueAt = 0;
    for (let i = 0; i < valueLengths.length; i++) {
      const keyLength = keyLengths[i];
      const key = keyLength < 0 ? null : view(keys, keyAt, keyLength);
      keyAt += Math.max(0, keyLength);
      messages.push({ key, value: view(values, valueAt, valueLengths[i]), headers: headers[headerOf[i]] });
      valueAt += valueLengths[i];
    }
    return { topic, messages };
  });
}

/** The last checkpoint of a chain, with the states to restore in order (the full one, then each increment). */
export interface CheckpointChain extends Omit<Checkpoint, 'state' | 'kind'> {
  states: PipelineState[];
  increments: number;
}

export class CheckpointStore {
  readonly path: string;
  readonly logPath: string;
  private readonly dir: string;
  /** Bytes of the current full checkpoint and of the increments after it. */
  fullBytes = 0;
  logBytes = 0;

  constructor(dir: string) {
    this.dir = dir;
    this.path = join(dir, 'checkpoint.v8');
    this.logPath = join(dir, 'checkpoint.log');
  }

  /** The chain on disk: its full checkpoint and the complete increments after it (undefined: none); after settled() while writes are in flight. */
  read(): CheckpointChain | undefined {
    if (!existsSync(this.path)) return undefined;
    const full = this.decode(readFileSync(this.path), this.path);
    const chain: StoredCheckpoint[] = [full];
    if (existsSync(this.logPath)) {
      const log = readFileSync(this.logPath);
      for (let at = 0; at + RECORD_HEADER <= log.length; ) {
        const length = log.readUInt32LE(at);
        const end = at + RECORD_HEADER + length;
        if (end > log.length) break; // torn: the last append did not complete
        const payload = log.subarray(at + RECORD_HEADER, end);
        if (crc32(payload) !== log.readUInt32LE(at + 4)) break;
        at = end;
        const next = this.decode(payload, this.logPath);
        // Records left from before the full checkpoint (seq at or below its) end the chain too.
        if (next.seq !== chain[chain.length - 1].seq + 1 || next.kind !== 'increment') break;
        chain.push(next);
      }
    }
    const last = chain[chain.length - 1];
    const { state: _state, kind: _kind, ...meta } = last;
    return { ...meta, outputs: this.outputsOf(last), states: chain.map((c) => c.state), increments: chain.length - 1 };
  }

  private decode(bytes: Buffer, where: string): StoredCheckpoint {
    const data = deserialize(bytes) as StoredCheckpoint;
    if (!READABLE_FORMATS.includes(data.format)) throw new Error(`checkpoint ${where} has format ${data.format}; this version reads ${READABLE_FORMATS.join(', ')}`);
    return data;
  }

  /** A stored checkpoint's outputs as the producer sends them (only the chain's last one's are read). */
  private outputsOf(data: StoredCheckpoint): OutputBatch[] {
    if (data.format >= 5) return unpackOutputs(data.outputs as PackedBatch[]);
    // Before format 5, each message whole; its bytes come back as Uint8Arrays.
    return (data.outputs as OutputBatch[]).map(({ topic, messages }) => ({ topic, messages: messages.map((m) => ({ ...m, key: m.key === null ? null : Buffer.from(m.key), value: Buffer.from(m.value) })) }));
  }

  /** The consumer-group member id this daemon last had ('' none): after a crash its membership lingers until the session times out, and is not another instance. */
  readMemberId(): string {
    const path = join(this.dir, 'member-id');
    return existsSync(path) ? readFileSync(path, 'utf8').trim() : '';
  }

  writeMemberId(id: string): void {
    mkdirSync(this.dir, { recursive: true });
    // Small and rare (a group join): written in place, synchronously.
    const fd = openSync(join(this.dir, 'member-id'), 'w');
    try {
      writeSync(fd, `${id}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Writes a checkpoint: serialised now (the state may change as soon as this returns),
   * made durable on the writer thread — a full one replaces the chain, an increment extends
   * it — so that the disk's fsync overlaps the Kafka transaction that must wait for it
   * (serve awaits `durable` before committing). Writes reach the disk in call order, and
   * `durable` resolves with the threadTime() (market/clock.ts) they were there at.
   */
  write(data: Checkpoint): { bytes: number; durable: Promise<number> } {
    const stored: StoredCheckpoint = data.format >= 5 ? { ...data, outputs: packOutputs(data.outputs) } : data;
    const bytes = serialize(stored);
    const length = bytes.length;
    let durable: Promise<number>;
    if (data.kind === 'increment') {
      const header = Buffer.alloc(RECORD_HEADER);
      header.writeUInt32LE(length, 0);
      header.writeUInt32LE(crc32(bytes), 4);
      this.logBytes += RECORD_HEADER + length;
      durable = this.writer.write({ kind: 'append', path: this.logPath, parts: [header, bytes] });
    } else {
      this.fullBytes = length;
      this.logBytes = 0;
      // The increments of the old chain are behind the new full checkpoint once it is renamed.
      durable = this.writer.write({ kind: 'replace', path: this.path, parts: [bytes], truncate: this.logPath });
    }
    this.writing = durable;
    return { bytes: length, durable };
  }

  /**
   * Fsyncs files (and folders) that other code wrote, on the writer thread ahead of the
   * next checkpoint write: a checkpoint on disk implies they are. A failure rejects the
   * returned promise alone; no checkpoint waits for it.
   */
  syncAhead(paths: string[]): Promise<number> {
    return this.writer.write({ kind: 'sync', paths });
  }

  /** Resolves once every write so far has reached the disk or failed (read it only then). */
  async settled(): Promise<void> {
    await this.writing.catch(() => undefined);
  }

  /** Stops the writer thread (after settled()). */
  async close(): Promise<void> {
    await this.settled();
    await this.writer.close();
  }

  private writing: Promise<unknown> = Promise.resolve();
  private readonly writer = new DurableWriter();
}

/** Whether committed offsets (topic/partition -> next offset, -1 when none) equal a checkpoint's positions. */
export function positionsCommitted(positions: readonly Position[], committed: ReadonlyMap<string, number>): 'equal' | 'older' | 'newer' {
  let older = false;
  let newer = false;
  for (const p of positions) {
    const c = committed.get(partitionKey(p.topic, p.partition)) ?? -1;
    if (c < p.offset) older = true;
    else if (c > p.offset) newer = true;
  }
  if (newer) return 'newer';
  return older ? 'older' : 'equal';
}
