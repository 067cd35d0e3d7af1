/**
 * Feeds simulator output through the same checks as any other source (checkTick /
 * checkBar set the slot and reject what is wrong) into a consumer, in runs of valid rows
 * without copying.
 */
import type { DecodeContext } from '../decode.js';
import type { BarBatch, TickBatch } from '../events.js';
import { acceptBar, acceptTick } from '../validate.js';

function feed<B extends TickBatch | BarBatch>(
  b: B,
  accept: (b: B, i: number, ctx: DecodeContext, origin: number, row: number) => boolean,
  ctx: DecodeContext,
  ingest: (b: B, from: number, to: number) => void,
  from: number,
  to: number,
): void {
  let run = from;
  for (let i = from; i < to; i++) {
    if (accept(b, i, ctx, i, -1)) continue;
    if (i > run) ingest(b, run, i);
    run = i + 1;
  }
  if (to > run) ingest(b, run, to);
}

export function feedTicks(b: TickBatch, ctx: DecodeContext, ingest: (b: TickBatch, from: number, to: number) => void, from = 0, to = b.length): void {
  feed(b, acceptTick, ctx, ingest, from, to);
}

export function feedBars(b: BarBatch, ctx: DecodeContext, ingest: (b: BarBatch, from: number, to: number) => void, from = 0, to = b.length): void {
  feed(b, acceptBar, ctx, ingest, from, to);
}
