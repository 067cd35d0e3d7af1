/**
 * `factorstream replay`: publishes recorded or simulated ticks and 1-minute bars to Kafka
 * in event-time order, as JSON (one event a message, keyed by symbol) or Arrow (many
 * events a message, one message per partition and flush, rows grouped by the partition
 * their symbol's key maps to, so that a symbol stays in one partition whatever the
 * format). `speed` paces event time against the wall clock (60 = a minute a second);
 * 'max' sends as fast as the broker takes it.
 */
import { Kafka, logLevel, Partitioners, type PartitionMetadata, type Producer } from 'kafkajs';
import type { Logger } from '../log.js';
import { kafkaLogCreator } from './kafka-log.js';
import type { TradingCalendar } from '../market/calendar.js';
import type { BarLabel } from '../market/sessions.js';
import { stopwatch, systemClock } from '../market/clock.js';
import { encodeBarsArrow, encodeTicksArrow } from './arrow-codec.js';
import { CONTENT_TYPE_ARROW, CONTENT_TYPE_JSON, type DecodeContext } from './decode.js';
import { BarBatch, barRecordAt, copyBarRow, copyTickRow, SymbolTable, TickBatch, tickRecordAt } from './events.js';
import { FileSource, mergeByTime } from './file-source.js';
import { encodeTickJson } from './json-codec.js';
import { chunks, producerPartitions, REQUEST_MESSAGES } from './kafka-chunks.js';
import type { KafkaConnection } from './kafka-client.js';
import type { ReferenceRecord } from '../market/reference.js';
import { referenceMessages } from './reference-codec.js';

export interface ReplayOptions {
  inputs: string[];
  /** Brokers, TLS and SASL (kafka-client.ts). */
  connection: KafkaConnection;
  ticksTopic: string;
  barsTopic: string;
  format: 'json' | 'arrow';
  speed: number | 'max';
  /** Rows per Arrow message (at most). */
  arrowRows: number;
  /** Partitions of topics replay creates. */
  partitions: number;
  /** How the bar files label their bars, and so the bar messages it publishes (bars.label). */
  barLabel?: BarLabel;
  /** Reference records published to `referenceTopic` (compacted, keyed by symbol) before any event. */
  reference?: readonly ReferenceRecord[];
  referenceTopic?: string;
  calendar: TradingCalendar;
  log: Logger;
  signal?: AbortSignal;
}

export interface ReplaySummary {
  /** Reference records published. */
  reference: number;
  ticks: number;
  bars: number;
  messages: number;
  rejected: number;
  seconds: number;
}

/** Wall-clock granularity of pacing (ms): event time advances by this times the speed between checks. */
const PACE_STEP_MS = 20;

interface Outgoing {
  topic: string;
  partition: number;
  key: string | null;
  value: Buffer;
  contentType: string;
}


export async function replay(opts: ReplayOptions): Promise<ReplaySummary> {
  const kafka = new Kafka({ clientId: 'factorstream-replay', ...opts.connection, logLevel: logLevel.WARN, logCreator: kafkaLogCreator(opts.log, () => systemClock.now()) });
  const admin = kafka.admin();
  await admin.connect();
  const topics = [opts.ticksTopic, opts.barsTopic];
  const existing = new Set(await admin.listTopics());
  const missing = topics.filter((t) => !existing.has(t));
  if (missing.length > 0) await admin.createTopics({ topics: missing.map((topic) => ({ topic, numPartitions: opts.partitions })), waitForLeaders: true });
  const referenceTopic = opts.referenceTopic ?? 'md.reference';
  if (opts.reference !== undefined && !existing.has(referenceTopic)) {
    await admin.createTopics({ topics: [{ topic: referenceTopic, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }], waitForLeaders: true });
  }
  const metadata = new Map<string, PartitionMetadata[]>();
  for (const t of (await admin.fetchTopicMetadata({ topics })).topics) metadata.set(t.name, t.partitions);
  await admin.disconnect();

  const producer: Producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  // The producer's own partitioner (remembered per symbol): Arrow rows go where that symbol's JSON messages would.
  const partitionOfKey = producerPartitions(metadata);
  const partitionOf = (topic: string, symbol: string): number => partitionOfKey(topic, symbol) ?? 0;

  const symbols = new SymbolTable();
  let rejected = 0;
  const barLabel = opts.barLabel ?? 'end';
  const ctx: DecodeContext = {
    symbols,
    calendar: opts.calendar,
    barLabel,
    reject: (code, detail, origin, row) => {
      rejected++;
      opts.log.warn({ code, detail, origin, row }, 'input row rejected, not replayed');
    },
  };
  const summary: ReplaySummary = { reference: 0, ticks: 0, bars: 0, messages: 0, rejected: 0, seconds: 0 };
  // Reference data first, as a data desk publishes it before the open.
  for (const part of chunks(referenceMessages(opts.reference ?? []))) {
    await producer.send({ topic: referenceTopic, acks: -1, messages: part });
    summary.reference += part.length;
  }
  const elapsed = stopwatch();
  let firstTs = -1;
  let nextPace = -Infinity;
  let queue: Outgoing[] = [];
  const tickParts = new Map<number, TickBatch>();
  const barParts = new Map<number, BarBatch>();

  /** Sends the queue in bounded requests (see kafka-chunks.ts). */
  const send = async (): Promise<void> => {
    for (const part of chunks(queue.map((o) => ({ ...o, headers: { 'content-type': o.contentType } })))) {
      const byTopic = new Map<string, typeof part>();
      for (const o of part) {
        let list = byTopic.get(o.topic);
        if (list === undefined) byTopic.set(o.topic, (list = []));
        list.push(o);
      }
      await producer.sendBatch({
        acks: -1,
        topicMessages: [...byTopic].map(([topic, list]) => ({ topic, messages: list.map((o) => ({ partition: o.partition, key: o.key, value: o.value, headers: o.headers })) })),
      });
      summary.messages += part.length;
    }
    queue = [];
  };

  const flushArrow = (): void => {
    for (const [p, b] of tickParts) {
      if (b.length === 0) continue;
      queue.push({ topic: opts.ticksTopic, partition: p, key: null, value: Buffer.from(encodeTicksArrow(b, symbols)), contentType: CONTENT_TYPE_ARROW });
      b.clear();
    }
    for (const [p, b] of barParts) {
      if (b.length === 0) continue;
      queue.push({ topic: opts.barsTopic, partition: p, key: null, value: Buffer.from(encodeBarsArrow(b, symbols, 0, b.length, barLabel)), contentType: CONTENT_TYPE_ARROW });
      b.clear();
    }
  };

  /** Waits until the wall clock reaches event time `ts` at the replay speed. */
  const pace = async (ts: number): Promise<void> => {
    if (opts.speed === 'max') return;
    if (firstTs < 0) firstTs = ts;
    const due = (ts - firstTs) / opts.speed - elapsed();
    if (due > 5) {
      if (opts.format === 'arrow') flushArrow();
      await send();
      const wait = (ts - firstTs) / opts.speed - elapsed();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  };

  /** One kind of event: its topic, JSON encoder, Arrow accumulator per partition, and row copy. */
  interface Kind<B extends TickBatch | BarBatch> {
    topic: string;
    json(batch: B, i: number): string;
    parts: Map<number, B>;
    make(): B;
    copy(src: B, i: number, dst: B): void;
  }
  const ticksKind: Kind<TickBatch> = { topic: opts.ticksTopic, json: (b, i) => encodeTickJson(tickRecordAt(b, symbols, i)), parts: tickParts, make: () => new TickBatch(opts.arrowRows), copy: copyTickRow };
  const barsKind: Kind<BarBatch> = { topic: opts.barsTopic, json: (b, i) => JSON.stringify(barRecordAt(b, symbols, i, barLabel)), parts: barParts, make: () => new BarBatch(opts.arrowRows), copy: copyBarRow };

  const queueRows = async <B extends TickBatch | BarBatch>(kind: Kind<B>, batch: B, from: number, to: number): Promise<void> => {
    for (let i = from; i < to; i++) {
      // A file hands over long runs of rows: pace inside them, not only between.
      if (batch.ts[i] >= nextPace) {
        if (queue.length >= REQUEST_MESSAGES) await send();
        await pace(batch.ts[i]);
        nextPace = batch.ts[i] + PACE_STEP_MS * (opts.speed === 'max' ? Infinity : opts.speed);
      }
      const symbol = symbols.names[batch.symbol[i]];
      const partition = partitionOf(kind.topic, symbol);
      if (opts.format === 'json') {
        queue.push({ topic: kind.topic, partition, key: symbol, value: Buffer.from(kind.json(batch, i)), contentType: CONTENT_TYPE_JSON });
      } else {
        let part = kind.parts.get(partition);
        if (part === undefined) kind.parts.set(partition, (part = kind.make()));
        kind.copy(batch, i, part);
        if (part.length >= opts.arrowRows) flushArrow();
      }
    }
    if (queue.length >= REQUEST_MESSAGES) await send();
    await pace(batch.ts[to - 1]);
  };

  await mergeByTime(
    opts.inputs.map((p) => new FileSource(p)),
    () => ctx,
    {
      ticks: async (batch, from, to) => {
        summary.ticks += to - from;
        await queueRows(ticksKind, batch, from, to);
      },
      bars: async (batch, from, to) => {
        summary.bars += to - from;
        await queueRows(barsKind, batch, from, to);
      },
    },
  );
  if (opts.format === 'arrow') flushArrow();
  await send();
  await producer.disconnect();
  summary.rejected = rejected;
  summary.seconds = elapsed() / 1000;
  return summary;
}
