/**
 * The input of one partition between the source and the aggregator: its messages decoded,
 * in offset order, into the partition's own batch, and the rows not yet aggregated. The
 * daemon hands the aggregator only the rows that event time admits (see
 * src/daemon/event-time.ts); the rest wait here, with the messages they came from, until
 * the bar close that admits them.
 *
 * Every message is accounted for when its last row has been aggregated: it is then
 * `complete`, with its valid row count and all its rejects (from decoding and from
 * aggregation), which is when its dead letters can be written. Rows waiting here are part
 * of the daemon's state: a checkpoint keeps them (and their messages), so that the
 * consumed position can be committed while they wait.
 */
import type { Reject } from '../errors.js';
import type { State } from '../features/state.js';
import type { TypedArray } from '../typed-arrays.js';
import type { DecodeContext } from './decode.js';
import { appendRows, BarBatch, dropRows, rowsSnapshot, TickBatch } from './events.js';
import type { InputMessage, MessageDecoder } from './message-decoder.js';

/** A consumed message whose rows are not all aggregated yet. */
export interface PendingMessage {
  message: InputMessage;
  /** One past its last row in the partition batch. */
  end: number;
  /** Valid rows it decoded into. */
  rows: number;
  /** Its rejects so far, decoding first (undefined: none). */
  rejects: Reject[] | undefined;
  /** How many of `rejects` came from decoding (the others from aggregation). */
  decodeRejects: number;
}

export type InputKind = 'ticks' | 'bars';

export class PartitionInput {
  readonly topic: string;
  readonly partition: number;
  readonly kind: InputKind;
  readonly batch: TickBatch | BarBatch;
  /** Decoding context whose rejects are attributed to this partition. */
  readonly ctx: DecodeContext;
  /** First row not yet aggregated. */
  head = 0;
  /** Offset of the next message to consume (-1 before the source says where it starts). */
  next = -1;
  /** Whether the source has nothing more to deliver right now (its end reached). */
  sourceCaughtUp = false;
  private pending: PendingMessage[] = [];
  /** Index of the first pending message not complete. */
  private front = 0;
  private readonly onComplete: (p: PendingMessage) => void;

  constructor(topic: string, partition: number, kind: InputKind, ctx: DecodeContext, onComplete: (p: PendingMessage) => void) {
    this.topic = topic;
    this.partition = partition;
    this.kind = kind;
    this.ctx = ctx;
    this.batch = kind === 'bars' ? new BarBatch(1024) : new TickBatch(4096);
    this.onComplete = onComplete;
  }

  /** Rows decoded and waiting for aggregation. */
  get waiting(): number {
    return this.batch.length - this.head;
  }

  /** Event order time of row i: a 1-minute bar is ordered by its last covered instant, as the aggregator orders it. */
  orderTime(i: number): number {
    return this.kind === 'bars' ? this.batch.ts[i] - 1 : this.batch.ts[i];
  }

  /**
   * Decodes `m` behind the waiting rows and returns the newest order time among its valid
   * rows (-Infinity for none). Messages before `next` (redelivered) are ignored: returns NaN.
   */
  push(m: InputMessage, decoder: MessageDecoder): number {
    if (m.offset < this.next) return Number.NaN;
    // Drop aggregated rows once they are at least as many as the waiting ones (amortised O(1) a row).
    if (this.head > 0 && this.head >= this.batch.length - this.head) this.compact();
    const start = this.batch.length;
    const entry: PendingMessage = { message: m, end: start, rows: 0, rejects: undefined, decodeRejects: 0 };
    this.pending.push(entry);
    decoder.decode(m, this.batch, this.kind, this.ctx);
    entry.end = this.batch.length;
    entry.rows = entry.end - start;
    entry.decodeRejects = entry.rejects?.length ?? 0;
    this.next = m.offset + 1;
    let newest = -Infinity;
    for (let i = start; i < entry.end; i++) {
      const t = this.orderTime(i);
      if (t > newest) newest = t;
    }
    this.settle();
    return newest;
  }

  /** The source moved past offsets that carry no message (transaction markers): consumed. */
  skipTo(next: number): void {
    if (next > this.next) this.next = next;
  }

  /** Records a reject of one of this partition's pending messages (by its offset). */
  reject(r: Reject): void {
    const p = this.pendingAt(r.offset);
    if (p === undefined) throw new Error(`reject for ${this.topic}/${this.partition} offset ${r.offset}, which is not pending (${r.code}: ${r.detail})`);
    (p.rejects ??= []).push(r);
  }

  private pendingAt(offset: number): PendingMessage | undefined {
    const last = this.pending[this.pending.length - 1];
    if (last !== undefined && last.message.offset === offset) return last;
    for (let i = this.front; i < this.pending.length; i++) if (this.pending[i].message.offset === offset) return this.pending[i];
    return undefined;
  }

  /** End of the waiting rows whose order time is below `limit`: [head, end) may be aggregated now. */
  admissible(limit: number): number {
    const n = this.batch.length;
    let i = this.head;
    while (i < n && this.orderTime(i) < limit) i++;
    return i;
  }

  /** Order time of the first waiting row (Infinity when none waits). */
  firstWaiting(): number {
    return this.head < this.batch.length ? this.orderTime(this.head) : Infinity;
  }

  /** Rows [head, to) have been aggregated: messages whose rows are all in are complete. */
  aggregated(to: number): void {
    this.head = to;
    this.settle();
  }

  /** Completes, in order, every message whose rows are all aggregated. */
  private settle(): void {
    while (this.front < this.pending.length && this.pending[this.front].end <= this.head) this.onComplete(this.pending[this.front++]);
    if (this.front === this.pending.length) {
      this.pending.length = 0;
      this.front = 0;
      if (this.head === this.batch.length) {
        this.batch.clear();
        this.head = 0;
      }
    } else if (this.front >= 1024) {
      this.pending = this.pending.slice(this.front);
      this.front = 0;
    }
  }

  private compact(): void {
    const by = this.head;
    dropRows(this.batch, by);
    this.head = 0;
    for (let i = this.front; i < this.pending.length; i++) this.pending[i].end -= by;
  }

  /** The waiting rows and their messages (the rejects they collected so far included). */
  snapshot(): State {
    const by = this.head;
    return {
      topic: this.topic,
      partition: this.partition,
      next: this.next,
      rows: rowsSnapshot(this.batch, this.head, this.batch.length),
      pending: this.pending.slice(this.front).map((p) => ({ ...p, end: p.end - by, rejects: p.rejects === undefined ? undefined : [...p.rejects] })),
    };
  }

  restore(state: State): void {
    this.next = state.next as number;
    this.batch.clear();
    this.head = 0;
    const rows = state.rows as Record<string, TypedArray> | undefined;
    if (rows !== undefined) appendRows(this.batch, rows);
    this.pending = ((state.pending as PendingMessage[] | undefined) ?? []).map((p) => ({ ...p, message: { ...p.message, key: p.message.key === null ? null : Buffer.from(p.message.key), value: p.message.value === null ? null : Buffer.from(p.message.value) } }));
    this.front = 0;
  }
}
