/**
 * Growing typed arrays, the one way every column store here (event batches, minute
 * store, per-symbol state, sequence store) makes room: a copy with the old contents
 * and the new tail set to `fill`.
 */
export type TypedArray = Float64Array | Float32Array | Int32Array | Int16Array | Int8Array | Uint8Array;

export function grown<T extends TypedArray>(old: T, length: number, fill = 0): T {
  const make = old.constructor as new (n: number) => T;
  const next = new make(length);
  if (fill !== 0) next.fill(fill, old.length);
  next.set(old as ArrayLike<number> & T);
  return next;
}

/** Capacity for `needed` elements, doubling from `current`. */
export function doubled(current: number, needed: number): number {
  let cap = Math.max(1, current);
  while (cap < needed) cap *= 2;
  return cap;
}
