/**
 * The daemon's core without Kafka, against the offline path: whatever the delivery
 * schedule — partitions (1 to 16, uneven), JSON or Arrow messages (Arrow messages that
 * span many bars), fetch sizes, partition order, a producer still writing, wall-clock
 * gaps, restarts from a serialised checkpoint — every bar close equals the offline
 * engine's on the same events in time order (features + normalisation, symbol by symbol),
 * and every event is aggregated or rejected and counted. The reference is the offline
 * engine (FeatureEngine driven by its own event time, as `factorstream features` runs
 * it), not another pipeline run.
 */
import { deserialize, serialize } from 'node:v8';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../src/config.js';
import { loadServedModels, type ServedModel } from '../src/daemon/models.js';
import { ScoringPipeline, type PipelineState } from '../src/daemon/pipeline.js';
import { DEFAULT_ENGINE_OPTIONS } from '../src/model/predictor.js';
import { createLogger } from '../src/log.js';
import { Metrics } from '../src/sink/metrics.js';
import { calendar } from './helpers.js';
import { deliver, offlineCloses, partitionMessages, rng, simulatedMarket, TOPICS, type Market, type Partitioned, type Schedule } from './partitioned-feed.js';

const config = loadConfig({});
const IDLE = config.daemon.idleTimeoutMs;

/** A symbol's partition: a seeded hash, like a producer's partitioner (kafkajs's, librdkafka's, or any other). */
function hashPartitioner(partitions: number, seed: number): (symbol: string) => number {
  return (symbol) => {
    let h = seed >>> 0;
    for (let i = 0; i < symbol.length; i++) h = Math.imul(h ^ symbol.charCodeAt(i), 2_654_435_761) >>> 0;
    return h % partitions;
  };
}

interface ScheduleSpec {
  seed: number;
  /** Largest fetch, in messages. */
  maxFetch: number;
  /** Largest wall-clock step between fetches (ms). */
  maxStep: number;
  /** Event time per wall time of a live producer (Infinity: a backlog, everything there from the start). */
  speed: number;
  /** Chance of a restart from the last checkpoint before a fetch (at most MAX_RESTARTS a run). */
  restartRate: number;
  /** random: any partition; first: the lowest-numbered one (one partition read to its end before the next). */
  order: 'random' | 'first';
}

const MAX_RESTARTS = 6;

function schedule(spec: ScheduleSpec): Schedule {
  const r = rng(spec.seed);
  let restarts = 0;
  return {
    pick: (c) => (spec.order === 'first' ? c[0] : c[Math.floor(r() * c.length)]),
    fetchSize: () => 1 + Math.floor(r() * spec.maxFetch),
    step: () => Math.floor(r() * spec.maxStep),
    restart: () => restarts < MAX_RESTARTS && r() < spec.restartRate && ++restarts > 0,
    speed: spec.speed,
  };
}

const markets = new Map<string, Market>();
function market(symbols: number, days: number, seed: number, source: 'ticks' | 'bars' = 'ticks', snapshotIntervalSec = 3): Market {
  const key = `${symbols}/${days}/${seed}/${source}/${snapshotIntervalSec}`;
  let m = markets.get(key);
  if (m === undefined) markets.set(key, (m = simulatedMarket({ symbols, days, seed, source, snapshotIntervalSec })));
  return m;
}
const references = new Map<Market, ReturnType<typeof offlineCloses>>();
function reference(m: Market): ReturnType<typeof offlineCloses> {
  let r = references.get(m);
  if (r === undefined) references.set(m, (r = offlineCloses(m, config)));
  return r;
}

function eventsOf(m: Market): number {
  return m.source === 'ticks' ? m.ticks.length : m.bars.length;
}

async function expectOfflineCloses(m: Market, feed: Partitioned, spec: ScheduleSpec, models: ServedModel[] = []): Promise<Awaited<ReturnType<typeof deliver>>> {
  const ref = reference(m);
  const got = await deliver(feed, config, models, schedule(spec));
  expect(got.closes.length, JSON.stringify(spec)).toBe(ref.closes.length);
  for (let i = 0; i < ref.closes.length; i++) {
    if (got.closes[i] === ref.closes[i]) continue;
    // Name what differs first: symbols present on one side only, and the rejects.
    const symbolsOf = (close: string): Set<string> => new Set(close.split('\n').slice(1).map((l) => l.split(',')[0]));
    const [a, b] = [symbolsOf(got.closes[i]), symbolsOf(ref.closes[i])];
    const only = { daemon: [...a].filter((x) => !b.has(x)), offline: [...b].filter((x) => !a.has(x)), rejected: Object.fromEntries(got.rejected) };
    expect(got.closes[i], `close ${i} of ${JSON.stringify(spec)}: ${JSON.stringify(only)}`).toBe(ref.closes[i]);
  }
  expect(Object.fromEntries(got.rejected)).toEqual(Object.fromEntries(ref.rejected));
  if (got.restarts === 0) {
    // Every event aggregated or rejected, and counted.
    const rejected = [...got.rejected.values()].reduce((a, b) => a + b, 0);
    expect(got.ingested + rejected).toBe(eventsOf(m));
  }
  return got;
}

describe('scoring pipeline against the offline engine', () => {
  it('the README flow: a two-day backlog in one partition read in the largest fetches (no run spans a close, the minute ring is never overrun)', async () => {
    const m = market(40, 2, 3);
    const feed = partitionMessages(m, 1, () => 0, () => 'arrow', 5_000);
    await expectOfflineCloses(m, feed, { seed: 1, maxFetch: 1_000_000, maxStep: 0, speed: Infinity, restartRate: 0, order: 'random' });
  });

  it('one partition read to its end before the next (a backlog after an outage), JSON: partitions ahead wait, none is judged late', async () => {
    const m = market(30, 2, 4);
    const feed = partitionMessages(m, 4, hashPartitioner(4, 11), () => 'json');
    await expectOfflineCloses(m, feed, { seed: 2, maxFetch: 700, maxStep: 20, speed: Infinity, restartRate: 0, order: 'first' });
  });

  it('16 partitions for 12 symbols (some empty, some with one symbol), Arrow and JSON mixed: empty partitions turn idle, the rest keep parity', async () => {
    const m = market(12, 2, 5);
    const feed = partitionMessages(m, 16, hashPartitioner(16, 7), (p) => (p % 2 === 0 ? 'json' : 'arrow'), 300);
    expect(feed.parts.filter((p) => p.length === 0).length).toBeGreaterThan(0);
    await expectOfflineCloses(m, feed, { seed: 3, maxFetch: 200, maxStep: 50, speed: Infinity, restartRate: 0, order: 'random' });
  });

  it('a producer still writing while the daemon reads (partitions caught up between fetches, quiet ones turning idle), JSON and Arrow batched by time', async () => {
    const m = market(30, 2, 6);
    const feed = partitionMessages(m, 3, hashPartitioner(3, 5), (p) => (p === 2 ? 'arrow' : 'json'), 1_000, config.features.allowedLatenessMs);
    await expectOfflineCloses(m, feed, { seed: 4, maxFetch: 50, maxStep: 300, speed: 60, restartRate: 0, order: 'random' });
  });

  it('1-minute bars as input, through the same rules', async () => {
    const m = market(30, 2, 7, 'bars');
    const feed = partitionMessages(m, 3, hashPartitioner(3, 2), (p) => (p === 0 ? 'arrow' : 'json'), 200);
    await expectOfflineCloses(m, feed, { seed: 5, maxFetch: 300, maxStep: 30, speed: Infinity, restartRate: 0, order: 'random' });
  });

  it('restarts from serialised checkpoints (with rows waiting in them) give every close once, equal to offline, and the scores of the demo model too', async () => {
    const models = await loadServedModels(['models/demo-10m'], DEFAULT_ENGINE_OPTIONS, config.features.minCoverage, new Metrics({ defaultMetrics: false }), createLogger('silent'));
    const m = market(30, 2, 8);
    const feed = partitionMessages(m, 3, hashPartitioner(3, 9), (p) => (p === 1 ? 'json' : 'arrow'), 800);
    const uninterrupted = await expectOfflineCloses(m, feed, { seed: 6, maxFetch: 100, maxStep: 30, speed: Infinity, restartRate: 0, order: 'random' }, models);
    const restarted = await expectOfflineCloses(m, feed, { seed: 7, maxFetch: 100, maxStep: 30, speed: Infinity, restartRate: 0.02, order: 'random' }, models);
    expect(restarted.restarts).toBeGreaterThan(3);
    expect(uninterrupted.scores.length).toBeGreaterThan(24 * 20);
    expect(restarted.scores).toEqual(uninterrupted.scores);
  }, 60_000);

  it('property: any partition count, partitioner, formats, fetch sizes, order, wall-clock gaps, live producer and restarts give the offline closes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          partitions: fc.integer({ min: 1, max: 16 }),
          partitionSeed: fc.integer({ min: 1, max: 1_000_000 }),
          formats: fc.constantFrom('json', 'arrow', 'mixed'),
          arrowRows: fc.integer({ min: 1, max: 3_000 }),
          seed: fc.integer({ min: 1, max: 1_000_000 }),
          maxFetch: fc.integer({ min: 1, max: 2_000 }),
          live: fc.boolean(),
          gaps: fc.boolean(),
          restartRate: fc.constantFrom(0, 0, 0.01),
          order: fc.constantFrom('random' as const, 'first' as const),
        }),
        async (c) => {
          // Snapshot-fed symbols every 30 s, so that a run is a few thousand messages.
          const m = market(16, 2, 21, 'ticks', 30);
          // A live producer batches Arrow rows by time (no message holds events further apart than the lateness); a backlog's messages may span hours.
          const span = c.live ? config.features.allowedLatenessMs : Infinity;
          const feed = partitionMessages(m, c.partitions, hashPartitioner(c.partitions, c.partitionSeed), (p) => (c.formats === 'mixed' ? (p % 2 === 0 ? 'json' : 'arrow') : c.formats), c.arrowRows, span);
          // Wall-clock gaps beyond the idle timeout in a backlog (nothing left unproduced); a live producer at 60x or 1200x real time.
          await expectOfflineCloses(m, feed, {
            seed: c.seed,
            maxFetch: c.maxFetch,
            maxStep: c.live ? 500 : c.gaps ? 4 * IDLE : 10,
            speed: c.live ? (c.seed % 2 === 0 ? 60 : 1_200) : Infinity,
            restartRate: c.restartRate,
            order: c.live ? 'random' : c.order,
          });
        },
      ),
      // A fixed seed: CI runs the same 40 schedules every time (random seeds are explored by
      // hand, see the issue notes). Seed 709366001 (CI, 2026-12-02) found the case below.
      { numRuns: 40, seed: 20261202 },
    );
  }, 240_000);

  // The schedule CI's seed 709366001 found: a live producer at 1,200x into 4 JSON partitions,
  // fetches of up to 533 messages, restarts. A partition idle over lunch was read after the
  // others had passed 13:10, and 14 of its events were E_LATE. Fixed in event time (an idle
  // partition holds the watermark at what the feed had when its end was last seen); the
  // harness now refreshes every end once a second as serve does, so this schedule no longer
  // meets the race: the event-time edge test "a partition idle over lunch…" is its witness.
  it('a live producer with restarts (4 partitions, JSON, fetches ≤ 533; the schedule of CI seed 709366001) gives the offline closes', async () => {
    const m = market(16, 2, 21, 'ticks', 30);
    const feed = partitionMessages(m, 4, hashPartitioner(4, 140751), () => 'json', 1, config.features.allowedLatenessMs);
    await expectOfflineCloses(m, feed, { seed: 627833, maxFetch: 533, maxStep: 500, speed: 1_200, restartRate: 0.01, order: 'random' });
  }, 60_000);
});

describe('scoring pipeline: event-time edges', () => {
  const sh = (local: string): number => Date.parse(`${local}+08:00`);
  const tick = (ts: number, symbol = '600000.SH', price = 10): Buffer => Buffer.from(JSON.stringify({ symbol, ts, price, volume: 100 }));
  const message = (partition: number, offset: number, value: Buffer) => ({ topic: TOPICS.ticks, partition, offset, key: null, value, headers: { 'content-type': 'application/json' } });

  it('a partition idle past the timeout stops holding the watermark back; its later, older events are E_LATE, counted and dead-lettered', async () => {
    let now = 0;
    const metrics = new Metrics({ defaultMetrics: false });
    const p = new ScoringPipeline({ config, calendar, topics: TOPICS, models: [], metrics, now: () => now });
    p.assign(TOPICS.ticks, 0, 0, false);
    p.assign(TOPICS.ticks, 1, 0, false);
    p.ingest(message(0, 0, tick(sh('2026-11-23T09:31:00'))));
    p.ingest(message(1, 0, tick(sh('2026-11-23T09:31:00'), '000001.SZ')));
    p.ingest(message(0, 1, tick(sh('2026-11-23T09:50:00'))));
    // Partition 1 is caught up but not yet idle: the 09:40 bar waits for it, and partition 0's 09:50 tick waits too.
    p.setCaughtUp(TOPICS.ticks, 1, true);
    expect(p.currentWatermark).toBe(sh('2026-11-23T09:31:00') - 2_000);
    expect(p.holding(TOPICS.ticks, 0)).toBe(true);
    expect(p.nextAlarm()).toBe(IDLE);
    now = IDLE;
    p.advanceTime();
    expect(p.currentWatermark).toBe(sh('2026-11-23T09:50:00') - 2_000);
    expect(p.holding(TOPICS.ticks, 0)).toBe(false);
    p.refreshGauges();
    expect(await metrics.text()).toMatch(/factorstream_partition_idle\{topic="md.ticks",partition="1"\} 1/);
    // Partition 1 delivers again, with an event of the bar already closed.
    p.setCaughtUp(TOPICS.ticks, 1, false);
    p.ingest(message(1, 1, tick(sh('2026-11-23T09:35:00'), '000001.SZ')));
    const { batches } = await p.takeOutputs();
    const dead = batches.find((b) => b.topic === TOPICS.deadLetter)?.messages ?? [];
    expect(dead.map((d) => [d.headers.error, d.headers['source-partition'], d.headers['source-offset']])).toEqual([['E_LATE', '1', '1']]);
    expect(await metrics.text()).toMatch(/factorstream_late_events_total 1/);
  });

  it('a partition idle over lunch holds the watermark at what the feed had when its end was last seen: read after the others, its 13:00 events are on time; seen empty again, it holds no more', async () => {
    let now = 0;
    const closes: number[] = [];
    const metrics = new Metrics({ defaultMetrics: false });
    const p = new ScoringPipeline({ config, calendar, topics: TOPICS, models: [], metrics, now: () => now, onBarClose: (e) => closes.push(e.bars.barEnd) });
    p.assign(TOPICS.ticks, 0, 0, false);
    p.assign(TOPICS.ticks, 1, 0, false);
    p.ingest(message(0, 0, tick(sh('2026-11-24T11:27:57'))));
    p.ingest(message(1, 0, tick(sh('2026-11-24T11:29:00'), '000001.SZ')));
    p.setCaughtUp(TOPICS.ticks, 0, true);
    p.setCaughtUp(TOPICS.ticks, 1, true);
    // Lunch: both idle (a replay is fast, 5 s of wall time are 100 minutes of the feed at 1,200x).
    now = IDLE;
    p.advanceTime();
    expect(p.currentWatermark).toBeLessThan(sh('2026-11-24T11:30:00'));
    // The afternoon: partition 1's producer is read first, 14 minutes of it; partition 0's end was last seen at lunch.
    now = IDLE + 200;
    p.setCaughtUp(TOPICS.ticks, 1, false);
    p.ingest(message(1, 1, tick(sh('2026-11-24T13:00:02'), '000001.SZ')));
    p.ingest(message(1, 2, tick(sh('2026-11-24T13:14:00'), '000001.SZ')));
    expect(p.currentWatermark).toBeLessThan(sh('2026-11-24T11:30:00'));
    expect(closes).not.toContain(sh('2026-11-24T13:10:00'));
    // Only partition 0's last look keeps the 11:30 close back: the source is asked to look at the ends now.
    expect(p.awaitingEnds()).toBe(true);
    // Partition 0's afternoon, written while partition 1 was read: on time.
    p.setCaughtUp(TOPICS.ticks, 0, false);
    p.ingest(message(0, 1, tick(sh('2026-11-24T13:00:22'))));
    p.ingest(message(0, 2, tick(sh('2026-11-24T13:20:00'))));
    p.setCaughtUp(TOPICS.ticks, 0, true);
    expect(p.currentWatermark).toBe(sh('2026-11-24T13:14:00') - 2_000);
    expect(p.awaitingEnds()).toBe(false);
    expect(closes).toContain(sh('2026-11-24T13:10:00'));
    const { batches } = await p.takeOutputs();
    expect(batches.find((b) => b.topic === TOPICS.deadLetter)).toBeUndefined();
    expect(await metrics.text()).toMatch(/factorstream_late_events_total 0/);
    // Partition 1 is seen at its end after the 13:20 event and turns idle: partition 0 reads on, the watermark goes to 13:20 and waits there for the next look at partition 1's end.
    p.setCaughtUp(TOPICS.ticks, 1, true);
    now += IDLE;
    p.ingest(message(0, 3, tick(sh('2026-11-24T13:25:00'))));
    expect(p.currentWatermark).toBe(sh('2026-11-24T13:20:00') - 2_000);
    expect(p.awaitingEnds()).toBe(true);
    p.setCaughtUp(TOPICS.ticks, 1, true);
    expect(p.currentWatermark).toBe(sh('2026-11-24T13:25:00') - 2_000);
    expect(p.awaitingEnds()).toBe(false);
  });

  it('a quiet feed closes its bars by a Clock alarm a grace period after their end, and the last bar of the day without further input', async () => {
    let now = sh('2026-11-23T11:29:59.700');
    const p = new ScoringPipeline({ config, calendar, topics: TOPICS, models: [], metrics: new Metrics({ defaultMetrics: false }), now: () => now, onBarClose: (e) => closes.push(e.bars.barEnd) });
    const closes: number[] = [];
    p.assign(TOPICS.ticks, 0, 0, false);
    p.ingest(message(0, 0, tick(sh('2026-11-23T11:25:00'))));
    p.ingest(message(0, 1, tick(sh('2026-11-23T11:29:59.500'))));
    p.setCaughtUp(TOPICS.ticks, 0, true);
    // Idle 5 s after catching up, then the 11:30 close (11:30:03.001: past the session-end
    // grace) is due the wall-clock grace after it, counted from the newest event's arrival.
    expect(p.nextAlarm()).toBe(now + IDLE);
    now += IDLE;
    p.advanceTime();
    const due = p.nextAlarm();
    expect(due).toBe(sh('2026-11-23T11:29:59.700') + (sh('2026-11-23T11:30:03.001') + config.daemon.wallClockGraceMs - sh('2026-11-23T11:29:59.500')));
    now = due - 1;
    p.advanceTime();
    expect(closes.filter((c) => c === sh('2026-11-23T11:30:00'))).toEqual([]);
    now = due;
    p.advanceTime();
    expect(closes).toContain(sh('2026-11-23T11:30:00'));
    // Nobody trades in the afternoon: hours later the day's bars have closed, up to 15:00 and no further.
    now = sh('2026-11-23T18:00:00');
    p.advanceTime();
    expect(Math.max(...closes)).toBe(sh('2026-11-23T15:00:00'));
    expect(p.nextAlarm()).toBe(Infinity);
  });

  it('restores a format 1 checkpoint (positions and newest event times, nothing waiting) and carries on', () => {
    const p = new ScoringPipeline({ config, calendar, topics: TOPICS, models: [], metrics: new Metrics({ defaultMetrics: false }), now: () => 0 });
    p.assign(TOPICS.ticks, 0, 0, false);
    p.ingest(message(0, 0, tick(sh('2026-11-23T09:31:00'))));
    const current = p.snapshot();
    const legacy = { engine: current.engine, liveIc: current.liveIc, watermark: p.currentWatermark, partitions: [{ topic: TOPICS.ticks, partition: 0, maxTs: sh('2026-11-23T09:31:00'), next: 1 }] };
    const q = new ScoringPipeline({ config, calendar, topics: TOPICS, models: [], metrics: new Metrics({ defaultMetrics: false }), now: () => 0 });
    q.restore(deserialize(serialize(legacy)) as PipelineState);
    expect(q.positions()).toEqual([{ topic: TOPICS.ticks, partition: 0, offset: 1 }]);
    expect(q.currentWatermark).toBe(sh('2026-11-23T09:31:00') - 2_000);
    q.ingest(message(0, 1, tick(sh('2026-11-23T09:45:00'))));
    expect(q.currentWatermark).toBe(sh('2026-11-23T09:45:00') - 2_000);
  });

  it("builds each close's outputs as soon as its own inference is in, and gathers them in close order", async () => {
    const dirs = ['models/demo-10m', 'models/demo-30m'];
    const load = (): Promise<ServedModel[]> => loadServedModels(dirs, { ...DEFAULT_ENGINE_OPTIONS, engine: 'onnx' }, 0.5, new Metrics({ defaultMetrics: false }), createLogger('silent'));
    const [plain, held] = [await load(), await load()];
    const m = market(24, 1, 17);
    const feed = partitionMessages(m, 3, hashPartitioner(3, 1), () => 'arrow', 400);
    const spec: ScheduleSpec = { seed: 9, maxFetch: 20, maxStep: 10, speed: Infinity, restartRate: 0, order: 'random' };
    const expected = await expectOfflineCloses(m, feed, spec, plain);
    const shared = new Set(expected.scores.filter((l) => l.split('|')[3] === 'demo-30m').map((l) => Number(l.split('|')[1])));
    // At a bar end both models score (:00, :30, once the 30m model has its window), the 10m
    // model's inference, queued first, is held until the 30m model's close has been read for
    // its outputs (its inference time, which the pipeline reads as it builds them): built in
    // close order only, the two would wait for each other, and the hold gives up.
    const gates = new Map<number, { built: Promise<void>; open: () => void }>();
    const gate = (barEnd: number): { built: Promise<void>; open: () => void } => {
      let g = gates.get(barEnd);
      if (g === undefined) {
        let open = (): void => undefined;
        const built = new Promise<void>((resolve) => (open = resolve));
        gates.set(barEnd, (g = { built, open }));
      }
      return g;
    };
    let heldCloses = 0;
    const [ten, thirty] = held;
    const tenRun = ten.scorer.run.bind(ten.scorer);
    ten.scorer.run = async (job) => {
      const cs = await tenRun(job);
      if (shared.has(job.barEnd)) {
        const giveUp = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`the 30m close of ${new Date(job.barEnd).toISOString()} was not built while the 10m one's inference was out`)), 10_000).unref());
        await Promise.race([gate(job.barEnd).built, giveUp]);
        heldCloses++;
      }
      return cs;
    };
    const thirtyRun = thirty.scorer.run.bind(thirty.scorer);
    thirty.scorer.run = async (job) => {
      const cs = await thirtyRun(job);
      return Object.defineProperty({ ...cs }, 'inference', {
        get: () => {
          gate(job.barEnd).open();
          return cs.inference;
        },
      });
    };
    const got = await expectOfflineCloses(m, feed, spec, held);
    // Every close both models scored was held.
    expect(shared.size).toBeGreaterThan(2);
    expect(heldCloses).toBe(shared.size);
    // Close order: by bar end, and at a bar end both score, the models in the order they are served.
    const closeKeys = got.scores.map((l) => l.split('|')).map((f) => `${f[1]}|${f[3]}`).filter((k, i, all) => i === 0 || k !== all[i - 1]);
    const closeOrder = (k: string): [number, number] => [Number(k.split('|')[0]), dirs.indexOf(`models/${k.split('|')[1]}`)];
    expect(closeKeys).toEqual([...closeKeys].sort((a, b) => closeOrder(a)[0] - closeOrder(b)[0] || closeOrder(a)[1] - closeOrder(b)[1]));
    // The same scores in the same order as without the hold: which inference finished first does not show in the outputs.
    expect(got.scores.length).toBeGreaterThan(24 * 20);
    expect(got.scores).toEqual(expected.scores);
  }, 60_000);

  it.each([
    { where: 'on inference workers, at the close', workers: 'per-model' as const, inCommit: false },
    { where: 'on the main thread, at the commit, after the rest of the batch', workers: 0, inCommit: true },
  ])("starts each close's inference $where, and still gives the offline closes", async ({ workers, inCommit }) => {
    const models = await loadServedModels(['models/demo-10m', 'models/demo-30m'], { ...DEFAULT_ENGINE_OPTIONS, engine: 'onnx', workers }, 0.5, new Metrics({ defaultMetrics: false }), createLogger('silent'));
    const m = market(24, 1, 19);
    const feed = partitionMessages(m, 3, hashPartitioner(3, 2), () => 'arrow', 400);
    // Whether a commit (takeOutputs) is under way as each inference starts.
    let committing = 0;
    const takeOutputs = ScoringPipeline.prototype.takeOutputs;
    const spy = vi.spyOn(ScoringPipeline.prototype, 'takeOutputs').mockImplementation(async function (this: ScoringPipeline) {
      committing++;
      try {
        return await takeOutputs.call(this);
      } finally {
        committing--;
      }
    });
    const startedInCommit: boolean[] = [];
    for (const model of models) {
      const run = model.scorer.run.bind(model.scorer);
      model.scorer.run = (job) => {
        startedInCommit.push(committing > 0);
        return run(job);
      };
    }
    try {
      const got = await expectOfflineCloses(m, feed, { seed: 12, maxFetch: 20, maxStep: 10, speed: Infinity, restartRate: 0, order: 'random' }, models);
      expect(got.scores.length).toBeGreaterThan(24 * 20);
    } finally {
      spy.mockRestore();
      for (const model of models) await model.scorer.dispose();
    }
    expect(models.map((model) => model.scorer.offThread)).toEqual([!inCommit, !inCommit]);
    expect(startedInCommit.length).toBeGreaterThan(20);
    expect(startedInCommit.filter((started) => started !== inCommit)).toEqual([]);
  }, 60_000);

  it('scores a day the same on the onnx and the tfjs engine (max |difference| <= 1e-4), each model on the engine asked for', async () => {
    const dirs = ['models/demo-10m', 'models/demo-30m'];
    const onnx = await loadServedModels(dirs, { ...DEFAULT_ENGINE_OPTIONS, engine: 'onnx' }, 0.5, new Metrics({ defaultMetrics: false }), createLogger('silent'));
    const tfjs = await loadServedModels(dirs, { ...DEFAULT_ENGINE_OPTIONS, engine: 'tfjs' }, 0.5, new Metrics({ defaultMetrics: false }), createLogger('silent'));
    expect(onnx.map((m) => m.scorer.engine)).toEqual(['onnx', 'onnx']);
    expect(tfjs.map((m) => m.scorer.engine)).toEqual(['tfjs', 'tfjs']);
    const m = market(24, 1, 17);
    const feed = partitionMessages(m, 3, hashPartitioner(3, 1), () => 'arrow', 400);
    const spec: ScheduleSpec = { seed: 9, maxFetch: 20, maxStep: 10, speed: Infinity, restartRate: 0, order: 'random' };
    const scored = async (models: ServedModel[]): Promise<Map<string, number>> => {
      const got = await deliver(feed, config, models, schedule(spec));
      return new Map(got.scores.map((l) => l.split('|')).map((f) => [`${f[0]}|${f[1]}|${f[2]}|${f[3]}`, Number(f[4])]));
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
