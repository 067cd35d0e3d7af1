/**
 * The daemon's core without Kafka: the same messages per partition give the same bar
 * closes and the same scores whatever order the partitions are read in (also when a
 * partition runs far ahead and is held back), which is what makes a restart reproduce
 * its scores; and a restored snapshot continues exactly.
 */
import { deserialize, serialize } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { loadServedModels } from '../src/daemon/models.js';
import { DEFAULT_ENGINE_OPTIONS } from '../src/model/predictor.js';
import { ScoringPipeline, type InputMessage, type ServedModel } from '../src/daemon/pipeline.js';
import { encodeTicksArrow } from '../src/ingest/arrow-codec.js';
import { TickBatch, copyTickRow, tickRecordAt } from '../src/ingest/events.js';
import { encodeTickJson } from '../src/ingest/json-codec.js';
import { MarketSimulator } from '../src/ingest/simulator/market.js';
import { createLogger } from '../src/log.js';
import { Metrics } from '../src/sink/metrics.js';
import { calendar } from './helpers.js';

const config = loadConfig({ flags: { daemon: { maxAheadMs: 2 * 60_000 } } });
const TOPICS = { ticks: 'md.ticks', bars: 'md.bars.1m', scores: 'factor.scores', scoresBatch: 'factor.scores.batch', deadLetter: 'md.deadletter' };

/** A simulated day as messages of 3 partitions (symbols hashed): Arrow, one per partition and minute, or JSON, one per tick. */
function partitionedDay(format: 'arrow' | 'json' = 'arrow'): InputMessage[][] {
  const sim = new MarketSimulator({ symbols: 24, days: 1, seed: 17, tradesPerDay: 300, start: '2026-11-23' }, calendar);
  const parts: InputMessage[][] = [[], [], []];
  const batches = [new TickBatch(), new TickBatch(), new TickBatch()];
  const push = (p: number, value: Buffer, contentType: string): void => {
    parts[p].push({ topic: TOPICS.ticks, partition: p, offset: parts[p].length, key: null, value, headers: { 'content-type': contentType } });
  };
  for (const m of sim.generateDay(0)) {
    for (const b of batches) b.clear();
    for (let i = 0; i < m.ticks.length; i++) copyTickRow(m.ticks, i, batches[m.ticks.symbol[i] % 3]);
    batches.forEach((b, p) => {
      if (b.length === 0) return;
      if (format === 'arrow') push(p, Buffer.from(encodeTicksArrow(b, sim.symbols)), 'application/vnd.apache.arrow.stream');
      else for (let i = 0; i < b.length; i++) push(p, Buffer.from(encodeTickJson(tickRecordAt(b, sim.symbols, i))), 'application/json');
    });
  }
  return parts;
}

function pipelineWith(models: ServedModel[]): ScoringPipeline {
  const p = new ScoringPipeline({ config, calendar, topics: TOPICS, models, metrics: new Metrics({ defaultMetrics: false }), now: () => 0 });
  for (let i = 0; i < 3; i++) p.assign(TOPICS.ticks, i, 0, false);
  return p;
}

/** Runs the pipeline's pending inferences and appends their score records to `out` as text. */
async function drain(p: ScoringPipeline, out: string[]): Promise<void> {
  for (const c of (await p.takeOutputs()).closes) for (const r of c.records) out.push(`${r.symbol}|${r.barEnd}|${r.freq}|${r.score}|${r.z}|${r.rank}`);
}

/** Feeds messages in `order` (partition indices, one message each), then marks everything delivered. */
async function run(p: ScoringPipeline, parts: InputMessage[][], order: number[], out: string[]): Promise<void> {
  const next = [0, 0, 0];
  for (const i of order) {
    if (next[i] < parts[i].length) {
      p.ingest(parts[i][next[i]++]);
      await drain(p, out);
    }
  }
  for (let i = 0; i < 3; i++) p.setCaughtUp(TOPICS.ticks, i, true);
  p.wallClock(Date.parse('2026-11-23T16:00:00+08:00'));
  await drain(p, out);
}

describe('scoring pipeline', () => {
  it('gives the same scores whatever the partition interleaving, holding back a partition that runs ahead', async () => {
    const models = await loadServedModels(['models/demo-10m', 'models/demo-30m'], DEFAULT_ENGINE_OPTIONS, 0.5, new Metrics({ defaultMetrics: false }), createLogger('silent'));
    const parts = partitionedDay();
    const total = parts.reduce((n, p) => n + p.length, 0);
    const roundRobin = Array.from({ length: total * 3 }, (_, i) => i % 3);
    // Partition 0 first, then 1, then 2: partitions 0 and 1 are held back until 2 catches up.
    const sequential = [...parts[0].map(() => 0), ...parts[1].map(() => 1), ...parts[2].map(() => 2)];
    let seed = 7;
    const shuffled = [...sequential].sort(() => ((seed = (seed * 48_271) % 2_147_483_647) / 2_147_483_647) - 0.5);
    const results: string[][] = [];
    for (const order of [roundRobin, sequential, shuffled]) {
      const out: string[] = [];
      await run(pipelineWith(models), parts, order, out);
      results.push(out.sort());
    }
    expect(results[0].length).toBeGreaterThan(24 * 20);
    expect(results[1]).toEqual(results[0]);
    expect(results[2]).toEqual(results[0]);

    // The same day as one-tick JSON messages, handed over in batches of random sizes (as
    // Kafka fetches do), partitions interleaved: the same scores.
    const json = partitionedDay('json');
    const p = pipelineWith(models);
    const out: string[] = [];
    const next = [0, 0, 0];
    let k = 0;
    while (next.some((n, i) => n < json[i].length)) {
      const i = k++ % 3;
      const size = 1 + Math.floor(((seed = (seed * 48_271) % 2_147_483_647) / 2_147_483_647) * 400);
      p.ingestBatch(json[i].slice(next[i], next[i] + size));
      next[i] = Math.min(json[i].length, next[i] + size);
      await drain(p, out);
    }
    for (let i = 0; i < 3; i++) p.setCaughtUp(TOPICS.ticks, i, true);
    p.wallClock(Date.parse('2026-11-23T16:00:00+08:00'));
    await drain(p, out);
    expect(p.ingested).toBe(json.flat().length);
    expect(out.sort()).toEqual(results[0]);
  }, 60_000);

  it('restored from a serialised snapshot mid-day, publishes what an uninterrupted run does', async () => {
    const models = await loadServedModels(['models/demo-10m'], DEFAULT_ENGINE_OPTIONS, 0.5, new Metrics({ defaultMetrics: false }), createLogger('silent'));
    const parts = partitionedDay();
    const order = Array.from({ length: parts.reduce((n, p) => n + p.length, 0) * 3 }, (_, i) => i % 3);
    const whole: string[] = [];
    await run(pipelineWith(models), parts, order, whole);

    const first = pipelineWith(models);
    // order cycles through 3x as many steps as there are messages: a sixth of it is mid-day.
    const cut = Math.floor(order.length / 6);
    const before: string[] = [];
    const next = [0, 0, 0];
    for (const i of order.slice(0, cut)) {
      if (next[i] < parts[i].length) first.ingest(parts[i][next[i]++]);
      await drain(first, before);
    }
    expect(before.length).toBeGreaterThan(0);
    expect(before.length).toBeLessThan(whole.length / 2 + 48);
    const positions = first.positions();
    expect(positions.map((p) => p.offset)).toEqual(next);
    const second = pipelineWith(models);
    second.restore(deserialize(serialize(first.snapshot())) as Record<string, unknown>);
    const rest = parts.map((p, i) => p.slice(next[i]));
    // The source resumes each partition at its committed position.
    const after: string[] = [];
    const resumed = rest.map((msgs) => msgs);
    await run(second, resumed, order, after);
    const ends = (xs: string[]): string[] => [...new Set(xs.map((x) => x.split("|")[1]))].sort();
    expect(ends([...before, ...after])).toEqual(ends(whole));
    expect([...before, ...after].sort()).toEqual(whole.sort());
  }, 60_000);

  it('scores a day the same on the onnx and the tfjs engine (max |difference| <= 1e-4), each model on the engine asked for', async () => {
    const dirs = ['models/demo-10m', 'models/demo-30m'];
    const onnx = await loadServedModels(dirs, { ...DEFAULT_ENGINE_OPTIONS, engine: 'onnx' }, 0.5, new Metrics({ defaultMetrics: false }), createLogger('silent'));
    const tfjs = await loadServedModels(dirs, { ...DEFAULT_ENGINE_OPTIONS, engine: 'tfjs' }, 0.5, new Metrics({ defaultMetrics: false }), createLogger('silent'));
    expect(onnx.map((m) => m.scorer.engine)).toEqual(['onnx', 'onnx']);
    expect(tfjs.map((m) => m.scorer.engine)).toEqual(['tfjs', 'tfjs']);
    const parts = partitionedDay();
    const order = Array.from({ length: parts.reduce((n, p) => n + p.length, 0) * 3 }, (_, i) => i % 3);
    const scored = async (models: ServedModel[]): Promise<Map<string, number>> => {
      const out: string[] = [];
      await run(pipelineWith(models), parts, order, out);
      return new Map(out.map((l) => l.split('|')).map((f) => [`${f[0]}|${f[1]}|${f[2]}`, Number(f[3])]));
    };
    const a = await scored(onnx);
    const b = await scored(tfjs);
    expect(a.size).toBeGreaterThan(24 * 20);
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    let max = 0;
    for (const [k, v] of a) max = Math.max(max, Math.abs(v - (b.get(k) as number)));
    expect(max).toBeLessThanOrEqual(1e-4);
  }, 60_000);
});
