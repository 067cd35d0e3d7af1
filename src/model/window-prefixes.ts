/**
 * The next close's windows, prepared while the market trades. Right after close t pushes
 * its rows, the window of close t+1 is known but for its last row: its first T-1 rows are
 * the store's newest T-1, and rows never change once pushed. `capture` marks them;
 * `start` copies them (for every symbol that can reach the coverage threshold with one
 * more row) and runs the recurrence over them, and at close t+1 `take` hands the prefix to
 * that close's job if exactly one row was pushed since (a restart, a reload or a skipped
 * close finds none: the close is scored on whole windows and the next one is prepared
 * again). The copy waits for `start` (serve calls it once close t is published) because
 * it is not free — about 8 ms at 5,000 symbols and T = 120, 2 ms at T = 40, idle — and
 * the rows stay in the store's ring until close t+1's push; a prefix never started is
 * copied from behind that push by `take`, and computed when the close needs it.
 */
import { FEATURE_COUNT } from '../features/feature-set.js';
import type { SequenceStore } from '../features/sequence-store.js';
import { stopwatch } from '../market/clock.js';
import type { IncrementalScoring, WindowPrefix } from './predictor.js';
import { pooled } from '../typed-arrays.js';

/** A captured prefix: which symbols, and their recurrent state once computed. */
export interface PreparedPrefix {
  /** store.pushed when it was captured: it extends to the window one push later. */
  readonly pushed: number;
  /** Symbols in prefix order (ascending ids), and each symbol's position (-1: none) for ids below `universe`. */
  readonly ids: Int32Array;
  readonly position: Int32Array;
  readonly universe: number;
  /** The computation (started by start() or by the job that needs it). */
  state(): Promise<WindowPrefix>;
  /** Its result once it is in (a close whose prefix is ready starts its step without waiting a turn). */
  readonly ready: WindowPrefix | undefined;
  /** Seconds the recurrence took, once done. */
  seconds: number;
  dispose(): void;
}

/** A capture not copied yet: the store's newest T-1 rows when store.pushed was `pushed`. */
interface Marked {
  readonly store: SequenceStore;
  readonly pushed: number;
  readonly universe: number;
}

export class WindowPrefixes {
  private pending: Capture | undefined;
  private marked: Marked | undefined;
  private readonly pool: Float32Array[] = [];

  constructor(
    private readonly steps: IncrementalScoring,
    private readonly T: number,
    private readonly minCoverage: number,
    private readonly allocate: (length: number) => Float32Array,
  ) {}

  /** Marks the first T-1 rows of the next close's windows (call right after a close's rows are pushed); start() copies them. */
  capture(store: SequenceStore, universe: number): void {
    this.pending?.dispose();
    this.pending = undefined;
    // Symbols seen since the store last grew have no rows yet: scored on their whole window.
    this.marked = { store, pushed: store.pushed, universe: Math.min(universe, store.capacity) };
  }

  /**
   * Copies the marked rows while they are in the store: `back` rows were pushed since the
   * mark (0 or 1; the ring holds T rows, so one push later they are still there).
   */
  private copy({ store, pushed, universe }: Marked, back: number): void {
    const P = this.T - 1;
    const candidates = new Int32Array(universe);
    const position = new Int32Array(universe).fill(-1);
    let n = 0;
    for (let s = 0; s < universe; s++) {
      // (present + 1) / T >= minCoverage, as coverage() will compare it with one more present row.
      if ((store.presentIn(s, P, back) + 1) / this.T >= this.minCoverage) {
        position[s] = n;
        candidates[n++] = s;
      }
    }
    // Nothing to prepare (no symbol yet): engines are not asked for an empty batch.
    if (n === 0) return;
    const ids = candidates.slice(0, n);
    const rows = pooled(this.pool, n * P * FEATURE_COUNT, this.allocate);
    store.fill(ids, n, rows, undefined, P, back);
    this.pending = new Capture(pushed, ids, position, universe, rows, this.steps, (buffer) => this.pool.push(buffer));
  }

  /** Copies a marked capture if its rows are still in the store (none pushed since, or one). */
  private copyMarked(): void {
    const m = this.marked;
    this.marked = undefined;
    if (m === undefined) return;
    const back = m.store.pushed - m.pushed;
    if (back === 0 || back === 1) this.copy(m, back);
  }

  /** The symbols (ids below this) the pending capture was taken for; 0 when none is pending. */
  get preparedUniverse(): number {
    return this.marked?.universe ?? this.pending?.universe ?? 0;
  }

  /** Whether the pending capture's recurrence is running: a new capture would queue behind it on the engine. */
  get computing(): boolean {
    return this.pending?.running === true;
  }

  /** Copies the captured rows and starts their recurrence, if any (idempotent). */
  start(): void {
    this.copyMarked();
    void this.pending?.state().catch(() => undefined);
  }

  /** The prefix of the window ending at the store's newest row, if one was captured a push ago; the caller owns it. */
  take(store: SequenceStore): PreparedPrefix | undefined {
    this.copyMarked();
    const p = this.pending;
    this.pending = undefined;
    if (p === undefined) return undefined;
    if (p.pushed === store.pushed - 1) return p;
    p.dispose();
    return undefined;
  }

  dispose(): void {
    this.marked = undefined;
    this.pending?.dispose();
    this.pending = undefined;
  }
}

class Capture implements PreparedPrefix {
  seconds = 0;
  ready: WindowPrefix | undefined;
  /** Started and not yet done. */
  running = false;
  private computed: Promise<WindowPrefix> | undefined;
  private disposed = false;

  constructor(
    readonly pushed: number,
    readonly ids: Int32Array,
    readonly position: Int32Array,
    readonly universe: number,
    private rows: Float32Array | undefined,
    private readonly steps: IncrementalScoring,
    private readonly release: (rows: Float32Array) => void,
  ) {}

  state(): Promise<WindowPrefix> {
    this.computed ??= this.compute();
    return this.computed;
  }

  private async compute(): Promise<WindowPrefix> {
    const rows = this.rows as Float32Array;
    const elapsed = stopwatch();
    this.running = true;
    try {
      const state = await this.steps.prefix(rows, this.ids.length);
      this.seconds = elapsed() / 1000;
      this.ready = state;
      return state;
    } finally {
      this.running = false;
      this.rows = undefined;
      this.release(rows);
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.computed === undefined) {
      if (this.rows !== undefined) this.release(this.rows);
      this.rows = undefined;
      return;
    }
    this.computed.then((s) => s.dispose()).catch(() => undefined);
  }
}
