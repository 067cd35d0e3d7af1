/**
 * The kafkajs factorstream installs (vendor/kafkajs) is npm's kafkajs 2.2.4 with the
 * patches of vendor/kafkajs/patches, which make its producer cheaper per message. Checked
 * here against upstream 2.2.4 itself (the dev dependency kafkajs-upstream), which this
 * project did not write: the package differs from it by exactly those patches, and what
 * the patched code encodes — records, the grouping of messages by partition, whole
 * produce requests with their CRCs — is upstream's, byte for byte; a connection's request
 * queue sends what upstream's sends, when upstream's would, without upstream's idle timer;
 * a transactional producer acts on the requests upstream's acts on, with the outcomes
 * upstream's has, asking for its coordinators once instead of before every request.
 * The Kafka suites then read what the daemon produces with kcat (test/integration).
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import fc from 'fast-check';
import type { Kafka as KafkaClass } from 'kafkajs';
import { afterAll, describe, expect, inject, it, vi } from 'vitest';
import { kcatSkipReason, kcatValues } from './integration/kafka-harness.js';

const require = createRequire(import.meta.url);
const patchedDir = dirname(require.resolve('kafkajs/package.json'));
const upstreamDir = dirname(require.resolve('kafkajs-upstream/package.json'));
const patchesDir = join(import.meta.dirname, '..', 'vendor', 'kafkajs', 'patches');

interface RecordArgs {
  offsetDelta?: number;
  timestampDelta?: number;
  key?: Buffer | string | null;
  value?: Buffer | string | null;
  headers?: Record<string, Buffer | string | (Buffer | string)[]>;
}
type RecordEncoder = (args: RecordArgs) => { buffer: Buffer };
type Grouper = (args: { topic: string; partitionMetadata: unknown[]; messages: unknown[]; partitioner: (a: { message: unknown }) => number }) => Record<string, unknown[]>;
type ProduceRequest = (args: Record<string, unknown>) => { encode: () => Promise<{ buffer: Buffer }> };
interface RequestQueue {
  push(request: { entry: Record<string, unknown>; expectResponse: boolean; sendRequest: () => void }): void;
  fulfillRequest(response: { correlationId: number; payload: Buffer; size: number }): void;
  maybeThrottle(ms: number): void;
  checkPendingRequests(): void;
  destroy(): void;
}
type RequestQueueClass = new (args: Record<string, unknown>) => RequestQueue;
interface Eos {
  initProducerId(): Promise<void>;
  beginTransaction(): void;
  addPartitionsToTransaction(topics: { topic: string; partitions: { partition: number }[] }[]): Promise<void>;
  sendOffsets(args: { consumerGroupId: string; topics: { topic: string; partitions: { partition: number; offset: string }[] }[] }): Promise<void>;
  commit(): Promise<void>;
}
type EosFactory = (args: Record<string, unknown>) => Eos;
type KafkaErrors = Record<'KafkaJSConnectionError' | 'KafkaJSConnectionClosedError', new (message: string, options: Record<string, unknown>) => Error>;

const internal = <T>(dir: string, path: string): T => require(join(dir, 'src', path)) as T;
const both = <T>(path: string): [upstream: T, patched: T] => [internal<T>(upstreamDir, path), internal<T>(patchedDir, path)];

function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => statSync(join(dir, f)).isFile())
    .sort();
}

describe('vendored kafkajs', () => {
  const work = mkdtempSync(join(tmpdir(), 'kafkajs-patch-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('is npm kafkajs 2.2.4 with exactly the patches of vendor/kafkajs/patches', () => {
    const expected = join(work, 'package');
    cpSync(upstreamDir, expected, { recursive: true });
    const patches = readdirSync(patchesDir).filter((f) => f.endsWith('.patch')).sort();
    expect(patches.length).toBeGreaterThan(0);
    for (const p of patches) {
      const r = spawnSync('git', ['apply', '--whitespace=nowarn', join(patchesDir, p)], { cwd: expected, encoding: 'utf8' });
      expect(r.status, `${p}: ${r.stderr}`).toBe(0);
    }
    expect(files(patchedDir)).toEqual(files(expected));
    for (const f of files(expected)) {
      const want = readFileSync(join(expected, f), 'utf8');
      const have = readFileSync(join(patchedDir, f), 'utf8');
      if (f === 'package.json') {
        expect({ ...JSON.parse(have), version: '' }, f).toEqual({ ...JSON.parse(want), version: '' });
        expect(JSON.parse(have).version).toMatch(/^2\.2\.4-factorstream\.\d+$/);
      } else {
        expect(have, relative(patchedDir, join(patchedDir, f))).toBe(want);
      }
    }
  });

  const bytes = fc.oneof(fc.string({ unit: 'grapheme', maxLength: 40 }), fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)));
  const record = fc.record(
    {
      offsetDelta: fc.oneof(fc.integer({ min: 0, max: 63 }), fc.integer({ min: 0, max: 2 ** 31 - 1 })),
      timestampDelta: fc.oneof(fc.integer({ min: -100, max: 100 }), fc.integer({ min: -(2 ** 31), max: 2 ** 31 }), fc.integer({ min: 2 ** 40, max: 2 ** 41 })),
      key: fc.option(bytes, { nil: null }),
      value: fc.option(bytes, { nil: null }),
      headers: fc.dictionary(fc.string({ maxLength: 12 }), fc.oneof(bytes, fc.array(bytes, { minLength: 1, maxLength: 3 })), { maxKeys: 6 }),
    },
    { requiredKeys: [] },
  );

  it("encodes every record to upstream's bytes", () => {
    const [upstream, patched] = both<RecordEncoder>('protocol/recordBatch/record/v0/index.js');
    fc.assert(
      fc.property(record, (r) => {
        expect(patched(r).buffer.equals(upstream(r).buffer)).toBe(true);
      }),
      { numRuns: 2_000 },
    );
    // The daemon's score message: a symbol key, JSON, five headers.
    const score = { key: Buffer.from('600000.SH'), value: Buffer.from('{"symbol":"600000.SH","score":0.1}'), headers: { 'content-type': 'application/json', 'model-version': 'v1', 'bar-end': '1767580200000', freq: '10m', model: 'demo-10m' } };
    expect(patched(score).buffer).toEqual(upstream(score).buffer);
  });

  it("groups messages by partition as upstream does, in their order", () => {
    const [upstream, patched] = both<Grouper>('producer/groupMessagesPerPartition.js');
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 200 }), (parts) => {
        const messages = parts.map((partition, i) => ({ partition, i }));
        const args = { topic: 't', partitionMetadata: [{}], messages, partitioner: ({ message }: { message: unknown }) => (message as { partition: number }).partition };
        expect(patched(args)).toEqual(upstream(args));
      }),
    );
    expect(patched({ topic: 't', partitionMetadata: [], messages: [{}], partitioner: () => 0 })).toEqual({});
  });

  it("encodes a transactional produce request to upstream's bytes, CRCs included", async () => {
    const [upstream, patched] = both<ProduceRequest>('protocol/requests/produce/v3/request.js');
    // Both stamp the batch with Date.now(); one instant for both.
    const now = vi.spyOn(Date, 'now').mockReturnValue(1_767_580_200_123);
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(record, { minLength: 1, maxLength: 40 }), fc.option(fc.array(fc.integer({ min: 1_767_580_000_000, max: 1_767_590_000_000 }), { minLength: 40, maxLength: 40 }), { nil: undefined }), async (records, stamps) => {
          const messages = records.map((r, i) => ({ key: r.key, value: r.value, headers: r.headers, ...(stamps === undefined ? {} : { timestamp: String(stamps[i]) }) }));
          const args = { acks: -1, timeout: 30_000, transactionalId: 'factorstream-test', producerId: 7, producerEpoch: 2, topicData: [{ topic: 'factor.scores', partitions: [{ partition: 1, firstSequence: 10, messages }] }] };
          const [a, b] = await Promise.all([upstream(args).encode(), patched(args).encode()]);
          expect(b.buffer.equals(a.buffer)).toBe(true);
        }),
        { numRuns: 200 },
      );
    } finally {
      now.mockRestore();
    }
  });

  it("computes upstream's CRC32C eight bytes at a time, whatever the length", () => {
    const [upstream, patched] = both<(b: Buffer) => number>('protocol/recordBatch/crc32C/index.js');
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), fc.nat(7), (a, from) => {
        // Offsets and lengths that are not multiples of 8, as a batch's body is.
        const b = Buffer.from(a).subarray(Math.min(from, a.length));
        expect(patched(b)).toBe(upstream(b));
      }),
      { numRuns: 2_000 },
    );
    expect(patched(Buffer.from('123456789'))).toBe(0xe3069283); // the check value of CRC-32C
    const big = Buffer.from(Array.from({ length: 1_000_003 }, (_, i) => (i * 2_654_435_761) >>> 24));
    expect(patched(big)).toBe(upstream(big));
  });

  describe('a produce request whose messages share headers objects', () => {
    const [upstream, patched] = both<ProduceRequest>('protocol/requests/produce/v3/request.js');
    const encode = async (topicData: unknown[]) => {
      const args = { acks: -1, timeout: 30_000, transactionalId: 'factorstream-test', producerId: 7, producerEpoch: 2, topicData };
      const [a, b] = await Promise.all([upstream(args).encode(), patched(args).encode()]);
      return { upstream: a.buffer, patched: b.buffer };
    };
    const at = (now: number) => vi.spyOn(Date, 'now').mockReturnValue(now);

    it("encodes to upstream's bytes, shared consecutively or not", async () => {
      const now = at(1_767_580_200_123);
      try {
        await fc.assert(
          fc.asyncProperty(fc.array(record, { minLength: 1, maxLength: 4 }), fc.array(fc.tuple(fc.nat(3), fc.option(bytes, { nil: null })), { minLength: 1, maxLength: 60 }), async (pool, picks) => {
            // Messages draw their headers object from a small pool: runs of one object, and objects that come back.
            const messages = picks.map(([i, value]) => ({ key: 'k', value, headers: pool[i % pool.length]?.headers }));
            const { upstream: a, patched: b } = await encode([{ topic: 't', partitions: [{ partition: 0, firstSequence: 0, messages }] }]);
            expect(b.equals(a)).toBe(true);
          }),
          { numRuns: 300 },
        );
      } finally {
        now.mockRestore();
      }
    });

    it("encodes a close as serve sends it to upstream's bytes: 5,000 score messages with one headers object over four partitions, and the Arrow batch", async () => {
      const now = at(1_767_580_200_123);
      try {
        const headers = { 'content-type': 'application/json', 'model-version': '20261205T000000-s1', 'bar-end': '1767579000000', freq: '10m', model: 'demo-10m' };
        const partitions = [0, 1, 2, 3].map((partition) => ({ partition, firstSequence: 40 * partition, messages: [] as unknown[] }));
        for (let i = 0; i < 5_000; i++) {
          const symbol = `${600_000 + i}.SH`;
          partitions[(i * 7) % 4]?.messages.push({ key: Buffer.from(symbol), value: Buffer.from(JSON.stringify({ symbol, score: i / 5_000 - 0.5, rank: i / 5_000 })), headers });
        }
        const batch = { partition: 0, firstSequence: 3, messages: [{ key: null, value: Buffer.from(Array.from({ length: 400_000 }, (_, i) => i % 251)), headers }] };
        const { upstream: a, patched: b } = await encode([{ topic: 'factor.scores', partitions }, { topic: 'factor.scores.batch', partitions: [batch] }]);
        expect(a.length).toBeGreaterThan(1_000_000);
        expect(b.equals(a)).toBe(true);
      } finally {
        now.mockRestore();
      }
    });

    it('encodes a headers object as it is at each request, when it changed in between', async () => {
      const now = at(1_767_580_200_123);
      try {
        const headers: Record<string, string> = { model: 'a' };
        const topicData = () => [{ topic: 't', partitions: [{ partition: 0, firstSequence: 0, messages: [{ key: 'x', value: '1', headers }, { key: 'y', value: '2', headers }] }] }];
        const first = await encode(topicData());
        headers.model = 'a longer value';
        headers.freq = '30m';
        const second = await encode(topicData());
        expect(first.patched.equals(first.upstream)).toBe(true);
        expect(second.patched.equals(second.upstream)).toBe(true);
        expect(second.patched.includes('a longer value')).toBe(true);
      } finally {
        now.mockRestore();
      }
    });
  });

  describe("a transactional producer's coordinators", () => {
    const [Upstream, Patched] = both<EosFactory>('producer/eosManager/index.js');
    const { KafkaJSConnectionError, KafkaJSConnectionClosedError } = internal<KafkaErrors>(patchedDir, 'errors.js');
    const { createErrorFromCode } = internal<{ createErrorFromCode: (code: number) => Error }>(patchedDir, 'protocol/error.js');
    const logger = { debug: () => undefined, warn: () => undefined, error: () => undefined, info: () => undefined };
    const TRANSACTION = 1; // kafkajs's COORDINATOR_TYPES.TRANSACTION

    /**
     * Three brokers as kafkajs's eosManager sees them through its cluster: FindCoordinator
     * lookups (counted), and brokers that answer the transaction's requests as Kafka does
     * — NOT_COORDINATOR_FOR_GROUP from a broker that is not the coordinator, a connection
     * error from one that is down. `accepted` is what the coordinators acted on.
     */
    class FakeCluster {
      readonly retry = { retries: 2, initialRetryTime: 1, maxRetryTime: 5 };
      readonly coordinator = { transaction: 1, group: 1 };
      readonly down = new Set<number>();
      readonly closeOnce = new Set<number>();
      /** The next request a coordinator receives (of this API, where named) is refused with this error code (`times` over, once by default). */
      refuseOnce: { api?: string; code: number; times?: number } | undefined;
      refused = 0;
      lookups = 0;
      readonly accepted: string[] = [];
      readonly rejected: string[] = [];
      private readonly brokers = new Map([1, 2, 3].map((n) => [n, this.broker(n)]));

      private broker(nodeId: number) {
        const handle = (api: string, of: 'transaction' | 'group', result: unknown = {}) => async () => {
          await Promise.resolve();
          if (this.down.has(nodeId)) throw new KafkaJSConnectionError('Connection error: connect ECONNREFUSED', { broker: `b${nodeId}:9092`, code: 'ECONNREFUSED' });
          if (this.closeOnce.delete(nodeId)) throw new KafkaJSConnectionClosedError('Closed connection', { host: `b${nodeId}`, port: 9092 });
          if (this.coordinator[of] !== nodeId) {
            this.rejected.push(`${api}@${nodeId}`);
            throw createErrorFromCode(16); // NOT_COORDINATOR_FOR_GROUP
          }
          const refuse = this.refuseOnce;
          if (refuse !== undefined && (refuse.api ?? api) === api) {
            refuse.times = (refuse.times ?? 1) - 1;
            if (refuse.times === 0) this.refuseOnce = undefined;
            this.refused++;
            throw createErrorFromCode(refuse.code);
          }
          this.accepted.push(`${api}@${nodeId}`);
          return result;
        };
        return {
          nodeId,
          initProducerId: handle('InitProducerId', 'transaction', { producerId: 7, producerEpoch: 0 }),
          addPartitionsToTxn: handle('AddPartitionsToTxn', 'transaction'),
          addOffsetsToTxn: handle('AddOffsetsToTxn', 'transaction'),
          endTxn: handle('EndTxn', 'transaction'),
          txnOffsetCommit: handle('TxnOffsetCommit', 'group'),
        };
      }

      async refreshMetadata(): Promise<void> {}
      async refreshMetadataIfNecessary(): Promise<void> {}
      async findBroker({ nodeId }: { nodeId: number }) {
        await Promise.resolve();
        if (this.down.has(nodeId)) throw new KafkaJSConnectionError('Connection error: connect ECONNREFUSED', { broker: `b${nodeId}:9092`, code: 'ECONNREFUSED' });
        return this.brokers.get(nodeId);
      }
      async findGroupCoordinator({ coordinatorType }: { groupId: string; coordinatorType: number }) {
        this.lookups++;
        return this.findBroker({ nodeId: coordinatorType === TRANSACTION ? this.coordinator.transaction : this.coordinator.group });
      }
      async findControllerBroker() {
        return this.findBroker({ nodeId: 1 });
      }
    }

    /** A producer's transactions as serve runs them; after a failed one, a new producer (serve reconnects). */
    function producerOn(create: EosFactory, cluster: FakeCluster) {
      let eos: Eos | undefined;
      return async (): Promise<'committed' | 'failed'> => {
        try {
          if (eos === undefined) {
            const fresh = create({ logger, cluster, transactional: true, transactionalId: 'factorstream-scores' });
            await fresh.initProducerId();
            eos = fresh;
          }
          eos.beginTransaction();
          await eos.addPartitionsToTransaction([{ topic: 'factor.scores', partitions: [{ partition: 0 }, { partition: 1 }] }]);
          await eos.sendOffsets({ consumerGroupId: 'factorstream', topics: [{ topic: 'md.ticks', partitions: [{ partition: 0, offset: '42' }] }] });
          await eos.commit();
          return 'committed';
        } catch {
          eos = undefined;
          return 'failed';
        }
      };
    }

    type Step = { kind: 'transaction' } | { kind: 'move'; of: 'transaction' | 'group'; to: number } | { kind: 'down' | 'up'; node: number } | { kind: 'busy'; api: string };
    const node = fc.integer({ min: 1, max: 3 });
    const step: fc.Arbitrary<Step> = fc.oneof(
      { weight: 4, arbitrary: fc.constant({ kind: 'transaction' as const }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('move' as const), of: fc.constantFrom('transaction' as const, 'group' as const), to: node }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom('down' as const, 'up' as const), node }) },
      // What upstream and patched treat alike (AddPartitionsToTxn and AddOffsetsToTxn: 0008, tested below).
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('busy' as const), api: fc.constantFrom('InitProducerId', 'TxnOffsetCommit', 'EndTxn') }) },
    );

    it("acts as upstream does through moved coordinators, brokers down and refused requests, asking for each coordinator once and again only when it moved", async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(step, { maxLength: 30 }), async (steps) => {
          const clusters = [new FakeCluster(), new FakeCluster()];
          const producers = [producerOn(Upstream, clusters[0]), producerOn(Patched, clusters[1])];
          const outcomes: string[][] = [[], []];
          for (const s of steps) {
            for (const [i, c] of clusters.entries()) {
              if (s.kind === 'transaction') outcomes[i].push(await producers[i]());
              else if (s.kind === 'move') c.coordinator[s.of] = s.to;
              else if (s.kind === 'down') c.down.add(s.node);
              else if (s.kind === 'up') c.down.delete(s.node);
              else if (s.kind === 'busy') c.refuseOnce = { api: s.api, code: 51 }; // CONCURRENT_TRANSACTIONS
            }
          }
          const [upstream, patched] = clusters;
          expect(outcomes[1]).toEqual(outcomes[0]);
          expect(patched.accepted).toEqual(upstream.accepted);
          expect(upstream.rejected).toEqual([]);
          expect(patched.lookups).toBeLessThanOrEqual(upstream.lookups);
        }),
        { numRuns: 300 },
      );
    });

    it('asks for the coordinators once over many transactions (upstream: four times a transaction)', async () => {
      const [upstream, patched] = [new FakeCluster(), new FakeCluster()];
      const run = [producerOn(Upstream, upstream), producerOn(Patched, patched)];
      for (let t = 0; t < 5; t++) expect(await Promise.all(run.map((r) => r()))).toEqual(['committed', 'committed']);
      expect(upstream.lookups).toBe(1 + 4 * 5);
      expect(patched.lookups).toBe(2);
      expect(patched.accepted).toEqual(upstream.accepted);
      expect(patched.accepted.slice(-4)).toEqual(['AddPartitionsToTxn@1', 'AddOffsetsToTxn@1', 'TxnOffsetCommit@1', 'EndTxn@1']);
    });

    it("retries TxnOffsetCommit while the group coordinator loads (upstream's lists named the errors by names kafkajs does not use, and failed the transaction)", async () => {
      // COORDINATOR_LOAD_IN_PROGRESS (14), then NOT_COORDINATOR (16) from the coordinator itself: what a fresh broker answers while __consumer_offsets loads.
      for (const code of [14, 16]) {
        const [upstream, patched] = [new FakeCluster(), new FakeCluster()];
        const run = [producerOn(Upstream, upstream), producerOn(Patched, patched)];
        for (const c of [upstream, patched]) c.refuseOnce = { api: 'TxnOffsetCommit', code };
        expect(await Promise.all(run.map((r) => r())), `code ${code}`).toEqual(['failed', 'committed']);
        expect(patched.accepted).toEqual(['InitProducerId@1', 'AddPartitionsToTxn@1', 'AddOffsetsToTxn@1', 'TxnOffsetCommit@1', 'EndTxn@1']);
      }
    });

    it('sends AddPartitionsToTxn and AddOffsetsToTxn again while the transaction coordinator is busy, a bounded number of times', async () => {
      // CONCURRENT_TRANSACTIONS (51): the previous transaction's markers still being written; COORDINATOR_LOAD_IN_PROGRESS (14).
      // Upstream's eosManager gives up at once: the transaction fails (AddPartitionsToTxn comes again only with a whole
      // send's retry, after 300 ms or more; AddOffsetsToTxn never).
      for (const api of ['AddPartitionsToTxn', 'AddOffsetsToTxn']) {
        for (const [code, times] of [[51, 1], [51, 3], [14, 1]]) {
          const [upstream, patched] = [new FakeCluster(), new FakeCluster()];
          const run = [producerOn(Upstream, upstream), producerOn(Patched, patched)];
          for (const c of [upstream, patched]) c.refuseOnce = { api, code, times };
          expect(await Promise.all(run.map((r) => r())), `${api} ${code} x${times}`).toEqual(['failed', 'committed']);
          expect(patched.refused).toBe(times);
          expect(patched.accepted).toEqual(['InitProducerId@1', 'AddPartitionsToTxn@1', 'AddOffsetsToTxn@1', 'TxnOffsetCommit@1', 'EndTxn@1']);
          expect(patched.lookups).toBe(2);
        }
      }
      // Busy for good: the transaction fails after eight retries (about 3 s of backoff).
      const busy = new FakeCluster();
      busy.refuseOnce = { api: 'AddOffsetsToTxn', code: 51, times: Number.POSITIVE_INFINITY };
      expect(await producerOn(Patched, busy)()).toBe('failed');
      expect(busy.refused).toBe(9);
    });

    it('keeps a coordinator that refused a request as the coordinator, and finds a moved one whose old connection closed', async () => {
      const [upstream, patched] = [new FakeCluster(), new FakeCluster()];
      const run = [producerOn(Upstream, upstream), producerOn(Patched, patched)];
      expect(await Promise.all(run.map((r) => r()))).toEqual(['committed', 'committed']);
      // The group coordinator answers UNKNOWN_TOPIC_OR_PARTITION once: kafkajs sends TxnOffsetCommit again, to the same broker.
      for (const c of [upstream, patched]) c.refuseOnce = { api: 'TxnOffsetCommit', code: 3 };
      expect(await Promise.all(run.map((r) => r()))).toEqual(['committed', 'committed']);
      expect(patched.lookups).toBe(2);
      expect(upstream.lookups).toBe(1 + 4 * 2);
      // Both coordinators moved, the connection to the old one closed, and the new group coordinator refuses TxnOffsetCommit once.
      for (const c of [upstream, patched]) {
        c.coordinator.transaction = 2;
        c.coordinator.group = 3;
        c.closeOnce.add(1);
        c.refuseOnce = { api: 'TxnOffsetCommit', code: 3 };
      }
      expect(await Promise.all(run.map((r) => r()))).toEqual(['committed', 'committed']);
      // Patched: AddPartitionsToTxn to the old transaction coordinator met the closed connection and TxnOffsetCommit
      // to the old group coordinator was refused; each was sent again to the coordinator found then (and that one
      // kept, though it refused its first TxnOffsetCommit).
      expect(patched.rejected).toEqual(['TxnOffsetCommit@1']);
      expect(patched.lookups).toBe(2 + 2);
      expect(patched.accepted).toEqual(upstream.accepted);
      expect(patched.accepted.slice(-4)).toEqual(['AddPartitionsToTxn@2', 'AddOffsetsToTxn@2', 'TxnOffsetCommit@3', 'EndTxn@2']);
    });
  });

  describe.skipIf(inject('kafkaSkipReason') !== '' || kcatSkipReason !== '')("a transactional producer's coordinators on a real broker", () => {
    it('are asked for by the first transaction only; every transaction commits its messages (read by kcat) and offsets', async () => {
      const { Kafka, logLevel } = require(patchedDir) as { Kafka: typeof KafkaClass; logLevel: { NOTHING: 0 } };
      const kafka = new Kafka({ clientId: 'coordinator-cache-test', brokers: [inject('kafkaBrokers')], logLevel: logLevel.NOTHING });
      const id = `coordinators-${Date.now().toString(36)}`;
      const admin = kafka.admin();
      await admin.connect();
      await admin.createTopics({ topics: [{ topic: `${id}.out`, numPartitions: 2 }, { topic: `${id}.in`, numPartitions: 1 }], waitForLeaders: true });
      const producer = kafka.producer({ transactionalId: id, idempotent: true, maxInFlightRequests: 1 });
      const requests: string[][] = [[]];
      producer.on(producer.events.REQUEST, (e: { payload: { apiName: string } }) => requests.at(-1)?.push(e.payload.apiName));
      try {
        await producer.connect();
        for (let t = 0; t < 4; t++) {
          requests.push([]);
          const txn = await producer.transaction();
          await txn.send({ topic: `${id}.out`, messages: [{ key: `k${t}`, value: `transaction ${t}` }] });
          await txn.sendOffsets({ consumerGroupId: id, topics: [{ topic: `${id}.in`, partitions: [{ partition: 0, offset: String(10 + t) }] }] });
          await txn.commit();
        }
        // kafkajs names FindCoordinator by its old name, GroupCoordinator; upstream sends four a transaction. The first
        // transaction asks for the group's coordinator (on a fresh broker, again while it loads: upstream failed there).
        expect(requests[1]).toContain('GroupCoordinator');
        for (const r of requests.slice(2)) {
          expect(r).not.toContain('GroupCoordinator');
          expect(r).toEqual(expect.arrayContaining(['AddPartitionsToTxn', 'Produce', 'AddOffsetsToTxn', 'TxnOffsetCommit', 'EndTxn']));
        }
        expect((await kcatValues(`${id}.out`)).map(String).sort()).toEqual(['transaction 0', 'transaction 1', 'transaction 2', 'transaction 3']);
        expect(await admin.fetchOffsets({ groupId: id, topics: [`${id}.in`] })).toEqual([{ topic: `${id}.in`, partitions: [expect.objectContaining({ partition: 0, offset: '13' })] }]);
      } finally {
        await producer.disconnect();
        await admin.disconnect();
      }
    });
  });

  describe('a connection request queue', () => {
    const [Upstream, Patched] = both<RequestQueueClass>('network/requestQueue/index.js');
    const logger = { debug: () => undefined, warn: () => undefined, error: () => undefined, info: () => undefined };

    /** A queue of one of the two, the requests it sent (by correlation id), and how often it checked its pending list. */
    function queueOf(Queue: RequestQueueClass, maxInFlightRequests: number | null) {
      const queue = new Queue({ maxInFlightRequests, requestTimeout: 30_000, enforceRequestTimeout: false, clientId: 'test', broker: 'b:9092', logger });
      const sent: number[] = [];
      const checks = vi.spyOn(queue, 'checkPendingRequests');
      let next = 0;
      const push = () => {
        const correlationId = next++;
        queue.push({ entry: { correlationId, apiName: 'Produce', apiKey: 0, apiVersion: 3, resolve: () => undefined, reject: () => undefined }, expectResponse: true, sendRequest: () => sent.push(correlationId) });
        return correlationId;
      };
      const fulfil = (correlationId: number) => queue.fulfillRequest({ correlationId, payload: Buffer.alloc(0), size: 0 });
      return { queue, sent, checks, push, fulfil };
    }

    /** The same steps on upstream's queue and the patched one: what each sent after each step, and how often each checked. */
    function script(maxInFlightRequests: number | null, steps: ((q: ReturnType<typeof queueOf>) => void)[]) {
      vi.useFakeTimers({ now: 1_767_580_200_000 });
      try {
        return [Upstream, Patched].map((Queue) => {
          const q = queueOf(Queue, maxInFlightRequests);
          const sentAfter = steps.map((step) => {
            step(q);
            return [...q.sent];
          });
          const result = { sentAfter, checks: q.checks.mock.calls.length, timers: vi.getTimerCount() };
          q.queue.destroy();
          vi.clearAllTimers();
          return result;
        });
      } finally {
        vi.useRealTimers();
      }
    }

    it('sends what upstream sends when it sends it: at once, after an in-flight request, after a throttle', () => {
      const [upstream, patched] = script(1, [
        (q) => q.push(), // sent at once
        (q) => q.push(), // waits: one in flight
        (q) => q.fulfil(0), // the second goes
        (q) => q.fulfil(1),
        (q) => q.queue.maybeThrottle(50), // the broker asks for 50 ms
        (q) => q.push(), // waits for the throttle
        () => vi.advanceTimersByTime(40),
        () => vi.advanceTimersByTime(20), // sent once the throttle is over
        (q) => q.fulfil(2),
      ]);
      expect(patched?.sentAfter).toEqual(upstream?.sentAfter);
      expect(patched?.sentAfter).toEqual([[0], [0], [0, 1], [0, 1], [0, 1], [0, 1], [0, 1], [0, 1, 2], [0, 1, 2]]);
    });

    it('keeps no timer while nothing is pending (upstream checks every millisecond, forever)', () => {
      const idle = (q: ReturnType<typeof queueOf>) => {
        q.fulfil(q.push());
        vi.advanceTimersByTime(1_000);
      };
      const [upstream, patched] = script(null, [idle]);
      expect(upstream?.checks).toBeGreaterThan(900);
      expect(upstream?.timers).toBe(1);
      expect(patched?.checks).toBe(1);
      expect(patched?.timers).toBe(0);
    });
  });
});
