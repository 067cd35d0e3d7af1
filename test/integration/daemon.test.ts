/**
 * The daemon against a real Kafka broker (the global setup's, or KAFKA_BROKERS):
 * replay -> serve -> a read_committed subscriber; SIGTERM drains within 10 s; and the
 * crash test: SIGKILL at several points while a day streams through, restart each time,
 * and the committed scores are exactly one per (symbol, barEnd, freq, modelVersion),
 * equal to what `features` + `score` compute offline on the same ticks.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import * as A from 'apache-arrow';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { javaMurmur2 } from '../helpers.js';
import { brokers, cli, counterSum, daemonConfig, expectParity, kafkaSkipReason, kcatKeyPartitions, kcatSkipReason, logDigest, offlineReference, parity, scoreKey, startDaemon, straceSkipReason, Subscriber, tempDir, topicsFor, waitForLog, type DaemonProcess, type ScoreValues } from './kafka-harness.js';

const DAY = '2026-11-23';
/** 15:00 Shanghai on DAY: the last close of both models. */
const LAST_BAR_END = Date.parse(`${DAY}T15:00:00+08:00`);

function lastCloseSeen(sub: Subscriber): boolean {
  const freqs = new Set(sub.messages.filter((m) => m.value.barEnd === LAST_BAR_END).map((m) => m.value.freq));
  return freqs.has('10m') && freqs.has('30m');
}

/** The closes (model and bar end) a subscriber has scores of. */
function closesOf(sub: Subscriber): number {
  return new Set(sub.messages.map((m) => `${String(m.value.model)}|${String(m.value.barEnd)}`)).size;
}

/** The identities (scoreKey) of every row of the daemon's daily archive, across its runs' files. */
function archivedKeys(archiveDir: string): string[] {
  const day = join(archiveDir, DAY);
  if (!existsSync(day)) return [];
  const keys: string[] = [];
  for (const file of readdirSync(day)) {
    for (const row of A.tableFromIPC(readFileSync(join(day, file)))) keys.push(scoreKey({ symbol: row.symbol, barEnd: Number(row.barEnd), freq: row.freq, modelVersion: row.modelVersion }));
  }
  return keys;
}

/** One file-system call of a strace log (`strace -f -ttt -y`): its thread, start time, call and the path of its descriptor. */
interface TracedCall {
  tid: number;
  at: number;
  call: string;
  path: string;
}

function tracedCalls(log: string): TracedCall[] {
  const calls: TracedCall[] = [];
  for (const line of log.split('\n')) {
    const m = /^(\d+)\s+(\d+\.\d+)\s+(\w+)\(\d+<([^>]*)>/.exec(line);
    if (m !== null) calls.push({ tid: Number(m[1]), at: Number(m[2]), call: m[3], path: m[4] });
  }
  return calls;
}

async function stop(d: DaemonProcess): Promise<{ code: number | null; ms: number }> {
  const t0 = Date.now();
  d.proc.kill('SIGTERM');
  const code = await d.exited;
  return { code, ms: Date.now() - t0 };
}

describe.skipIf(kafkaSkipReason !== '')('serve through a real broker', () => {
  const dir = tempDir('daemon');
  const sim = join(dir, 'sim');
  const inputs = topicsFor(`in-${Date.now()}`);
  const reference = new Subscriber();
  let referenceDaemon: DaemonProcess | undefined;
  let offline: Map<string, ScoreValues>;

  beforeAll(() => {
    const s = cli(['simulate', '--symbols', '150', '--days', '1', '--seed', '9', '--start', DAY, '--out', sim, '--format', 'arrow']);
    expect(s.code, s.stderr).toBe(0);
    const r = cli(['replay', '--input', join(sim, 'ticks'), '--format', 'json', '--speed', 'max'], {
      FACTORSTREAM_KAFKA_BROKERS: JSON.stringify([brokers]),
      FACTORSTREAM_KAFKA_TICKS_TOPIC: inputs.ticks,
      FACTORSTREAM_KAFKA_BARS_TOPIC: inputs.bars,
      FACTORSTREAM_KAFKA_TOPIC_PARTITIONS: '3',
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/replayed [\d,]+ ticks and 0 bars in [\d,]+ json messages/);
    offline = offlineReference(dir, [join(sim, 'ticks')]);
  }, 120_000);

  afterAll(async () => {
    referenceDaemon?.proc.kill('SIGKILL');
    await reference.stop();
  });

  it('replay -> serve -> subscriber: every close scored once, metrics and readiness served, SIGTERM drains within 10 s', async () => {
    const outputs = topicsFor(`ref-${Date.now()}`);
    const config = daemonConfig(dir, 'ref', inputs, outputs);
    referenceDaemon = startDaemon(config);
    const port = await referenceDaemon.port;
    await reference.start(outputs.scores);
    await reference.until(() => lastCloseSeen(reference), 90_000, 'the 15:00 scores of both models');

    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    const readyBody = (await ready.json()) as Record<string, unknown>;
    expect(ready.status, JSON.stringify(readyBody)).toBe(200);
    expect(readyBody.assignedPartitions).toBeGreaterThan(0);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(/factorstream_events_ingested_total\{topic="[^"]+",format="json"\} [1-9]/);
    expect(metrics).toMatch(/factorstream_bars_closed_total\{freq="10m"\} 24/);
    expect(metrics).toMatch(/factorstream_model_info\{model="demo-10m",[^}]*engine="onnx",backend="cpu",role="live",fallback=""/);
    expect(metrics).toMatch(/factorstream_bar_close_to_publish_seconds_count\{model="demo-10m",freq="10m"\} [1-9]/);
    expect(metrics).toMatch(/factorstream_consumer_lag\{topic="[^"]+",partition="0"\} 0/);
    // The bars partitions are empty (idle): closes of the backlog waited only for a look at their ends, and got it at once.
    expect(metrics).toMatch(/factorstream_ends_lookup_seconds_count\{trigger="fetch"\} [1-9]/);
    expect(metrics).toMatch(/^process_cpu_seconds_total /m);
    // Of each close's latency and inference, the part its thread waited for a core: one observation per close, never more than the whole.
    if (process.platform === 'linux') {
      const of = (series: string): number => Number(new RegExp(`^${series}\\{model="demo-10m",[^}]*\\} (\\S+)$`, 'm').exec(metrics)?.[1]);
      for (const whole of ['factorstream_bar_close_to_publish', 'factorstream_inference']) {
        expect(of(`${whole}_seconds_count`)).toBeGreaterThan(0);
        expect(of(`${whole}_wait_seconds_count`)).toBe(of(`${whole}_seconds_count`));
        expect(of(`${whole}_wait_seconds_sum`)).toBeGreaterThanOrEqual(0);
        expect(of(`${whole}_wait_seconds_sum`)).toBeLessThanOrEqual(of(`${whole}_seconds_sum`));
      }
      // And in each close's log line, beside the times they are part of.
      const published = referenceDaemon.logs.filter((l) => l.includes('"scores published"')).map((l) => JSON.parse(l) as Record<string, number>);
      expect(published.length).toBeGreaterThan(0);
      for (const p of published) {
        expect(p.closeToPublishWaitMs).toBeGreaterThanOrEqual(0);
        expect(p.closeToPublishWaitMs).toBeLessThanOrEqual(p.closeToPublishMs + 1);
        expect(p.inferenceWaitMs).toBeGreaterThanOrEqual(0);
        expect(p.inferenceWaitMs).toBeLessThanOrEqual(p.inferenceMs + 1);
      }
    }

    // The close path ran once on a synthetic cross-section before serving; kcat below counts only the closes' messages in the score topic: it sent nothing.
    const warmed = referenceDaemon.logs.filter((l) => l.includes('"close path warmed up')).map((l) => JSON.parse(l) as Record<string, number>);
    expect(warmed).toHaveLength(1);
    expect(warmed[0].requestBytes).toBeGreaterThan(5_000 * 200);
    expect(referenceDaemon.logs.findIndex((l) => l.includes('"close path warmed up'))).toBeLessThan(referenceDaemon.logs.findIndex((l) => l.includes('"msg":"serving"')));

    const { code, ms } = await stop(referenceDaemon);
    expect(code, referenceDaemon.logs.slice(-15).join('\n')).toBe(0);
    expect(ms).toBeLessThan(10_000);

    // Every message follows the published schema.
    const ajv = new Ajv2020({ strict: true });
    const validScore = ajv.compile(JSON.parse(readFileSync('schemas/score.schema.json', 'utf8')) as object);
    for (const m of reference.messages) expect(validScore(m.value), JSON.stringify(validScore.errors)).toBe(true);
    // One score per identity; each close's cross-section is standardised.
    const keys = reference.messages.map((m) => scoreKey(m.value));
    expect(new Set(keys).size).toBe(keys.length);
    expectParity(parity(reference.messages, offline), 'replay then serve');
    const first = reference.messages[0];
    expect(first.key).toBe(first.value.symbol);
    expect(first.headers['content-type']).toBe('application/json');
    expect(first.headers['model-version']).toBe(first.value.modelVersion);
    expect(first.headers['bar-end']).toBe(String(first.value.barEnd));
    const byClose = new Map<string, number[]>();
    for (const m of reference.messages) {
      const k = `${String(m.value.freq)}|${String(m.value.barEnd)}`;
      byClose.set(k, [...(byClose.get(k) ?? []), m.value.z as number]);
    }
    for (const zs of byClose.values()) expect(Math.abs(zs.reduce((a, b) => a + b, 0) / zs.length)).toBeLessThan(1e-5);
    // Each score is in its symbol's partition as Java's default partitioner places a key
    // (serve sets the partitions itself to bound its requests per partition), read by kcat.
    if (kcatSkipReason === '') {
      const placed = await kcatKeyPartitions(outputs.scores);
      expect(placed.partitions).toBeGreaterThan(1);
      expect(placed.messages).toHaveLength(reference.messages.length);
      for (const m of placed.messages) expect(m.partition, m.key).toBe((javaMurmur2(m.key) & 0x7fffffff) % placed.partitions);
    }

    // The batch topic carries the same cross-sections as Arrow.
    const batch = new Subscriber();
    await batch.start(outputs.scoresBatch);
    await batch.until(() => batch.raw.length >= byClose.size, 30_000, 'one Arrow message per close');
    await batch.stop();
    const rows = batch.raw.map((b) => A.tableFromIPC(b)).reduce((n, t) => n + t.numRows, 0);
    expect(rows).toBe(reference.messages.length);
    const t = A.tableFromIPC(batch.raw[0]);
    expect(t.schema.fields.map((f) => f.name)).toEqual(['symbol', 'barEnd', 'freq', 'model', 'modelVersion', 'score', 'z', 'rank', 'universe', 'coverage', 'limit']);

    // The example subscriber (README) prints each complete cross-section.
    const example = spawn(process.execPath, ['--import', 'tsx', 'examples/subscriber.ts', '--brokers', brokers, '--topic', outputs.scores, '--from-beginning'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let printed = '';
    example.stdout.on('data', (c: Buffer) => (printed += c.toString()));
    const deadline = Date.now() + 30_000;
    while (!/^2026-11-23 15:00 30m demo-30m \(\S+\): 150 scored \| long /m.test(printed) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    example.kill('SIGTERM');
    expect(printed).toMatch(/^2026-11-23 15:00 10m demo-10m \(\S+\): 150 scored \| long \d{6}\.(SH|SZ|BJ) z=/m);
    expect(printed).toMatch(/^2026-11-23 15:00 30m demo-30m \(\S+\): 150 scored/m);

    // And the daily archive holds them too (a shortfall: the warnings say whether a transaction failed).
    expect(archivedKeys(join(dir, 'archive-ref')).sort(), logDigest(referenceDaemon, 20, (l) => /"level":[456]0/.test(l))).toEqual(keys.sort());
  }, 180_000);

  it('a close whose transaction fails before its commit, then a crash there, then one after a commit: published again once, archived once, counted', async () => {
    const outputs = topicsFor(`again-${Date.now()}`);
    const sub = await new Subscriber().start(outputs.scores);
    const republished = (d: DaemonProcess): Record<string, unknown>[] => d.logs.filter((l) => l.includes('"scores published again from the checkpoint"')).map((l) => JSON.parse(l) as Record<string, unknown>);

    // The third close's commit fails (as a refused request would): the daemon reconnects in the same process and recovery publishes it again.
    const failing = startDaemon(daemonConfig(dir, 'again-error', inputs, outputs), { FACTORSTREAM_FAILPOINTS: 'close-commit=3:error' });
    await sub.until(() => lastCloseSeen(sub) && sub.messages.length >= offline.size, 120_000, `all ${offline.size} scores after a failed transaction`);
    const port = await failing.port;
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect((await stop(failing)).code, logDigest(failing, 20)).toBe(0);
    expect(failing.logs.filter((l) => l.includes('"Kafka lost')).length, logDigest(failing, 20)).toBe(1);
    const again = republished(failing);
    // The closes of that one transaction (two where both models close at once).
    expect(again.length, logDigest(failing, 20)).toBeGreaterThan(0);
    for (const close of again) expect(close.scored).toBe(150);
    // Every committed score counted once, the one published again included.
    const counted = [...metrics.matchAll(/^factorstream_scores_published_total\{model="[^"]+"\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
    expect(counted).toBe(sub.messages.length);
    expectParity(parity(sub.messages, offline), 'a failed transaction published again');
    expect(archivedKeys(join(dir, 'archive-again-error')).sort()).toEqual(sub.messages.map((m) => scoreKey(m.value)).sort());

    // The same on new topics, but the process dies there (its checkpoint on disk, the transaction open): the restart publishes it again.
    const outputs2 = topicsFor(`again-kill-${Date.now()}`);
    const sub2 = await new Subscriber().start(outputs2.scores);
    const config = daemonConfig(dir, 'again-kill', inputs, outputs2);
    const killed = startDaemon(config, { FACTORSTREAM_FAILPOINTS: 'close-commit=3:kill' });
    expect(await killed.exited, logDigest(killed, 20)).toBe(null);
    expect(killed.proc.signalCode).toBe('SIGKILL');
    // The restart publishes it again; then it dies right after a later close's commit, before archiving it (close-archive).
    const restarted = startDaemon(config, { FACTORSTREAM_FAILPOINTS: 'close-archive=2:kill' });
    expect(await restarted.exited, logDigest(restarted, 20)).toBe(null);
    expect(restarted.proc.signalCode).toBe('SIGKILL');
    expect(republished(restarted).length, logDigest(restarted, 20)).toBeGreaterThan(0);
    // The next run finds that commit's closes missing from the archive and archives them from its checkpoint.
    const third = startDaemon(config);
    await sub2.until(() => lastCloseSeen(sub2) && sub2.messages.length >= offline.size, 120_000, `all ${offline.size} scores after a crash before a commit and one after`);
    expect((await stop(third)).code, logDigest(third, 20)).toBe(0);
    await Promise.all([sub.stop(), sub2.stop()]);
    const archivedAgain = third.logs.filter((l) => l.includes('"scores archived from the checkpoint')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(archivedAgain.length, logDigest(third, 20)).toBeGreaterThan(0);
    for (const close of archivedAgain) expect(close.scored).toBe(150);
    expect(republished(third)).toEqual([]);
    expectParity(parity(sub2.messages, offline), 'a crash before a commit, published again, and one after a commit');
    // Three runs' files; no score in two, none missing.
    expect(archivedKeys(join(dir, 'archive-again-kill')).sort()).toEqual(sub2.messages.map((m) => scoreKey(m.value)).sort());
  }, 300_000);

  it("a commit whose answer is lost: the reconnect finds it committed, publishes nothing again, and counts and archives its closes once", async () => {
    const outputs = topicsFor(`lost-${Date.now()}`);
    const sub = await new Subscriber().start(outputs.scores);
    const d = startDaemon(daemonConfig(dir, 'lost', inputs, outputs), { FACTORSTREAM_FAILPOINTS: 'close-commit=3:lost' });
    await sub.until(() => lastCloseSeen(sub) && sub.messages.length >= offline.size, 120_000, `all ${offline.size} scores after a lost commit answer`);
    const metrics = await (await fetch(`http://127.0.0.1:${await d.port}/metrics`)).text();
    expect((await stop(d)).code, logDigest(d, 20)).toBe(0);
    await sub.stop();
    expect(d.logs.filter((l) => l.includes('"Kafka lost')).length, logDigest(d, 20)).toBe(1);
    const counted = d.logs.filter((l) => l.includes(`"scores committed, the commit's answer lost: counted and archived from the checkpoint"`)).map((l) => JSON.parse(l) as Record<string, unknown>);
    // The closes of that one transaction, counted once by the recovery (published() never saw that commit through).
    expect(counted.length, logDigest(d, 20)).toBeGreaterThan(0);
    for (const close of counted) expect(close.scored).toBe(150);
    expect(d.logs.filter((l) => l.includes('published again from the checkpoint'))).toEqual([]);
    expect(counterSum(metrics, 'factorstream_scores_published_total')).toBe(sub.messages.length);
    expectParity(parity(sub.messages, offline), 'a commit whose answer was lost');
    expect(archivedKeys(join(dir, 'archive-lost')).sort()).toEqual(sub.messages.map((m) => scoreKey(m.value)).sort());
  }, 180_000);

  it.skipIf(straceSkipReason !== '')('the daily archive reaches the disk ahead of the next checkpoint, and at stop (its calls traced by strace)', async () => {
    const outputs = topicsFor(`synced-${Date.now()}`);
    const sub = await new Subscriber().start(outputs.scores);
    const trace = join(dir, 'synced.strace');
    const traced = startDaemon(daemonConfig(dir, 'synced', inputs, outputs), {}, ['strace', '-f', '-qq', '--seccomp-bpf', '-ttt', '-y', '-e', 'trace=write,writev,pwrite64,fsync,fdatasync', '-o', trace]);
    await sub.until(() => lastCloseSeen(sub) && sub.messages.length >= offline.size, 180_000, `all ${offline.size} scores under strace`);
    // SIGTERM to the daemon itself (strace, signalled, would pass it on and stop tracing what the stop does).
    const daemonPid = Number(readFileSync(`/proc/${traced.proc.pid}/task/${traced.proc.pid}/children`, 'utf8').trim().split(' ')[0]);
    process.kill(daemonPid, 'SIGTERM');
    expect(await traced.exited, logDigest(traced, 20)).toBe(0);
    await sub.stop();
    expectParity(parity(sub.messages, offline), 'the daemon under strace');

    const calls = tracedCalls(readFileSync(trace, 'utf8'));
    const archiveDir = join(dir, 'archive-synced');
    const isCheckpointWrite = (c: TracedCall): boolean => c.path.startsWith(join(dir, 'checkpoint-synced')) && ['checkpoint.log', 'checkpoint.v8.tmp'].includes(basename(c.path)) && c.call.startsWith('write');
    const archiveWrites = calls.filter((c) => c.path.startsWith(archiveDir) && c.path.endsWith('.arrow') && c.call.startsWith('write'));
    const fsyncs = calls.filter((c) => c.call === 'fsync' || c.call === 'fdatasync');
    const checkpointWrites = calls.filter(isCheckpointWrite);
    // Every close appended (one write each, and each file's end marker at stop), and the scores they hold are the topic's.
    expect(new Set(archiveWrites.map((c) => c.path)).size).toBe(2);
    expect(archiveWrites.length).toBeGreaterThanOrEqual(closesOf(sub) + 2);
    expect(checkpointWrites.length).toBeGreaterThan(10);
    expect(archivedKeys(archiveDir).sort()).toEqual(sub.messages.map((m) => scoreKey(m.value)).sort());
    // Each append is fsynced before the next checkpoint is written (so never behind one on disk), the last ones at stop.
    const late: string[] = [];
    for (const w of archiveWrites) {
      const nextCheckpoint = checkpointWrites.find((c) => c.at > w.at)?.at ?? Infinity;
      if (!fsyncs.some((f) => f.path === w.path && f.at > w.at && f.at < nextCheckpoint)) late.push(`${w.path} written at ${w.at}, next checkpoint written at ${nextCheckpoint}`);
    }
    expect(late, `${late.length} of ${archiveWrites.length} archive writes not fsynced ahead of the next checkpoint`).toEqual([]);
    // And the folders that gained the files: the day's, and the archive's (which gained the day).
    for (const folder of [archiveDir, join(archiveDir, DAY)]) expect(fsyncs.some((f) => f.path === folder), folder).toBe(true);
  }, 300_000);

  it('an archive folder that cannot be written: each close counted and logged, every score published', async () => {
    const outputs = topicsFor(`no-archive-${Date.now()}`);
    const sub = await new Subscriber().start(outputs.scores);
    // A file where the archive's folder should be (as a volume mounted read-only or a full disk would fail it).
    const blocked = join(dir, 'archive-blocked');
    writeFileSync(blocked, '');
    const d = startDaemon(daemonConfig(dir, 'no-archive', inputs, outputs, { archiveDir: blocked }));
    await sub.until(() => lastCloseSeen(sub) && sub.messages.length >= offline.size, 120_000, `all ${offline.size} scores without an archive`);
    const metrics = await (await fetch(`http://127.0.0.1:${await d.port}/metrics`)).text();
    expect((await stop(d)).code, logDigest(d, 20)).toBe(0);
    await sub.stop();
    expectParity(parity(sub.messages, offline), 'an archive that cannot be written');
    const failed = d.logs.filter((l) => l.includes('"the score archive could not be written')).map((l) => JSON.parse(l) as Record<string, unknown>);
    // One per close of either model, at error, each saying why.
    const closes = closesOf(sub);
    expect(closes).toBeGreaterThan(10);
    expect(failed).toHaveLength(closes);
    for (const f of failed) expect(f).toMatchObject({ level: 50, err: { code: 'ENOTDIR' } });
    expect(counterSum(metrics, 'factorstream_archive_errors_total', 'op="write"')).toBe(closes);
    expect(counterSum(metrics, 'factorstream_archive_errors_total', 'op="sync"')).toBe(0);
  }, 180_000);

  it('SIGKILL at several points, restart each time: exactly one committed score per identity, equal to the offline path', async () => {
    const expected = offline;
    const outputs = topicsFor(`crash-${Date.now()}`);
    const config = daemonConfig(dir, 'crash', inputs, outputs);
    const sub = await new Subscriber().start(outputs.scores);
    // Seeded, so that a failure can be replayed: kill after a fraction of the scores plus a jitter.
    let seed = 20_261_126;
    const random = (): number => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    const kills: string[] = [];
    const runs: DaemonProcess[] = [];
    for (const fraction of [0, 0.2, 0.45, 0.7]) {
      const d = startDaemon(config);
      runs.push(d);
      await d.port;
      const target = Math.floor(fraction * expected.size);
      // After the first run (killed at once, maybe before it joins), each is killed after its group join, so that
      // the next run has a member of its own from before to remove — even where the run before it published past
      // this run's fraction while catching up (the kill then follows the join).
      if (fraction > 0) await waitForLog(d, /"msg":"partitions assigned"/, 90_000);
      await sub.until(() => sub.messages.length >= target, 90_000, `${target} scores before kill`);
      const jitter = Math.floor(random() * 250);
      await new Promise((r) => setTimeout(r, jitter));
      d.proc.kill('SIGKILL');
      await d.exited;
      kills.push(`after ${sub.messages.length} scores + ${jitter} ms`);
    }
    const last = startDaemon(config);
    runs.push(last);
    await waitForLog(last, /"msg":"serving"/);
    await sub.until(() => lastCloseSeen(sub) && sub.messages.length >= expected.size, 120_000, `all ${expected.size} scores after ${kills.join('; ')}`);
    // Anything duplicated would arrive with or right after the rest: wait a little.
    await new Promise((r) => setTimeout(r, 1_500));
    const { code } = await stop(last);
    expect(code, last.logs.slice(-15).join('\n')).toBe(0);
    await sub.stop();
    console.log(`crash test: ${expected.size} scores; killed ${kills.join('; ')}`);

    expectParity(parity(sub.messages, expected), `SIGKILL ${kills.join('; ')}`);
    // The runs' archive files together hold each committed score once: a run killed between a commit and its archive write left it to the next.
    expect(archivedKeys(join(dir, 'archive-crash')).sort(), `SIGKILL ${kills.join('; ')}`).toEqual(sub.messages.map((m) => scoreKey(m.value)).sort());
    // The last run resumed from a checkpoint rather than from scratch.
    expect(last.logs.some((l) => l.includes('state restored from checkpoint'))).toBe(true);
    // A killed daemon's consumer stays in the group for its session (30 s): a restart removes
    // its own member from before instead of waiting that out (every kill but the first came
    // after the group join, and each restart follows at once).
    const removals = runs.slice(2).filter((d) => d.logs.some((l) => l.includes("removed this daemon's member from before")));
    expect(removals.length, runs.map((d, i) => `run ${i}:\n${logDigest(d, 12)}`).join('\n')).toBe(3);
  }, 400_000);
});
