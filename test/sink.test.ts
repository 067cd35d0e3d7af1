/**
 * What the daemon writes: score messages (JSON per symbol, one Arrow cross-section) as
 * schemas/ describe them, and produce requests cut to the broker's size limit.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as A from 'apache-arrow';
import { Ajv2020 } from 'ajv/dist/2020.js';
import fc from 'fast-check';
import { Kafka, logLevel } from 'kafkajs';
import { describe, expect, inject, it } from 'vitest';
import { chunks, producerPartitions, recordBytes, REQUEST_BYTES, REQUEST_MESSAGES, REQUEST_TOTAL_BYTES, topicRounds, type PartitionOf, type SizedMessage } from '../src/ingest/kafka-chunks.js';
import { roundScore, scoreBatchMessage, scoreMessages, scoreTable, type ScoreRecord } from '../src/sink/scores.js';
import { utf8Vector } from '../src/ingest/arrow-columns.js';
import { javaMurmur2 } from './helpers.js';

const source = { model: 'demo-10m', modelVersion: '20261126T093028-s7', freq: '10m' as const };
const records: ScoreRecord[] = Array.from({ length: 300 }, (_, i) => ({
  symbol: `${String(600000 + i).padStart(6, '0')}.SH`,
  barEnd: Date.parse('2026-11-23T10:00:00+08:00'),
  ...source,
  score: Math.sin(i),
  z: Math.cos(i),
  rank: i / 299,
  universe: 300,
  coverage: 1,
  limit: (i % 3) - 1,
}));

describe('score messages', () => {
  it('per-symbol JSON follows schemas/score.schema.json, keyed by symbol, with the documented headers', () => {
    const validate = new Ajv2020({ strict: true }).compile(JSON.parse(readFileSync('schemas/score.schema.json', 'utf8')) as object);
    const msgs = scoreMessages(records, source);
    expect(msgs).toHaveLength(300);
    for (const m of msgs) expect(validate(JSON.parse(m.value.toString())), JSON.stringify(validate.errors)).toBe(true);
    expect(msgs[7].key?.toString()).toBe('600007.SH');
    expect(msgs[7].headers).toEqual({ 'content-type': 'application/json', 'model-version': source.modelVersion, 'bar-end': String(records[0].barEnd), freq: '10m', model: 'demo-10m' });
  });
  it("each message is its record's JSON keyed by its symbol, with its bar end's headers, one object per bar end", () => {
    const name = fc.string({ unit: 'grapheme', maxLength: 12 });
    const num = fc.double({ noNaN: true, noDefaultInfinity: true });
    const record = fc.record({
      symbol: fc.oneof(fc.constantFrom('600000.SH', '000001.SZ', '430047.BJ'), name),
      barEnd: fc.constantFrom(1_795_417_800_000, 1_795_418_400_000),
      freq: fc.constantFrom('10m' as const, '30m' as const),
      model: name,
      modelVersion: name,
      score: num,
      z: num,
      rank: num,
      universe: fc.integer({ min: 0, max: 6_000 }),
      coverage: num,
      limit: fc.constantFrom(-1, 0, 1),
    });
    fc.assert(
      fc.property(fc.array(record, { maxLength: 40 }), (recs) => {
        const msgs = scoreMessages(recs, source);
        expect(msgs.map((m) => JSON.parse(m.value.toString()) as unknown)).toEqual(recs.map((r) => ({ ...r, z: r.z === 0 ? 0 : r.z, score: r.score === 0 ? 0 : r.score, rank: r.rank === 0 ? 0 : r.rank, coverage: r.coverage === 0 ? 0 : r.coverage })));
        expect(msgs.map((m) => m.key?.toString())).toEqual(recs.map((r) => r.symbol));
        expect(msgs.map((m) => m.headers)).toEqual(recs.map((r) => ({ 'content-type': 'application/json', 'model-version': source.modelVersion, 'bar-end': String(r.barEnd), freq: source.freq, model: source.model })));
        for (let i = 1; i < msgs.length; i++) if (recs[i].barEnd === recs[i - 1].barEnd) expect(msgs[i].headers).toBe(msgs[i - 1].headers);
      }),
    );
  });
  it('the Arrow cross-section has the layout of schemas/score-batch.arrow.json and the same rows', () => {
    const layout = JSON.parse(readFileSync('schemas/score-batch.arrow.json', 'utf8')) as { fields: { name: string }[] };
    const m = scoreBatchMessage(records, source);
    const t = A.tableFromIPC(new Uint8Array(m.value));
    expect(t.schema.fields.map((f) => f.name)).toEqual(layout.fields.map((f) => f.name));
    expect(t.numRows).toBe(300);
    expect(t.get(7)?.toJSON()).toMatchObject({ symbol: '600007.SH', freq: '10m', model: 'demo-10m', modelVersion: source.modelVersion, rank: 7 / 299 });
    expect(Number((t.getChild('barEnd') as A.Vector).get(0))).toBe(records[0].barEnd);
    expect(m.headers['content-type']).toBe('application/vnd.apache.arrow.stream');
  });
});

describe('the parts of a score message, against the plain way to build them', () => {
  const reference = (x: number): number => Number(x.toPrecision(9));

  it('roundScore is Number(x.toPrecision(9)) for every double, float32 and decimal tie', () => {
    const same = (x: number): void => {
      expect(Object.is(roundScore(x), reference(x)), `${x}: ${roundScore(x)} against ${reference(x)}`).toBe(true);
    };
    fc.assert(fc.property(fc.double(), (x) => same(x)), { numRuns: 20_000 });
    fc.assert(fc.property(fc.float(), (x) => same(x)), { numRuns: 20_000 });
    // Nine digits and a half at the tenth, where the product's rounding could decide the digit.
    const tie = fc.tuple(fc.integer({ min: 100_000_000, max: 999_999_999 }), fc.integer({ min: -6, max: 20 }), fc.boolean());
    fc.assert(fc.property(tie, ([digits, p, negative]) => same(((negative ? -1 : 1) * (digits + 0.5)) / 10 ** p)), { numRuns: 20_000 });
    for (let e = -16; e <= 16; e++) {
      for (const d of [1, 9.999999995, 9.9999999949, 1.000000005, 2.5, 5]) {
        const x = d * 10 ** e;
        for (const y of [x, -x, x * (1 + 2 ** -52), x * (1 - 2 ** -52)]) same(y);
      }
    }
    for (const x of [0, -0, Number.NaN, Infinity, -Infinity, Number.MIN_VALUE, Number.MAX_VALUE, 1e-13, 1e14, 1 / 3]) same(x);
  });

  it('utf8Vector holds what Arrow builds from the same strings, ASCII or not', () => {
    const text = fc.oneof(fc.string({ unit: 'binary', maxLength: 8 }), fc.constantFrom('600000.SH', '\ud83d', '\ude00', 'é', ''));
    fc.assert(
      fc.property(fc.array(text, { maxLength: 30 }), (strings) => {
        const mine = utf8Vector(strings);
        const arrow = A.vectorFromArray(strings, new A.Utf8());
        expect(mine.toArray()).toEqual(arrow.toArray());
        expect(mine.data[0].valueOffsets).toEqual(arrow.data[0].valueOffsets.subarray(0, strings.length + 1));
        expect(mine.data[0].values).toEqual(arrow.data[0].values.subarray(0, arrow.data[0].valueOffsets[strings.length]));
      }),
    );
  });

  it("the cross-section's columns are the records' fields, row by row", () => {
    const t = scoreTable(records, source);
    const rows = t.toArray().map((r) => (r as { toJSON(): Record<string, unknown> }).toJSON());
    expect(rows.map((r) => ({ ...r, barEnd: Number(r.barEnd) }))).toEqual(records);
  });
});

describe('produce request chunks', () => {
  it('keeps order, bounds bytes and count, and sends an oversized message alone', () => {
    const msgs = [100, 200, 300, 1_000, 50, 50].map((n, i) => ({ key: `k${i}`, value: Buffer.alloc(n), headers: { h: 'v' } }));
    const parts = [...chunks(msgs, 700, 2)];
    expect(parts.flat()).toEqual(msgs);
    expect(parts.map((p) => p.length)).toEqual([2, 1, 1, 2]);
    expect([...chunks(msgs, 10_000, 100)]).toHaveLength(1);
    expect([...chunks([], 10, 1)]).toEqual([]);
  });

  it('a transaction sends each topic once per request: two models to one topic merge, in order, and each request holds one chunk of each topic', () => {
    const m = (topic: string, n: number): { topic: string; messages: { key: string; value: Buffer }[] } => ({ topic, messages: Array.from({ length: n }, (_, i) => ({ key: `${topic}-${i}`, value: Buffer.alloc(10) })) });
    const a = m('scores', REQUEST_MESSAGES + 500);
    const b = m('scores', 700);
    const batch = m('batch', 2);
    const rounds = [...topicRounds([a, batch, b])];
    for (const r of rounds) expect(new Set(r.map((t) => t.topic)).size).toBe(r.length);
    expect(rounds.map((r) => r.map((t) => `${t.topic}:${t.messages.length}`))).toEqual([[`scores:${REQUEST_MESSAGES}`, 'batch:2'], ['scores:1200']]);
    expect(rounds.flatMap((r) => r.filter((t) => t.topic === 'scores').flatMap((t) => t.messages))).toEqual([...a.messages, ...b.messages]);
    expect([...topicRounds([])]).toEqual([]);
  });

  it("the daemon's partition of a keyed message is Java's default partitioner's (murmur2 of the key)", () => {
    // Kafka's own test vectors for Utils.murmur2 check the reference first.
    expect(['21', 'foobar', 'a-little-bit-long-string', 'abc'].map(javaMurmur2)).toEqual([-973932308, -790332482, -985981536, 479470107]);
    const metadata = new Map([['scores', [0, 1, 2, 3, 4, 5].map((partitionId) => ({ partitionErrorCode: 0, partitionId, leader: 1, replicas: [1], isr: [1] }))]]);
    const partitionOf = producerPartitions(metadata);
    for (const r of records) {
      expect(partitionOf('scores', Buffer.from(r.symbol))).toBe((javaMurmur2(r.symbol) & 0x7fffffff) % 6);
      expect(partitionOf('scores', r.symbol)).toBe((javaMurmur2(r.symbol) & 0x7fffffff) % 6);
    }
    expect(partitionOf('unknown', 'x')).toBeUndefined();
    // A string key is hashed as its UTF-8 bytes, a Buffer as its own bytes: the text 'é' and the byte 0xe9 (latin1 'é') are two keys, whichever comes first.
    const six = (key: string | Buffer) => (javaMurmur2(key) & 0x7fffffff) % 6;
    const keys = ['é', Buffer.from([0xe9]), 'ü', Buffer.from([0xfc]), 'ñ', Buffer.from([0xf1])];
    expect(new Set(keys.map(six)).size).toBeGreaterThan(1);
    for (const key of [...keys, ...keys.reverse()]) expect(partitionOf('scores', key)).toBe(six(key));
  });

  it('with the partitions known, a close goes in one request bounded per partition, each message to its partition, in order', () => {
    const partitions = 4;
    const partitionOf: PartitionOf = (topic, key) => (topic === 'scores' ? (javaMurmur2(key.toString()) & 0x7fffffff) % partitions : undefined);
    // One model's close at 5,000 symbols: about 2.2 MB, three requests bounded as a whole.
    const close = scoreMessages(Array.from({ length: 5_000 }, (_, i) => ({ ...records[0], symbol: `${String(i).padStart(6, '0')}.SZ` })), source);
    const batch = { topic: 'batch', messages: [{ key: Buffer.from('demo-10m/10m'), value: Buffer.alloc(300_000), headers: {} }] };
    expect([...topicRounds([{ topic: 'scores', messages: close }, batch])]).toHaveLength(3);
    const rounds = [...topicRounds([{ topic: 'scores', messages: close }, batch], partitionOf)];
    expect(rounds).toHaveLength(1);
    const sent = rounds[0].find((t) => t.topic === 'scores')?.messages ?? [];
    expect(sent.map((m) => m.partition)).toEqual(sent.map((m) => partitionOf('scores', m.key as Buffer)));
    for (let p = 0; p < partitions; p++) {
      const mine = sent.filter((m) => m.partition === p);
      expect(mine.map((m) => m.key?.toString())).toEqual(close.filter((m) => partitionOf('scores', m.key as Buffer) === p).map((m) => m.key?.toString()));
      expect(mine.reduce((n, m) => n + (m.value?.length ?? 0), 0)).toBeLessThanOrEqual(REQUEST_BYTES);
    }
    // The batch topic's partitions are not known here: sent as before, no partition set.
    expect(rounds[0].find((t) => t.topic === 'batch')?.messages[0]).not.toHaveProperty('partition');
  });

  it("a message's bound is never below its record as kafkajs 2.2.4 (npm's, unpatched) encodes it, ASCII or not", () => {
    const require = createRequire(import.meta.url);
    const upstream = dirname(require.resolve('kafkajs-upstream/package.json'));
    const encodeRecord = require(join(upstream, 'src', 'protocol', 'recordBatch', 'record', 'v0', 'index.js')) as (r: Record<string, unknown>) => { buffer: Buffer };
    const text = fc.string({ unit: 'grapheme', maxLength: 40 });
    const bytes = fc.oneof(fc.constant(null), fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)), fc.integer({ min: 0, max: 70_000 }).map((n) => Buffer.alloc(n, 7)));
    const message = fc.record({ key: fc.oneof(bytes, text), value: bytes, headers: fc.option(fc.dictionary(text, text, { maxKeys: 6 }), { nil: undefined }) });
    fc.assert(
      fc.property(message, fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.constant(Number.MAX_SAFE_INTEGER)), (m, offsetDelta, timestampDelta) => {
        const encoded = encodeRecord({ ...m, headers: m.headers ?? {}, offsetDelta, timestampDelta }).buffer.length;
        const bound = recordBytes(m as SizedMessage);
        expect(bound).toBeGreaterThanOrEqual(encoded);
        // And not far above: the request carries about what it was bounded by.
        expect(bound - encoded).toBeLessThanOrEqual(64 + 8 * Object.keys(m.headers ?? {}).length);
      }),
      { numRuns: 3_000 },
    );
  });

  it('partitioned requests still bound each partition, and the request, and a topic with an unkeyed message is bounded as a whole', () => {
    const partitionOf: PartitionOf = (_topic, key) => Number(key.toString().split('-')[0]);
    // Partition 0 alone holds more than one request's bytes; twenty partitions of 850 kB exceed the request's total.
    const big = Array.from({ length: 30 }, (_, i) => ({ key: `0-${i}`, value: Buffer.alloc(100_000), headers: {} }));
    const wide = Array.from({ length: 20 }, (_, p) => ({ key: `${p + 1}-x`, value: Buffer.alloc(850_000), headers: {} }));
    const rounds = [...topicRounds([{ topic: 't', messages: [...big, ...wide] }], partitionOf)];
    const sent = rounds.flatMap((r) => r[0].messages);
    expect(sent.map((m) => m.key).sort()).toEqual([...big, ...wide].map((m) => m.key).sort());
    expect(sent.filter((m) => m.partition === 0).map((m) => m.key)).toEqual(big.map((m) => m.key));
    for (const r of rounds) {
      const perPartition = new Map<number, number>();
      for (const m of r[0].messages) perPartition.set(m.partition as number, (perPartition.get(m.partition as number) ?? 0) + (m.value?.length ?? 0));
      for (const bytes of perPartition.values()) expect(bytes).toBeLessThanOrEqual(REQUEST_BYTES);
      expect(r[0].messages.reduce((n, m) => n + (m.value?.length ?? 0), 0)).toBeLessThanOrEqual(REQUEST_TOTAL_BYTES);
    }
    const unkeyed = [...big.slice(0, 3), { key: null, value: Buffer.alloc(10), headers: {} }];
    expect([...topicRounds([{ topic: 't', messages: unkeyed }], partitionOf)]).toEqual([...topicRounds([{ topic: 't', messages: unkeyed }])]);
  });
});

describe.skipIf(inject('kafkaSkipReason') !== '')("produce request chunks on a real broker (Kafka's default max.message.bytes)", () => {
  it("accepts a partition's chunk at the bound, and refuses one 160 kB larger: the bound holds under Kafka's default limit", async () => {
    const kafka = new Kafka({ clientId: 'chunk-bound-test', brokers: [inject('kafkaBrokers')], logLevel: logLevel.NOTHING });
    const topic = `chunk-bound-${Date.now().toString(36)}`;
    const admin = kafka.admin();
    await admin.connect();
    // Kafka's default limit (the test broker raises its own for the oversized-message tests).
    await admin.createTopics({ topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '1048588' }] }], waitForLeaders: true });
    await admin.disconnect();
    const producer = kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 0 } });
    await producer.connect();
    try {
      const headers = { 'content-type': 'application/json', 'model-version': '20261206T000000-s1', 'bar-end': '1796533200000', freq: '10m', model: 'bench-10m' };
      const messages = Array.from({ length: 200 }, (_, i) => ({ key: `${600000 + i}.SH`, value: Buffer.alloc(9_973, i), headers }));
      const first = [...chunks(messages, REQUEST_BYTES, Infinity)][0];
      const bound = first.reduce((n, m) => n + recordBytes(m), 0);
      expect(bound).toBeLessThanOrEqual(REQUEST_BYTES);
      expect(bound).toBeGreaterThan(REQUEST_BYTES - 10_100);
      await producer.send({ topic, acks: -1, messages: first.map((m) => ({ ...m, partition: 0 })) });
      const over = messages.slice(0, first.length + 16);
      await expect(producer.send({ topic, acks: -1, messages: over.map((m) => ({ ...m, partition: 0 })) })).rejects.toThrow(/larger than the max message size/i);
    } finally {
      await producer.disconnect();
    }
  }, 60_000);
});
