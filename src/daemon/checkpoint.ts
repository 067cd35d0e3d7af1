/**
 * Checkpoints: the pipeline's state, the input positions it reflects and the outputs of
 * the commit in flight, in one file replaced atomically (write to a temporary file, fsync,
 * rename, fsync the folder). node:v8 serialises the typed arrays as they are.
 *
 * Recovery (see serve.ts): the checkpoint is written before the Kafka transaction that
 * publishes its outputs and commits its positions. On start, if the group's committed
 * offsets equal the checkpoint's positions that transaction committed; if they are older,
 * it did not, and its outputs are published again with its positions, in a new
 * transaction. Either way every output is published exactly once.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { deserialize, serialize } from 'node:v8';
import type { State } from '../features/state.js';
import { partitionKey, type OutputBatch } from './pipeline.js';

/**
 * 3: the state holds the reference book and each symbol's day reference; 2 (each
 * partition's waiting rows and event time) and 1 (positions and newest event times only)
 * are still read.
 */
export const CHECKPOINT_FORMAT = 3;
const READABLE_FORMATS = [1, 2, 3];

export interface Position {
  topic: string;
  partition: number;
  offset: number;
}

export interface Checkpoint {
  format: number;
  /** Increases by one per checkpoint. */
  seq: number;
  writtenAt: string;
  /** name@version of each model served: a checkpoint is only resumed by the same models. */
  models: string[];
  positions: Position[];
  outputs: OutputBatch[];
  state: State;
}

export class CheckpointStore {
  readonly path: string;
  private readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
    this.path = join(dir, 'checkpoint.v8');
  }

  read(): Checkpoint | undefined {
    if (!existsSync(this.path)) return undefined;
    const data = deserialize(readFileSync(this.path)) as Checkpoint;
    if (!READABLE_FORMATS.includes(data.format)) throw new Error(`checkpoint ${this.path} has format ${data.format}; this version reads ${READABLE_FORMATS.join(' and ')}`);
    for (const batch of data.outputs) {
      for (const m of batch.messages) {
        m.value = Buffer.from(m.value);
        if (m.key !== null) m.key = Buffer.from(m.key);
      }
    }
    return data;
  }

  /** The consumer-group member id this daemon last had ('' none): after a crash its membership lingers until the session times out, and is not another instance. */
  readMemberId(): string {
    const path = join(this.dir, 'member-id');
    return existsSync(path) ? readFileSync(path, 'utf8').trim() : '';
  }

  writeMemberId(id: string): void {
    mkdirSync(this.dir, { recursive: true });
    writeFileSync(join(this.dir, 'member-id'), `${id}\n`);
  }

  /** Serialises and replaces the checkpoint atomically; returns the bytes written. */
  write(data: Checkpoint): number {
    mkdirSync(this.dir, { recursive: true });
    const bytes = serialize(data);
    const tmp = `${this.path}.tmp`;
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, bytes);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    const dirFd = openSync(this.dir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
    return bytes.length;
  }
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
