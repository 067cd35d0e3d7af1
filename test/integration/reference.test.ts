/**
 * Reference data through a real broker (issue 19): the simulator's reference file
 * published to the compacted reference topic by `replay --reference`, the market after it,
 * then `serve` with two models that need the day's reference data — one trained-layout
 * model with the orthogonal layer (industry and size from the reference records), one
 * with a universe filter (members of the synthetic index SIM-MID, ST excluded). The
 * committed scores must equal the offline path on the same events: `features --reference`
 * then `score --daily daily.csv` for the orthogonal model (the daily data's industry and
 * size, not the reference's: an independent source of the same exposures) and `score
 * --reference` for the filtered one; each score's `limit` equals the offline bars' flag.
 */
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as A from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readReferenceFile } from '../../src/ingest/reference-codec.js';
import { brokers, cli, counterSum, daemonConfig, expectParity, kafkaSkipReason, parity, scoreKey, startDaemon, Subscriber, tempDir, topicsFor, type DaemonProcess, type ScoreValues } from './kafka-harness.js';

const START = '2026-11-23';
const DAY2_CLOSE = Date.parse('2026-11-24T15:00:00+08:00');

/** A copy of a demo model folder under another name, with `patch` applied to its meta.json. */
function variant(from: string, to: string, name: string, patch: Record<string, unknown>): { dir: string; version: string; freq: string } {
  cpSync(from, to, { recursive: true });
  const meta = JSON.parse(readFileSync(join(to, 'meta.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(to, 'meta.json'), JSON.stringify({ ...meta, name, ...patch }, null, 1));
  return { dir: to, version: meta.version as string, freq: meta.freq as string };
}

function scoresOf(file: string, freq: string, version: string, into: Map<string, ScoreValues>): void {
  const rows = [...A.tableFromIPC(readFileSync(file))].map((r) => ({ symbol: String(r.symbol), barEnd: Number(r.barEnd), score: Number(r.score), z: Number(r.z), rank: Number(r.rank), coverage: Number(r.coverage) }));
  const universe = new Map<number, number>();
  for (const r of rows) universe.set(r.barEnd, (universe.get(r.barEnd) ?? 0) + 1);
  for (const r of rows) into.set(scoreKey({ symbol: r.symbol, barEnd: r.barEnd, freq, modelVersion: version }), { score: r.score, z: r.z, rank: r.rank, coverage: r.coverage, universe: universe.get(r.barEnd) as number });
}

describe.skipIf(kafkaSkipReason !== '')('reference data through a real broker', () => {
  const dir = tempDir('reference');
  const market = join(dir, 'market');
  const features = join(dir, 'features');
  const offline = new Map<string, ScoreValues>();
  /** Offline limit flags by symbol|barEnd|freq. */
  const limits = new Map<string, number>();
  let ortho: ReturnType<typeof variant>;
  let mid: ReturnType<typeof variant>;
  let records = 0;
  const daemons: DaemonProcess[] = [];
  let sub: Subscriber | undefined;

  beforeAll(() => {
    // Limit moves ten times as often as by default: locked bars for the limit flags to show.
    const s = cli(['simulate', '--symbols', '60', '--days', '2', '--seed', '31', '--start', START, '--out', market, '--format', 'arrow'], { FACTORSTREAM_SIMULATOR_LIMIT_EVENT_RATE: '0.05' });
    expect(s.code, s.stderr).toBe(0);
    ortho = variant('models/demo-10m', join(dir, 'ortho-10m'), 'ortho-10m', { orthogonal: true });
    mid = variant('models/demo-30m', join(dir, 'mid-30m'), 'mid-30m', { universe: { index: 'SIM-MID', excludeST: true, excludeSuspended: true } });
    const reference = join(market, 'reference.csv');
    records = readReferenceFile(reference).length;
    const f = cli(['features', '--input', join(market, 'ticks'), '--freq', '10m', '--freq', '30m', '--out', features, '--reference', reference]);
    expect(f.code, f.stderr).toBe(0);
    expect(f.stderr).not.toMatch(/W_NO_REFERENCE/);
    const o = cli(['score', '--model', ortho.dir, '--features', features, '--out', join(dir, 'ortho.arrow'), '--daily', join(market, 'daily.csv')]);
    expect(o.code, o.stderr).toBe(0);
    scoresOf(join(dir, 'ortho.arrow'), ortho.freq, ortho.version, offline);
    const m = cli(['score', '--model', mid.dir, '--features', features, '--out', join(dir, 'mid.arrow'), '--reference', reference]);
    expect(m.code, m.stderr).toBe(0);
    scoresOf(join(dir, 'mid.arrow'), mid.freq, mid.version, offline);
    for (const freq of ['10m', '30m']) {
      for (const b of A.tableFromIPC(readFileSync(join(features, `bars-${freq}.arrow`)))) limits.set(`${String(b.symbol)}|${Number(b.barEnd)}|${freq}`, Number(b.limit));
    }
    expect(offline.size).toBeGreaterThan(500);
  }, 180_000);

  afterAll(async () => {
    for (const d of daemons) if (d.proc.exitCode === null) d.proc.kill('SIGKILL');
    await sub?.stop();
  });

  it('serve scores an orthogonal-layer model and an index-filtered model exactly as the offline path does, each score with its bar limit flag', async () => {
    const inputs = topicsFor(`reference-in-${Date.now()}`);
    const outputs = topicsFor(`reference-out-${Date.now()}`);
    const referenceTopic = `reference-${Date.now()}.md.reference`;
    const r = cli(['replay', '--input', join(market, 'ticks'), '--reference', join(market, 'reference.csv'), '--format', 'arrow', '--speed', 'max'], {
      FACTORSTREAM_KAFKA_BROKERS: JSON.stringify([brokers]),
      FACTORSTREAM_KAFKA_TICKS_TOPIC: inputs.ticks,
      FACTORSTREAM_KAFKA_BARS_TOPIC: inputs.bars,
      FACTORSTREAM_KAFKA_REFERENCE_TOPIC: referenceTopic,
      FACTORSTREAM_KAFKA_TOPIC_PARTITIONS: '3',
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`replayed ${records} reference records to ${referenceTopic.replaceAll('.', '\\.')}`));
    sub = await new Subscriber().start(outputs.scores);
    const config = daemonConfig(dir, `reference-${Date.now()}`, inputs, outputs, { models: [ortho.dir, mid.dir] }, { referenceTopic });
    const d = startDaemon(config);
    daemons.push(d);
    const s = sub;
    await s.until(() => s.messages.length >= offline.size && s.messages.some((m) => m.value.barEnd === DAY2_CLOSE && m.value.freq === '30m'), 120_000, 'every offline score');
    await new Promise((res) => setTimeout(res, 1_500));
    const metrics = await (await fetch(`http://127.0.0.1:${await d.port}/metrics`)).text();
    d.proc.kill('SIGTERM');
    expect(await d.exited, d.logs.slice(-10).join('\n')).toBe(0);

    expectParity(parity(s.messages, offline), 'serve with reference data');
    expect(d.logs.some((l) => /"records":\d+.*reference data read/.test(l) && l.includes(`"records":${records}`)), d.logs.filter((l) => l.includes('reference')).join('\n')).toBe(true);
    expect(counterSum(metrics, 'factorstream_reference_records_total')).toBe(records);
    expect(counterSum(metrics, 'factorstream_reference_missing_total')).toBe(0);
    // The filter: only SIM-MID members that are not ST, and fewer names than the 10m model.
    const reference = readReferenceFile(join(market, 'reference.csv'));
    const allowed = new Set(reference.filter((x) => (x.indexes['SIM-MID'] ?? 0) > 0 && !x.st && !x.suspended).map((x) => `${x.date}|${x.symbol}`));
    const midScores = s.messages.filter((m) => m.value.model === 'mid-30m');
    expect(midScores.length).toBeGreaterThan(0);
    for (const m of midScores) expect(allowed.has(`${new Date(Number(m.value.barEnd) + 8 * 3_600_000).toISOString().slice(0, 10)}|${String(m.value.symbol)}`)).toBe(true);
    // Every score's limit flag is the bar's.
    let locked = 0;
    for (const m of s.messages) {
      const want = limits.get(`${String(m.value.symbol)}|${Number(m.value.barEnd)}|${String(m.value.freq)}`);
      expect(m.value.limit, scoreKey(m.value)).toBe(want);
      if (want !== 0) locked++;
    }
    expect(locked).toBeGreaterThan(0);

    // reconcile reads the reference topic as the daemon did and agrees.
    const ok = cli(['reconcile', '--config', config, '--json']);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
  }, 300_000);
});
