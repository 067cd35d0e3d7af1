/**
 * Per-symbol ring buffers of the last T normalised feature rows. Every bar close pushes
 * one row for every symbol (missing bars push a masked row), so all rings advance in
 * lockstep and share one head. `fill` packs the [N, T, F] batch, oldest row first, with
 * two block copies per symbol and no per-row allocation.
 */
import { grown } from '../typed-arrays.js';
import { DirtyColumns, gatherColumns, scatterColumns, type ColumnLayout } from './state.js';

/** A sequence store in a checkpoint. */
export interface SequenceStoreState {
  T: number;
  F: number;
  capacity: number;
  pushed: number;
  head: number;
  values: Float32Array;
  mask: Uint8Array;
  present: Uint8Array;
}

/** The ring rows pushed since the last checkpoint, for every symbol (see state.ts). */
export interface SequenceStoreIncrement extends Omit<SequenceStoreState, 'values' | 'mask' | 'present'> {
  rows: number[];
  values: Float32Array;
  mask: Uint8Array;
  present: Uint8Array;
}

export class SequenceStore {
  readonly T: number;
  readonly F: number;
  capacity = 0;
  /** Rows pushed so far (saturates meaning at T). */
  pushed = 0;
  /** Ring position the next row goes to. */
  head = 0;
  values: Float32Array = new Float32Array(0);
  /** Per-feature validity, same layout as values. */
  mask: Uint8Array = new Uint8Array(0);
  /** 1 when the row's bar was present (not missing), [symbol, T]. */
  present: Uint8Array = new Uint8Array(0);
  /** Ring rows pushed since the last checkpoint. */
  private readonly dirty: DirtyColumns;

  constructor(T: number, F: number, capacity = 16) {
    if (!(T > 0 && F > 0)) throw new RangeError('T and F must be positive');
    this.T = T;
    this.F = F;
    this.dirty = new DirtyColumns(T);
    this.ensure(capacity);
  }

  ensure(capacity: number): void {
    if (capacity > this.capacity) this.growTo(Math.max(capacity, this.capacity * 2));
  }

  /**
   * Room for `capacity` symbols, the old rows where they were ([symbol][T][F]) and the new
   * ones zero: an increment gathers its ring rows over every symbol of the new capacity, so
   * a growth needs no whole store in the next increment.
   */
  private growTo(capacity: number): void {
    this.values = grown(this.values, capacity * this.T * this.F);
    this.mask = grown(this.mask, capacity * this.T * this.F);
    this.present = grown(this.present, capacity * this.T);
    this.capacity = capacity;
  }

  /**
   * Appends one row for each of the first `n` symbols: `rows`/`rowMask` are [n, F],
   * `missing[s]` = 1 for a missing bar. Symbols beyond n (not yet seen) get masked rows.
   */
  push(rows: Float32Array, rowMask: Uint8Array, missing: Uint8Array, n: number): void {
    this.ensure(n);
    const { T, F } = this;
    const h = this.head;
    for (let s = 0; s < this.capacity; s++) {
      const dst = (s * T + h) * F;
      if (s < n) {
        this.values.set(rows.subarray(s * F, s * F + F), dst);
        this.mask.set(rowMask.subarray(s * F, s * F + F), dst);
        this.present[s * T + h] = missing[s] === 1 ? 0 : 1;
      } else {
        this.values.fill(0, dst, dst + F);
        this.mask.fill(0, dst, dst + F);
        this.present[s * T + h] = 0;
      }
    }
    this.dirty.mark(h);
    this.head = (h + 1) % T;
    this.pushed++;
  }

  snapshot(): SequenceStoreState {
    const { T, F, capacity, pushed, head, values, mask, present } = this;
    return { T, F, capacity, pushed, head, values, mask, present };
  }

  /** What changed since the last saved checkpoint (the whole store after a restore). */
  increment(): SequenceStoreState | SequenceStoreIncrement {
    if (this.dirty.all) return this.snapshot();
    const rows = this.dirty.list();
    const { T, F, capacity, pushed, head } = this;
    return { T, F, capacity, pushed, head, rows, values: gatherColumns(this.values, this.layout(F), rows), mask: gatherColumns(this.mask, this.layout(F), rows), present: gatherColumns(this.present, this.layout(1), rows) };
  }

  /** The state as it is now was checkpointed. */
  saved(): void {
    this.dirty.clear();
  }

  restore(state: SequenceStoreState | SequenceStoreIncrement): void {
    if (state.T !== this.T || state.F !== this.F) throw new Error(`checkpoint holds sequences of T=${String(state.T)}, F=${String(state.F)}; this run needs T=${this.T}, F=${this.F}`);
    if ('rows' in state) {
      if (state.capacity < this.capacity) throw new Error(`a checkpoint increment of a sequence store is for ${state.capacity} symbols; the store holds ${this.capacity}`);
      if (state.capacity > this.capacity) this.growTo(state.capacity);
      scatterColumns(this.values, this.layout(this.F), state.rows, state.values);
      scatterColumns(this.mask, this.layout(this.F), state.rows, state.mask);
      scatterColumns(this.present, this.layout(1), state.rows, state.present);
    } else {
      ({ values: this.values, mask: this.mask, present: this.present } = state);
    }
    ({ capacity: this.capacity, pushed: this.pushed, head: this.head } = state);
    this.dirty.markAll();
  }

  private layout(width: number): ColumnLayout {
    return { rows: this.capacity, columns: this.T, width };
  }

  /** Fraction of the window's T rows whose bar was present. */
  coverage(s: number): number {
    const T = this.T;
    let k = 0;
    for (let t = 0; t < T; t++) k += this.present[s * T + t];
    return k / T;
  }

  /** How many of the newest `rows` rows of symbol s (before its newest `back`) had their bar present. */
  presentIn(s: number, rows: number, back = 0): number {
    const T = this.T;
    let k = 0;
    for (let r = 1 + back; r <= rows + back; r++) k += this.present[s * T + ((this.head - r + T) % T)];
    return k;
  }

  /**
   * Fills `out` ([ids.length, rows, F], oldest first) and `outMask` with the newest `rows`
   * rows (the whole window by default; `back`: those before the newest `back`) of the
   * symbols `ids` (a subset, in batch order), two block copies per symbol. Returns the
   * number of sequences written.
   */
  fill(ids: ArrayLike<number>, count: number, out: Float32Array, outMask?: Uint8Array, rows = this.T, back = 0): number {
    const { T, F } = this;
    const win = T * F;
    // The ring holds the oldest wanted row at `start`: rows [start, start + first), then [0, rest).
    const start = (this.head - back - rows + 2 * T) % T;
    const first = Math.min(rows, T - start) * F;
    const rest = rows * F - first;
    for (let b = 0; b < count; b++) {
      const base = ids[b] * win;
      const o = b * rows * F;
      out.set(this.values.subarray(base + start * F, base + start * F + first), o);
      if (rest > 0) out.set(this.values.subarray(base, base + rest), o + first);
      if (outMask !== undefined) {
        outMask.set(this.mask.subarray(base + start * F, base + start * F + first), o);
        if (rest > 0) outMask.set(this.mask.subarray(base, base + rest), o + first);
      }
    }
    return count;
  }
}
