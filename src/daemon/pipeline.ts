/**
 * The daemon's deterministic core, independent of Kafka: input messages (topic,
 * partition, offset, headers, bytes) -> decode by content-type -> checks -> aggregation
 * -> bar close by watermark -> one batched inference per model -> score records, with
 * every rejected event turned into a dead-letter message. Given the same messages per
 * partition it produces the same outputs whatever order the partitions are read in, which
 * is what lets a restart from a checkpoint reproduce, not duplicate, its scores:
 *
 * - The watermark is the minimum over partitions of each partition's newest event time
 *   (a partition that has delivered everything it holds does not hold it back), minus the
 *   allowed lateness; a bar closes when the watermark passes its end.
 * - A partition may run ahead of the watermark by at most `maxAheadMs` of event time;
 *   messages beyond are decoded and held (the source pauses the partition) until the
 *   watermark catches up, so that the minute ring is never overrun.
 * - When every partition has delivered everything, the wall clock (minus a grace period)
 *   closes the bars of a quiet feed, up to the end of the newest event's trading day.
 */
import type { ErrorCode, Reject } from '../errors.js';
import type { Config } from '../config.js';
import { ArrowBarDecoder, ArrowTickDecoder } from '../ingest/arrow-codec.js';
import { codecOf, type DecodeContext } from '../ingest/decode.js';
import { BarBatch, copyBarRow, copyTickRow, SymbolTable, TickBatch } from '../ingest/events.js';
import { decodeBarJson } from '../ingest/json-codec.js';
import { decodeTickJsonBytes } from '../ingest/json-scan.js';
import { FeatureEngine, type BarCloseEvent } from '../features/engine.js';
import type { State } from '../features/state.js';
import type { TradingCalendar } from '../market/calendar.js';
import { DAY_CLOSE, type Freq } from '../market/sessions.js';
import { dayStart, localDay, msOfLocalDay } from '../market/time.js';
import { LiveIc, type LiveIcState } from '../eval/live-ic.js';
import type { ServingMeta } from '../model/artifact.js';
import type { CrossSectionScorer, ScoringJob } from '../model/scorer.js';
import type { Metrics } from '../sink/metrics.js';
import { scoreBatchMessage, scoreMessages, scoreRecords, type OutMessage, type ScoreRecord, type ScoreSource } from '../sink/scores.js';

/** One message from a partitioned source (Kafka, or the embedded simulator). */
export interface InputMessage {
  topic: string;
  partition: number;
  offset: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: Readonly<Record<string, string | undefined>>;
}

/** A model served by the pipeline. */
export interface ServedModel {
  dir: string;
  meta: ServingMeta;
  /** Scores on its engine (scorer.engine, scorer.backend). */
  scorer: CrossSectionScorer;
  /** live: published to the score topics; shadow: scored and measured, published to the shadow topic only. */
  role: 'live' | 'shadow';
  /** Why the engine or provider asked for is not in use ('' when it is). */
  fallback: string;
}

/** What the status page shows of one model: its last scored close and how it is doing. */
export interface ModelStatus {
  model: string;
  version: string;
  freq: Freq;
  engine: string;
  backend: string;
  role: 'live' | 'shadow';
  barEnd: number | null;
  scored: number;
  skipped: number;
  inferenceSeconds: number | null;
  /** Bar close to publish over the last 100 published closes (seconds). */
  latencyP50: number | null;
  latencyP99: number | null;
  liveIc: Record<string, { ic: number; mean: number; day: number }>;
  top: { symbol: string; score: number; z: number }[];
  bottom: { symbol: string; score: number; z: number }[];
}

/** The pipeline as the status page (/status.json) shows it. */
export interface PipelineStatus {
  now: number;
  watermark: number | null;
  eventsIngested: number;
  lastBarEnd: Partial<Record<Freq, number>>;
  models: ModelStatus[];
}

/** The outcome of one bar close for one model. */
export interface ScoredClose {
  source: ScoreSource;
  role: 'live' | 'shadow';
  records: ScoreRecord[];
  skipped: number;
  inferenceSeconds: number;
  /** Wall time (ms) the close was decided: the start of bar-close-to-publish latency. */
  closedAtMs: number;
}

export interface OutputBatch {
  topic: string;
  messages: OutMessage[];
}

export interface PipelineTopics {
  ticks: string;
  bars: string;
  scores: string;
  scoresBatch: string;
  deadLetter: string;
  /** Where shadow models' scores go (needed when a model has role shadow). */
  shadowScores?: string;
}

export interface PipelineOptions {
  config: Readonly<Config>;
  calendar: TradingCalendar;
  topics: PipelineTopics;
  models: ServedModel[];
  metrics: Metrics;
  /** Symbols known from the start (a fixed universe when `freeze`). */
  universe?: readonly string[];
  freezeUniverse?: boolean;
  /** Wall time in ms (the Clock). */
  now(): number;
  onBarClose?(e: BarCloseEvent): void;
}

interface HeldMessage {
  message: InputMessage;
  ticks: TickBatch | undefined;
  bars: BarBatch | undefined;
  maxTs: number;
  rejects: Reject[];
}

interface PartitionState {
  topic: string;
  partition: number;
  /** Newest event time ingested from this partition. */
  maxTs: number;
  /** Offset of the next message to ingest (what a commit records). */
  next: number;
  /** Whether the partition had nothing more to deliver when last asked. */
  caughtUp: boolean;
  held: HeldMessage[];
}

const partitionKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;
const EMPTY = Buffer.alloc(0);
/** A feed whose newest event is younger than this (wall clock) is live. */
const LIVE_WINDOW_MS = 3_600_000;

export class ScoringPipeline {
  readonly engine: FeatureEngine;
  /** Served models, live and shadow (replaceModel swaps one in place). */
  readonly models: ServedModel[];
  readonly topics: PipelineTopics;
  private readonly metrics: Metrics;
  private readonly latenessMs: number;
  private readonly graceMs: number;
  private readonly maxAheadMs: number;
  private readonly maxMessageBytes: number;
  private readonly now: () => number;
  private readonly partitions = new Map<string, PartitionState>();
  private readonly jobs: { model: ServedModel; job: ScoringJob; closedAtMs: number }[] = [];
  /** Realised IC of the served scores (factorstream_live_ic). */
  private readonly liveIc: LiveIc;
  /** Per model: what /status.json shows. */
  private readonly modelStatus = new Map<string, ModelStatus>();
  private readonly latencies = new Map<string, number[]>();
  private readonly lastBarEnd: Partial<Record<Freq, number>> = {};
  private readonly deadLetters: OutMessage[] = [];
  private readonly ticks = new TickBatch(4096);
  private readonly bars = new BarBatch(1024);
  private readonly arrowTicks = new ArrowTickDecoder();
  private readonly arrowBars = new ArrowBarDecoder();
  private readonly ctx: DecodeContext;
  /** Rejects of the message being decoded or applied. */
  private rejects: Reject[] = [];
  private watermark = -Infinity;
  /** Wall time (this.now()) events were last aggregated: the wall clock extrapolates from it. */
  private lastArrival = -1;
  /** Events aggregated, by topic and codec (a test reads it; the metric has the same). */
  ingested = 0;

  constructor(opts: PipelineOptions) {
    const { config } = opts;
    this.models = [...opts.models];
    this.topics = opts.topics;
    this.metrics = opts.metrics;
    this.now = opts.now;
    this.latenessMs = config.features.allowedLatenessMs;
    this.graceMs = config.daemon.wallClockGraceMs;
    this.maxAheadMs = config.daemon.maxAheadMs;
    this.maxMessageBytes = config.daemon.maxMessageBytes;
    const sequenceLength: Partial<Record<Freq, number>> = {};
    for (const m of opts.models) {
      const T = sequenceLength[m.meta.freq];
      if (T !== undefined && T !== m.meta.T) throw new Error(`models on ${m.meta.freq} need one sequence length; ${m.meta.name} has T=${m.meta.T}, another has T=${T}`);
      sequenceLength[m.meta.freq] = m.meta.T;
    }
    const freqs = [...new Set<Freq>([...config.features.freqs, ...opts.models.map((m) => m.meta.freq)])];
    const symbols = new SymbolTable(opts.universe ?? []);
    symbols.frozen = opts.freezeUniverse === true;
    this.engine = new FeatureEngine({
      calendar: opts.calendar,
      symbols,
      freqs,
      allowedLatenessMs: this.latenessMs,
      dedupWindow: config.features.dedupWindow,
      features: config.features,
      zClip: config.features.zClip,
      sequenceLength,
      eventTimeWatermark: false,
      onReject: (r) => this.rejects.push(r),
    });
    this.ctx = this.engine.context('');
    this.liveIc = new LiveIc(opts.calendar, (o) => {
      this.metrics.liveIc.set({ model: o.model, horizon: `${o.horizon}d` }, o.ic);
      this.metrics.liveIcMean.set({ model: o.model, horizon: `${o.horizon}d` }, o.mean);
      const st = this.modelStatus.get(o.model);
      if (st !== undefined) st.liveIc[`${o.horizon}d`] = { ic: o.ic, mean: o.mean, day: o.day };
    });
    const names = opts.models.map((m) => m.meta.name);
    const twice = names.find((n, i) => names.indexOf(n) !== i);
    if (twice !== undefined) throw new Error(`two served models are named ${twice}: a shadow candidate needs a name of its own in its meta.json (metrics, live IC and the status page are per name)`);
    if (opts.models.some((m) => m.role === 'shadow') && opts.topics.shadowScores === undefined) throw new Error('shadow models need a shadow scores topic');
    for (const m of opts.models) this.modelStatus.set(m.meta.name, this.initialStatus(m));
    this.engine.onBarClose((e) => {
      const closedAtMs = this.now();
      if (msOfLocalDay(e.bars.barEnd) === DAY_CLOSE) this.liveIc.dayClose(localDay(e.bars.barEnd), e.bars.close, e.bars.missing, e.bars.n);
      this.metrics.barsClosed.inc({ freq: e.bars.freq });
      this.lastBarEnd[e.bars.freq] = e.bars.barEnd;
      this.metrics.lastBarEnd.set({ freq: e.bars.freq }, e.bars.barEnd / 1000);
      for (const model of this.models) {
        if (model.meta.freq !== e.bars.freq || e.sequences === undefined) continue;
        const job = model.scorer.assemble(e.sequences, this.engine.symbols.names, e.bars.n, e.bars.barEnd);
        if (job === undefined) {
          this.metrics.symbolsScored.set({ model: model.meta.name }, 0);
          this.metrics.symbolsSkipped.set({ model: model.meta.name }, e.bars.n);
        } else this.jobs.push({ model, job, closedAtMs });
      }
      opts.onBarClose?.(e);
    });
  }

  private initialStatus(m: ServedModel): ModelStatus {
    return {
      model: m.meta.name,
      version: m.meta.version,
      freq: m.meta.freq,
      engine: m.scorer.engine,
      backend: m.scorer.backend,
      role: m.role,
      barEnd: null,
      scored: 0,
      skipped: 0,
      inferenceSeconds: null,
      latencyP50: null,
      latencyP99: null,
      liveIc: {},
      top: [],
      bottom: [],
    };
  }

  /**
   * Serves `next` in place of `current` (a new version of a model folder): same frequency
   * and sequence length, since the aggregation and windows are shared. Closes already
   * assembled are scored by the new model. Its live IC history carries on under its name.
   */
  replaceModel(current: ServedModel, next: ServedModel): void {
    const i = this.models.indexOf(current);
    if (i < 0) throw new Error(`model ${current.meta.name} is not served`);
    if (next.meta.freq !== current.meta.freq || next.meta.T !== current.meta.T) {
      throw new Error(`${next.dir}: the new version is ${next.meta.freq} T=${next.meta.T}, the served one ${current.meta.freq} T=${current.meta.T}; a different frequency or window needs a restart`);
    }
    if (next.meta.name !== current.meta.name && this.models.some((m) => m !== current && m.meta.name === next.meta.name)) throw new Error(`another served model is named ${next.meta.name}`);
    this.models[i] = next;
    for (const j of this.jobs) if (j.model === current) j.model = next;
    const st = this.modelStatus.get(current.meta.name);
    this.modelStatus.delete(current.meta.name);
    this.modelStatus.set(next.meta.name, { ...this.initialStatus(next), ...(st === undefined || next.meta.name !== current.meta.name ? {} : { liveIc: st.liveIc }) });
  }

  private partitionState(topic: string, partition: number): PartitionState {
    const key = partitionKey(topic, partition);
    let st = this.partitions.get(key);
    if (st === undefined) {
      st = { topic, partition, maxTs: -Infinity, next: -1, caughtUp: false, held: [] };
      this.partitions.set(key, st);
    }
    return st;
  }

  /** Declares a partition the source will deliver from `next` (before its first message), so that it holds the watermark back. */
  assign(topic: string, partition: number, next: number, caughtUp: boolean): void {
    const st = this.partitionState(topic, partition);
    if (st.next < 0) st.next = next;
    st.caughtUp = caughtUp && st.held.length === 0;
    this.advance();
  }

  /** Whether a partition has messages held back (the source should pause it). */
  holding(topic: string, partition: number): boolean {
    return (this.partitions.get(partitionKey(topic, partition))?.held.length ?? 0) > 0;
  }

  /** The source's view of a partition's end: caught up when nothing more is there to read. */
  setCaughtUp(topic: string, partition: number, caughtUp: boolean): void {
    const st = this.partitionState(topic, partition);
    const was = st.caughtUp;
    st.caughtUp = caughtUp;
    if (caughtUp !== was) this.advance();
  }

  /** One message (the embedded simulator, tests): see ingestBatch. */
  ingest(m: InputMessage): boolean {
    return this.ingestBatch([m]);
  }

  /**
   * Decodes and aggregates messages of one partition, in offset order. Consecutive
   * messages are aggregated as one run (one aggregator call, one watermark step); a run
   * ends before a message that is out of order by more than the allowed lateness, so that
   * the outcome is the one of a message at a time. A message too far ahead of the
   * watermark is held, with every later one of its partition, until the watermark
   * catches up. Returns false when messages are held (the source should pause the
   * partition).
   */
  ingestBatch(messages: readonly InputMessage[]): boolean {
    if (messages.length === 0) return true;
    const st = this.partitionState(messages[0].topic, messages[0].partition);
    const isBars = st.topic === this.topics.bars;
    const batch: TickBatch | BarBatch = isBars ? this.bars : this.ticks;
    this.runStart(st);
    let ingestedAll = true;
    for (const m of messages) {
      if (m.offset < st.next || m.offset <= this.runLastOffset) continue; // redelivered after a rebalance
      if (st.held.length > 0) {
        st.held.push(this.decodeHeld(m));
        ingestedAll = false;
        continue;
      }
      const rowStart = batch.length;
      const rejectStart = this.rejects.length;
      this.decodeInto(m, isBars);
      let min = Infinity;
      let max = -Infinity;
      for (let i = rowStart; i < batch.length; i++) {
        const ts = batch.ts[i];
        if (ts < min) min = ts;
        if (ts > max) max = ts;
      }
      if (max > this.watermark + this.latenessMs + this.maxAheadMs && !this.holdsBack(st)) {
        // Too far ahead: out of the run, held until the watermark catches up.
        const held = this.decodeHeld(m, rowStart, rejectStart);
        batch.length = rowStart;
        this.rejects.length = rejectStart;
        this.runFlush(st);
        st.held.push(held);
        st.caughtUp = false;
        ingestedAll = false;
        continue;
      }
      if (min < this.runMaxTs - this.latenessMs) {
        // Out of order beyond the lateness: what came before goes first, as it would alone.
        this.runFlush(st, rowStart, rejectStart);
      }
      this.runMessages.push(m);
      if (max > this.runMaxTs) this.runMaxTs = max;
      this.runLastOffset = m.offset;
    }
    this.runFlush(st);
    return ingestedAll;
  }

  /** Whether another partition, not this one, holds the watermark back (this one may then wait). */
  private holdsBack(st: PartitionState): boolean {
    for (const other of this.partitions.values()) if (other !== st && !other.caughtUp && other.maxTs < st.maxTs) return false;
    return true;
  }

  // The run: messages decoded into this.ticks / this.bars (rows from runRow) and this.rejects, not yet aggregated.
  private runMessages: InputMessage[] = [];
  private runRow = 0;
  private runMaxTs = -Infinity;
  private runLastOffset = -1;

  private runStart(st: PartitionState): void {
    this.ticks.clear();
    this.bars.clear();
    this.rejects = [];
    this.runMessages = [];
    this.runRow = 0;
    this.runMaxTs = st.maxTs;
    this.runLastOffset = st.next - 1;
  }

  /** Decodes one message, appending its rows to the run batch and its rejects to this.rejects. */
  private decodeInto(m: InputMessage, isBars: boolean): void {
    const value = m.value ?? EMPTY;
    const codec = codecOf(m.headers['content-type']);
    const reject = (code: ErrorCode, detail: string): void => {
      this.rejects.push({ code, detail, source: m.topic, partition: m.partition, offset: m.offset, row: -1, symbol: undefined });
    };
    if (value.length > this.maxMessageBytes) reject('E_OVERSIZED', `${value.length} bytes, more than daemon.maxMessageBytes = ${this.maxMessageBytes}`);
    else if (codec === undefined) reject('E_UNKNOWN_CONTENT_TYPE', `content-type ${JSON.stringify(m.headers['content-type'] ?? null)}`);
    else if (codec === 'json') {
      if (isBars) decodeBarJson(value.toString('utf8'), m.offset, this.bars, this.ctx);
      else decodeTickJsonBytes(value, 0, value.length, m.offset, this.ticks, this.ctx);
    } else if (isBars) this.arrowBars.decodeMessage(value, m.offset, this.bars, this.ctx);
    else this.arrowTicks.decodeMessage(value, m.offset, this.ticks, this.ctx);
  }

  /**
   * A held message with its own copy of its rows: those at [rowStart, end) of the run batch
   * with rejects from rejectStart, or (without them) decoded afresh.
   */
  private decodeHeld(m: InputMessage, rowStart?: number, rejectStart?: number): HeldMessage {
    const isBars = m.topic === this.topics.bars;
    const src: TickBatch | BarBatch = isBars ? this.bars : this.ticks;
    const from = rowStart ?? src.length;
    const firstReject = rejectStart ?? this.rejects.length;
    if (rowStart === undefined) this.decodeInto(m, isBars);
    let maxTs = -Infinity;
    for (let i = from; i < src.length; i++) if (src.ts[i] > maxTs) maxTs = src.ts[i];
    const n = Math.max(1, src.length - from);
    const ticks = isBars ? undefined : new TickBatch(n);
    const bars = isBars ? new BarBatch(n) : undefined;
    for (let i = from; i < src.length; i++) {
      if (ticks !== undefined) copyTickRow(this.ticks, i, ticks);
      else copyBarRow(this.bars, i, bars as BarBatch);
    }
    const rejects = this.rejects.slice(firstReject);
    if (rowStart === undefined) {
      src.length = from;
      this.rejects.length = firstReject;
    }
    return { message: m, ticks, bars, maxTs, rejects };
  }

  /** Aggregates the run up to row `upTo` (the rejects before rejectUpTo belong to it) and dead-letters its rejects. */
  private runFlush(st: PartitionState, upTo?: number, rejectUpTo?: number): void {
    const batch: TickBatch | BarBatch = st.topic === this.topics.bars ? this.bars : this.ticks;
    const end = upTo ?? batch.length;
    // The message whose rows start at upTo is not in runMessages yet: every run message is before it.
    if (this.runMessages.length === 0 && end === this.runRow) return;
    const carried = rejectUpTo === undefined ? [] : this.rejects.splice(rejectUpTo);
    this.aggregate(st, batch, this.runRow, end, this.runMessages);
    this.runRow = end;
    this.runMessages = [];
    this.rejects = carried;
    this.advance();
  }

  /** Held messages come back in order once the watermark caught up with them. */
  private applyHeld(st: PartitionState, h: HeldMessage): void {
    // It may run inside another partition's run: that run's rejects wait aside.
    const aside = this.rejects;
    this.rejects = [...h.rejects];
    const batch = (h.ticks ?? h.bars) as TickBatch | BarBatch;
    this.aggregate(st, batch, 0, batch.length, [h.message]);
    this.rejects = aside;
  }

  /**
   * Aggregates rows [from, to) of `batch`, decoded from `messages` of partition `st` (their
   * decode rejects in this.rejects, to which the aggregator adds its own), dead-letters
   * every reject, counts, and moves the partition's position and newest event time.
   */
  private aggregate(st: PartitionState, batch: TickBatch | BarBatch, from: number, to: number, messages: readonly InputMessage[]): void {
    const decodeRejects = this.rejects.length;
    if (to > from) {
      if (batch instanceof TickBatch) this.engine.ingestTicks(batch, from, to, st.topic, st.partition);
      else this.engine.ingestBars(batch, from, to, st.topic, st.partition);
      this.lastArrival = this.now();
    }
    const rows = to - from;
    this.countIngested(st.topic, messages, rows - (this.rejects.length - decodeRejects));
    this.deadLetterAll(messages, this.rejects);
    this.ingested += rows;
    const last = messages[messages.length - 1];
    if (last !== undefined) st.next = last.offset + 1;
    for (let i = from; i < to; i++) if (batch.ts[i] > st.maxTs) st.maxTs = batch.ts[i];
  }

  private countIngested(topic: string, messages: readonly InputMessage[], valid: number): void {
    if (valid <= 0 || messages.length === 0) return;
    // One metric update per run and format (label lookups are not free per message).
    const format = codecOf(messages[0].headers['content-type']) ?? 'unknown';
    if (messages.every((m) => m.headers['content-type'] === messages[0].headers['content-type'])) {
      this.metrics.eventsIngested.inc({ topic, format }, valid);
      return;
    }
    this.metrics.eventsIngested.inc({ topic, format: 'mixed' }, valid);
  }

  /** Dead letters of a run: one per (message, error code), found by the rejects' offsets. */
  private deadLetterAll(messages: readonly InputMessage[], rejects: readonly Reject[]): void {
    if (rejects.length === 0) return;
    const byOffset = new Map<number, Reject[]>();
    for (const r of rejects) {
      let list = byOffset.get(r.offset);
      if (list === undefined) byOffset.set(r.offset, (list = []));
      list.push(r);
    }
    for (const m of messages) {
      const list = byOffset.get(m.offset);
      if (list !== undefined) this.deadLetter(m, list);
    }
  }

  /** One dead letter per (message, error code): the original bytes and headers, plus where and why. */
  private deadLetter(m: InputMessage, rejects: readonly Reject[]): void {
    const byCode = new Map<ErrorCode, Reject[]>();
    for (const r of rejects) {
      this.metrics.eventsInvalid.inc({ code: r.code });
      if (r.code === 'E_LATE') this.metrics.lateEvents.inc();
      let list = byCode.get(r.code);
      if (list === undefined) byCode.set(r.code, (list = []));
      list.push(r);
    }
    for (const [code, list] of byCode) {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(m.headers)) if (v !== undefined) headers[k] = v;
      headers.error = code;
      headers['error-detail'] = list[0].detail.slice(0, 500);
      headers['error-count'] = String(list.length);
      const rows = list.filter((r) => r.row >= 0).map((r) => r.row);
      if (rows.length > 0) headers['error-rows'] = rows.slice(0, 1000).join(',');
      headers['source-topic'] = m.topic;
      headers['source-partition'] = String(m.partition);
      headers['source-offset'] = String(m.offset);
      this.deadLetters.push({ key: m.key, value: m.value ?? EMPTY, headers });
      this.metrics.deadLetters.inc({ code });
    }
  }

  /** Recomputes the watermark, closes what it passed, and releases held messages it caught up with. */
  private advance(): void {
    for (;;) {
      let min = Infinity;
      let max = -Infinity;
      let open = 0;
      for (const st of this.partitions.values()) {
        if (st.maxTs > max) max = st.maxTs;
        if (st.caughtUp) continue;
        open++;
        if (st.maxTs < min) min = st.maxTs;
      }
      const eventTime = open === 0 ? max : min;
      if (eventTime === -Infinity) return;
      this.moveTo(eventTime - this.latenessMs);
      let released = false;
      for (const st of this.partitions.values()) {
        while (st.held.length > 0 && (st.held[0].maxTs <= this.watermark + this.latenessMs + this.maxAheadMs || this.holdsBack(st))) {
          this.applyHeld(st, st.held.shift() as HeldMessage);
          released = true;
        }
      }
      if (!released) return;
    }
  }

  private moveTo(watermark: number): void {
    if (watermark <= this.watermark) return;
    this.watermark = watermark;
    this.engine.advanceWatermark(watermark);
  }

  /**
   * The wall clock closes the bars of a quiet feed, once every partition has delivered
   * everything: bars whose end plus the grace period has passed close, up to the end of
   * the newest event's trading day. A live feed (newest event within the last hour) runs
   * on the wall clock itself; for a replay of older data, event time is taken to advance
   * at wall-clock pace from the newest event since it arrived, so a replay at any speed is
   * never overtaken, and its last bar closes a grace period after its last event.
   */
  wallClock(now: number): void {
    let max = -Infinity;
    for (const st of this.partitions.values()) {
      if (!st.caughtUp) return;
      if (st.maxTs > max) max = st.maxTs;
    }
    if (max === -Infinity || this.lastArrival < 0) return;
    const live = now >= max && now - max < LIVE_WINDOW_MS;
    const eventNow = live ? now : max + Math.max(0, now - this.lastArrival);
    this.moveTo(Math.min(eventNow - this.graceMs, dayStart(localDay(max)) + DAY_CLOSE + 1));
  }

  get currentWatermark(): number {
    return this.watermark;
  }

  /** Bar closes waiting for inference. */
  get pendingCloses(): number {
    return this.jobs.length;
  }

  /** Whether anything awaits publishing. */
  get hasOutput(): boolean {
    return this.jobs.length > 0 || this.deadLetters.length > 0;
  }

  /**
   * Runs the queued inferences (in close order) and returns everything to publish since the
   * last call. The caller must not feed the pipeline until it resolves (serve runs both
   * under one lock), so that the state snapshot taken after it matches the outputs.
   */
  async takeOutputs(): Promise<{ closes: ScoredClose[]; batches: OutputBatch[] }> {
    const closes: ScoredClose[] = [];
    const batches: OutputBatch[] = [];
    for (const { model, job, closedAtMs } of this.jobs.splice(0)) {
      const cs = await model.scorer.run(job);
      if (msOfLocalDay(job.barEnd) === DAY_CLOSE) this.liveIc.dayScores(model.meta.name, localDay(job.barEnd), job.ids, cs.score);
      const source: ScoreSource = { model: model.meta.name, modelVersion: model.meta.version, freq: model.meta.freq };
      const records = scoreRecords(cs, this.engine.symbols.names, source);
      const name = model.meta.name;
      this.metrics.inference.observe({ model: name, engine: model.scorer.engine }, cs.inferenceSeconds);
      this.metrics.batchSize.set({ model: name }, job.n);
      this.metrics.symbolsScored.set({ model: name }, job.n);
      this.metrics.symbolsSkipped.set({ model: name }, job.universe - job.n);
      // One ascending order of the scores serves the quantile gauges and the status page's top and bottom.
      const order = Int32Array.from(cs.score.keys()).sort((a, b) => cs.score[a] - cs.score[b]);
      for (const q of [0.05, 0.25, 0.5, 0.75, 0.95]) this.metrics.lastScore.set({ model: name, quantile: String(q) }, cs.score[order[Math.min(order.length - 1, Math.floor(q * order.length))]]);
      const st = this.modelStatus.get(name);
      if (st !== undefined) {
        const brief = (i: number): { symbol: string; score: number; z: number } => ({ symbol: records[i].symbol, score: records[i].score, z: records[i].z });
        Object.assign(st, { barEnd: job.barEnd, scored: job.n, skipped: job.universe - job.n, inferenceSeconds: cs.inferenceSeconds, top: Array.from(order.slice(-5).reverse(), brief), bottom: Array.from(order.slice(0, 5), brief) });
      }
      closes.push({ source, role: model.role, records, skipped: job.universe - job.n, inferenceSeconds: cs.inferenceSeconds, closedAtMs });
      if (model.role === 'shadow') {
        batches.push({ topic: this.topics.shadowScores as string, messages: scoreMessages(records, source) });
      } else {
        batches.push({ topic: this.topics.scores, messages: scoreMessages(records, source) });
        batches.push({ topic: this.topics.scoresBatch, messages: [scoreBatchMessage(records, source)] });
      }
    }
    if (this.deadLetters.length > 0) batches.push({ topic: this.topics.deadLetter, messages: this.deadLetters.splice(0) });
    return { closes, batches };
  }

  /** Counts a close as published (scores, close-to-publish latency); returns the latency in seconds. */
  markPublished(c: ScoredClose): number {
    const latency = (this.now() - c.closedAtMs) / 1000;
    this.metrics.closeToPublish.observe({ model: c.source.model, freq: c.source.freq }, latency);
    this.metrics.scoresPublished.inc({ model: c.source.model }, c.records.length);
    const recent = this.latencies.get(c.source.model) ?? [];
    recent.push(latency);
    if (recent.length > 100) recent.shift();
    this.latencies.set(c.source.model, recent);
    const st = this.modelStatus.get(c.source.model);
    if (st !== undefined) {
      const sorted = [...recent].sort((a, b) => a - b);
      st.latencyP50 = sorted[Math.floor(0.5 * (sorted.length - 1))];
      st.latencyP99 = sorted[Math.ceil(0.99 * (sorted.length - 1))];
    }
    return latency;
  }

  /** What the status page shows (a copy). */
  status(): PipelineStatus {
    return {
      now: this.now(),
      watermark: Number.isFinite(this.watermark) ? this.watermark : null,
      eventsIngested: this.ingested,
      lastBarEnd: { ...this.lastBarEnd },
      models: [...this.modelStatus.values()].map((m) => structuredClone(m)),
    };
  }

  /** Next offsets per partition: what a commit records together with the outputs. */
  positions(): { topic: string; partition: number; offset: number }[] {
    const out: { topic: string; partition: number; offset: number }[] = [];
    for (const st of this.partitions.values()) if (st.next >= 0) out.push({ topic: st.topic, partition: st.partition, offset: st.next });
    return out.sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1));
  }

  /** Lag per partition given the partition ends (high watermarks). */
  lag(ends: ReadonlyMap<string, number>): { topic: string; partition: number; lag: number }[] {
    const out: { topic: string; partition: number; lag: number }[] = [];
    for (const st of this.partitions.values()) {
      const end = ends.get(partitionKey(st.topic, st.partition));
      if (end !== undefined) out.push({ topic: st.topic, partition: st.partition, lag: Math.max(0, end - Math.max(0, st.next)) });
    }
    return out;
  }

  /** Everything a restart needs, taken between messages (no held message is part of it). */
  snapshot(): State {
    return {
      engine: this.engine.snapshot(),
      liveIc: this.liveIc.snapshot(),
      watermark: this.watermark,
      partitions: [...this.partitions.values()].map((p) => ({ topic: p.topic, partition: p.partition, maxTs: p.maxTs, next: p.next })),
    };
  }

  restore(state: State): void {
    this.engine.restore(state.engine as State);
    // Checkpoints written before live IC existed have none.
    if (state.liveIc !== undefined) this.liveIc.restore(state.liveIc as LiveIcState);
    this.watermark = state.watermark as number;
    // The wall clock extrapolates from the restart: a day whose last bar was pending closes without new data.
    this.lastArrival = this.now();
    for (const p of state.partitions as { topic: string; partition: number; maxTs: number; next: number }[]) {
      const st = this.partitionState(p.topic, p.partition);
      st.maxTs = p.maxTs;
      st.next = p.next;
    }
  }
}

export { partitionKey };
