/**
 * The daemon's deterministic core, independent of Kafka: messages of partitioned input
 * (topic, partition, offset, headers, bytes) in, score records and dead letters out. The
 * embedded default and `serve` both run it; this file is the orchestration:
 *
 *   message -> PartitionInput (decode by content-type, rows wait in offset order)
 *           -> EventTime (per-partition watermarks, idleness, the quiet-feed clock)
 *              admits the rows that belong before the next bar close
 *           -> FeatureEngine (aggregation, bar close, features, sequences)
 *           -> one batched inference per model and close -> score records, by role
 *   completed message -> dead letters (one per error code) and counts
 *
 * The invariant (DESIGN §7): whatever the delivery schedule — fetch sizes, partition
 * interleaving, backlogs, restarts — every row is aggregated between exactly the bar
 * closes it would be between if all events were read in time order, which is what
 * `factorstream features` does. So the scores equal the offline path's, and a restart
 * from a checkpoint reproduces rather than duplicates them. Concretely: a bar closing at C
 * closes only once the watermark reaches C; until then no partition hands the aggregator
 * a row whose time is C + lateness or later (such rows wait, and the source pauses the
 * partition); after the close, waiting rows are admitted up to the next close.
 */
import type { Config } from '../config.js';
import type { Reject } from '../errors.js';
import type { BarCloseEvent, EngineIncrement, EngineState } from '../features/engine.js';
import { FeatureEngine } from '../features/engine.js';
import type { State } from '../features/state.js';
import { deadLetters } from '../ingest/dead-letters.js';
import { BarBatch, SymbolTable, TickBatch } from '../ingest/events.js';
import { MessageDecoder, messageCodec, type InputMessage } from '../ingest/message-decoder.js';
import { PartitionInput, type PendingMessage } from '../ingest/partition-input.js';
import { LiveIc, type LiveIcState } from '../eval/live-ic.js';
import { LiveTargets, type LiveTargetsState, type TargetWeights } from '../eval/live-targets.js';
import { RELAXATION_ORDER } from '../eval/portfolio.js';
import type { TradingCalendar } from '../market/calendar.js';
import { runQueueSeconds, type ComputeTime } from '../market/clock.js';
import { DAY_CLOSE, type Freq } from '../market/sessions.js';
import { localDay, msOfLocalDay } from '../market/time.js';
import type { ScoredCrossSection, ScoringJob } from '../model/scorer.js';
import { eligibleSymbols, filtersSymbols, missingInputs, orthogonalProjection, referenceExposures, type CrossSectionInputs, type ExposureLookup } from '../model/cross-section.js';
import type { ReferenceBook } from '../market/reference.js';
import type { SequenceStore } from '../features/sequence-store.js';
import type { Metrics } from '../sink/metrics.js';
import { scoreBatchMessage, scoreMessages, scoreRecords, type OutMessage, type ScoreRecord, type ScoreSource } from '../sink/scores.js';
import { targetsMessage, type TargetsOutcome } from '../sink/targets.js';
import { EventTime } from './event-time.js';
import { scoreSourceOf, type ServedModel } from './models.js';
import { HourSeries, ModelStatusBoard, type PipelineStatus } from './status.js';

export type { InputMessage } from '../ingest/message-decoder.js';

/** The outcome of one bar close for one model. */
export interface ScoredClose {
  source: ScoreSource;
  role: 'live' | 'shadow';
  records: ScoreRecord[];
  skipped: number;
  /** The inference at the close as the engine measured it, and how long of it the model's thread waited for a core (ScoredCrossSection.inference). */
  inference: ComputeTime;
  /** How long scoring waited for the close's prepared prefix (0: ready, or none). */
  prefixWaitSeconds: number;
  /** Wall time (ms) the close was decided: the start of bar-close-to-publish latency. */
  closedAtMs: number;
  /** This thread's wait for a core so far (runQueueSeconds) when the close was decided. */
  closedWaitSeconds: number;
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
  /** Where the portfolio's target weights go (needed when portfolio.model is set). */
  targets?: string;
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
  /** Daily reference data (from the reference topic, or the simulator): limits, universe filters, the orthogonal layer. */
  reference?: ReferenceBook;
  /** Called once per symbol and day traded without a reference record (W_NO_REFERENCE), after the metric. */
  onNoReference?(symbol: string, day: number): void;
  /** Wall time in ms (the Clock). */
  now(): number;
  onBarClose?(e: BarCloseEvent): void;
}

const partitionKey = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

/** One scored close's records and its messages (ScoringPipeline.closeOutputs). */
interface CloseOutputs {
  close: ScoredClose;
  batches: OutputBatch[];
}

/** A decided bar close; `outputs` once its inference has started (ScoringPipeline.launch). */
interface DecidedClose {
  model: ServedModel;
  job: ScoringJob;
  closedAtMs: number;
  closedWaitSeconds: number;
  outputs?: Promise<CloseOutputs>;
}

/** Per-partition gauges, their label children made once. */
interface PartitionGauges {
  eventTime: { set(v: number): void };
  idle: { set(v: number): void };
  waiting: { set(v: number): void };
}

export class ScoringPipeline {
  readonly engine: FeatureEngine;
  /** Served models, live and shadow (replaceModel swaps one in place). */
  readonly models: ServedModel[];
  readonly topics: PipelineTopics;
  private readonly metrics: Metrics;
  private readonly latenessMs: number;
  private readonly now: () => number;
  private readonly decoder: MessageDecoder;
  private readonly eventTime: EventTime;
  private readonly inputs = new Map<string, PartitionInput>();
  private readonly gauges = new Map<string, PartitionGauges>();
  /** Closes decided and not yet taken (takeOutputs), in close order. */
  private readonly jobs: DecidedClose[] = [];
  /** Realised IC of the served scores (factorstream_live_ic). */
  private readonly liveIc: LiveIc;
  /** The portfolio's target weights (portfolio.model), decided after the rebalance day's last close. */
  private readonly targets: LiveTargets | undefined;
  private readonly board: ModelStatusBoard;
  private readonly lastBarEnd: Partial<Record<Freq, number>> = {};
  private readonly deadLetters: OutMessage[] = [];
  private readonly crossSectionInputs: CrossSectionInputs;
  /** Scratch of assemble: the symbols a filtered model may score. */
  private eligible = new Uint8Array(0);
  /** Valid events aggregated since the last metric update, by topic and format. */
  private readonly ingestCounts = new Map<string, { topic: string; format: string; n: number }>();
  /** Valid events aggregated (tests read it; factorstream_events_ingested_total has the same). */
  ingested = 0;
  /** `ingested` over the last hour, every 5 s at most (the status page's throughput chart). */
  private readonly ingestedHour = new HourSeries();

  constructor(opts: PipelineOptions) {
    const { config } = opts;
    this.models = [...opts.models];
    this.topics = opts.topics;
    this.metrics = opts.metrics;
    this.now = opts.now;
    this.latenessMs = config.features.allowedLatenessMs;
    this.decoder = new MessageDecoder(config.daemon.maxMessageBytes);
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
      barLabel: config.bars.label,
      reference: opts.reference,
      onNoReference: (symbol, day) => {
        this.metrics.referenceMissing.inc();
        opts.onNoReference?.(symbol, day);
      },
      onReject: (r) => this.routeReject(r),
    });
    // What the models' cross-sections read besides the features: the engine's reference book, fixed for its life.
    const reference = this.engine.reference;
    this.crossSectionInputs = { reference, exposures: reference === undefined ? undefined : referenceExposures(reference) };
    for (const m of opts.models) {
      const missing = missingInputs(m.meta, this.crossSectionInputs);
      if (missing !== undefined) throw new Error(`${missing}: the daemon needs reference data for it`);
    }
    const aggregator = this.engine.aggregator;
    this.eventTime = new EventTime({
      latenessMs: this.latenessMs,
      idleTimeoutMs: config.daemon.idleTimeoutMs,
      graceMs: config.daemon.wallClockGraceMs,
      lastCloseOfDay: (ts) => aggregator.lastCloseOfDay(ts),
    });
    const names = opts.models.map((m) => m.meta.name);
    const twice = names.find((n, i) => names.indexOf(n) !== i);
    if (twice !== undefined) throw new Error(`two served models are named ${twice}: a shadow candidate needs a name of its own in its meta.json (metrics, live IC and the status page are per name)`);
    if (opts.models.some((m) => m.role === 'shadow') && opts.topics.shadowScores === undefined) throw new Error('shadow models need a shadow scores topic');
    this.board = new ModelStatusBoard(opts.models);
    this.liveIc = new LiveIc(opts.calendar, (o) => {
      this.metrics.liveIc.set({ model: o.model, horizon: `${o.horizon}d` }, o.ic);
      this.metrics.liveIcMean.set({ model: o.model, horizon: `${o.horizon}d` }, o.mean);
      this.board.liveIc(o.model, `${o.horizon}d`, { ic: o.ic, mean: o.mean, day: o.day });
    });
    this.targets = this.liveTargets(opts);
    this.engine.onBarClose((e) => {
      const closedAtMs = this.now();
      const closedWaitSeconds = runQueueSeconds();
      if (msOfLocalDay(e.bars.barEnd) === DAY_CLOSE) {
        const day = localDay(e.bars.barEnd);
        this.liveIc.dayClose(day, e.bars.close, e.bars.missing, e.bars.n);
        if (this.targets?.decidesOn(day) === true) this.targets.dayClose(day, this.engine.aggregator.lastPricesOn(day));
      }
      this.metrics.barsClosed.inc({ freq: e.bars.freq });
      this.lastBarEnd[e.bars.freq] = e.bars.barEnd;
      this.metrics.lastBarEnd.set({ freq: e.bars.freq }, e.bars.barEnd / 1000);
      for (const model of this.models) {
        if (model.meta.freq !== e.bars.freq || e.sequences === undefined) continue;
        const job = this.assemble(model, e);
        if (job === undefined) {
          this.metrics.symbolsScored.set({ model: model.meta.name }, 0);
          this.metrics.symbolsSkipped.set({ model: model.meta.name }, e.bars.n);
        } else {
          const close: DecidedClose = { model, job, closedAtMs, closedWaitSeconds };
          if (model.scorer.offThread) void this.launch(close);
          this.jobs.push(close);
        }
        // The next close's windows share these rows: prepared once this close is published (takeOutputs).
        model.scorer.capturePrefix(e.sequences, e.bars.n);
      }
      opts.onBarClose?.(e);
    });
  }

  /** The configured portfolio's target weights, checked against what is served. */
  private liveTargets(opts: PipelineOptions): LiveTargets | undefined {
    const p = opts.config.portfolio;
    if (p.model === '') return undefined;
    const model = this.models.find((m) => m.meta.name === p.model);
    if (model === undefined || model.role !== 'live') throw new Error(`portfolio.model ${p.model} is not a live served model (served: ${this.models.filter((m) => m.role === 'live').map((m) => m.meta.name).join(', ')})`);
    if (p.benchmark === '') throw new Error('portfolio.benchmark is needed with portfolio.model: the index (in the reference data) the portfolio enhances');
    const reference = this.engine.reference;
    if (reference === undefined) throw new Error('portfolio.model needs reference data (benchmark weights, industry, size, suspensions): the daemon reads them from kafka.referenceTopic');
    if (this.topics.targets === undefined) throw new Error('portfolio.model needs a targets topic');
    // Exported at 0 from the start, so that increase() and the alert see the first one.
    for (const relaxed of [...RELAXATION_ORDER, 'unsolved']) this.metrics.targetsRelaxed.inc({ portfolio: p.name, relaxed }, 0);
    for (const kind of ['benchmark', 'optimised']) this.metrics.targetsPublished.inc({ portfolio: p.name, kind }, 0);
    return new LiveTargets({ ...p, extraBound: 0, neutral: [] }, opts.calendar, reference);
  }

  /**
   * The model's job for this close (cross-section.ts: its universe filter and orthogonal
   * exposures from the day's reference data, as offline scoring takes them), with the
   * bar's limit state of each symbol for the score records.
   */
  private assemble(model: ServedModel, e: BarCloseEvent): ScoringJob | undefined {
    const { bars } = e;
    const names = this.engine.symbols.names;
    const day = localDay(bars.barEnd);
    const inputs = this.crossSectionInputs;
    let eligible: Uint8Array | undefined;
    if (filtersSymbols(model.meta)) {
      if (this.eligible.length < bars.n) this.eligible = new Uint8Array(bars.n * 2);
      eligibleSymbols(model.meta, inputs, day, names, bars.n, this.eligible);
      eligible = this.eligible;
    }
    const job = model.scorer.assemble(e.sequences as SequenceStore, names, bars.n, bars.barEnd, eligible);
    if (job === undefined) return undefined;
    if (model.meta.orthogonal) job.exposures = orthogonalProjection(inputs.exposures as ExposureLookup, day, names, job.ids);
    job.limit = Int8Array.from(job.ids, (s) => bars.limit[s]);
    return job;
  }

  /**
   * Serves `next` in place of `current` (a new version of a model folder): same frequency
   * and sequence length, since the aggregation and windows are shared. Closes already
   * decided are scored and published by the version served at the close (their inference
   * started there). Its live IC history carries on under its name.
   */
  replaceModel(current: ServedModel, next: ServedModel): void {
    const i = this.models.indexOf(current);
    if (i < 0) throw new Error(`model ${current.meta.name} is not served`);
    if (next.meta.freq !== current.meta.freq || next.meta.T !== current.meta.T) {
      throw new Error(`${next.dir}: the new version is ${next.meta.freq} T=${next.meta.T}, the served one ${current.meta.freq} T=${current.meta.T}; a different frequency or window needs a restart`);
    }
    if (next.meta.name !== current.meta.name && this.models.some((m) => m !== current && m.meta.name === next.meta.name)) throw new Error(`another served model is named ${next.meta.name}`);
    this.models[i] = next;
    // Its closes not yet started start now, on the version they were decided for (whose
    // dispose waits for them): their jobs hold its prefixes and buffers.
    for (const c of this.jobs) if (c.model === current) void this.launch(c);
    this.board.replaced(current, next);
    this.preparePrefix(next);
  }

  /** Prepares a model's next close from the store as it is now (after a restore or a reload: the prefix is derived state). */
  private preparePrefix(model: ServedModel): void {
    const store = this.engine.sequences(model.meta.freq);
    if (store === undefined || !model.scorer.incremental) return;
    model.scorer.capturePrefix(store, this.engine.symbols.size);
    model.scorer.startPrefix();
  }

  /**
   * Between closes (serve's housekeeping): a model whose next close was prepared for fewer
   * than nine tenths of the symbols known now — a fresh start knows none until the feed
   * comes — is prepared again once the symbols have stayed put for a round, so that they
   * are not scored on whole windows at the close (a fresh start's first close: every
   * symbol, seconds of inference). A few listings do not restart the prefix: they are
   * scored on their own whole windows at the close; nor does a round while the prefix
   * before still runs.
   */
  prepareForNewSymbols(): void {
    const known = this.engine.symbols.size;
    const settled = known === this.symbolsAtLastLook;
    this.symbolsAtLastLook = known;
    if (!settled || known === 0) return;
    for (const model of this.models) {
      const store = this.engine.sequences(model.meta.freq);
      // A prefix still running is left to finish (the next one would queue behind it on the engine): the next round looks again.
      if (store === undefined || !model.scorer.incremental || model.scorer.preparedUniverse >= 0.9 * known || model.scorer.preparing) continue;
      // Once per store and universe: where no symbol can reach the coverage yet, nothing is prepared and trying again changes nothing.
      const at = `${store.pushed}/${known}`;
      if (this.preparedAt.get(model) === at) continue;
      this.preparedAt.set(model, at);
      // Room for every symbol known (the new ones' rows missing, as a push would leave them), so that the prefix covers them.
      store.ensure(known);
      this.preparePrefix(model);
    }
  }

  /** The symbols known at the last prepareForNewSymbols, and the store and universe each model was last prepared for there. */
  private symbolsAtLastLook = -1;
  private readonly preparedAt = new Map<ServedModel, string>();

  private input(topic: string, partition: number): PartitionInput {
    const key = partitionKey(topic, partition);
    let input = this.inputs.get(key);
    if (input === undefined) {
      input = new PartitionInput(topic, partition, topic === this.topics.bars ? 'bars' : 'ticks', this.engine.context(topic, partition), (p) => this.completed(topic, p));
      this.inputs.set(key, input);
      this.eventTime.track(key, this.now());
      const labels = { topic, partition: String(partition) };
      this.gauges.set(key, { eventTime: this.metrics.partitionEventTime.labels(labels), idle: this.metrics.partitionIdle.labels(labels), waiting: this.metrics.eventsWaiting.labels(labels) });
    }
    return input;
  }

  private routeReject(r: Reject): void {
    this.input(r.source, r.partition).reject(r);
  }

  /** Declares a partition the source will deliver from `next` (before its first message): it holds the watermark back until it delivers or turns idle. */
  assign(topic: string, partition: number, next: number, caughtUp: boolean): void {
    const input = this.input(topic, partition);
    if (input.next < 0) input.next = next;
    this.setCaughtUp(topic, partition, caughtUp);
  }

  /** Whether a partition has rows waiting for a bar close (the source should pause it). */
  holding(topic: string, partition: number): boolean {
    return (this.inputs.get(partitionKey(topic, partition))?.waiting ?? 0) > 0;
  }

  /**
   * The source's view of a partition's end: caught up when nothing more is there to read.
   * Told again each time the source learns the end anew (a fetch, a refresh of the ends):
   * an idle partition lets the watermark pass only what the feed held at the last one.
   */
  setCaughtUp(topic: string, partition: number, caughtUp: boolean): void {
    const input = this.input(topic, partition);
    input.sourceCaughtUp = caughtUp;
    if (caughtUp) this.eventTime.confirmEnd(partitionKey(topic, partition), this.now());
    this.syncPartition(input);
    this.pump();
  }

  /** One message (the embedded simulator, tests): see ingestBatch. */
  ingest(m: InputMessage): void {
    this.ingestBatch([m]);
  }

  /**
   * Consumes messages of one partition, in offset order (redelivered ones, before the
   * partition's position, are skipped), and aggregates what event time admits.
   * `nextOffset`, when given, is the source's position after them (past transaction
   * markers, which carry no message).
   */
  ingestBatch(messages: readonly InputMessage[], nextOffset?: number): void {
    if (messages.length === 0) return;
    const { topic, partition } = messages[0];
    const input = this.input(topic, partition);
    let newest = -Infinity;
    let consumed = false;
    for (const m of messages) {
      const t = input.push(m, this.decoder);
      if (Number.isNaN(t)) continue;
      consumed = true;
      if (t > newest) newest = t;
    }
    if (nextOffset !== undefined) input.skipTo(nextOffset);
    if (consumed) this.eventTime.observe(partitionKey(topic, partition), newest, this.now());
    this.syncPartition(input);
    this.pump();
  }

  /** The source moved a partition's position past offsets without messages (transaction markers). */
  skipTo(topic: string, partition: number, next: number): void {
    this.input(topic, partition).skipTo(next);
  }

  /** The wall clock moved (a Clock alarm): idle partitions and a quiet feed's closes. */
  advanceTime(): void {
    this.pump();
  }

  /** Whether the next close waits only for the source to look at the idle partitions' ends again (setCaughtUp for each): it should look now. */
  awaitingEnds(): boolean {
    const agg = this.engine.aggregator;
    return agg.started && this.eventTime.awaitsEnds(this.now(), agg.nextClose);
  }

  /** Wall time at which advanceTime is next due (Infinity: only new input moves anything). */
  nextAlarm(): number {
    const agg = this.engine.aggregator;
    return this.eventTime.nextDeadline(this.now(), agg.started ? agg.nextClose : Infinity);
  }

  /**
   * Admits waiting rows up to the next close, closes it when the watermark has reached it,
   * and repeats: one close at a time, so that rows of the next bar that waited behind this
   * close are in before the next one.
   */
  private pump(): void {
    const agg = this.engine.aggregator;
    for (;;) {
      const watermark = this.eventTime.advance(this.now());
      if (!agg.started) {
        // The first bar is the earliest event's, whichever partition was read first.
        if (watermark === -Infinity) break;
        let first = Infinity;
        for (const input of this.inputs.values()) first = Math.min(first, input.firstWaiting());
        if (first === Infinity) break;
        agg.start(first);
      }
      const close = agg.nextClose;
      for (const input of this.inputs.values()) if (this.aggregateBefore(input, close + this.latenessMs)) this.syncPartition(input);
      if (watermark < close) break;
      this.engine.advanceWatermark(close);
    }
    this.flushCounts();
  }

  /** Aggregates the partition's waiting rows whose order time is below `limit`; whether there were any. */
  private aggregateBefore(input: PartitionInput, limit: number): boolean {
    const from = input.head;
    const to = input.admissible(limit);
    if (to === from) return false;
    if (input.kind === 'bars') this.engine.ingestBars(input.batch as BarBatch, from, to, input.topic, input.partition);
    else this.engine.ingestTicks(input.batch as TickBatch, from, to, input.topic, input.partition);
    input.aggregated(to);
    return true;
  }

  /** Tells event time whether the partition has anything more to deliver (its source's end reached and nothing waiting). */
  private syncPartition(input: PartitionInput): void {
    this.eventTime.setCaughtUp(partitionKey(input.topic, input.partition), input.sourceCaughtUp && input.waiting === 0, this.now());
  }

  /** Sets the per-partition gauges (newest event time, idle, events waiting): the daemon calls it with its housekeeping, not per message. */
  refreshGauges(): void {
    const now = this.now();
    for (const [key, input] of this.inputs) {
      const g = this.gauges.get(key) as PartitionGauges;
      const newest = this.eventTime.newestOf(key);
      if (newest > -Infinity) g.eventTime.set(newest / 1000);
      g.idle.set(this.eventTime.isIdle(key, now) ? 1 : 0);
      g.waiting.set(input.waiting);
    }
  }

  /** A message whose rows are all aggregated: count its valid events, dead-letter its rejects. */
  private completed(topic: string, p: PendingMessage): void {
    const rejects = p.rejects ?? [];
    const valid = p.rows - (rejects.length - p.decodeRejects);
    if (valid > 0) {
      const format = messageCodec(p.message) ?? 'unknown';
      const k = `${topic}\u0000${format}`;
      const c = this.ingestCounts.get(k);
      if (c === undefined) this.ingestCounts.set(k, { topic, format, n: valid });
      else c.n += valid;
      this.ingested += valid;
    }
    if (rejects.length === 0) return;
    for (const r of rejects) {
      this.metrics.eventsInvalid.inc({ code: r.code });
      if (r.code === 'E_LATE') this.metrics.lateEvents.inc();
    }
    for (const d of deadLetters(p.message, rejects)) {
      this.deadLetters.push(d);
      this.metrics.deadLetters.inc({ code: d.headers.error });
    }
  }

  /** One metric update per (topic, format) and pump, not per message. */
  private flushCounts(): void {
    this.ingestedHour.add(this.now(), this.ingested, 5_000);
    for (const c of this.ingestCounts.values()) {
      if (c.n > 0) this.metrics.eventsIngested.inc({ topic: c.topic, format: c.format }, c.n);
      c.n = 0;
    }
  }

  get currentWatermark(): number {
    return this.eventTime.watermark;
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
   * Waits for the closes' inferences (started at each close: launch) and returns, in close
   * order, everything to publish since the last call (then startPrefixes, once published).
   * The caller must not feed the pipeline until it resolves (serve runs both under one
   * lock), so that the state snapshot taken after it matches the outputs.
   */
  async takeOutputs(): Promise<{ closes: ScoredClose[]; targets: TargetWeights[]; batches: OutputBatch[] }> {
    const closes: ScoredClose[] = [];
    const targets: TargetWeights[] = [];
    const batches: OutputBatch[] = [];
    const decided = this.jobs.splice(0);
    const built = decided.map((c) => this.launch(c));
    // Gathered in close order, so the outputs do not depend on which inference finished first.
    for (const [i, { model, job }] of decided.entries()) {
      const { close, batches: own } = await built[i];
      closes.push(close);
      batches.push(...own);
      if (model.role === 'shadow') continue;
      const t = await this.decideTargets(model, job.barEnd, close.records);
      if (t !== undefined) {
        targets.push(t);
        batches.push({ topic: this.topics.targets as string, messages: [targetsMessage(t)] });
      }
    }
    if (this.deadLetters.length > 0) batches.push({ topic: this.topics.deadLetter, messages: this.deadLetters.splice(0) });
    return { closes, targets, batches };
  }

  /**
   * Starts a close's inference (once), and builds its records and messages on this thread as
   * soon as it is in: at :00 and :30 the 30m model's (the shorter window) while the 10m
   * model's step still runs. Where the model infers on a worker (offThread), the listener
   * starts it at the close, while this thread closes the other frequencies' bars and
   * aggregates the rest of the batch; on this thread (tfjs, or onnx with inferenceWorkers
   * 0) takeOutputs does, so that those come first, as they would have to anyway. Different
   * models' inferences run at once; one model's closes in order (CrossSectionScorer.run).
   */
  private launch(close: DecidedClose): Promise<CloseOutputs> {
    if (close.outputs !== undefined) return close.outputs;
    const { model, job } = close;
    const outputs = model.scorer.run(job).then((cs) => this.closeOutputs(model, cs, close));
    // Every failure is seen: the first, in close order, is thrown by takeOutputs. A later
    // close built meanwhile leaves only this pipeline's status behind, and serve replaces the
    // pipeline from the checkpoint (or stops) after a failed commit.
    outputs.catch(() => undefined);
    close.outputs = outputs;
    return outputs;
  }

  /** One scored close's records, its metrics and status, and its messages (scores and the Arrow cross-section, or the shadow topic's). */
  private closeOutputs(model: ServedModel, cs: ScoredCrossSection, { closedAtMs, closedWaitSeconds }: Pick<DecidedClose, 'closedAtMs' | 'closedWaitSeconds'>): CloseOutputs {
    const { job } = cs;
    if (msOfLocalDay(job.barEnd) === DAY_CLOSE) this.liveIc.dayScores(model.meta.name, localDay(job.barEnd), job.ids, cs.score);
    const source = scoreSourceOf(model);
    const records = scoreRecords(cs, this.engine.symbols.names, source);
    const name = model.meta.name;
    this.metrics.inference.observe({ model: name, engine: model.scorer.engine }, cs.inference.seconds);
    if (!Number.isNaN(cs.inference.waitSeconds)) this.metrics.inferenceWait.observe({ model: name, engine: model.scorer.engine }, cs.inference.waitSeconds);
    if (cs.path.step > 0) this.metrics.windowPrefix.observe({ model: name }, cs.path.prefixSeconds);
    this.metrics.scoringPath.inc({ model: name, path: 'step' }, cs.path.step);
    this.metrics.scoringPath.inc({ model: name, path: 'window' }, cs.path.whole);
    this.metrics.batchSize.set({ model: name }, job.n);
    this.metrics.symbolsScored.set({ model: name }, job.n);
    this.metrics.symbolsSkipped.set({ model: name }, job.universe - job.n);
    // One ascending order of the scores serves the quantile gauges and the status page's top and bottom.
    const order = Int32Array.from(cs.score.keys()).sort((a, b) => cs.score[a] - cs.score[b]);
    for (const q of [0.05, 0.25, 0.5, 0.75, 0.95]) this.metrics.lastScore.set({ model: name, quantile: String(q) }, cs.score[order[Math.min(order.length - 1, Math.floor(q * order.length))]]);
    this.board.scored(name, cs, records, order);
    const close: ScoredClose = { source, role: model.role, records, skipped: job.universe - job.n, inference: cs.inference, prefixWaitSeconds: cs.path.prefixWaitSeconds, closedAtMs, closedWaitSeconds };
    return { close, batches: closeBatches(model.role, records, source, this.topics) };
  }

  /**
   * Starts the next closes' prefixes (captured at these closes), while the market trades:
   * the caller does so once the outputs are published, so that the recurrence does not
   * compete with the checkpoint and the transaction for the CPU. A prefix never started
   * is computed when its close needs it.
   */
  startPrefixes(): void {
    for (const model of this.models) model.scorer.startPrefix();
  }

  /** After the portfolio model's last close of a rebalance day: the target weights, from its scores as published. */
  private async decideTargets(model: ServedModel, barEnd: number, records: readonly ScoreRecord[]): Promise<TargetWeights | undefined> {
    const targets = this.targets;
    const day = localDay(barEnd);
    if (targets === undefined || model.meta.name !== targets.cfg.model || msOfLocalDay(barEnd) !== DAY_CLOSE || !targets.decidesOn(day)) return undefined;
    return targets.dayScores(model.meta.version, day, new Map(records.map((r) => [r.symbol, r.score])));
  }

  /** Counts target weights as published (committed). */
  markTargetsPublished(t: TargetsOutcome): void {
    this.metrics.targetsPublished.inc({ portfolio: t.portfolio, kind: t.kind });
    for (const r of t.relaxed) this.metrics.targetsRelaxed.inc({ portfolio: t.portfolio, relaxed: r });
    if (!t.solved) this.metrics.targetsRelaxed.inc({ portfolio: t.portfolio, relaxed: 'unsolved' });
    this.metrics.targetTurnover.set({ portfolio: t.portfolio }, t.turnover);
  }

  /** Counts a close as published (scores, close-to-publish latency); returns the latency and, of it, this thread's wait for a core (NaN where the kernel does not say), in seconds. */
  markPublished(c: ScoredClose): { latency: number; waited: number } {
    // The wait read first (as computeStopwatch does): never more than the latency it is part of.
    const waited = runQueueSeconds() - c.closedWaitSeconds;
    const latency = (this.now() - c.closedAtMs) / 1000;
    this.metrics.closeToPublish.observe({ model: c.source.model, freq: c.source.freq }, latency);
    if (!Number.isNaN(waited)) this.metrics.closeToPublishWait.observe({ model: c.source.model, freq: c.source.freq }, waited);
    this.metrics.scoresPublished.inc({ model: c.source.model }, c.records.length);
    this.board.published(c.source.model, latency, this.now());
    return { latency, waited };
  }

  /** What the status page shows (a copy). */
  status(): PipelineStatus {
    const watermark = this.eventTime.watermark;
    const now = this.now();
    return {
      now,
      watermark: Number.isFinite(watermark) ? watermark : null,
      eventsIngested: this.ingested,
      lastBarEnd: { ...this.lastBarEnd },
      models: this.board.all(),
      recent: { events: this.ingestedHour.since(now), latency: this.board.latencyLastHour(now) },
    };
  }

  /** Next offsets per partition (consumed: aggregated or waiting in the checkpointed state): what a commit records with the outputs. */
  positions(): { topic: string; partition: number; offset: number }[] {
    const out: { topic: string; partition: number; offset: number }[] = [];
    for (const input of this.inputs.values()) if (input.next >= 0) out.push({ topic: input.topic, partition: input.partition, offset: input.next });
    return out.sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1));
  }

  /** Lag per partition given the partition ends (high watermarks). */
  lag(ends: ReadonlyMap<string, number>): { topic: string; partition: number; lag: number }[] {
    const out: { topic: string; partition: number; lag: number }[] = [];
    for (const [key, input] of this.inputs) {
      const end = ends.get(key);
      if (end !== undefined) out.push({ topic: input.topic, partition: input.partition, lag: Math.max(0, end - Math.max(0, input.next)) });
    }
    return out;
  }

  /**
   * Everything a restart needs: the aggregation, live IC, the portfolio's premia and
   * targets, event time, and each partition's position and waiting rows. `increment`: the
   * feature engine's part holds what changed since the last `saved()` (checkpoint.ts
   * chains them after a full one).
   */
  snapshot(kind: 'full' | 'increment' = 'full'): PipelineState {
    return {
      engine: kind === 'full' ? this.engine.snapshot() : this.engine.increment(),
      liveIc: this.liveIc.snapshot(),
      targets: this.targets?.snapshot(),
      eventTime: this.eventTime.snapshot(),
      inputs: [...this.inputs.values()].map((i) => i.snapshot()),
    };
  }

  /** The state as it is now was checkpointed. */
  saved(): void {
    this.engine.saved();
  }

  restore(state: PipelineState): void {
    this.restoreChain([state]);
  }

  /** Restores a full snapshot and the increments written after it, in order. */
  restoreChain(states: readonly PipelineState[]): void {
    for (const state of states) {
      this.engine.restore(state.engine);
      // Checkpoints written before live IC existed have none.
      if (state.liveIc !== undefined) this.liveIc.restore(state.liveIc);
      // A checkpoint of a run without the portfolio (or before it existed) starts its premia afresh.
      if (state.targets !== undefined) this.targets?.restore(state.targets);
      const now = this.now();
      // Format 1 checkpoints (before per-partition inputs) hold positions and newest event times only, never waiting rows.
      const inputs = (state.inputs ?? state.partitions ?? []) as (State & { topic: string; partition: number })[];
      const eventTime = state.eventTime ?? {
        watermark: state.watermark,
        partitions: (state.partitions ?? []).map((p) => ({ key: partitionKey(p.topic, p.partition), maxTs: p.maxTs })),
      };
      for (const saved of inputs) this.input(saved.topic, saved.partition).restore(saved);
      this.eventTime.restore(eventTime, now);
    }
    for (const model of this.models) this.preparePrefix(model);
  }
}

/** A close's messages by topic: a live model's scores and its Arrow cross-section, a shadow model's scores on the shadow topic. */
export function closeBatches(role: ServedModel['role'], records: readonly ScoreRecord[], source: ScoreSource, topics: Pick<PipelineTopics, 'scores' | 'scoresBatch' | 'shadowScores'>): OutputBatch[] {
  if (role === 'shadow') return [{ topic: topics.shadowScores as string, messages: scoreMessages(records, source) }];
  return [
    { topic: topics.scores, messages: scoreMessages(records, source) },
    { topic: topics.scoresBatch, messages: [scoreBatchMessage(records, source)] },
  ];
}

/** The pipeline in a checkpoint (format 1 had `watermark` and `partitions` instead of `eventTime` and `inputs`). */
export interface PipelineState {
  engine: EngineState | EngineIncrement;
  liveIc?: LiveIcState;
  targets?: LiveTargetsState;
  eventTime?: State;
  inputs?: State[];
  watermark?: number;
  partitions?: { topic: string; partition: number; maxTs: number; next: number }[];
}

export { partitionKey };
