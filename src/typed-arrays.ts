/**
 * Growing typed arrays, the one way every column store here (event batches, minute
 * store, per-symbol state, sequence store) makes room: a copy with the old contents
 * and the new tail set to `fill`; and the pools of batch buffers the scorer reuses.
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

/** A buffer of at least `size` floats from `pool` (a new one from `allocate` when the one there is smaller). */
export function pooled(pool: Float32Array[], size: number, allocate: (length: number) => Float32Array): Float32Array {
  const b = pool.pop();
  return b !== undefined && b.length >= size ? b : allocate(Math.max(size, b?.length ?? 0));
}
