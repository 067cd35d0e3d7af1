/**
 * The daemon's Prometheus metrics (prom-client), one registry per process. Every name is
 * prefixed `factorstream_`; Node's default process metrics (process_*, nodejs_*) keep
 * their standard names so that stock dashboards read them. The README's metrics table
 * is checked against `METRIC_NAMES` by a test.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { ERROR_CODES } from '../errors.js';

/** Latency buckets (seconds) for work that should take milliseconds to a second. */
const SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2.5, 5, 10];

/** What of the daily score archive can fail (factorstream_archive_errors_total's op). */
export const ARCHIVE_OPS = ['write', 'sync', 'close'] as const;
export type ArchiveOp = (typeof ARCHIVE_OPS)[number];

export class Metrics {
  readonly registry = new Registry();
  readonly eventsIngested = new Counter({ name: 'factorstream_events_ingested_total', help: 'Valid events aggregated, by topic (or source) and format.', labelNames: ['topic', 'format'], registers: [this.registry] });
  readonly eventsInvalid = new Counter({ name: 'factorstream_events_invalid_total', help: 'Events rejected (dead-lettered), by error code.', labelNames: ['code'], registers: [this.registry] });
  readonly lateEvents = new Counter({ name: 'factorstream_late_events_total', help: 'Events for a bar already closed (E_LATE), also counted in events_invalid_total.', registers: [this.registry] });
  readonly deadLetters = new Counter({ name: 'factorstream_dead_letters_total', help: 'Messages written to the dead-letter topic, by error code.', labelNames: ['code'], registers: [this.registry] });
  readonly barsClosed = new Counter({ name: 'factorstream_bars_closed_total', help: 'Bar closes (the whole cross-section), by frequency.', labelNames: ['freq'], registers: [this.registry] });
  readonly closeToPublish = new Histogram({ name: 'factorstream_bar_close_to_publish_seconds', help: 'From the bar close decision to the scores being committed, by model.', labelNames: ['model', 'freq'], buckets: SECONDS, registers: [this.registry] });
  readonly closeToPublishWait = new Histogram({ name: 'factorstream_bar_close_to_publish_wait_seconds', help: "Of factorstream_bar_close_to_publish_seconds, the time the daemon's main thread (which closes the bars, builds the messages, checkpoints and sends them) was ready to run but waited for a core (the kernel's per-thread count; Linux only). A large share: the host's cores are all busy at the closes.", labelNames: ['model', 'freq'], buckets: SECONDS, registers: [this.registry] });
  readonly closePhase = new Histogram({ name: 'factorstream_close_phase_seconds', help: "Where close-to-publish latency goes, once per commit that publishes bar closes, by phase: queued (from the earliest close's decision to the commit starting: the other frequencies' bars, the rest of the fetched batch, the lock; on inference workers the closes' inferences have started at their decision), prefix (waiting for a prepared prefix still running, the longest of the commit's closes), scoring (the rest of every close's inference, prefix wait included, and its score records), checkpoint, transaction.", labelNames: ['phase'], buckets: SECONDS, registers: [this.registry] });
  readonly producerRequest = new Histogram({ name: 'factorstream_kafka_producer_request_seconds', help: "Each request of the score producer, from sent to its answer read by this process, by Kafka API (Produce, AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn, ...): where the close's transaction phase goes.", labelNames: ['api'], buckets: SECONDS, registers: [this.registry] });
  readonly endsLookup = new Histogram({ name: 'factorstream_ends_lookup_seconds', help: "A look at every input partition's end made at once, before the close decision, because the next bar close waited only for the idle partitions' last look (serve), by what triggered it: fetch (after a batch) or alarm (a wall-clock deadline).", labelNames: ['trigger'], buckets: SECONDS, registers: [this.registry] });
  readonly inference = new Histogram({ name: 'factorstream_inference_seconds', help: 'One batched inference over the cross-section, by model and engine, as the engine measured it (on an inference worker, its time there).', labelNames: ['model', 'engine'], buckets: SECONDS, registers: [this.registry] });
  readonly inferenceWait = new Histogram({ name: 'factorstream_inference_wait_seconds', help: "Of factorstream_inference_seconds, the time the thread that ran the model was ready to run but waited for a core (the kernel's per-thread count; Linux only). Where it is a large part, the host's cores are all busy at the closes: the inference is waiting, not computing. With more than one intra-op thread, only the calling thread's wait.", labelNames: ['model', 'engine'], buckets: SECONDS, registers: [this.registry] });
  readonly windowPrefix = new Histogram({ name: 'factorstream_window_prefix_seconds', help: "The recurrence over the next close's first T-1 rows, run between closes (off the close's latency path), by model.", labelNames: ['model'], buckets: SECONDS, registers: [this.registry] });
  readonly scoringPath = new Counter({ name: 'factorstream_scored_symbols_total', help: 'Symbols scored, by model and path (step: one recurrent step from the prepared prefix; window: the whole window, e.g. the first close after a start or reload, or a symbol new to the universe).', labelNames: ['model', 'path'], registers: [this.registry] });
  readonly batchSize = new Gauge({ name: 'factorstream_batch_size', help: 'Sequences in the last batched inference, by model.', labelNames: ['model'], registers: [this.registry] });
  readonly symbolsScored = new Gauge({ name: 'factorstream_symbols_scored', help: 'Symbols scored at the last bar close, by model.', labelNames: ['model'], registers: [this.registry] });
  readonly symbolsSkipped = new Gauge({ name: 'factorstream_symbols_skipped', help: "Symbols known but not scored at the last close (window coverage below minCoverage, or outside the model's universe filter, or without the exposures of its orthogonal layer), by model.", labelNames: ['model'], registers: [this.registry] });
  readonly referenceMissing = new Counter({ name: 'factorstream_reference_missing_total', help: 'Symbol-days traded without a reference record (W_NO_REFERENCE): limits from the last price by the board rule, left out of models that need reference data.', registers: [this.registry] });
  readonly referenceRecords = new Counter({ name: 'factorstream_reference_records_total', help: 'Reference records read from the reference topic, by result (applied: new or changed; unchanged; invalid: rejected, see the dead-letter topic).', labelNames: ['result'], registers: [this.registry] });
  readonly referenceDay = new Gauge({ name: 'factorstream_reference_latest_day_seconds', help: 'The latest trading day (its 00:00 Asia/Shanghai, epoch seconds) the reference data has records for.', registers: [this.registry] });
  readonly archiveErrors = new Counter({ name: 'factorstream_archive_errors_total', help: "Failures of the daily score archive (daemon.archiveDir), by operation (write: a close's append, the close published but not archived; sync: an fsync of its files ahead of a checkpoint; close: finishing and fsyncing its files at stop). Serving goes on; see the error log line.", labelNames: ['op'], registers: [this.registry] });
  readonly scoresPublished = new Counter({ name: 'factorstream_scores_published_total', help: 'Scores published (committed), by model.', labelNames: ['model'], registers: [this.registry] });
  readonly lastScore = new Gauge({ name: 'factorstream_score_quantile', help: 'Quantiles of the raw scores of the last close, by model.', labelNames: ['model', 'quantile'], registers: [this.registry] });
  readonly lastBarEnd = new Gauge({ name: 'factorstream_last_bar_end_seconds', help: 'End of the last bar closed (epoch seconds), by frequency.', labelNames: ['freq'], registers: [this.registry] });
  readonly consumerLag = new Gauge({ name: 'factorstream_consumer_lag', help: 'Messages behind the partition end, by topic and partition.', labelNames: ['topic', 'partition'], registers: [this.registry] });
  readonly watermarkDelay = new Gauge({ name: 'factorstream_watermark_delay_seconds', help: 'Wall clock minus the event-time watermark.', registers: [this.registry] });
  readonly partitionEventTime = new Gauge({ name: 'factorstream_partition_event_time_seconds', help: 'Newest event time delivered by an input partition (epoch seconds): the partition with the lowest holds the watermark back.', labelNames: ['topic', 'partition'], registers: [this.registry] });
  readonly partitionIdle = new Gauge({ name: 'factorstream_partition_idle', help: '1 while an input partition is idle (caught up and silent for daemon.idleTimeoutMs) and does not hold the watermark back.', labelNames: ['topic', 'partition'], registers: [this.registry] });
  readonly eventsWaiting = new Gauge({ name: 'factorstream_events_waiting', help: 'Events of an input partition decoded and waiting for a bar close before they are aggregated (the partition is paused meanwhile).', labelNames: ['topic', 'partition'], registers: [this.registry] });
  readonly checkpoint = new Histogram({ name: 'factorstream_checkpoint_seconds', help: 'Writing one checkpoint, by kind (full: the whole state, serialised, fsynced, renamed; increment: what changed since the last one, appended and fsynced).', labelNames: ['kind'], buckets: SECONDS, registers: [this.registry] });
  readonly checkpointBytes = new Gauge({ name: 'factorstream_checkpoint_bytes', help: 'Size of the last checkpoint of each kind.', labelNames: ['kind'], registers: [this.registry] });
  readonly transactions = new Counter({ name: 'factorstream_transactions_total', help: 'Kafka transactions, by result (committed; aborted: failed before the commit was asked for; unknown: the commit asked for and failed or unanswered, which recovery settles from the committed offsets).', labelNames: ['result'], registers: [this.registry] });
  readonly modelInfo = new Gauge({ name: 'factorstream_model_info', help: 'Models being served (value 1), with their identity, engine and backend (fallback: why not the engine or provider asked for, else empty).', labelNames: ['model', 'version', 'arch', 'head', 'freq', 'engine', 'backend', 'role', 'fallback'], registers: [this.registry] });
  readonly backendInfo = new Gauge({ name: 'factorstream_backend_info', help: 'The tfjs backend in use (value 1): name, TensorFlow version, threads.', labelNames: ['backend', 'tensorflow', 'threads'], registers: [this.registry] });
  readonly liveIc = new Gauge({ name: 'factorstream_live_ic', help: 'Realised rank IC of the latest end-of-day cross-section whose horizon has passed: its scores against the close-to-close returns that followed.', labelNames: ['model', 'horizon'], registers: [this.registry] });
  readonly liveIcMean = new Gauge({ name: 'factorstream_live_ic_mean', help: 'Mean of the last 20 realised rank ICs (factorstream_live_ic).', labelNames: ['model', 'horizon'], registers: [this.registry] });
  readonly targetsPublished = new Counter({ name: 'factorstream_targets_published_total', help: 'Target-weight decisions published (committed), by portfolio and kind (benchmark: no premium known yet; optimised).', labelNames: ['portfolio', 'kind'], registers: [this.registry] });
  readonly targetsRelaxed = new Counter({ name: 'factorstream_targets_relaxed_total', help: 'Target-weight decisions that relaxed a constraint to be feasible, by portfolio and the constraint dropped (turnover, exposures, industry; unsolved: none sufficed, the held weights were kept).', labelNames: ['portfolio', 'relaxed'], registers: [this.registry] });
  readonly targetTurnover = new Gauge({ name: 'factorstream_target_turnover', help: 'One-way turnover of the last target weights against the previous targets drifted to the close, by portfolio.', labelNames: ['portfolio'], registers: [this.registry] });
  readonly modelReloads = new Counter({ name: 'factorstream_model_reloads_total', help: 'Model folders reloaded on SIGHUP (a new version swapped in, or failed and kept the served one).', labelNames: ['model', 'result'], registers: [this.registry] });
  readonly kafkaConnected = new Gauge({ name: 'factorstream_kafka_connected', help: '1 while serve is connected to Kafka and serving; 0 from the moment Kafka is lost until it has reconnected and recovered.', registers: [this.registry] });
  readonly kafkaReconnects = new Counter({ name: 'factorstream_kafka_reconnects_total', help: 'Attempts to reconnect to Kafka after it was lost, by result (reconnected, failed).', labelNames: ['result'], registers: [this.registry] });
  readonly groupConflict = new Gauge({ name: 'factorstream_group_conflict', help: '1 while serve waits because another instance is consuming its consumer group (it takes over only once the group is free).', registers: [this.registry] });
  readonly ready = new Gauge({ name: 'factorstream_ready', help: '1 when /readyz says ready.', registers: [this.registry] });

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    // Every code shows from the start, so that rate() and alerts see a zero, not no data.
    for (const code of ERROR_CODES) {
      this.eventsInvalid.inc({ code }, 0);
      this.deadLetters.inc({ code }, 0);
    }
    this.lateEvents.inc(0);
    for (const op of ARCHIVE_OPS) this.archiveErrors.inc({ op }, 0);
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }
}

/** Every factorstream_ metric name (the README documents each). */
export function metricNames(): string[] {
  const m = new Metrics({ defaultMetrics: false });
  return m.registry.getMetricsAsArray().map((x) => x.name).sort();
}
