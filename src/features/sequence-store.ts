/**
 * Per-symbol ring buffers of the last T normalised feature rows. Every bar close pushes
 * one row for every symbol (missing bars push a masked row), so all rings advance in
 * lockstep and share one head. `fill` packs the [N, T, F] batch, oldest row first, with
 * two block copies per symbol and no per-row allocation.
 */
import { grown } from '../typed-arrays.js';
import { captureFields, restoreFields, type State } from './state.js';

const SEQUENCE_STORE_FIELDS = ['T', 'F', 'capacity', 'pushed', 'head', 'values', 'mask', 'present'];

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

  constructor(T: number, F: number, capacity = 16) {
    if (!(T > 0 && F > 0)) throw new RangeError('T and F must be positive');
    this.T = T;
    this.F = F;
    this.ensure(capacity);
  }

  ensure(capacity: number): void {
    if (capacity <= this.capacity) return;
    const cap = Math.max(capacity, this.capacity * 2);
    this.values = grown(this.values, cap * this.T * this.F);
    this.mask = grown(this.mask, cap * this.T * this.F);
    this.present = grown(this.present, cap * this.T);
    this.capacity = cap;
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
    this.head = (h + 1) % T;
    this.pushed++;
  }

  snapshot(): State {
    return captureFields(this, SEQUENCE_STORE_FIELDS);
  }

  restore(state: State): void {
    if (state.T !== this.T || state.F !== this.F) throw new Error(`checkpoint holds sequences of T=${String(state.T)}, F=${String(state.F)}; this run needs T=${this.T}, F=${this.F}`);
    restoreFields(this, state, SEQUENCE_STORE_FIELDS, 'a sequence store');
  }

  /** Fraction of the window's T rows whose bar was present. */
  coverage(s: number): number {
    const T = this.T;
    let k = 0;
    for (let t = 0; t < T; t++) k += this.present[s * T + t];
    return k / T;
  }

  /** How many of the newest `rows` rows of symbol s had their bar present. */
  presentIn(s: number, rows: number): number {
    const T = this.T;
    let k = 0;
    for (let r = 1; r <= rows; r++) k += this.present[s * T + ((this.head - r + T) % T)];
    return k;
  }

  /**
   * Fills `out` ([ids.length, rows, F], oldest first) and `outMask` with the newest `rows`
   * rows (the whole window by default) of the symbols `ids` (a subset, in batch order), two
   * block copies per symbol. Returns the number of sequences written.
   */
  fill(ids: ArrayLike<number>, count: number, out: Float32Array, outMask?: Uint8Array, rows = this.T): number {
    const { T, F } = this;
    const win = T * F;
    // The ring holds the oldest wanted row at `start`: rows [start, start + first), then [0, rest).
    const start = (this.head - rows + T) % T;
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
