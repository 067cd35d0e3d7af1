/**
 * Checkpointable state. Stateful parts of the pipeline (aggregator, minute store, bar
 * reducers, sequence stores, symbol table) expose `snapshot()`, a plain object of numbers,
 * arrays and typed arrays that `node:v8` serialises as is, and `restore()`. A snapshot
 * holds references, not copies: serialise it before the owner changes again.
 */
export type State = { readonly [field: string]: unknown };

/** The named fields of `owner`, by reference. */
export function captureFields<T extends object>(owner: T, fields: readonly string[]): State {
  const out: Record<string, unknown> = {};
  const o = owner as Record<string, unknown>;
  for (const f of fields) out[f] = o[f];
  return out;
}

/** Sets the named fields of `owner` from a snapshot, refusing one that lacks any of them. */
export function restoreFields<T extends object>(owner: T, state: State, fields: readonly string[], what: string): void {
  const o = owner as Record<string, unknown>;
  for (const f of fields) {
    if (!(f in state)) throw new Error(`checkpoint of ${what} lacks ${f}: written by another version?`);
    o[f] = state[f];
  }
}
