/**
 * Checkpointable state. Stateful parts of the pipeline (aggregator, minute store, bar
 * reducers, sequence stores, symbol table) expose `snapshot()`, a typed object of numbers,
 * arrays and typed arrays that `node:v8` serialises as is, and `restore()`. A snapshot
 * holds references, not copies: serialise it before the owner changes again.
 *
 * The large stores also write increments (daemon/checkpoint.ts keeps a chain of them after
 * a full checkpoint): each is a [rows][columns][width] array of which only some columns
 * change between two checkpoints — the minute store's ring minutes, the sequence store's
 * ring rows, the bar reducer's same-slot volume history — so an increment holds those
 * columns (gathered for every row) and DirtyColumns tracks which they are.
 */
import type { TypedArray } from '../typed-arrays.js';

export type State = { readonly [field: string]: unknown };

/** The shape of a [rows][columns][width] array. */
export interface ColumnLayout {
  rows: number;
  columns: number;
  width: number;
}

/** Columns written since the last checkpoint was saved; all of them after a resize or a restore. */
export class DirtyColumns {
  private readonly marks: Uint8Array;
  private everything = true;

  constructor(readonly columns: number) {
    this.marks = new Uint8Array(columns);
  }

  mark(column: number): void {
    this.marks[column] = 1;
  }

  /** Everything changed (a resize, a restore): the next increment is a full snapshot. */
  markAll(): void {
    this.everything = true;
  }

  get all(): boolean {
    return this.everything;
  }

  /** The columns marked, ascending. */
  list(): number[] {
    const out: number[] = [];
    for (let c = 0; c < this.columns; c++) if (this.marks[c] === 1) out.push(c);
    return out;
  }

  /** After a checkpoint that holds the state as it is now was saved. */
  clear(): void {
    this.marks.fill(0);
    this.everything = false;
  }
}

/**
 * Copies `width` values from `from` at `at` to `to` at `o`. A cell is 1 to 16 values, so an
 * element loop: `set(subarray(...))` allocates a view per cell, and a checkpoint increment
 * copies hundreds of thousands of cells (5,000 symbols x the ring minutes written since).
 */
function copyCell<A extends TypedArray>(from: A, at: number, to: A, o: number, width: number): void {
  for (let k = 0; k < width; k++) to[o + k] = from[at + k];
}

/** Copies `which` columns of `a` (every row), [which][rows][width]. */
export function gatherColumns<A extends TypedArray>(a: A, layout: ColumnLayout, which: readonly number[]): A {
  const { rows, columns, width } = layout;
  const make = a.constructor as new (n: number) => A;
  const out = new make(which.length * rows * width);
  // Row by row: a row's cells are near each other in `a`, the columns far apart (one row of a minute ring is 60 x 16 values).
  const stride = rows * width;
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < which.length; j++) copyCell(a, (r * columns + which[j]) * width, out, j * stride + r * width, width);
  }
  return out;
}

/** Writes columns gathered by gatherColumns back into `a`. */
export function scatterColumns<A extends TypedArray>(a: A, layout: ColumnLayout, which: readonly number[], data: A): void {
  const { rows, columns, width } = layout;
  if (data.length !== which.length * rows * width) throw new Error(`a checkpoint increment holds ${data.length} values for ${which.length} columns of ${rows} rows of ${width}; expected ${which.length * rows * width}`);
  const stride = rows * width;
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < which.length; j++) copyCell(data, j * stride + r * width, a, (r * columns + which[j]) * width, width);
  }
}
