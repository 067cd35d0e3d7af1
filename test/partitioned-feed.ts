/**
 * Test harness for the daemon's event-time invariant without Kafka: a simulated market as
 * the messages of N partitions (symbols spread by any rule, JSON or Arrow per partition),
 * delivered to a ScoringPipeline on a schedule a test chooses — fetch sizes, which
 * partition goes next, wall-clock steps, restarts from a serialised snapshot — and the
 * reference it must equal: the same events read in time order by the offline engine, as
 * `factorstream features` reads them (FeatureEngine with its own event-time watermark).
 */
import { deserialize, serialize } from 'node:v8';
import type { Config } from '../src/config.js';
import type { ServedModel } from '../src/daemon/models.js';
import { ScoringPipeline, type InputMessage, type PipelineState } from '../src/daemon/pipeline.js';
import { FeatureEngine, type BarCloseEvent } from '../src/features/engine.js';
import { FEATURE_COUNT } from '../src/features/feature-set.js';
import { ArrowBarDecoder, ArrowTickDecoder, encodeBarsArrow, encodeTicksArrow } from '../src/ingest/arrow-codec.js';
import { BarBatch, barRecordAt, copyBarRow, copyTickRow, SymbolTable, TickBatch, tickRecordAt } from '../src/ingest/events.js';
import { encodeTickJson } from '../src/ingest/json-codec.js';
import { MarketSimulator } from '../src/ingest/simulator/market.js';
import type { ErrorCode } from '../src/errors.js';
import { Metrics } from '../src/sink/metrics.js';
import { calendar } from './helpers.js';

export const TOPICS = { ticks: 'md.ticks', bars: 'md.bars.1m', scores: 'factor.scores', scoresBatch: 'factor.scores.batch', deadLetter: 'md.deadletter' };

export interface Market {
  source: 'ticks' | 'bars';
  /** Every event in time order (one of the two batches is used). */
  ticks: TickBatch;
  bars: BarBatch;
  symbols: SymbolTable;
}

/** A simulated market's ticks (or 1-minute bars) over `days`, in time order. */
export function simulatedMarket(opts: { symbols: number; days: number; seed: number; tradesPerDay?: number; snapshotIntervalSec?: number; source?: 'ticks' | 'bars' }): Market {
  const sim = new MarketSimulator({ symbols: opts.symbols, days: opts.days, seed: opts.seed, tradesPerDay: opts.tradesPerDay ?? 120, snapshotIntervalSec: opts.snapshotIntervalSec ?? 3, start: '2026-11-23' }, calendar);
  const ticks = new TickBatch();
  const bars = new BarBatch();
  for (let d = 0; d < sim.days.length; d++) {
    for (const m of sim.generateDay(d)) {
      for (let i = 0; i < m.ticks.length; i++) copyTickRow(m.ticks, i, ticks);
      for (let i = 0; i < m.bars.length; i++) copyBarRow(m.bars, i, bars);
    }
  }
  return { source: opts.source ?? 'ticks', ticks, bars, symbols: sim.symbols };
}

/**
 * The market as messages of `partitions` partitions: `partitionOf` places each symbol;
 * `format(p)` is `json` (one event a message) or `arrow` (up to `arrowRows` consecutive
 * events of the partition a message, spanning at most `maxSpanMs` of event time, so that
 * one message may span many bars).
 */
export interface Partitioned {
  parts: InputMessage[][];
  /** Event time each message could first be produced at (its last event's), per partition. */
  producedAt: number[][];
}

export function partitionMessages(market: Market, partitions: number, partitionOf: (symbol: string) => number, format: (p: number) => 'json' | 'arrow', arrowRows = 500, maxSpanMs = Infinity): Partitioned {
  const topic = market.source === 'ticks' ? TOPICS.ticks : TOPICS.bars;
  const out: InputMessage[][] = Array.from({ length: partitions }, () => []);
  const producedAt: number[][] = Array.from({ length: partitions }, () => []);
  const open: (TickBatch | BarBatch)[] = Array.from({ length: partitions }, () => (market.source === 'ticks' ? new TickBatch() : new BarBatch()));
  const push = (p: number, value: Buffer, contentType: string, key: string | null, at: number): void => {
    out[p].push({ topic, partition: p, offset: out[p].length, key: key === null ? null : Buffer.from(key), value, headers: { 'content-type': contentType } });
    producedAt[p].push(at);
  };
  // An Arrow message is sent when full (at its last event), or by a time-based flush at its first event + maxSpanMs.
  const flush = (p: number, at: number): void => {
    const b = open[p];
    if (b.length === 0) return;
    const bytes = b instanceof TickBatch ? encodeTicksArrow(b, market.symbols) : encodeBarsArrow(b, market.symbols);
    push(p, Buffer.from(bytes), 'application/vnd.apache.arrow.stream', null, Math.min(at, b.ts[0] + maxSpanMs));
    b.clear();
  };
  const src = market.source === 'ticks' ? market.ticks : market.bars;
  for (let i = 0; i < src.length; i++) {
    const symbol = market.symbols.names[src.symbol[i]];
    const p = partitionOf(symbol);
    if (format(p) === 'json') {
      const text = src instanceof TickBatch ? encodeTickJson(tickRecordAt(src, market.symbols, i)) : JSON.stringify(barRecordAt(src, market.symbols, i));
      push(p, Buffer.from(text), 'application/json', symbol, src.ts[i]);
    } else {
      const b = open[p];
      if (b.length > 0 && src.ts[i] - b.ts[0] > maxSpanMs) flush(p, src.ts[i]);
      if (b instanceof TickBatch) copyTickRow(src as TickBatch, i, b);
      else copyBarRow(src as BarBatch, i, b);
      if (b.length >= arrowRows) flush(p, src.ts[i]);
    }
  }
  for (let p = 0; p < partitions; p++) flush(p, open[p].length > 0 ? open[p].ts[open[p].length - 1] : 0);
  return { parts: out, producedAt };
}

/** A close as text: every present symbol's bar, raw and normalised features (by symbol name, so that interning order does not matter). */
export function closeDigest(e: BarCloseEvent, names: readonly string[]): string {
  const b = e.bars;
  const rows: string[] = [];
  const f = (x: number): string => (Number.isNaN(x) ? 'NaN' : x.toPrecision(10));
  for (let s = 0; s < b.n; s++) {
    if (b.missing[s] === 1) continue;
    const feats: string[] = [];
    for (let k = 0; k < FEATURE_COUNT; k++) {
      const o = s * FEATURE_COUNT + k;
      feats.push(b.featureMask[o] === 1 ? `${f(b.features[o])}/${f(e.normalized[o])}` : '-');
    }
    rows.push([names[s], f(b.open[s]), f(b.high[s]), f(b.low[s]), f(b.close[s]), f(b.volume[s]), f(b.amount[s]), f(b.trades[s]), b.limit[s], feats.join(' ')].join(','));
  }
  return `${b.freq} ${b.barEnd}\n${rows.sort().join('\n')}`;
}

/** The reference: the same events in time order through the offline engine, every bar up to the last day's close. */
export function offlineCloses(market: Market, config: Readonly<Config>): { closes: string[]; rejected: Map<ErrorCode, number> } {
  const symbols = new SymbolTable();
  const engine = new FeatureEngine({
    calendar,
    symbols,
    freqs: config.features.freqs,
    allowedLatenessMs: config.features.allowedLatenessMs,
    dedupWindow: config.features.dedupWindow,
    features: config.features,
    zClip: config.features.zClip,
    onReject: () => undefined,
  });
  const closes: string[] = [];
  engine.onBarClose((e) => closes.push(closeDigest(e, symbols.names)));
  // Through the same codec and checks as a file: the whole market as one Arrow stream, decoded into this engine's symbol table.
  const src = market.source === 'ticks' ? market.ticks : market.bars;
  const bytes = src instanceof TickBatch ? encodeTicksArrow(src, market.symbols) : encodeBarsArrow(src, market.symbols);
  const ctx = engine.context('offline');
  if (src instanceof TickBatch) {
    const decoded = new TickBatch(src.length);
    new ArrowTickDecoder().decodeMessage(bytes, 0, decoded, ctx);
    engine.ingestTicks(decoded, 0, decoded.length, 'offline');
  } else {
    const decoded = new BarBatch(src.length);
    new ArrowBarDecoder().decodeMessage(bytes, 0, decoded, ctx);
    engine.ingestBars(decoded, 0, decoded.length, 'offline');
  }
  engine.flush();
  return { closes, rejected: engine.rejected };
}

/** A seeded generator (Park–Miller): schedules are reproducible from the seed a failure prints. */
export function rng(seed: number): () => number {
  let s = seed % 2_147_483_647;
  if (s <= 0) s += 2_147_483_646;
  return () => (s = (s * 48_271) % 2_147_483_647) / 2_147_483_647;
}

export interface Schedule {
  /** Picks the next partition among those that may deliver (not paused, messages left). */
  pick(candidates: number[]): number;
  /** Messages in the next fetch. */
  fetchSize(): number;
  /** Wall time that passes before the next fetch (ms). */
  step(): number;
  /** Whether to crash and restart from the last checkpoint before this fetch. */
  restart(): boolean;
  /** A live producer writes each message when the event clock reaches its time, the event clock running this many times the wall clock; Infinity: a backlog, everything in the broker from the start. */
  speed: number;
}

export interface DeliveryResult {
  closes: string[];
  scores: string[];
  ingested: number;
  rejected: Map<string, number>;
  restarts: number;
}

/**
 * Delivers the partitions' messages to pipelines as serve would: fetches from unpaused
 * partitions, the source's caught-up flag from what has been produced so far (a live
 * producer writes messages in event-time order as its clock runs, see Schedule.speed),
 * Clock alarms when nothing can be fetched; a restart replaces the pipeline with one restored
 * from the checkpoint chain (a full state and the increments of each commit after it, as
 * serve writes them: taken after a close's outputs are drained) and
 * rewinds each partition to the checkpoint's positions. Only outputs drained before a
 * checkpoint count as published, as in serve.
 */
export async function deliver(feed: Partitioned, config: Readonly<Config>, models: ServedModel[], schedule: Schedule): Promise<DeliveryResult> {
  const { parts, producedAt } = feed;
  const topic = parts.find((p) => p.length > 0)?.[0].topic ?? TOPICS.ticks;
  let now = Date.parse('2026-11-23T09:00:00+08:00');
  const published: { closes: string[]; scores: string[] } = { closes: [], scores: [] };
  let pending: { closes: string[]; scores: string[] } = { closes: [], scores: [] };
  const make = (): ScoringPipeline => {
    const p: ScoringPipeline = new ScoringPipeline({ config, calendar, topics: TOPICS, models, metrics: new Metrics({ defaultMetrics: false }), now: () => now, onBarClose: (e) => pending.closes.push(closeDigest(e, p.engine.symbols.names)) });
    return p;
  };
  // Production order: by the event time a message could be produced at, partition order on ties.
  const production = parts.flatMap((msgs, p) => msgs.map((_, k) => ({ p, at: producedAt[p][k] }))).sort((a, b) => a.at - b.at || a.p - b.p);
  const producedOf = parts.map(() => 0);
  let produced = 0;
  const start = now;
  const firstEvent = production[0]?.at ?? 0;
  const produce = (): void => {
    const eventClock = firstEvent + (now - start) * schedule.speed;
    while (produced < production.length && (schedule.speed === Infinity || production[produced].at <= eventClock)) producedOf[production[produced++].p]++;
  };
  let pipeline = make();
  const cursor = parts.map(() => 0);
  // What the source knows of each partition's end: learnt with each fetch of it (the
  // batch's high watermark) and from a refresh of all ends once a second, as serve does,
  // and at once when a close waits only for that look (after a fetch or an alarm).
  // Between the two a partition can look caught up while its producer has written more.
  const knownEnd = parts.map(() => 0);
  let refreshedAt = -Infinity;
  const refresh = (force: boolean): void => {
    if (!force) {
      if (now - refreshedAt < 1_000) return;
      refreshedAt = now;
      // The rest of serve's housekeeping round that reaches the pipeline.
      pipeline.prepareForNewSymbols();
    }
    for (let q = 0; q < parts.length; q++) knownEnd[q] = producedOf[q];
    // serve's housekeeping tells the pipeline every partition's state, changed or not: each is a fresh look at the end.
    told = [];
  };
  // The source tells the pipeline when a partition's caught-up state changes, and all of them at a refresh.
  let told: boolean[] = [];
  const syncCaughtUp = (pl: ScoringPipeline): void => {
    for (let q = 0; q < parts.length; q++) {
      const caughtUp = cursor[q] >= knownEnd[q];
      if (told[q] !== caughtUp) pl.setCaughtUp(topic, q, caughtUp);
      told[q] = caughtUp;
    }
  };
  // serve looks at the ends at once when a close waits only for that (after a fetch, an alarm).
  const lookIfAwaited = (): void => {
    if (!pipeline.awaitingEnds()) return;
    refresh(true);
    syncCaughtUp(pipeline);
  };
  for (let p = 0; p < parts.length; p++) pipeline.assign(topic, p, 0, false);
  // The checkpoint chain as serve writes it: a full state, then increments (a full one again every 8, and first after a restart).
  let checkpoint: Buffer[] = [serialize(pipeline.snapshot())];
  pipeline.saved();
  const save = (): void => {
    if (checkpoint.length >= 8) checkpoint = [serialize(pipeline.snapshot('full'))];
    else checkpoint.push(serialize(pipeline.snapshot('increment')));
    pipeline.saved();
  };
  let restarts = 0;
  let fetches = 0;
  // Fetches and closes so far, and when they last moved: a stall guard.
  let progress = 0;
  let progressAt = now;
  const commit = async (): Promise<void> => {
    for (const c of (await pipeline.takeOutputs()).closes) for (const r of c.records) pending.scores.push(`${r.symbol}|${r.barEnd}|${r.freq}|${r.model}|${r.score}|${r.z}|${r.rank}|${r.coverage}`);
    published.closes.push(...pending.closes);
    published.scores.push(...pending.scores);
    pending = { closes: [], scores: [] };
    save();
    pipeline.startPrefixes();
  };
  // A discrete-event loop: Clock alarms fire at their time, before any later fetch; an
  // idle consumer waits for the next message produced or the next alarm, whichever is first.
  let target = now;
  for (;;) {
    const at = pipeline.nextAlarm();
    if (at <= target) {
      now = Math.max(now, at);
      pipeline.advanceTime();
      lookIfAwaited();
      await commit();
      continue;
    }
    now = target;
    produce();
    refresh(false);
    if (schedule.restart()) {
      restarts++;
      pending = { closes: [], scores: [] };
      pipeline = make();
      // Copies: node:v8 deserialises typed arrays as views of the bytes it reads, which the restored state then writes to.
      pipeline.restoreChain(checkpoint.map((b) => deserialize(Buffer.from(b)) as PipelineState));
      checkpoint = [serialize(pipeline.snapshot('full'))];
      pipeline.saved();
      for (const pos of pipeline.positions()) cursor[pos.partition] = pos.offset;
      for (let p = 0; p < parts.length; p++) pipeline.assign(topic, p, cursor[p], false);
      told = [];
    }
    syncCaughtUp(pipeline);
    const candidates: number[] = [];
    for (let p = 0; p < parts.length; p++) if (cursor[p] < producedOf[p] && !pipeline.holding(topic, p)) candidates.push(p);
    if (candidates.length === 0) {
      const nextProduced = produced < production.length ? start + Math.ceil((production[produced].at - firstEvent) / schedule.speed) : Infinity;
      const left = parts.reduce((n, msgs, p) => n + msgs.length - cursor[p], 0);
      const held = parts.reduce((n, _, p) => n + (pipeline.holding(topic, p) ? 1 : 0), 0);
      // While anything is left to read or waits for a close, the source refreshes the ends once a second, as serve's housekeeping does.
      const alarm = pipeline.nextAlarm();
      const moved = fetches + published.closes.length + pending.closes.length;
      if (moved !== progress) [progress, progressAt] = [moved, now];
      if (left + held > 0 && nextProduced === Infinity && alarm === Infinity && now - progressAt > 60_000) throw new Error(`stalled with ${left} messages undelivered and ${held} partitions holding rows: no alarm due, and a minute of refreshes moved nothing`);
      target = Math.min(nextProduced, alarm, left + held > 0 ? refreshedAt + 1_000 : Infinity);
      if (target === Infinity) break;
      continue;
    }
    const p = schedule.pick(candidates);
    const end = Math.min(producedOf[p], cursor[p] + schedule.fetchSize());
    pipeline.ingestBatch(parts[p].slice(cursor[p], end));
    cursor[p] = end;
    knownEnd[p] = producedOf[p];
    syncCaughtUp(pipeline);
    lookIfAwaited();
    // serve commits at every close and every commitIntervalMs between closes.
    if (pending.closes.length > 0 || ++fetches % 50 === 0) await commit();
    target = now + schedule.step();
  }
  await commit();
  const rejected = new Map<string, number>();
  for (const [code, n] of pipeline.engine.rejected) rejected.set(code, n);
  return { closes: published.closes, scores: published.scores, ingested: pipeline.ingested, rejected, restarts };
}
