/**
 * `factorstream serve`: the pipeline on Kafka (kafkajs). One consumer group reads the
 * tick and bar topics with eachBatch; a partition whose events wait for a bar close is
 * paused until the close; scores, the Arrow cross-section and dead letters are published
 * by a transactional producer in the same transaction as the input offsets
 * (sendOffsets), after the state that produced them was checkpointed. Time comes from the
 * Clock: one alarm at the pipeline's next wall-clock deadline (a partition turning idle, a
 * quiet feed's close) and one for the housekeeping (lag, caught-up partitions, periodic
 * commits). Any Kafka error in a commit ends the process (crash-only): the restart
 * recovers from the checkpoint and the committed offsets, publishing each output exactly
 * once.
 */
import { statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel as KafkaLogLevel, Partitioners, type Admin, type Consumer, type EachBatchPayload, type Producer } from 'kafkajs';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { kafkaLogCreator } from '../ingest/kafka-log.js';
import type { TradingCalendar } from '../market/calendar.js';
import { stopwatch, threadTime, type Clock } from '../market/clock.js';
import { producerPartitions, topicRounds, type PartitionOf } from '../ingest/kafka-chunks.js';
import { kafkaConnection, kafkaFailure, restartOnlyWhile } from '../ingest/kafka-client.js';
import { headerText } from '../ingest/topic-reader.js';
import { ReferenceFollower } from '../ingest/reference-follower.js';
import { ReferenceBook, type ReferenceRecord } from '../market/reference.js';
import { dayStart, dayToIso } from '../market/time.js';
import { ScoreArchive } from '../sink/archive.js';
import { HttpServer } from '../sink/http.js';
import { Metrics, type ArchiveOp } from '../sink/metrics.js';
import { recordsOfScoreMessages, type ScoreRecord, type ScoreSource } from '../sink/scores.js';
import { outcomeOfTargetsMessage } from '../sink/targets.js';
import { CHECKPOINT_FORMAT, CheckpointStore, positionsCommitted, type Checkpoint } from './checkpoint.js';
import { setHeapGrowth } from './heap.js';
import { WARM_UP_SYMBOLS, warmUpCloseOutputs } from './warm-up.js';
import { Failpoints, type FailpointPlace } from './failpoints.js';
import type { TargetWeights } from '../eval/live-targets.js';
import { checkedMeta } from '../model/artifact.js';
import { engineOptionsOf } from '../model/predictor.js';
import { loadServedModels, modelInfoLabels, type ServedModel } from './models.js';
import { partitionKey, ScoringPipeline, type OutputBatch, type ScoredClose } from './pipeline.js';
import { readUniverse } from './universe.js';

/** /readyz fails when the brokers have not answered for this long (kafkajs long-polls fetches for 5 s at most). */
export const KAFKA_SILENCE_MS = 15_000;

export interface ServeOptions {
  config: Readonly<Config>;
  calendar: TradingCalendar;
  log: Logger;
  clock: Clock;
  /** Where a test makes the daemon fail on purpose (failpoints.ts); none by default. */
  failpoints?: Failpoints;
}

export class KafkaDaemon {
  private readonly opts: ServeOptions;
  private readonly log: Logger;
  private readonly cfg: Readonly<Config>;
  readonly metrics = new Metrics();
  private readonly checkpoints: CheckpointStore;
  private readonly failpoints: Failpoints;
  private kafka: Kafka;
  private admin: Admin | undefined;
  private producer: Producer | undefined;
  private consumer: Consumer | undefined;
  private pipeline: ScoringPipeline | undefined;
  private http: HttpServer | undefined;
  private archive: ScoreArchive | undefined;
  /** The reference data the pipeline reads (kafka.referenceTopic, and the checkpoint's). */
  private readonly referenceBook = new ReferenceBook();
  private reference: ReferenceFollower | undefined;
  private noReferenceLoggedDay = -1;
  private seq = 0;
  /** The checkpoint whose outputs this process has counted (published() after its commit, or recovery). */
  private countedSeq = -1;
  /** The checkpoint whose transaction this process sent and got no answer for (a commit may have gone through). */
  private unansweredSeq = -1;
  /** Whether this pipeline has written its full checkpoint (increments extend it; a new pipeline starts a new chain). */
  private wroteFull = false;
  /** SIGHUP reloads, one after another. */
  private reloading: Promise<void> = Promise.resolve();
  /** Model folders whose last reload failed, by folder: the meta.json they had then. */
  private readonly failedReload = new Map<string, string>();
  private chain: Promise<unknown> = Promise.resolve();
  private lastCommitAt = 0;
  private lastPositions = '';
  private stopping = false;
  private recovered = false;
  /** The models and universe served, loaded once; a reconnect builds its pipeline from them. */
  private models: ServedModel[] = [];
  private universe: readonly string[] | undefined;
  /** Which connection the consumer's callbacks belong to: a reconnect's new consumer gets the next one, and the old one's late batches are ignored. */
  private generation = 0;
  /** Set while Kafka is lost: everything that would use it waits for the reconnect. */
  private reconnecting: Promise<void> | undefined;
  /** Aborted by stop(): ends the waits of start-up and of a reconnect at once. */
  private readonly stopSignal = new AbortController();
  /** The generation whose connection was lost (its late callbacks are ignored; the reconnect's next generation is served). */
  private lostGeneration = -1;
  /** Wall time of the last answer from the brokers (a fetch, a housekeeping round, a commit). */
  private lastContact = 0;
  /** This daemon's member id in its consumer group (after a reconnect its old membership may linger until the session times out). */
  private memberId = '';
  private readonly assigned = new Set<string>();
  private readonly ends = new Map<string, number>();
  /** Where the producer sends each keyed output message (read at each connect): a transaction's requests are bounded per partition. */
  private outputPartitionOf: PartitionOf | undefined;
  /** Clock alarms: the periodic Kafka housekeeping, and the pipeline's next wall-clock deadline. */
  private housekeeping = -1;
  private deadline = -1;
  private deadlineAt = Infinity;
  private totalLag = 0;
  private partitionsTotal = 0;
  httpPort = 0;

  constructor(opts: ServeOptions) {
    this.opts = opts;
    this.cfg = opts.config;
    this.log = opts.log;
    this.checkpoints = new CheckpointStore(this.cfg.daemon.checkpointDir);
    this.failpoints = opts.failpoints ?? new Failpoints(undefined);
    if (this.failpoints.description !== '') this.log.warn({ failpoints: this.failpoints.description }, 'fail points armed: this daemon will fail on purpose (a test setting, never for production)');
    this.kafka = this.newKafka();
  }

  /** The Kafka client, its TLS files and password read now (again at each reconnect: a rotated secret is picked up). */
  private newKafka(): Kafka {
    return new Kafka({
      clientId: this.cfg.kafka.clientId,
      ...kafkaConnection(this.cfg.kafka),
      logLevel: KafkaLogLevel.WARN,
      logCreator: kafkaLogCreator(this.log, () => this.opts.clock.now()),
    });
  }

  private get inputTopics(): string[] {
    return [this.cfg.kafka.ticksTopic, this.cfg.kafka.barsTopic];
  }

  /** Runs `fn` after everything queued before it: batches, commits and timers never interleave. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  async start(): Promise<void> {
    const { cfg, log } = this;
    setHeapGrowth(cfg.daemon.heapGrowthPercent);
    this.http = new HttpServer({
      host: cfg.daemon.httpHost,
      port: cfg.daemon.httpPort,
      metrics: this.metrics,
      readiness: () => this.readiness(),
      // Until the models are loaded the page shows an empty pipeline.
      status: () => this.pipeline?.status() ?? { now: this.opts.clock.now(), watermark: null, eventsIngested: 0, lastBarEnd: {}, models: [] },
    });
    this.httpPort = await this.http.listen();
    log.info({ host: cfg.daemon.httpHost, port: this.httpPort }, 'http listening (/ status page, /metrics, /healthz, /readyz)');

    const engine = engineOptionsOf(cfg.daemon, this.log, 'daemon');
    const models = [
      ...(await loadServedModels(cfg.daemon.models, engine, cfg.features.minCoverage, this.metrics, log, 'live')),
      ...(await loadServedModels(cfg.daemon.shadowModels, engine, cfg.features.minCoverage, this.metrics, log, 'shadow')),
    ];
    this.models = models;
    this.universe = readUniverse(cfg.daemon.universeFile);
    if (cfg.daemon.archiveDir !== '') this.archive = new ScoreArchive(cfg.daemon.archiveDir, String(this.opts.clock.now()));
    await this.connect();
    this.scheduleHousekeeping();
  }

  /** The scoring pipeline over the served models (those SIGHUP swapped in included), empty. */
  private newPipeline(): ScoringPipeline {
    const { cfg, log } = this;
    this.wroteFull = false;
    const models = this.pipeline?.models ?? this.models;
    return new ScoringPipeline({
      config: cfg,
      calendar: this.opts.calendar,
      topics: { ticks: cfg.kafka.ticksTopic, bars: cfg.kafka.barsTopic, scores: cfg.kafka.scoresTopic, scoresBatch: cfg.kafka.scoresBatchTopic, deadLetter: cfg.kafka.deadLetterTopic, shadowScores: cfg.kafka.shadowScoresTopic, targets: cfg.kafka.targetsTopic },
      models,
      metrics: this.metrics,
      universe: this.universe,
      freezeUniverse: this.universe !== undefined,
      reference: this.referenceBook,
      onNoReference: (symbol, day) => {
        // One line per day (the metric counts every symbol-day): a missing day's file would otherwise log the whole market.
        if (this.noReferenceLoggedDay === day) return;
        this.noReferenceLoggedDay = day;
        log.warn({ code: 'W_NO_REFERENCE', day: dayToIso(day), symbol, topic: cfg.kafka.referenceTopic }, 'a symbol trades without a reference record for the day: limits from its last price by the board rule; left out of models that need reference data (factorstream_reference_missing_total counts each symbol-day)');
      },
      now: () => this.opts.clock.now(),
    });
  }

  /**
   * Connects to Kafka, makes the checkpoint and the committed offsets agree, restores the
   * state into a new pipeline and starts consuming: at start, and again after Kafka was
   * lost — the same path as a restart of the process, so a reconnect publishes exactly
   * what a restart would.
   */
  private async connect(): Promise<void> {
    const { cfg, log } = this;
    const generation = ++this.generation;
    if (generation > 1) this.kafka = this.newKafka();
    this.pipeline = this.newPipeline();
    this.recovered = false;
    this.assigned.clear();
    this.ends.clear();
    this.lastPositions = '';
    this.admin = this.kafka.admin();
    await this.admin.connect();
    this.checkStopping();
    // Listed once: for the topics to create, and for the output topics whose partitions are read.
    const existing = new Set(await this.admin.listTopics());
    if (cfg.kafka.createTopics) {
      const topics = [...this.inputTopics, ...this.outputTopics];
      const missing = topics.filter((t) => !existing.has(t));
      if (missing.length > 0) {
        // A dead letter carries an input message whole (up to daemon.maxMessageBytes) plus headers.
        const deadLetterConfig = [{ name: 'max.message.bytes', value: String(cfg.daemon.maxMessageBytes + 65_536) }];
        await this.admin.createTopics({
          topics: missing.map((topic) => ({ topic, numPartitions: cfg.kafka.topicPartitions, configEntries: topic === cfg.kafka.deadLetterTopic ? deadLetterConfig : [] })),
          waitForLeaders: true,
        });
        log.info({ topics: missing }, 'topics created');
        for (const t of missing) existing.add(t);
      }
    }

    this.outputPartitionOf = await this.readOutputPartitions(existing);
    await this.removeOwnStaleMember(await this.awaitGroupFree());
    // Connecting the transactional producer fences a predecessor with the same id and
    // completes or aborts its open transaction: only then are committed offsets final.
    this.producer = this.kafka.producer({
      transactionalId: cfg.kafka.transactionalId,
      idempotent: true,
      maxInFlightRequests: 1,
      transactionTimeout: cfg.kafka.transactionTimeoutMs,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    // Which of a transaction's requests the close waits on (the broker shares the host, or is a network away).
    this.producer.on(this.producer.events.REQUEST, ({ payload }) => this.metrics.producerRequest.observe({ api: payload.apiName }, payload.duration / 1000));
    await this.producer.connect();
    await this.recover();
    this.checkStopping();
    await this.followReference();
    this.checkStopping();
    if (generation === 1) await this.warmUp();

    const current = (): boolean => generation === this.generation && !this.kafkaLost;
    this.consumer = this.kafka.consumer({ groupId: cfg.kafka.groupId, readUncommitted: false, sessionTimeout: 30_000, heartbeatInterval: 3_000, maxBytesPerPartition: cfg.kafka.maxBytesPerPartition, retry: restartOnlyWhile(() => current() && !this.stopping) });
    this.consumer.on(this.consumer.events.FETCH, () => {
      if (current()) this.lastContact = this.opts.clock.now();
    });
    this.consumer.on(this.consumer.events.GROUP_JOIN, (e) => {
      if (!current()) return;
      this.memberId = e.payload.memberId;
      this.checkpoints.writeMemberId(this.memberId);
      this.assigned.clear();
      for (const [topic, partitions] of Object.entries(e.payload.memberAssignment)) for (const p of partitions) this.assigned.add(partitionKey(topic, p));
      log.info({ assignment: e.payload.memberAssignment }, 'partitions assigned');
      void this.exclusive(async () => {
        await this.refreshPartitions(true);
        this.armDeadline();
      });
    });
    // A fetch of transaction markers only (a transactional producer's input) reaches no
    // eachBatch: its offsets are consumed all the same, or the partition never catches up.
    this.consumer.on(this.consumer.events.START_BATCH_PROCESS, (e) => {
      if (e.payload.batchSize > 0) return;
      const { topic, partition, lastOffset } = e.payload;
      void this.exclusive(async () => {
        if (current()) this.pipeline?.skipTo(topic, partition, Number(lastOffset) + 1);
      });
    });
    this.consumer.on(this.consumer.events.CRASH, (e) => {
      // kafkajs restarts the consumer itself after a retriable crash (its batches before our positions are skipped); otherwise connect again.
      if (!current()) return;
      if (e.payload.restart) log.warn({ err: (e.payload.error as Error).message }, 'consumer crashed: kafkajs restarts it');
      else this.lost(e.payload.error, 'consumer crashed');
    });
    await this.consumer.connect();
    this.checkStopping();
    await this.consumer.subscribe({ topics: this.inputTopics, fromBeginning: true });
    await this.consumer.run({ autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: 1, eachBatch: (p) => this.exclusive(async () => (current() ? this.onBatch(p) : undefined)) });
    this.lastContact = this.opts.clock.now();
    this.metrics.kafkaConnected.set(1);
    log.info({ brokers: cfg.kafka.brokers, group: cfg.kafka.groupId, inputs: this.inputTopics, scores: cfg.kafka.scoresTopic }, 'serving');
  }

  /**
   * Another live instance in the consumer group — an operator's mistake, or a rolling
   * deploy that starts the new pod before the old one stops — must not be fenced: its
   * checkpoint, not ours, matches the committed offsets. So a newcomer waits, unready,
   * saying so once a minute (factorstream_group_conflict 1), until the group has no other
   * member, and only then connects its transactional producer (which fences whatever of the
   * old one is left). Returns whether our own member from before is still in the group.
   */
  private async awaitGroupFree(): Promise<boolean> {
    const admin = this.admin as Admin;
    const group = this.cfg.kafka.groupId;
    if (this.memberId === '') this.memberId = this.checkpoints.readMemberId();
    let reportedAt = -Infinity;
    for (;;) {
      this.checkStopping();
      const { groups } = await this.whileRetriable('consumer group', () => admin.describeGroups([group]));
      const g = groups[0];
      const members = g === undefined || g.state === 'Empty' || g.state === 'Dead' ? [] : g.members;
      const others = members.filter((m) => m.memberId !== this.memberId);
      if (others.length === 0) {
        this.metrics.groupConflict.set(0);
        return members.length > 0;
      }
      this.metrics.groupConflict.set(1);
      const now = this.opts.clock.now();
      if (now - reportedAt >= 60_000) {
        reportedAt = now;
        this.log.error({ group, state: g.state, members: others.map((m) => `${m.clientId}@${m.clientHost}`) }, 'another instance is consuming this consumer group: waiting, unready, until it stops (two would fence each other; one daemon per group scores the whole market)');
      }
      await this.pause(2_000);
    }
  }

  /**
   * This daemon's own member from before — the previous connection's, after Kafka was lost,
   * or the previous process's, after a crash (the id is kept beside the checkpoint) — is
   * still in the group when it could not leave: the brokers were down, or the process died.
   * The new consumer's join would wait out that member's session (30 s) before any partition
   * is assigned, so it is removed first, as its own LeaveGroup would have (vendor/kafkajs
   * patch 0005). Only our own id: another instance's member is awaitGroupFree's to wait for.
   */
  private async removeOwnStaleMember(present: boolean): Promise<void> {
    if (!present || this.memberId === '') return;
    const admin = this.admin as Admin;
    const groupId = this.cfg.kafka.groupId;
    const memberId = this.memberId;
    const removed = await this.whileRetriable('consumer group', () => admin.removeGroupMember({ groupId, memberId }));
    if (removed) this.log.info({ group: groupId, memberId }, "removed this daemon's member from before (it could not leave): the new consumer joins without waiting out its session");
  }

  /** Waits `ms`, or less when the daemon stops meanwhile. */
  private pause(ms: number): Promise<void> {
    return sleep(ms, undefined, { signal: this.stopSignal.signal }).catch(() => undefined);
  }

  /**
   * Kafka was lost while serving (a transaction, a commit or a housekeeping round failed,
   * the consumer gave up): unready at once, then reconnect in the background. A failure
   * of the daemon's own logic, not of Kafka, still ends the process.
   */
  /** Whether the current connection is lost (until the reconnect starts the next one). */
  private get kafkaLost(): boolean {
    return this.lostGeneration === this.generation;
  }

  private lost(err: unknown, what: string): void {
    if (this.stopping || this.reconnecting !== undefined) return;
    // Fenced: another instance connected with our transactional id and owns the output now.
    if (/PRODUCER_FENCED|INVALID_PRODUCER_EPOCH|fenced/i.test(`${(err as { type?: string }).type ?? ''} ${(err as Error).message} ${String((err as { cause?: Error }).cause?.message ?? '')}`)) {
      this.fatal(err, `${what}: this daemon was fenced by another one with transactional id ${this.cfg.kafka.transactionalId}`);
    }
    this.lostGeneration = this.generation;
    this.metrics.kafkaConnected.set(0);
    this.metrics.ready.set(0);
    const failure = kafkaFailure(err, this.cfg.kafka);
    this.log.warn({ what, kind: failure.kind, err: failure.text }, 'Kafka lost: unready, reconnecting (the state comes back from the checkpoint and the committed offsets, as after a restart)');
    this.reconnecting = this.reconnect();
  }

  /** Tears the Kafka clients down and connects again, backing off, until it works or the daemon stops. */
  private async reconnect(): Promise<void> {
    const since = this.opts.clock.now();
    // Whatever holds the exclusive chain sees `reconnecting` and returns; wait for it.
    await this.exclusive(async () => undefined);
    for (let attempt = 1, wait = 1_000; !this.stopping; attempt++, wait = Math.min(wait * 2, 30_000)) {
      await this.disconnectKafka();
      try {
        await this.exclusive(() => this.connect());
        this.metrics.kafkaReconnects.inc({ result: 'reconnected' });
        this.log.info({ attempts: attempt, downSeconds: Math.round((this.opts.clock.now() - since) / 1000), checkpoint: this.seq }, 'Kafka reconnected: serving again');
        break;
      } catch (err) {
        // Not Kafka: the checkpoint and the committed offsets disagree, or the state does not restore; retrying cannot help.
        if (err instanceof RecoveryError) this.fatal(err, 'reconnected, but the state does not come back');
        this.metrics.kafkaReconnects.inc({ result: 'failed' });
        const failure = kafkaFailure(err, this.cfg.kafka);
        // A broker still down is expected here; credentials or certificates that stopped working need a person.
        const fields = { attempt, kind: failure.kind, err: failure.text, retryInMs: wait };
        if (failure.kind === 'authentication' || failure.kind === 'authorisation' || failure.kind === 'tls') this.log.error(fields, 'Kafka refuses the connection: retrying; fix the settings named');
        else this.log.warn(fields, 'Kafka still not reachable: retrying');
        await this.pause(wait);
      }
    }
    this.reconnecting = undefined;
  }

  /** Disconnects the consumer, the reference follower, the producer and the admin client, whatever state they are in. */
  private async disconnectKafka(): Promise<void> {
    await Promise.all([this.consumer?.disconnect().catch(() => undefined), this.reference?.stop().catch(() => undefined)]);
    await this.producer?.disconnect().catch(() => undefined);
    await this.admin?.disconnect().catch(() => undefined);
    this.consumer = undefined;
    this.reference = undefined;
    this.producer = undefined;
    this.admin = undefined;
  }

  /**
   * Reads the reference topic to its end (after the checkpoint is restored, so that its
   * newer records win), then follows it: a record for a day that has started applies at once.
   * Until the end is reached the records apply as they come: connect() is running, the
   * only work there is (after a reconnect it holds the exclusive chain, so a record queued
   * behind it would wait for the very read that waits for it); after, between batches.
   */
  private async followReference(): Promise<void> {
    const { cfg, log, metrics } = this;
    const pipeline = this.pipeline as ScoringPipeline;
    const apply = async (records: readonly ReferenceRecord[]): Promise<void> => {
      for (const r of records) metrics.referenceRecords.inc({ result: pipeline.engine.putReference(r) ? 'applied' : 'unchanged' });
      const days = this.referenceBook.days();
      if (days.length === 0) return;
      const latest = days[days.length - 1];
      metrics.referenceDay.set(dayStart(latest) / 1000);
      // Two weeks are plenty for a day in progress and the next one; the checkpoint carries what is kept.
      this.referenceBook.pruneBefore(latest - 14);
    };
    let caughtUp = false;
    this.reference = new ReferenceFollower(
      this.kafka,
      cfg.kafka.referenceTopic,
      {
        records: (records) => (caughtUp ? this.exclusive(() => apply(records)) : apply(records)),
        invalid: (err, where) => {
          metrics.referenceRecords.inc({ result: 'invalid' });
          log.warn({ code: err.code, where, err: err.message }, 'reference message rejected');
        },
      },
      cfg.kafka.createTopics,
    );
    const n = await this.reference.start(60_000);
    caughtUp = true;
    const days = this.referenceBook.days();
    log.info({ topic: cfg.kafka.referenceTopic, records: n, days: days.map(dayToIso).slice(-3) }, 'reference data read');
  }

  private fatal(err: unknown, what: string): never {
    this.log.fatal({ err }, `${what}: exiting; a restart recovers from the checkpoint and the committed offsets`);
    process.exit(1);
  }

  /** Makes the committed offsets and the checkpoint agree (see checkpoint.ts), and restores the state. */
  private async recover(): Promise<void> {
    const { cfg, log } = this;
    const pipeline = this.pipeline as ScoringPipeline;
    const committed = await this.committedOffsets();
    // A transaction that failed while its checkpoint was being written: that write completes first.
    await this.checkpoints.settled();
    const ckpt = this.checkpoints.read();
    if (ckpt === undefined) {
      if ([...committed.values()].some((o) => o >= 0)) {
        log.warn({ group: cfg.kafka.groupId }, 'no checkpoint but the group has committed offsets: resuming from them with empty state (sequences refill over the next windows)');
      }
      this.recovered = true;
      return;
    }
    const served = pipeline.models.map((m) => `${m.meta.name}@${m.meta.version}`);
    if (ckpt.models.join() !== served.join()) {
      throw new RecoveryError(`checkpoint ${this.checkpoints.path} was written for models ${ckpt.models.join(', ')}; this run serves ${served.join(', ')}. Move the checkpoint away (${this.checkpoints.path} and ${this.checkpoints.logPath}) to start fresh (sequences refill), or serve the same models`);
    }
    const relation = positionsCommitted(ckpt.positions, committed);
    if (relation === 'newer') {
      throw new RecoveryError(`the group ${cfg.kafka.groupId} committed offsets past checkpoint #${ckpt.seq} (${this.checkpoints.path}): this checkpoint is older than the published scores; restore the newest checkpoint, or move it away to start with empty state`);
    }
    try {
      pipeline.restoreChain(ckpt.states);
    } catch (err) {
      throw new RecoveryError(`checkpoint #${ckpt.seq} (${this.checkpoints.path}, ${ckpt.increments} increments in ${this.checkpoints.logPath}) does not restore: ${(err as Error).message}`, { cause: err });
    }
    this.seq = ckpt.seq;
    if (relation === 'older') {
      log.warn({ checkpoint: ckpt.seq, outputs: ckpt.outputs.reduce((n, b) => n + b.messages.length, 0) }, 'the last transaction did not commit: publishing its outputs again');
      await this.transaction(ckpt.outputs, ckpt.positions);
      this.countCheckpointOutputs(ckpt.outputs, 'published again');
    } else if (ckpt.seq === this.countedSeq) {
      // Counted by this process after its commit: only an archive write that failed then is tried again.
      this.archiveCommitted(ckpt.outputs, false);
    } else if (ckpt.seq === this.unansweredSeq) {
      // Committed by this process, the commit's answer lost: published() never counted them.
      this.countCheckpointOutputs(ckpt.outputs, 'answer lost');
    } else {
      // Committed by an earlier run: what the day's archive lacks, that run stopped before counting.
      this.archiveCommitted(ckpt.outputs, true);
    }
    this.countedSeq = ckpt.seq;
    this.lastPositions = JSON.stringify(ckpt.positions);
    log.info({ checkpoint: ckpt.seq, increments: ckpt.increments, writtenAt: ckpt.writtenAt, positions: ckpt.positions.length, watermark: pipeline.currentWatermark }, 'state restored from checkpoint');
    this.recovered = true;
  }

  /**
   * Retries a Kafka call while the broker answers with a retriable error — a broker that
   * has just started is loading its group coordinator for many seconds (kafkajs's own few
   * retries end sooner) — for up to a minute, then gives up with the last error.
   */
  private async whileRetriable<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const deadline = this.opts.clock.now() + 60_000;
    for (let wait = 250; ; wait = Math.min(wait * 2, 5_000)) {
      try {
        return await fn();
      } catch (err) {
        if ((err as { retriable?: boolean }).retriable !== true || this.opts.clock.now() > deadline || this.stopping) throw err;
        this.log.warn({ what, err: (err as Error).message, retryInMs: wait }, 'Kafka not ready yet: retrying');
        await this.pause(wait);
      }
    }
  }

  private async committedOffsets(): Promise<Map<string, number>> {
    const admin = this.admin as Admin;
    const out = new Map<string, number>();
    const existing = new Set(await admin.listTopics());
    const topics = this.inputTopics.filter((t) => existing.has(t));
    if (topics.length === 0) return out;
    for (const t of await this.whileRetriable('committed offsets', () => admin.fetchOffsets({ groupId: this.cfg.kafka.groupId, topics }))) {
      for (const p of t.partitions) out.set(partitionKey(t.topic, p.partition), Number(p.offset));
    }
    return out;
  }

  /** Learns the partitions' ends: lag, caught-up state, and the start of newly assigned ones. */
  private async refreshPartitions(assignment: boolean): Promise<void> {
    const admin = this.admin as Admin;
    const pipeline = this.pipeline as ScoringPipeline;
    const committed = assignment ? await this.committedOffsets() : undefined;
    let total = 0;
    // The topics at once: a look made for a close waits for the slowest, not for their sum.
    const answers = await Promise.all(this.inputTopics.map((topic) => admin.fetchTopicOffsets(topic).then((offsets) => ({ topic, offsets }), () => undefined)));
    for (const answer of answers) {
      if (answer === undefined) continue; // not created yet
      const { topic, offsets } = answer;
      total += offsets.length;
      for (const o of offsets) {
        const key = partitionKey(topic, o.partition);
        if (!this.assigned.has(key)) continue;
        const end = Number(o.high);
        this.ends.set(key, end);
        if (committed !== undefined) {
          const c = committed.get(key) ?? -1;
          const start = c >= 0 ? c : Number(o.low);
          pipeline.assign(topic, o.partition, start, start >= end);
        }
      }
    }
    if (assignment && this.assigned.size < total) {
      this.log.error({ assigned: this.assigned.size, partitions: total, group: this.cfg.kafka.groupId }, 'this daemon was assigned only part of the input partitions: another instance is in the same consumer group; scores need the whole cross-section, so run one instance per group');
    }
    this.partitionsTotal = total;
    let lagTotal = 0;
    for (const { topic, partition, lag } of pipeline.lag(this.ends)) {
      this.metrics.consumerLag.set({ topic, partition: String(partition) }, lag);
      lagTotal += lag;
      if (!assignment) pipeline.setCaughtUp(topic, partition, lag === 0);
    }
    this.totalLag = lagTotal;
  }

  private async onBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const pipeline = this.pipeline as ScoringPipeline;
    const consumer = this.consumer as Consumer;
    const { topic, partition } = batch;
    if (this.stopping || this.kafkaLost || !isRunning() || isStale()) return;
    const messages = batch.messages.map((message) => ({
      topic,
      partition,
      offset: Number(message.offset),
      key: message.key,
      value: message.value,
      headers: headerText(message.headers),
    }));
    const next = Number(batch.lastOffset()) + 1;
    pipeline.ingestBatch(messages, next);
    // Our own positions, not kafkajs's, are what gets committed (with the outputs).
    if (batch.messages.length > 0) resolveOffset(batch.lastOffset());
    const key = partitionKey(topic, partition);
    this.ends.set(key, Number(batch.highWatermark));
    // Rows waiting for a bar close: read no further until it comes (bounded memory).
    if (pipeline.holding(topic, partition)) consumer.pause([{ topic, partitions: [partition] }]);
    pipeline.setCaughtUp(topic, partition, next >= Number(batch.highWatermark));
    // Before the next fetch, which with every busy partition paused would wait its maxWaitTime.
    await this.lookAtEndsIfAwaited(pipeline, 'fetch');
    await this.commit(false);
    this.resumeReleased();
    this.armDeadline();
    await heartbeat();
  }

  /** A close that waits only for a fresh look at the idle partitions' ends gets it now, not at the next housekeeping. */
  private async lookAtEndsIfAwaited(pipeline: ScoringPipeline, trigger: 'fetch' | 'alarm'): Promise<void> {
    if (!pipeline.awaitingEnds()) return;
    const elapsed = stopwatch();
    await this.refreshPartitions(false);
    this.metrics.endsLookup.observe({ trigger }, elapsed() / 1000);
  }

  /** Resumes partitions whose held messages the watermark has released. */
  private resumeReleased(): void {
    const pipeline = this.pipeline as ScoringPipeline;
    const consumer = this.consumer as Consumer;
    for (const tp of consumer.paused()) {
      for (const p of tp.partitions) if (!pipeline.holding(tp.topic, p)) consumer.resume([{ topic: tp.topic, partitions: [p] }]);
    }
  }

  /** Lag, caught-up partitions, readiness and periodic commits: once a second at most (commits follow commitIntervalMs). */
  private scheduleHousekeeping(): void {
    const every = Math.min(1_000, this.cfg.daemon.commitIntervalMs);
    this.housekeeping = this.opts.clock.setAlarm(this.opts.clock.now() + every, () => {
      this.housekeeping = -1;
      void this.exclusive(() => this.tick())
        .catch((err: unknown) => this.lost(err, 'periodic commit failed'))
        .then(() => {
          if (!this.stopping) this.scheduleHousekeeping();
        });
    });
  }

  /**
   * One Clock alarm at the pipeline's next wall-clock deadline (a partition turning idle,
   * a quiet feed's next close), moved whenever it changes: bars of a quiet feed close on
   * time, without polling.
   */
  private armDeadline(): void {
    const pipeline = this.pipeline;
    if (pipeline === undefined || this.stopping) return;
    const at = pipeline.nextAlarm();
    if (at === this.deadlineAt && this.deadline >= 0) return;
    if (this.deadline >= 0) this.opts.clock.cancelAlarm(this.deadline);
    this.deadline = -1;
    this.deadlineAt = at;
    if (at === Infinity) return;
    this.deadline = this.opts.clock.setAlarm(at, () => {
      this.deadline = -1;
      this.deadlineAt = Infinity;
      void this.exclusive(async () => {
        if (this.stopping || this.kafkaLost || pipeline !== this.pipeline) return;
        pipeline.advanceTime();
        await this.lookAtEndsIfAwaited(pipeline, 'alarm');
        await this.commit(false);
        this.resumeReleased();
        this.armDeadline();
      }).catch((err: unknown) => this.lost(err, 'commit after a wall-clock close failed'));
    });
  }

  private async tick(): Promise<void> {
    if (this.stopping || this.pipeline === undefined || this.kafkaLost || !this.recovered) {
      this.metrics.ready.set(this.readiness().ready ? 1 : 0);
      return;
    }
    await this.refreshPartitions(false);
    this.lastContact = this.opts.clock.now();
    const now = this.opts.clock.now();
    const wm = this.pipeline.currentWatermark;
    if (Number.isFinite(wm)) this.metrics.watermarkDelay.set((now - wm) / 1000);
    this.pipeline.refreshGauges();
    await this.commit(false);
    this.pipeline.prepareForNewSymbols();
    this.resumeReleased();
    this.armDeadline();
    this.metrics.ready.set(this.readiness().ready ? 1 : 0);
  }

  /**
   * Publishes what the pipeline produced since the last commit with the positions it
   * reflects: the checkpoint is serialised, then one transaction sends the outputs while
   * the checkpoint reaches the disk, and commits once it has. Runs as soon as a bar close
   * is scored; otherwise (dead letters, moving offsets) every commitIntervalMs, since each
   * commit writes a checkpoint. The next closes' prefixes start once it is published.
   */
  private async commit(force: boolean): Promise<void> {
    const pipeline = this.pipeline as ScoringPipeline;
    const positions = pipeline.positions();
    const posKey = JSON.stringify(positions);
    const due = force || this.opts.clock.now() - this.lastCommitAt >= this.cfg.daemon.commitIntervalMs;
    if (pipeline.pendingCloses === 0 && !(due && (pipeline.hasOutput || posKey !== this.lastPositions))) return;
    const scoring = stopwatch();
    const takenAt = this.opts.clock.now();
    const { closes, targets, batches } = await pipeline.takeOutputs();
    const scoringSeconds = scoring() / 1000;
    const elapsed = stopwatch();
    const startedAt = threadTime();
    // A full checkpoint first after a start or a restore; once the increments since the last
    // one are twice its size, at the next commit without a close (off the close's latency
    // path), or at any commit once they are four times it.
    const store = this.checkpoints;
    const overdue = store.logBytes >= 2 * store.fullBytes;
    const kind = !this.wroteFull || (overdue && (closes.length === 0 || store.logBytes >= 4 * store.fullBytes)) ? 'full' : 'increment';
    const ckpt: Checkpoint = {
      format: CHECKPOINT_FORMAT,
      seq: this.seq + 1,
      kind,
      writtenAt: new Date(this.opts.clock.now()).toISOString(),
      models: pipeline.models.map((m) => `${m.meta.name}@${m.meta.version}`),
      positions,
      outputs: batches,
      state: pipeline.snapshot(kind),
    };
    // The archive's closes since the last checkpoint reach the disk ahead of this one (the same
    // writer thread, in order), so the closes a power cut can take from it are the ones the
    // newest checkpoint on disk holds, which recovery archives again.
    const archived = this.archive?.takeUnsynced() ?? [];
    if (archived.length > 0) store.syncAhead(archived).catch((err: unknown) => this.archiveFailed('sync', err, { files: archived }, 'the score archive could not be fsynced: a power cut can take its latest closes (reconcile --archive would count them missing; the score topic has them)'));
    // Serialised now, made durable while the transaction's messages are sent: it only has to
    // be on disk before the commit (a crash before that aborts the transaction with it).
    const written = store.write(ckpt);
    pipeline.saved();
    this.wroteFull = true;
    this.seq = ckpt.seq;
    const serialiseSeconds = elapsed() / 1000;
    this.metrics.checkpointBytes.set({ kind }, written.bytes);
    // From the snapshot to the bytes on disk, as the writer thread saw it (not when this busy thread next looked).
    written.durable.then(
      (doneAt) => {
        const seconds = Math.max(0, doneAt - startedAt) / 1000;
        this.metrics.checkpoint.observe({ kind }, seconds);
        this.log.debug({ checkpoint: ckpt.seq, kind, bytes: written.bytes, closes: closes.length, serialiseMs: Math.round(serialiseSeconds * 1000), durableMs: Math.round(seconds * 1000) }, 'checkpoint written');
      },
      () => undefined,
    );
    const transaction = stopwatch();
    let waited: number;
    try {
      const places: FailpointPlace[] = [];
      if (closes.length > 0) places.push('close-commit');
      if (targets.length > 0) places.push('targets-commit');
      waited = await this.transaction(batches, positions, written.durable, places);
    } catch (err) {
      if (err instanceof CheckpointWriteError) this.fatal(err.cause, `checkpoint #${ckpt.seq} could not be written to ${this.cfg.daemon.checkpointDir} (its transaction was aborted)`);
      // The checkpoint holds these outputs: the reconnect publishes them again unless the broker
      // committed them, and then counts them (recover).
      this.unansweredSeq = ckpt.seq;
      this.lost(err, 'transaction failed');
      return;
    }
    this.countedSeq = ckpt.seq;
    this.lastContact = this.opts.clock.now();
    this.lastPositions = posKey;
    this.lastCommitAt = this.opts.clock.now();
    if (closes.length > 0) {
      const phase = this.metrics.closePhase;
      phase.observe({ phase: 'queued' }, Math.max(0, takenAt - Math.min(...closes.map((c) => c.closedAtMs))) / 1000);
      phase.observe({ phase: 'prefix' }, Math.max(...closes.map((c) => c.prefixWaitSeconds)));
      phase.observe({ phase: 'scoring' }, scoringSeconds);
      // What of the checkpoint the close waits for: serialising it, and its fsync where it outlasts the sends.
      phase.observe({ phase: 'checkpoint' }, serialiseSeconds + waited);
      phase.observe({ phase: 'transaction' }, transaction() / 1000 - waited);
    }
    this.published(closes, targets);
    pipeline.startPrefixes();
  }

  /** The close's output path once on a synthetic cross-section (warm-up.ts), before the first close needs it. */
  private async warmUp(): Promise<void> {
    const pipeline = this.pipeline as ScoringPipeline;
    const { ms, bytes } = await warmUpCloseOutputs({ models: pipeline.models, topics: pipeline.topics, partitionOf: this.outputPartitionOf, transactionalId: this.cfg.kafka.transactionalId });
    this.log.info({ symbols: WARM_UP_SYMBOLS, ms: Math.round(ms), requestBytes: bytes }, 'close path warmed up (nothing sent or written)');
  }

  /** The topics serve writes: scores, the batch, dead letters, shadow scores and target weights where configured. */
  private get outputTopics(): string[] {
    const k = this.cfg.kafka;
    return [k.scoresTopic, k.scoresBatchTopic, k.deadLetterTopic, ...(this.cfg.daemon.shadowModels.length > 0 ? [k.shadowScoresTopic] : []), ...(this.cfg.portfolio.model !== '' ? [k.targetsTopic] : [])];
  }

  /**
   * The output topics' partitions, for the producer's own choice of partition per key
   * (kafka-chunks.ts producerPartitions): a topic not there yet (created by its first
   * write, where the broker allows it) is left to the producer, in requests bounded as a
   * whole. Partitions added to a topic while serving are seen at the next connect.
   */
  private async readOutputPartitions(existing: ReadonlySet<string>): Promise<PartitionOf> {
    const admin = this.admin as Admin;
    const topics = this.outputTopics.filter((t) => existing.has(t));
    const metadata = new Map((topics.length === 0 ? [] : (await admin.fetchTopicMetadata({ topics })).topics).map((t) => [t.name, t.partitions]));
    return producerPartitions(metadata);
  }

  /**
   * One transaction: the outputs, the input positions, and — before the commit — the
   * checkpoint that holds them on disk (`durable`, absent when it is there already).
   * Returns the seconds the commit waited for the checkpoint.
   */
  private async transaction(batches: readonly OutputBatch[], positions: Checkpoint['positions'], durable?: Promise<unknown>, failpoints: readonly FailpointPlace[] = []): Promise<number> {
    const producer = this.producer as Producer;
    const txn = await producer.transaction();
    // Set once the commit is asked for: a failure from then on may follow a commit the broker made.
    let committing = false;
    try {
      const topics = new Map<string, { partition: number; offset: string }[]>();
      for (const p of positions) {
        let list = topics.get(p.topic);
        if (list === undefined) topics.set(p.topic, (list = []));
        list.push({ partition: p.partition, offset: String(p.offset) });
      }
      // The offsets' two round trips go first, answered while the outputs are encoded and sent
      // (a transaction orders neither against the other); both settle before the commit or
      // the abort, so that no request of the transaction is in flight at its end.
      const offsets = topics.size > 0 ? txn.sendOffsets({ consumerGroupId: this.cfg.kafka.groupId, topics: [...topics].map(([topic, partitions]) => ({ topic, partitions })) }) : undefined;
      const sends = (async () => {
        for (const round of topicRounds(batches, this.outputPartitionOf)) await txn.sendBatch({ topicMessages: round });
      })();
      for (const sent of await Promise.allSettled([sends, offsets])) if (sent.status === 'rejected') throw sent.reason;
      const waiting = stopwatch();
      await durable?.catch((err: unknown) => {
        throw new CheckpointWriteError('checkpoint write failed', { cause: err });
      });
      const waited = waiting() / 1000;
      const lost = failpoints.map((place) => this.failpoints.reach(place)).find((e) => e !== undefined);
      committing = true;
      await txn.commit();
      if (lost !== undefined) throw lost;
      this.metrics.transactions.inc({ result: 'committed' });
      return waited;
    } catch (err) {
      // Unknown: recovery reads from the committed offsets whether the commit went through.
      this.metrics.transactions.inc({ result: committing ? 'unknown' : 'aborted' });
      await txn.abort().catch(() => undefined);
      throw err;
    }
  }

  /**
   * The last checkpoint's outputs, published by a transaction that published() never saw
   * through: recovery published them again (theirs had not committed), or this process's
   * commit of them went through but its answer was lost. Their scores are counted and
   * archived, and their target weights counted, now, as published() does after a commit;
   * the checkpoint keeps the messages, so what that needs is read back from them.
   */
  private countCheckpointOutputs(batches: readonly OutputBatch[], how: 'published again' | 'answer lost'): void {
    const again = how === 'published again';
    for (const batch of batches) {
      if (batch.topic !== this.cfg.kafka.targetsTopic) continue;
      for (const m of batch.messages) {
        const outcome = outcomeOfTargetsMessage(m.value);
        if (outcome !== undefined) (this.pipeline as ScoringPipeline).markTargetsPublished(outcome);
        this.log.info({ portfolio: m.headers.portfolio, model: m.headers.model, barEnd: new Date(Number(m.headers['bar-end'])).toISOString(), kind: outcome?.kind }, again ? 'target weights published again from the checkpoint' : "target weights committed, the commit's answer lost: counted from the checkpoint");
      }
    }
    for (const { records, source } of this.scoreClosesOf(batches)) {
      this.archiveClose(records, source);
      this.metrics.scoresPublished.inc({ model: source.model }, records.length);
      this.log.info({ model: source.model, version: source.modelVersion, freq: source.freq, barEnd: new Date(records[0].barEnd).toISOString(), scored: records.length }, again ? 'scores published again from the checkpoint' : "scores committed, the commit's answer lost: counted and archived from the checkpoint");
    }
  }

  /**
   * After recovery found the last checkpoint's transaction committed and seen through: its
   * closes are archived where the day's files lack them. Committed by an earlier run
   * (`count`), such closes are counted too: that run stopped (a kill) after the commit,
   * before published() counted and archived them. Counted by this process, they lack only
   * an archive write that failed then, tried again. The archive takes each close at once
   * after its commit, so nothing older can be missing.
   */
  private archiveCommitted(batches: readonly OutputBatch[], count: boolean): void {
    const archive = this.archive;
    if (archive === undefined) return;
    for (const { records, source } of this.scoreClosesOf(batches)) {
      const barEnd = records[0].barEnd;
      if (archive.holds(source, barEnd)) continue;
      this.archiveClose(records, source);
      if (count) this.metrics.scoresPublished.inc({ model: source.model }, records.length);
      const fields = { model: source.model, version: source.modelVersion, freq: source.freq, barEnd: new Date(barEnd).toISOString(), scored: records.length };
      this.log.info(fields, count ? 'scores archived from the checkpoint (committed, then the run stopped before archiving them)' : 'scores archived from the checkpoint (their archive write had failed)');
    }
  }

  /** The closes among a transaction's outputs (score and shadow score topics), read back from their messages. */
  private scoreClosesOf(batches: readonly OutputBatch[]): { records: ScoreRecord[]; source: ScoreSource }[] {
    const k = this.cfg.kafka;
    const scoreTopics = new Set([k.scoresTopic, k.shadowScoresTopic]);
    return batches
      .filter((b) => scoreTopics.has(b.topic) && b.messages.length > 0)
      .map((b) => {
        const records = recordsOfScoreMessages(b.messages);
        const { model, modelVersion, freq } = records[0];
        return { records, source: { model, modelVersion, freq } };
      });
  }

  /** A published close into the daily archive; a failed write is logged (the score topic has the close) and serving goes on. */
  private archiveClose(records: readonly ScoreRecord[], source: ScoreSource): void {
    try {
      this.archive?.append(records, source);
    } catch (err) {
      this.archiveFailed('write', err, { model: source.model, barEnd: new Date(records[0]?.barEnd ?? 0).toISOString() }, 'the score archive could not be written: the close is published (the score topic has it) but not archived, and reconcile --archive will count it missing');
    }
  }

  /** A failure of the daily archive: counted and logged at error; serving goes on (the score topic has the closes). */
  private archiveFailed(op: ArchiveOp, err: unknown, fields: Record<string, unknown>, msg: string): void {
    this.metrics.archiveErrors.inc({ op });
    this.log.error({ err, dir: this.cfg.daemon.archiveDir, ...fields }, msg);
  }

  private published(closes: readonly ScoredClose[], targets: readonly TargetWeights[]): void {
    const pipeline = this.pipeline as ScoringPipeline;
    // The waits for a core beside the times they are part of: whether the host's cores, not the daemon, made a close slow (absent where the kernel does not say).
    const ms = (seconds: number): number | undefined => (Number.isNaN(seconds) ? undefined : Math.round(seconds * 1000));
    if (closes.length > 0) this.failpoints.reach('close-archive');
    for (const c of closes) {
      const { latency, waited } = pipeline.markPublished(c);
      this.archiveClose(c.records, c.source);
      this.log.info({ model: c.source.model, version: c.source.modelVersion, role: c.role, freq: c.source.freq, barEnd: new Date(c.records[0]?.barEnd ?? 0).toISOString(), scored: c.records.length, skipped: c.skipped, inferenceMs: ms(c.inference.seconds), inferenceWaitMs: ms(c.inference.waitSeconds), closeToPublishMs: ms(latency), closeToPublishWaitMs: ms(waited) }, 'scores published');
    }
    for (const t of targets) {
      pipeline.markTargetsPublished(t);
      const fields = { portfolio: t.portfolio, model: t.model, benchmark: t.benchmark, barEnd: new Date(t.barEnd).toISOString(), kind: t.kind, candidates: t.symbols.length, held: t.weights.filter((w) => w > 0).length, turnover: Number(t.turnover.toFixed(4)), relaxed: t.relaxed, solveMs: Math.round(t.seconds * 1000) };
      if (t.solved && t.relaxed.length === 0) this.log.info(fields, 'target weights published');
      // A relaxed or unsolved week is the portfolio manager's to know about, not an incident.
      else this.log.warn(fields, t.solved ? 'target weights published with constraints relaxed' : 'target weights infeasible even relaxed: the previous targets are kept');
    }
  }

  /**
   * SIGHUP: every served folder whose meta.json names another version than the one served
   * is loaded and swapped in between two batches (same frequency and window, see
   * ScoringPipeline.replaceModel); the old one is released. A folder that fails to load
   * leaves the served version in place (logged, factorstream_model_reloads_total{result="failed"},
   * once: it is tried again when its meta.json changes).
   */
  async reloadModels(): Promise<void> {
    // One reload at a time: a SIGHUP during one runs after it.
    this.reloading = this.reloading.catch(() => undefined).then(() => this.reloadChanged());
    return this.reloading;
  }

  private async reloadChanged(): Promise<void> {
    const pipeline = this.pipeline;
    if (pipeline === undefined || this.stopping) return;
    const engine = engineOptionsOf(this.cfg.daemon, this.log, 'daemon');
    const outcome = { reloaded: 0, failed: 0, unchanged: 0 };
    for (const current of [...pipeline.models]) {
      const name = current.meta.name;
      let next: ServedModel | undefined;
      // A folder that failed to load is tried again once its meta.json changes.
      const state = `${statSync(join(resolve(current.dir), 'meta.json'), { throwIfNoEntry: false })?.mtimeMs ?? 0}`;
      try {
        if (this.failedReload.get(current.dir) === state || checkedMeta(resolve(current.dir)).version === current.meta.version) {
          outcome.unchanged++;
          continue;
        }
        [next] = await loadServedModels([current.dir], engine, this.cfg.features.minCoverage, this.metrics, this.log, current.role);
        const loaded = next;
        await this.exclusive(async () => pipeline.replaceModel(current, loaded));
        this.metrics.modelInfo.remove(modelInfoLabels(current));
        await current.scorer.dispose();
        this.failedReload.delete(current.dir);
        this.metrics.modelReloads.inc({ model: name, result: 'reloaded' });
        outcome.reloaded++;
        this.log.info({ model: name, from: current.meta.version, to: loaded.meta.version, role: current.role, engine: loaded.scorer.engine, dir: current.dir }, 'model reloaded');
      } catch (err) {
        if (next !== undefined) {
          this.metrics.modelInfo.remove(modelInfoLabels(next));
          this.metrics.modelInfo.set(modelInfoLabels(current), 1);
          await next.scorer.dispose();
        }
        this.failedReload.set(current.dir, state);
        this.metrics.modelReloads.inc({ model: name, result: 'failed' });
        outcome.failed++;
        this.log.error({ err, model: name, dir: current.dir }, 'model reload failed: the served version stays');
      }
    }
    // Every folder looked at: what a SIGHUP changed, also where it changed nothing.
    this.log.info(outcome, 'model folders checked');
  }

  get isStopping(): boolean {
    return this.stopping;
  }

  /** Between start-up steps: a stop requested meanwhile ends start-up here. */
  private checkStopping(): void {
    if (this.stopping) throw new Error('stopped during start-up');
  }

  readiness(): { ready: boolean; checks: Record<string, boolean | number | string> } {
    const models = this.pipeline?.models.length ?? 0;
    // Silent brokers (no fetch answered, no housekeeping round) for this long mean Kafka is gone, before any call has failed.
    const silentMs = this.opts.clock.now() - this.lastContact;
    const kafka = this.reconnecting === undefined && this.lastContact > 0 && silentMs <= KAFKA_SILENCE_MS;
    const checks = { recovered: this.recovered, kafka, kafkaSilentMs: Math.max(0, silentMs), assignedPartitions: this.assigned.size, inputPartitions: this.partitionsTotal, modelsLoaded: models, lag: this.totalLag, maxLag: this.cfg.daemon.readyMaxLag, stopping: this.stopping };
    const wholeMarket = this.assigned.size > 0 && this.assigned.size >= this.partitionsTotal;
    return { ready: this.recovered && kafka && !this.stopping && wholeMarket && models > 0 && this.totalLag <= this.cfg.daemon.readyMaxLag, checks };
  }

  /** SIGTERM: stop consuming, score and publish what is pending, checkpoint, commit, disconnect. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.stopSignal.abort();
    this.log.info('stopping: draining');
    if (this.housekeeping >= 0) this.opts.clock.cancelAlarm(this.housekeeping);
    if (this.deadline >= 0) this.opts.clock.cancelAlarm(this.deadline);
    await this.exclusive(async () => {
      if (this.pipeline !== undefined && this.producer !== undefined && this.recovered) await this.commit(true);
    });
    // Side by side: each waits for its fetch in flight.
    await Promise.all([this.consumer?.disconnect().catch(() => undefined), this.reference?.stop()]);
    await this.producer?.disconnect().catch(() => undefined);
    await this.admin?.disconnect().catch(() => undefined);
    try {
      this.archive?.close();
    } catch (err) {
      this.archiveFailed('close', err, {}, 'the score archive could not be finished and fsynced at stop: reconcile --archive reads its files up to their last whole close');
    }
    await this.checkpoints.close();
    await this.http?.close();
    // The models' sessions and inference workers.
    for (const m of this.pipeline?.models ?? this.models) await m.scorer.dispose().catch(() => undefined);
    this.log.info({ checkpoint: this.seq }, 'stopped');
  }
}

/** Runs the daemon until SIGTERM or SIGINT; resolves with the exit code. */
export async function serve(opts: ServeOptions): Promise<number> {
  const daemon = new KafkaDaemon(opts);
  const stopped = new Promise<number>((resolve) => {
    const onSignal = (signal: string): void => {
      opts.log.info({ signal }, 'signal received');
      const hard = setTimeout(() => {
        opts.log.error({ timeoutMs: opts.config.daemon.shutdownTimeoutMs }, 'shutdown took too long: exiting');
        process.exit(1);
      }, opts.config.daemon.shutdownTimeoutMs);
      hard.unref();
      void daemon.stop().then(() => resolve(0), (err: unknown) => {
        opts.log.error({ err }, 'shutdown failed');
        resolve(1);
      });
    };
    process.once('SIGTERM', () => onSignal('SIGTERM'));
    process.once('SIGINT', () => onSignal('SIGINT'));
    process.on('SIGHUP', () => {
      opts.log.info({ signal: 'SIGHUP' }, 'signal received: reloading changed model folders');
      void daemon.reloadModels();
    });
  });
  try {
    // A stop during start-up (waiting for the group, say) ends it as soon as the stop is done.
    await Promise.race([daemon.start(), stopped]);
  } catch (err) {
    // A signal during start-up disconnects what start() is using: that is a stop, not a failure.
    if (daemon.isStopping) return stopped;
    await daemon.stop().catch(() => undefined);
    // A broker that refuses the connection says why in plain words (TLS, credentials, ACLs, reachability).
    const failure = kafkaFailure(err, opts.config.kafka);
    if (failure.kind === 'other') throw err;
    opts.log.fatal({ kind: failure.kind }, failure.text);
    throw new Error(`Kafka: ${failure.text}`, { cause: err });
  }
  return stopped;
}

/** Recovery failed for a reason of the checkpoint, not of Kafka: a person has to decide (the message says what to do). */
class RecoveryError extends Error {
  override name = 'RecoveryError';
}

/** The checkpoint of a transaction did not reach the disk: exactly-once cannot be kept without it. */
class CheckpointWriteError extends Error {
  override name = 'CheckpointWriteError';
}
