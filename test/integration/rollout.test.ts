/**
 * Model rollout without a restart, through a real broker: a shadow candidate is scored and
 * published to the shadow topic only (never to subscribers of the score topics); a new
 * version written into a served folder is picked up on SIGHUP and the next day's scores
 * name it; a folder that fails to load on SIGHUP leaves the served version in place.
 */
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { brokers, cli, daemonConfig, kafkaSkipReason, startDaemon, Subscriber, tempDir, topicsFor, waitForLog, type DaemonProcess } from './kafka-harness.js';

function setMeta(dir: string, patch: Record<string, unknown>): void {
  const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(dir, 'meta.json'), JSON.stringify({ ...meta, ...patch }, null, 1));
}

describe.skipIf(kafkaSkipReason !== '')('model rollout', () => {
  const dir = tempDir('rollout');
  const inputs = topicsFor(`rollout-in-${Date.now()}`);
  const outputs = topicsFor(`rollout-out-${Date.now()}`);
  const shadowTopic = `${outputs.scores}.shadow`;
  const live = new Subscriber();
  const shadow = new Subscriber();
  let daemon: DaemonProcess | undefined;
  afterAll(async () => {
    daemon?.proc.kill('SIGKILL');
    await live.stop();
    await shadow.stop();
  });

  it('shadow scores go to the shadow topic only; SIGHUP swaps in a new version; a broken folder keeps the served one', async () => {
    const sim = join(dir, 'sim');
    expect(cli(['simulate', '--symbols', '60', '--days', '2', '--seed', '4', '--start', '2026-11-23', '--out', sim, '--format', 'arrow']).code).toBe(0);
    const liveDir = join(dir, 'models', 'live-10m');
    const candidateDir = join(dir, 'models', 'candidate-10m');
    cpSync('models/demo-10m', liveDir, { recursive: true });
    cpSync('models/demo-10m', candidateDir, { recursive: true });
    setMeta(candidateDir, { name: 'demo-10m-candidate', version: 'candidate-1' });
    const servedVersion = (JSON.parse(readFileSync(join(liveDir, 'meta.json'), 'utf8')) as { version: string }).version;

    const replay = (day: string): void => {
      const r = cli(['replay', '--input', join(sim, 'ticks', `${day}.arrow`), '--format', 'arrow', '--speed', 'max'], {
        FACTORSTREAM_KAFKA_BROKERS: JSON.stringify([brokers]),
        FACTORSTREAM_KAFKA_TICKS_TOPIC: inputs.ticks,
        FACTORSTREAM_KAFKA_BARS_TOPIC: inputs.bars,
      });
      expect(r.code, r.stderr).toBe(0);
    };
    replay('2026-11-23');
    daemon = startDaemon(daemonConfig(dir, 'rollout', inputs, outputs, { models: [liveDir], shadowModels: [candidateDir] }, { shadowScoresTopic: shadowTopic }));
    const port = await daemon.port;
    // Day 1's last close, from both models.
    await waitForLog(daemon, /"model":"demo-10m","version":"[^"]+","role":"live".*"barEnd":"2026-11-23T07:00:00.000Z".*"msg":"scores published"/, 120_000);
    // The daemon has created its topics by now; subscribers read them from the beginning.
    await live.start(outputs.scores);
    await shadow.start(shadowTopic);
    await waitForLog(daemon, /"model":"demo-10m-candidate","version":"candidate-1","role":"shadow".*"barEnd":"2026-11-23T07:00:00.000Z"/, 60_000);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(/factorstream_model_info\{model="demo-10m-candidate",version="candidate-1",[^}]*role="shadow"/);
    expect(metrics).toMatch(/factorstream_model_info\{model="demo-10m",[^}]*role="live"/);

    // A new version of the live folder, then SIGHUP.
    setMeta(liveDir, { version: 'v2' });
    daemon.proc.kill('SIGHUP');
    await waitForLog(daemon, new RegExp(`"model":"demo-10m","from":"${servedVersion}","to":"v2".*"msg":"model reloaded"`), 60_000);
    // Every folder looked at (the candidate after the live one) before the candidate changes.
    await waitForLog(daemon, /"reloaded":1,"failed":0,"unchanged":1,"msg":"model folders checked"/, 60_000);
    // A broken candidate on the next SIGHUP: the served candidate stays.
    setMeta(candidateDir, { version: 'candidate-2', T: 30 });
    daemon.proc.kill('SIGHUP');
    await waitForLog(daemon, /"model":"demo-10m-candidate".*"msg":"model reload failed: the served version stays"/, 60_000);
    await waitForLog(daemon, /"reloaded":0,"failed":1,"unchanged":1,"msg":"model folders checked"/, 60_000);

    replay('2026-11-24');
    await waitForLog(daemon, /"model":"demo-10m","version":"v2","role":"live".*"barEnd":"2026-11-24T07:00:00.000Z".*"msg":"scores published"/, 120_000);
    await waitForLog(daemon, /"model":"demo-10m-candidate","version":"candidate-1","role":"shadow".*"barEnd":"2026-11-24T07:00:00.000Z"/, 60_000);
    const after = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(after).toMatch(/factorstream_model_reloads_total\{model="demo-10m",result="reloaded"\} 1/);
    expect(after).toMatch(/factorstream_model_reloads_total\{model="demo-10m-candidate",result="failed"\} 1/);
    expect(after).toMatch(/factorstream_model_info\{model="demo-10m",version="v2",/);
    expect(after).not.toMatch(new RegExp(`factorstream_model_info\\{model="demo-10m",version="${servedVersion}",`));
    const status = (await (await fetch(`http://127.0.0.1:${port}/status.json`)).json()) as { models: { model: string; version: string; role: string }[] };
    expect(status.models.map((m) => `${m.model}@${m.version}/${m.role}`).sort()).toEqual(['demo-10m-candidate@candidate-1/shadow', 'demo-10m@v2/live']);

    // Subscribers of the score topic see only the live model, day 1 under the old version and day 2 under the new.
    const deadline = Date.now() + 30_000;
    while (!live.messages.some((m) => m.value.modelVersion === 'v2' && m.value.barEnd === Date.parse('2026-11-24T15:00:00+08:00')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    const versions = new Set(live.messages.map((m) => `${String(m.value.model)}@${String(m.value.modelVersion)}`));
    expect([...versions].sort()).toEqual([`demo-10m@${servedVersion}`, 'demo-10m@v2']);
    for (const m of live.messages) expect(m.value.modelVersion === 'v2').toBe((m.value.barEnd as number) >= Date.parse('2026-11-24T09:30:00+08:00'));
    expect(shadow.messages.length).toBeGreaterThan(0);
    expect(new Set(shadow.messages.map((m) => m.value.model))).toEqual(new Set(['demo-10m-candidate']));
  }, 300_000);
});
