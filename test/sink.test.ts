/**
 * What the daemon writes: score messages (JSON per symbol, one Arrow cross-section) as
 * schemas/ describe them, and produce requests cut to the broker's size limit.
 */
import { readFileSync } from 'node:fs';
import * as A from 'apache-arrow';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { chunks, REQUEST_MESSAGES, topicRounds } from '../src/ingest/kafka-chunks.js';
import { scoreBatchMessage, scoreMessages, type ScoreRecord } from '../src/sink/scores.js';

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
});
