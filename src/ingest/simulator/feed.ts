/**
 * Feeds simulator output through the same checks as any other source (checkTick /
 * checkBar set the slot and reject what is wrong) into a consumer, in runs of valid rows
 * without copying.
 */
import { codeOf, type DecodeContext } from '../decode.js';
import type { BarBatch, TickBatch } from '../events.js';
import { checkBar, checkTick } from '../validate.js';

function feed<B extends TickBatch | BarBatch>(
  b: B,
  check: (b: B, i: number, calendar: DecodeContext['calendar']) => number,
  ctx: DecodeContext,
  ingest: (b: B, from: number, to: number) => void,
  from: number,
  to: number,
): void {
  let run = from;
  for (let i = from; i < to; i++) {
    const slot = check(b, i, ctx.calendar);
    if (slot >= 0) {
      b.slot[i] = slot;
      continue;
    }
    if (i > run) ingest(b, run, i);
    ctx.reject(codeOf(slot), `simulated event rejected at ts ${b.ts[i]}`, i, -1, ctx.symbols.names[b.symbol[i]]);
    run = i + 1;
  }
  if (to > run) ingest(b, run, to);
}

export function feedTicks(b: TickBatch, ctx: DecodeContext, ingest: (b: TickBatch, from: number, to: number) => void, from = 0, to = b.length): void {
  feed(b, checkTick, ctx, ingest, from, to);
}

export function feedBars(b: BarBatch, ctx: DecodeContext, ingest: (b: BarBatch, from: number, to: number) => void, from = 0, to = b.length): void {
  feed(b, checkBar, ctx, ingest, from, to);
}
