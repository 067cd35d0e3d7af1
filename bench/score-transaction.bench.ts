/**
 * The Kafka transaction that publishes a bar close, as serve sends it: one score message
 * per symbol on factor.scores (JSON, five headers) and the cross-section as one Arrow
 * message on factor.scores.batch, built by src/sink/scores.ts and chunked into produce
 * requests by topicRounds, then the input offsets and the commit. Timed end to end
 * (begin → commit), alternating in one process against one broker, for one model's close
 * and for two models closing at once (:00 and :30), three ways:
 *   kafkajs 2.2.4 as npm ships it (the dev dependency kafkajs-upstream), requests bounded
 *     as a whole (serve before 2026-12-05)
 *   the vendored kafkajs the daemon runs (vendor/kafkajs: 2.2.4 with its producer
 *     patches), requests bounded as a whole
 *   the vendored kafkajs, each message's partition set and requests bounded per
 *     partition (topicRounds with producerPartitions: serve now)
 */
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import * as Upstream from 'kafkajs-upstream';
import { producerPartitions, topicRounds, type PartitionOf } from '../src/ingest/kafka-chunks.js';
import { roundScore, scoreBatchMessage, scoreMessages, type ScoreRecord, type ScoreSource } from '../src/sink/scores.js';
import { benchBroker, fmt, now, option, percentile, type Benchmark, type ResultRow } from './harness.js';

type Client = typeof Kafka;

/** A close's score records as the pipeline builds them (values are irrelevant to the cost; their shape is not). */
function records(n: number, src: ScoreSource, seed: number): ScoreRecord[] {
  let x = seed;
  const rnd = (): number => ((x = (x * 1_103_515_245 + 12_345) % 2_147_483_648) / 2_147_483_648);
  const barEnd = Date.UTC(2026, 0, 5, 2, 10);
  return Array.from({ length: n }, (_, i) => ({
    symbol: `${String(600000 + i).padStart(6, '0')}.SH`,
    barEnd,
    freq: src.freq,
    model: src.model,
    modelVersion: src.modelVersion,
    score: roundScore(rnd()),
    z: roundScore(rnd() * 6 - 3),
    rank: roundScore(rnd()),
    universe: n,
    coverage: 1,
    limit: 0,
  }));
}

export const scoreTransactionBenchmark: Benchmark = {
  name: 'score-transaction',
  description: "One bar close's Kafka transaction at 5,000 symbols (score messages, the Arrow batch, the input offsets, the commit): the vendored kafkajs against kafkajs 2.2.4 as npm ships it, same process, same broker.",
  async run(args) {
    const n = option(args, 'symbols', 5000);
    const rounds = option(args, 'rounds', 30);
    const kafka = await benchBroker();
    const run = Date.now().toString(36);
    const topics = { scores: `bench.scores.${run}`, batch: `bench.scores.batch.${run}` };
    const vendored = (await import('kafkajs/package.json', { with: { type: 'json' } })).default.version;
    const npm = (await import('kafkajs-upstream/package.json', { with: { type: 'json' } })).default.version;
    const clients: { name: string; Kafka: Client; partitioned: boolean }[] = [
      { name: `kafkajs ${npm} (npm), requests bounded as a whole`, Kafka: Upstream.Kafka as unknown as Client, partitioned: false },
      { name: `vendored kafkajs ${vendored}, requests bounded as a whole`, Kafka, partitioned: false },
      { name: `vendored kafkajs ${vendored}, requests bounded per partition (serve)`, Kafka, partitioned: true },
    ];
    const rows: ResultRow[] = [];
    try {
      const admin = new Kafka({ clientId: 'bench-admin', brokers: [kafka.brokers], logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
      await admin.createTopics({ topics: [{ topic: topics.scores, numPartitions: 4 }, { topic: topics.batch, numPartitions: 1 }], waitForLeaders: true });
      const partitionOf: PartitionOf = producerPartitions(new Map((await admin.fetchTopicMetadata({ topics: [topics.scores, topics.batch] })).topics.map((t) => [t.name, t.partitions])));
      await admin.disconnect();
      const producers = await Promise.all(
        clients.map(async (c, i) => {
          const producer = new c.Kafka({ clientId: `bench-txn-${i}`, brokers: [kafka.brokers], logLevel: logLevel.NOTHING }).producer({ transactionalId: `bench-txn-${run}-${i}`, idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
          await producer.connect();
          return producer;
        }),
      );
      for (const models of [1, 2]) {
        const sources: ScoreSource[] = [
          { model: 'bench-10m', modelVersion: '20261205T000000-s1', freq: '10m' },
          { model: 'bench-30m', modelVersion: '20261205T000000-s2', freq: '30m' },
        ].slice(0, models) as ScoreSource[];
        const seconds = clients.map(() => [] as number[]);
        // Where a transaction's time goes: its produce requests (AddPartitionsToTxn first), the offsets (AddOffsetsToTxn, TxnOffsetCommit), the commit (EndTxn).
        const parts = clients.map(() => ({ send: [] as number[], offsets: [] as number[], commit: [] as number[] }));
        for (let r = -3; r < rounds; r++) {
          for (const [i, producer] of producers.entries()) {
            // Built per close as the pipeline builds them (the building is not timed: it is the scoring phase's).
            const batches = sources.flatMap((src, m) => {
              const recs = records(n, src, r * 7 + m + 1);
              return [
                { topic: topics.scores, messages: scoreMessages(recs, src) },
                { topic: topics.batch, messages: [scoreBatchMessage(recs, src)] },
              ];
            });
            const t0 = now();
            const txn = await producer.transaction();
            for (const round of topicRounds(batches, clients[i].partitioned ? partitionOf : undefined)) await txn.sendBatch({ topicMessages: round });
            const t1 = now();
            await txn.sendOffsets({ consumerGroupId: `bench-txn-${run}`, topics: [{ topic: topics.batch, partitions: [{ partition: 0, offset: '0' }] }] });
            const t2 = now();
            await txn.commit();
            const t3 = now();
            if (r >= 0) {
              seconds[i].push((t3 - t0) / 1000);
              parts[i].send.push((t1 - t0) / 1000);
              parts[i].offsets.push((t2 - t1) / 1000);
              parts[i].commit.push((t3 - t2) / 1000);
            }
          }
        }
        const p50 = seconds.map((s) => percentile(s, 50) * 1000);
        for (const [i, c] of clients.entries()) {
          const s = seconds[i];
          const ms = (xs: number[]): string => fmt(percentile(xs, 50) * 1000, 1);
          rows.push({ client: c.name, close: models === 1 ? `one model, ${fmt(n)} symbols` : `two models, ${fmt(models * n)} messages`, transactions: String(s.length), 'p50, ms': ms(s), 'p99, ms': fmt(percentile(s, 99) * 1000, 1), 'p50 / npm kafkajs': fmt(p50[i] / p50[0], 2), 'p50 send / offsets / commit, ms': `${ms(parts[i].send)} / ${ms(parts[i].offsets)} / ${ms(parts[i].commit)}` });
        }
      }
      await Promise.all(producers.map((p) => p.disconnect()));
    } finally {
      await kafka.stop();
    }
    return {
      rows,
      notes: [
        `${rounds} transactions per client and close after 3 warm-up ones, the clients alternating; Kafka ${kafka.version} on the same machine; ${topics.scores.split('.').slice(0, 2).join('.')} with 4 partitions, the batch topic with 1.`,
        'send / offsets / commit: the parts of one transaction — the produce requests (with AddPartitionsToTxn before the first), sendOffsets (AddOffsetsToTxn, then TxnOffsetCommit to the group coordinator), commit (EndTxn, which writes the markers). kafkajs sends them one after another; sending the offsets while the produce request is out was tried: the broker answers CONCURRENT_TRANSACTIONS and kafkajs retries, 3 ms saved of 80 idle, not kept.',
        'A transaction as serve sends it (src/daemon/serve.ts transaction()): the requests of topicRounds (bounded as a whole: at most 2,000 messages or 900 kB a request; per partition: 900 kB of each partition, up to 16 MB a request), sendOffsets, commit. vendor/kafkajs/README.md says what the patches change; test/kafka-producer-patch.test.ts that the bytes are the same.',
      ],
    };
  },
};
