/**
 * Batch–stream parity through a real broker: whatever the delivery schedule, the scores
 * `serve` commits (read_committed, as a trading system reads them) equal `features` +
 * `score` on the same events — none missing, none extra, none twice, score, z, rank,
 * coverage and universe within 1e-6 — and every event is aggregated or dead-lettered:
 *
 * - the README's flow: replay (Arrow, as fast as the broker takes it), then serve;
 * - a backlog produced while serve is down by an independent client (librdkafka's kcat,
 *   whose partitioner is not kafkajs's) into 16 partitions for 12 symbols (uneven, some
 *   empty), then serve, SIGKILLed mid-backlog and restarted;
 * - the same ticks produced by kcat while serve runs (a burst);
 * - a JSON replay paced at 3,600x real time into a running serve;
 * - `reconcile` against the topics: OK on a good day, exit 1 on a tampered one.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  brokers,
  CLI,
  cli,
  counterSum,
  daemonConfig,
  expectParity,
  kafkaSkipReason,
  kcatSkipReason,
  offlineReference,
  parity,
  run,
  startDaemon,
  Subscriber,
  tempDir,
  topicsFor,
  waitForLog,
  type DaemonProcess,
  type ScoreValues,
  type Topics,
} from './kafka-harness.js';

const START = '2026-11-23';
const DAY2_CLOSE = Date.parse('2026-11-24T15:00:00+08:00');

function lastClosesSeen(sub: Subscriber): boolean {
  const freqs = new Set(sub.messages.filter((m) => m.value.barEnd === DAY2_CLOSE).map((m) => m.value.freq));
  return freqs.has('10m') && freqs.has('30m');
}

async function createTopic(topic: string, partitions: number): Promise<void> {
  const admin = new Kafka({ clientId: 'test-admin', brokers: [brokers], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
  await admin.disconnect();
}

/** The simulator's JSONL ticks as kcat input: `symbol<TAB>json` per line, in the files' (time) order. */
function kcatInput(simDir: string, out: string): number {
  const lines: string[] = [];
  for (const f of readdirSync(join(simDir, 'ticks')).sort()) {
    for (const line of readFileSync(join(simDir, 'ticks', f), 'utf8').split('\n')) {
      if (line.trim() === '') continue;
      lines.push(`${(JSON.parse(line) as { symbol: string }).symbol}\t${line}`);
    }
  }
  writeFileSync(out, lines.join('\n') + '\n');
  return lines.length;
}

/** Produces with kcat: keyed by symbol with librdkafka's default (consistent_random, CRC32) partitioner, idempotent so that order holds. */
async function kcatProduce(file: string, topic: string): Promise<void> {
  const r = await run('kcat', ['-P', '-b', brokers, '-t', topic, '-K', '\t', '-H', 'content-type=application/json', '-X', 'enable.idempotence=true', '-l', file]);
  if (r.code !== 0) throw new Error(`kcat failed (${r.code}): ${r.stderr}`);
}

async function metricsOf(d: DaemonProcess): Promise<string> {
  return (await fetch(`http://127.0.0.1:${await d.port}/metrics`)).text();
}

async function stop(d: DaemonProcess): Promise<void> {
  d.proc.kill('SIGTERM');
  const code = await d.exited;
  expect(code, d.logs.slice(-15).join('\n')).toBe(0);
}

/** Waits for every score of the reference (and the last closes), then a little for anything duplicated. */
async function collect(sub: Subscriber, reference: ReadonlyMap<string, ScoreValues>, timeoutMs: number, what: string): Promise<void> {
  await sub.until(() => lastClosesSeen(sub) && sub.messages.length >= reference.size, timeoutMs, `${what}: all ${reference.size} scores`);
  await new Promise((r) => setTimeout(r, 1_500));
}

describe.skipIf(kafkaSkipReason !== '')('batch–stream parity through a real broker', () => {
  const dir = tempDir('parity');
  const market = join(dir, 'market');
  const small = join(dir, 'small');
  let reference: Map<string, ScoreValues>;
  let smallReference: Map<string, ScoreValues>;
  let smallEvents = 0;
  const daemons: DaemonProcess[] = [];
  const subscribers: Subscriber[] = [];

  beforeAll(() => {
    for (const [out, symbols, format] of [
      [market, '40', 'arrow'],
      [small, '12', 'jsonl'],
    ] as const) {
      const s = cli(['simulate', '--symbols', symbols, '--days', '2', '--seed', '31', '--start', START, '--out', out, '--format', format]);
      expect(s.code, s.stderr).toBe(0);
    }
    reference = offlineReference(dir, [join(market, 'ticks')]);
    smallReference = offlineReference(join(dir, 'small-ref'), [join(small, 'ticks')]);
    smallEvents = kcatInput(small, join(dir, 'kcat.tsv'));
    expect(reference.size).toBeGreaterThan(1_000);
    expect(smallReference.size).toBeGreaterThan(300);
  }, 180_000);

  afterAll(async () => {
    for (const d of daemons) if (d.proc.exitCode === null) d.proc.kill('SIGKILL');
    for (const s of subscribers) await s.stop();
  });

  const replayEnv = (t: Topics, partitions = 3): NodeJS.ProcessEnv => ({
    FACTORSTREAM_KAFKA_BROKERS: JSON.stringify([brokers]),
    FACTORSTREAM_KAFKA_TICKS_TOPIC: t.ticks,
    FACTORSTREAM_KAFKA_BARS_TOPIC: t.bars,
    FACTORSTREAM_KAFKA_TOPIC_PARTITIONS: String(partitions),
  });

  async function scenario(name: string, inputs: Topics = topicsFor(`${name}-in-${Date.now()}`)): Promise<{ inputs: Topics; outputs: Topics; config: string; sub: Subscriber }> {
    const outputs = topicsFor(`${name}-out-${Date.now()}`);
    const sub = await new Subscriber().start(outputs.scores);
    subscribers.push(sub);
    return { inputs, outputs, config: daemonConfig(dir, `${name}-${Date.now()}`, inputs, outputs), sub };
  }

  function daemon(config: string): DaemonProcess {
    const d = startDaemon(config);
    daemons.push(d);
    return d;
  }

  it("the README flow (replay Arrow, then serve) publishes exactly the offline scores, and reconcile says so", async () => {
    const s = await scenario('readme');
    const r = cli(['replay', '--input', join(market, 'ticks'), '--format', 'arrow', '--speed', 'max'], replayEnv(s.inputs));
    expect(r.code, r.stderr).toBe(0);
    const d = daemon(s.config);
    await collect(s.sub, reference, 120_000, 'readme');
    const metrics = await metricsOf(d);
    const events = Number(/replayed ([\d,]+) ticks/.exec(r.stdout)?.[1].replaceAll(',', ''));
    expect(counterSum(metrics, 'factorstream_events_ingested_total')).toBe(events);
    expect(counterSum(metrics, 'factorstream_events_invalid_total')).toBe(0);
    // Scored by one recurrent step from the prepared prefix, but for the first close of each model.
    const stepped = counterSum(metrics, 'factorstream_scored_symbols_total', 'path="step"');
    expect(stepped / counterSum(metrics, 'factorstream_scored_symbols_total')).toBeGreaterThan(0.9);
    await stop(d);
    expectParity(parity(s.sub.messages, reference), 'replay then serve');

    // reconcile: the same check from the topics, as an operator runs it after the close.
    const ok = cli(['reconcile', '--config', s.config, '--json']);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    const report = JSON.parse(ok.stdout) as { ok: boolean; models: { offline: number; matched: number }[]; rejects: { offline: object; deadLettered: object } };
    expect(report.ok).toBe(true);
    expect(report.models.reduce((n, m) => n + m.matched, 0)).toBe(reference.size);
    expect(report.rejects).toEqual({ offline: {}, deadLettered: {} });
    // One score published twice with another value (a second writer on the topic): reconcile exits 1 and says which.
    const first = s.sub.messages[0];
    const producer = new Kafka({ clientId: 'test-tamper', brokers: [brokers], logLevel: logLevel.NOTHING }).producer();
    await producer.connect();
    await producer.send({ topic: s.outputs.scores, messages: [{ key: first.key, value: JSON.stringify({ ...first.value, score: (first.value.score as number) + 0.5 }), headers: first.headers }] });
    await producer.disconnect();
    const bad = cli(['reconcile', '--config', s.config, '--day', START]);
    expect(bad.code, bad.stdout + bad.stderr).toBe(1);
    expect(bad.stdout).toMatch(/MISMATCH demo-\d+m .*duplicated 1;/);
    expect(bad.stdout).toMatch(/reconcile: MISMATCH/);
  }, 300_000);

  it.skipIf(kcatSkipReason !== '')('a backlog produced by kcat into 16 partitions while serve is down, serve SIGKILLed mid-backlog and restarted: the offline scores, every event accounted for', async () => {
    const s = await scenario('kcat-backlog');
    await createTopic(s.inputs.ticks, 16);
    await kcatProduce(join(dir, 'kcat.tsv'), s.inputs.ticks);
    const first = daemon(s.config);
    await s.sub.until(() => s.sub.messages.length >= smallReference.size * 0.3, 120_000, 'a third of the scores before the kill');
    first.proc.kill('SIGKILL');
    await first.exited;
    const second = daemon(s.config);
    await waitForLog(second, /"msg":"serving"/);
    expect(second.logs.some((l) => l.includes('state restored from checkpoint'))).toBe(true);
    await collect(s.sub, smallReference, 180_000, 'kcat backlog');
    // The restarted daemon recomputed its prefixes from the restored windows: its closes go by step too.
    expect(counterSum(await metricsOf(second), 'factorstream_scored_symbols_total', 'path="step"')).toBeGreaterThan(0);
    await stop(second);
    expectParity(parity(s.sub.messages, smallReference), 'kcat backlog with a SIGKILL');
    const rec = cli(['reconcile', '--config', s.config]);
    expect(rec.code, rec.stdout + rec.stderr).toBe(0);
    expect(rec.stdout).toMatch(/OK {7}rejected events, dead-lettered\/offline: none/);
  }, 360_000);

  it.skipIf(kcatSkipReason !== '')('the same ticks produced by kcat while serve runs (a burst into 16 partitions): the offline scores, no event late', async () => {
    const s = await scenario('kcat-burst');
    await createTopic(s.inputs.ticks, 16);
    const d = daemon(s.config);
    await waitForLog(d, /"msg":"serving"/);
    await kcatProduce(join(dir, 'kcat.tsv'), s.inputs.ticks);
    await collect(s.sub, smallReference, 180_000, 'kcat burst');
    const metrics = await metricsOf(d);
    expect(counterSum(metrics, 'factorstream_events_ingested_total')).toBe(smallEvents);
    expect(counterSum(metrics, 'factorstream_late_events_total')).toBe(0);
    await stop(d);
    expectParity(parity(s.sub.messages, smallReference), 'kcat burst into a running serve');
    const rec = cli(['reconcile', '--config', s.config]);
    expect(rec.code, rec.stdout + rec.stderr).toBe(0);
  }, 300_000);

  it('a JSON replay paced at 3,600x real time into a running serve: the offline scores, no event late', async () => {
    const s = await scenario('paced');
    const d = daemon(s.config);
    await waitForLog(d, /"msg":"serving"/);
    // Not cli(): a spawnSync of the 30-second replay would block this process, and the subscriber's heartbeats with it.
    const r = await run(process.execPath, [CLI, 'replay', '--input', join(market, 'ticks'), '--format', 'json', '--speed', '3600x'], replayEnv(s.inputs));
    expect(r.code, r.stderr).toBe(0);
    await collect(s.sub, reference, 180_000, 'paced replay');
    const metrics = await metricsOf(d);
    expect(counterSum(metrics, 'factorstream_late_events_total')).toBe(0);
    await stop(d);
    expectParity(parity(s.sub.messages, reference), 'JSON replay at 3600x into a running serve');
    // The topic itself, read afresh: each score once (a subscriber's redeliveries are not the daemon's).
    const rec = cli(['reconcile', '--config', s.config]);
    expect(rec.code, rec.stdout + rec.stderr).toBe(0);
  }, 300_000);
});
