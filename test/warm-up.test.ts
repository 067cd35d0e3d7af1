/**
 * The start's warm-up (src/daemon/warm-up.ts) runs a close's output path on a synthetic
 * cross-section and sends nothing. Checked here: its produce requests are the ones
 * kafkajs 2.2.4 as npm ships it (kafkajs-upstream, which this project did not write)
 * encodes for the same messages, byte for byte — so the warm-up runs the encoding a close
 * runs, over every message of the close — and it builds each served model's messages.
 * test/integration/daemon.test.ts checks against the real broker, with kcat, that the
 * score topic holds the closes' messages and nothing else.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { warmUpCloseOutputs } from '../src/daemon/warm-up.js';
import { producerPartitions, topicRounds, type OutgoingMessage } from '../src/ingest/kafka-chunks.js';
import { encodeProduceRequest } from '../src/ingest/kafka-produce-encoding.js';
import { scoreMessages, scoreRecords } from '../src/sink/scores.js';

const require = createRequire(import.meta.url);
const upstreamDir = dirname(require.resolve('kafkajs-upstream/package.json'));
type ProduceRequest = (args: Record<string, unknown>) => { encode: () => Promise<{ buffer: Buffer }> };
const upstreamRequest = require(join(upstreamDir, 'src', 'protocol', 'requests', 'produce', 'v3', 'request.js')) as ProduceRequest;

const partitions = (n: number) => Array.from({ length: n }, (_, p) => ({ partitionId: p, leader: 1, replicas: [1], isr: [1], partitionErrorCode: 0, offlineReplicas: [] }));
const partitionOf = producerPartitions(new Map([['factor.scores', partitions(4)], ['factor.scores.batch', partitions(1)]]));
const source = { model: 'alpha-10m', modelVersion: '2026-01-05', freq: '10m' as const };

/** Upstream's request for the same round: each topic's messages by partition, in the order they came. */
async function upstreamBytes(round: readonly { topic: string; messages: readonly OutgoingMessage[] }[], transactionalId: string): Promise<Buffer> {
  const topicData = round.map(({ topic, messages }) => {
    const byPartition = new Map<number, OutgoingMessage[]>();
    for (const m of messages) byPartition.set(m.partition ?? 0, [...(byPartition.get(m.partition ?? 0) ?? []), m]);
    return { topic, partitions: [...byPartition].sort(([a], [b]) => a - b).map(([partition, list]) => ({ partition, firstSequence: 0, messages: list })) };
  });
  return (await upstreamRequest({ acks: -1, timeout: 30_000, transactionalId, producerId: '0', producerEpoch: 0, topicData }).encode()).buffer;
}

describe('the warm-up at start', () => {
  it("encodes a close's produce requests as kafkajs does, every message of them", async () => {
    const n = 300;
    const cs = {
      job: { barEnd: Date.UTC(2026, 0, 5, 2, 10), universe: n, n, ids: Int32Array.from({ length: n }, (_, i) => i), coverage: new Float64Array(n).fill(0.9), input: new Float32Array(0), limit: new Int8Array(n) },
      score: Float32Array.from({ length: n }, (_, i) => Math.cos(i)),
      z: Float64Array.from({ length: n }, (_, i) => Math.sin(i)),
      rank: Float64Array.from({ length: n }, (_, i) => (i + 1) / n),
      inference: { seconds: 0, waitSeconds: 0 },
      path: { step: 0, whole: n, prefixSeconds: 0, prefixWaitSeconds: 0 },
    };
    const names = Array.from({ length: n }, (_, i) => `${String(i + 1).padStart(6, '0')}.SZ`);
    const batches = [{ topic: 'factor.scores', messages: scoreMessages(scoreRecords(cs, names, source), source) }];
    const now = vi.spyOn(Date, 'now').mockReturnValue(1_767_580_200_123);
    try {
      let requests = 0;
      for (const round of topicRounds(batches, partitionOf)) {
        const expected = await upstreamBytes(round, 'factorstream');
        expect((await encodeProduceRequest(round, 'factorstream')).equals(expected)).toBe(true);
        expect(expected.length).toBeGreaterThan(n * 200);
        requests++;
      }
      expect(requests).toBe(1);
    } finally {
      now.mockRestore();
    }
  });

  it("runs each served model's outputs through it, a shadow model's too", async () => {
    const topics = { scores: 'factor.scores', scoresBatch: 'factor.scores.batch', shadowScores: 'factor.scores.shadow' };
    const meta = { name: source.model, version: source.modelVersion, freq: source.freq };
    const live = await warmUpCloseOutputs({ models: [{ meta, role: 'live' }], topics, partitionOf, transactionalId: 'factorstream', symbols: 1_000 });
    // 1,000 score messages of about 200 bytes and the Arrow batch, in records of their own.
    expect(live.bytes).toBeGreaterThan(1_000 * 200);
    const both = await warmUpCloseOutputs({ models: [{ meta, role: 'live' }, { meta: { ...meta, name: 'alpha-shadow' }, role: 'shadow' }], topics, partitionOf, transactionalId: 'factorstream', symbols: 1_000 });
    // The shadow model's messages go in the same requests, to its own topic.
    expect(both.bytes).toBeGreaterThan(live.bytes + 1_000 * 200);
  });
});
