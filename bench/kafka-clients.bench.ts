/**
 * What bounds JSON ingest through the broker: the same topic of one-tick JSON messages
 * (a simulated day, 4 partitions, written by replay) consumed from the beginning by
 *   kafkajs             the daemon's client, eachBatch, nothing done per message (the client's own cost)
 *   @platformatic/kafka the candidate client, its message stream, nothing done per message;
 *                       where its peer install exists (bench/peers/setup-kafka.sh) and Node is
 *                       >= 22.22 (its engines field: it cannot be the daemon's client while
 *                       the daemon supports Node 20)
 * and, in process on the same messages, the daemon's own per-message work (decode and
 * validate: MessageDecoder) — each as messages/s between the 10% and 90% marks, in one
 * session against one broker.
 */
import { existsSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import type { InputMessage } from '../src/daemon/pipeline.js';
import { expandInputs } from '../src/ingest/file-source.js';
import { SymbolTable, TickBatch } from '../src/ingest/events.js';
import { MessageDecoder } from '../src/ingest/message-decoder.js';
import { replay } from '../src/ingest/replay.js';
import { MarketSimulator } from '../src/ingest/simulator/market.js';
import { writeSimulation } from '../src/ingest/simulator/write.js';
import { createLogger } from '../src/log.js';
import { TradingCalendar } from '../src/market/calendar.js';
import { benchBroker, fmt, now, option, type Benchmark, type ResultRow } from './harness.js';

const calendar = TradingCalendar.load();
const log = createLogger('warn');
export const KAFKA_PEER = process.env.FACTORSTREAM_KAFKA_PEER ?? join(homedir(), '.cache', 'factorstream', 'kafka-peer');

/** Messages/s between the 10% and the 90% mark of `total`, as `count()` rises. */
async function steadyRate(total: number, count: () => number): Promise<{ rate: number; seconds: number }> {
  let from = 0;
  let atFrom = 0;
  const deadline = now() + 600_000;
  while (count() < 0.9 * total && now() < deadline) {
    if (from === 0 && count() >= 0.1 * total) [from, atFrom] = [now(), count()];
    await new Promise((r) => setTimeout(r, 2));
  }
  const seconds = (now() - from) / 1000;
  return { rate: (count() - atFrom) / seconds, seconds };
}

async function kafkajsRaw(brokers: string, topic: string, total: number): Promise<{ rate: number; seconds: number }> {
  const kafka = new Kafka({ clientId: 'bench-kafkajs', brokers: [brokers], logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `bench-kafkajs-${Date.now()}`, maxBytes: 16 << 20, maxBytesPerPartition: 4 << 20 });
  let n = 0;
  let bytes = 0;
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) bytes += m.value?.length ?? 0;
      n += batch.messages.length;
    },
  });
  const r = await steadyRate(total, () => n);
  await consumer.disconnect();
  if (bytes === 0) throw new Error('kafkajs read no bytes');
  return r;
}

/** The candidate client, loaded from its peer install (it is not a dependency of the project). */
async function platformaticRaw(brokers: string, topic: string, total: number): Promise<{ rate: number; seconds: number } | string> {
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major < 22 || (major === 22 && minor < 22)) return `not run: @platformatic/kafka needs Node >= 22.22 or >= 24.6 (this is ${process.versions.node}); run this benchmark on Node 24`;
  const entry = join(KAFKA_PEER, 'node_modules', '@platformatic', 'kafka', 'dist', 'index.js');
  if (!existsSync(entry)) return `not run: no peer install at ${KAFKA_PEER} (bench/peers/setup-kafka.sh makes one)`;
  const pk = (await import(pathToFileURL(entry).href)) as {
    Consumer: new (o: object) => { consume(o: object): Promise<NodeJS.ReadableStream & { close(): Promise<void> }>; close(force?: boolean): Promise<void> };
    version?: string;
  };
  const consumer = new pk.Consumer({ groupId: `bench-platformatic-${Date.now()}`, clientId: 'bench-platformatic', bootstrapBrokers: [brokers], maxBytes: 16 << 20 });
  const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false, maxBytes: 16 << 20 });
  let n = 0;
  let bytes = 0;
  stream.on('data', (m: { value?: Buffer }) => {
    bytes += m.value?.length ?? 0;
    n++;
  });
  const r = await steadyRate(total, () => n);
  await stream.close();
  await consumer.close(true);
  if (bytes === 0) throw new Error('@platformatic/kafka read no bytes');
  return r;
}

/** The daemon's decode and validation of the same messages, in process (no broker). */
async function decodeRate(brokers: string, topic: string, total: number, symbols: SymbolTable): Promise<{ rate: number; seconds: number }> {
  // The messages as the consumer hands them over.
  const kafka = new Kafka({ clientId: 'bench-fetch', brokers: [brokers], logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `bench-fetch-${Date.now()}`, maxBytes: 16 << 20 });
  const messages: InputMessage[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(m.headers ?? {})) if (v !== undefined) headers[k] = v.toString();
        messages.push({ topic, partition: batch.partition, offset: Number(m.offset), key: m.key, value: m.value as Buffer, headers });
      }
    },
  });
  while (messages.length < total) await new Promise((r) => setTimeout(r, 20));
  await consumer.disconnect();
  const decoder = new MessageDecoder(1 << 20);
  const batch = new TickBatch(1024);
  let rejects = 0;
  const ctx = { symbols, calendar, reject: () => void rejects++ };
  const t0 = now();
  for (const m of messages) {
    batch.length = 0;
    decoder.decode(m, batch, 'ticks', ctx);
  }
  const seconds = (now() - t0) / 1000;
  if (rejects > 0) throw new Error(`${rejects} messages rejected`);
  return { rate: messages.length / seconds, seconds };
}

export const kafkaClientsBenchmark: Benchmark = {
  name: 'kafka-clients',
  description: 'What bounds JSON ingest: kafkajs and @platformatic/kafka consuming the same one-tick JSON topic from a real broker (nothing done per message), and the daemon\'s own decode + validation of those messages in process.',
  async run(args) {
    const symbolCount = option(args, 'symbols', 1250);
    const dir = mkdtempSync(join(tmpdir(), 'bench-kafka-clients-'));
    const kafka = await benchBroker();
    const { brokers } = kafka;
    const rows: ResultRow[] = [];
    const notes: string[] = [];
    try {
      const sim = new MarketSimulator({ symbols: symbolCount, days: 1, seed: 5, start: '2026-11-23' }, calendar);
      const written = await writeSimulation(sim, join(dir, 'sim'), 'arrow', () => undefined);
      const topic = `bench.clients.${Date.now().toString(36)}`;
      await replay({ connection: { brokers: [brokers] }, barsTopic: 'unused.bars', partitions: 4, calendar, log, inputs: expandInputs([join(dir, 'sim', 'ticks')]), ticksTopic: topic, format: 'json', speed: 'max', arrowRows: 0 });
      const total = written.ticks;
      const row = (client: string, r: { rate: number; seconds: number } | string): ResultRow =>
        typeof r === 'string' ? { client, messages: fmt(total), seconds: '', 'messages/s': '', note: r } : { client, messages: fmt(total), seconds: fmt(r.seconds, 1), 'messages/s': fmt(r.rate), note: '' };
      rows.push(row('kafkajs 2.2.4, eachBatch, nothing per message', await kafkajsRaw(brokers, topic, total)));
      rows.push(row('@platformatic/kafka, message stream, nothing per message', await platformaticRaw(brokers, topic, total)));
      rows.push(row("the daemon's decode + validate (MessageDecoder), in process", await decodeRate(brokers, topic, total, new SymbolTable(sim.symbols.names))));
      notes.push(`${fmt(total)} one-tick JSON messages (${fmt(symbolCount)} symbols, one simulated day) in 4 partitions, written by replay; each consumer a new group reading from the beginning; Kafka ${kafka.version} on the same 2 cores; Node ${process.versions.node}.`);
    } finally {
      await kafka.stop();
      rmSync(dir, { recursive: true, force: true });
    }
    return { rows, notes };
  },
};
