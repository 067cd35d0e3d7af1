/**
 * The broker itself restarts, and a second daemon joins the group (issue 17, items 3-4).
 *
 * A broker of its own (scripts/kafka-local), so that stopping it disturbs no other test:
 * two simulated days replayed as a backlog; `serve` reads them in small fetches and, once
 * it has published its first scores, the broker is stopped, kept down for longer than the
 * client's retries, and started again on the same data folder and port. While it is down
 * `/readyz` answers 503 and factorstream_kafka_connected is 0; after, `serve` reconnects by
 * itself and the scores committed — read by an independent client (kcat, read_committed)
 * — are exactly the offline path's, once each.
 *
 * Then a second `serve` with the same group and transactional id (another checkpoint
 * folder, as on another node) starts: it must not fence the first; it waits, unready,
 * saying so (factorstream_group_conflict 1), and the first keeps its scores exactly once;
 * when the first stops, the second takes over and publishes nothing twice.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKafka, type LocalKafka } from '../../scripts/kafka-local.mjs';
import { cli, counterSum, daemonConfig, expectParity, kafkaSkipReason, kcatSkipReason, kcatValues, logDigest, offlineReference, parity, startDaemon, tempDir, topicsFor, waitForLog, type Collected, type DaemonProcess, type ScoreValues } from './kafka-harness.js';

/** The committed scores (JSON values), read by kcat; none while the topic does not exist yet. */
async function kcatScores(brokers: string, topic: string): Promise<Collected[]> {
  const values = await kcatValues(topic, brokers).catch(() => [] as Buffer[]);
  return values.map((v, i) => ({ value: JSON.parse(v.toString()) as Record<string, unknown>, headers: {}, key: null, partition: -1, offset: String(i) }));
}

async function http(port: number, path: string): Promise<{ status: number; text: string }> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}${path}`);
    return { status: r.status, text: await r.text() };
  } catch {
    return { status: 0, text: '' };
  }
}

const gauge = (metrics: string, name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1] ?? Number.NaN);

describe.skipIf(kafkaSkipReason !== '' || kcatSkipReason !== '')('a broker restart and a second instance', () => {
  const dir = tempDir('restart');
  const market = join(dir, 'market');
  let kafka: LocalKafka;
  let offline: Map<string, ScoreValues>;
  const daemons: DaemonProcess[] = [];

  beforeAll(async () => {
    kafka = await startKafka();
    const s = cli(['simulate', '--symbols', '40', '--days', '2', '--seed', '29', '--start', '2026-11-23', '--out', market, '--format', 'jsonl']);
    expect(s.code, s.stderr).toBe(0);
    offline = offlineReference(dir, [join(market, 'ticks')]);
  }, 240_000);

  afterAll(async () => {
    for (const d of daemons) if (d.proc.exitCode === null) d.proc.kill('SIGKILL');
    await kafka?.stop();
  });

  it('serve is unready while the broker is down, reconnects by itself, and its scores stay the offline ones, once each; a second instance waits instead of fencing it', async () => {
    const id = `restart-${Date.now()}`;
    const inputs = topicsFor(`${id}-in`);
    const outputs = topicsFor(`${id}-out`);
    const env = { FACTORSTREAM_KAFKA_BROKERS: JSON.stringify([kafka.brokers]), FACTORSTREAM_KAFKA_TICKS_TOPIC: inputs.ticks, FACTORSTREAM_KAFKA_BARS_TOPIC: inputs.bars, FACTORSTREAM_KAFKA_TOPIC_PARTITIONS: '3' };
    const r = cli(['replay', '--input', join(market, 'ticks'), '--format', 'json', '--speed', 'max'], env);
    expect(r.code, r.stderr).toBe(0);
    // Small fetches: the backlog takes many batches, so the broker stops in the middle of it.
    const config = daemonConfig(dir, id, inputs, outputs, {}, { brokers: [kafka.brokers], maxBytesPerPartition: 8_192 });
    const a = startDaemon(config);
    daemons.push(a);
    const port = await a.port;
    await waitForLog(a, /scores published/, 120_000);
    await kafka.halt('SIGTERM');
    // Down for longer than kafkajs's retries (five, about 10 s in all): serve must notice and say so.
    // How soon it notices depends on what it was doing when the broker went (a transaction's
    // retries, the consumer's, a housekeeping round: 10-25 s on a loaded CI host), so the
    // broker stays down until serve has been seen unready five times (and never ready again
    // while down) and has said it lost Kafka (factorstream_kafka_connected 0: /readyz turns
    // 503 first, once the broker has been silent too long), or two minutes.
    const downSince = Date.now();
    let unreadyChecks = 0;
    let readyAgainWhileDown = 0;
    let disconnected = false;
    while (Date.now() - downSince < 25_000 || ((unreadyChecks < 5 || !disconnected) && Date.now() - downSince < 120_000)) {
      const status = (await http(port, '/readyz')).status;
      if (status === 503) unreadyChecks++;
      else if (status === 200 && unreadyChecks > 0) readyAgainWhileDown++;
      if (gauge((await http(port, '/metrics')).text, 'factorstream_kafka_connected') === 0) disconnected = true;
      await new Promise((res) => setTimeout(res, 1_000));
    }
    expect(a.proc.exitCode, a.logs.slice(-10).join('\n')).toBeNull();
    expect(unreadyChecks, `unready checks in ${Math.round((Date.now() - downSince) / 1000)} s down; the daemon's log:\n${logDigest(a, 20)}`).toBeGreaterThanOrEqual(5);
    expect(readyAgainWhileDown, 'ready again while the broker was still down').toBe(0);
    expect(disconnected, `factorstream_kafka_connected 0 within ${Math.round((Date.now() - downSince) / 1000)} s down; the daemon's log:\n${logDigest(a, 20)}`).toBe(true);
    await kafka.resume();
    await waitForLog(a, /Kafka reconnected: serving again/, 120_000);
    // The rest of the backlog, as long as it keeps coming: how long the reconnect and the
    // catch-up take depends on the load beside this test, so wait for progress, not for a fixed time.
    let committed = 0;
    for (let lastProgress = Date.now(); committed < offline.size && Date.now() - lastProgress < 90_000; ) {
      await new Promise((res) => setTimeout(res, 2_000));
      const n = (await kcatScores(kafka.brokers, outputs.scores)).length;
      if (n > committed) [committed, lastProgress] = [n, Date.now()];
    }
    // The broker stopped mid-backlog: closes were published after the reconnect.
    const reconnectedAt = a.logs.findIndex((l) => l.includes('Kafka reconnected: serving again'));
    expect(a.logs.slice(reconnectedAt).filter((l) => l.includes('scores published')).length, 'closes published after the reconnect').toBeGreaterThan(0);
    // The connection before the outage must not come back beside the new one: kafkajs
    // restarted a consumer that crashed after its disconnect, which then held half the
    // input partitions (kafka-client.ts restartOnlyWhile).
    expect(a.logs.filter((l) => l.includes('assigned only part of the input partitions')), logDigest(a, 30)).toEqual([]);
    expect(committed, `scores committed (of ${offline.size}) when they stopped coming for 90 s; the daemon's log:\n${logDigest(a, 60)}\nits last closes:\n${logDigest(a, 3, (l) => l.includes('scores published'))}`).toBeGreaterThanOrEqual(offline.size);
    await new Promise((res) => setTimeout(res, 1_500));
    expectParity(parity(await kcatScores(kafka.brokers, outputs.scores), offline), 'serve across a broker restart');
    const readyAgain = Date.now() + 30_000;
    while ((await http(port, '/readyz')).status !== 200 && Date.now() < readyAgain) await new Promise((res) => setTimeout(res, 500));
    expect((await http(port, '/readyz')).status).toBe(200);
    const metrics = (await http(port, '/metrics')).text;
    expect(gauge(metrics, 'factorstream_kafka_connected')).toBe(1);
    expect(metrics).toMatch(/^factorstream_kafka_reconnects_total\{result="reconnected"\} [1-9]/m);
    // Every committed score counted once across the outage, whether it came in a transaction (published again, or committed with its answer lost) or between two.
    expect(counterSum(metrics, 'factorstream_scores_published_total')).toBe((await kcatScores(kafka.brokers, outputs.scores)).length);

    // A second instance of the same deployment, on another node (its own checkpoint folder).
    const second = daemonConfig(dir, `${id}-second`, inputs, outputs, {}, { brokers: [kafka.brokers], groupId: `group-${id}`, transactionalId: `txn-${id}` });
    const b = startDaemon(second);
    daemons.push(b);
    const bPort = await b.port;
    await waitForLog(b, /another instance is consuming this consumer group: waiting, unready/, 60_000);
    expect((await http(bPort, '/readyz')).status).toBe(503);
    expect(gauge((await http(bPort, '/metrics')).text, 'factorstream_group_conflict')).toBe(1);
    // The first is not fenced: still serving, still committing (an idle feed commits nothing new, but a housekeeping round must not fail).
    await new Promise((res) => setTimeout(res, 5_000));
    expect(a.proc.exitCode).toBeNull();
    expect((await http(port, '/readyz')).status).toBe(200);
    expectParity(parity(await kcatScores(kafka.brokers, outputs.scores), offline), 'with a second instance waiting');
    a.proc.kill('SIGTERM');
    expect(await a.exited, a.logs.slice(-10).join('\n')).toBe(0);
    // The first one gone, the second takes over (a rolling deploy completes): serving, nothing published twice.
    await waitForLog(b, /"msg":"serving"/, 90_000);
    await new Promise((res) => setTimeout(res, 3_000));
    expectParity(parity(await kcatScores(kafka.brokers, outputs.scores), offline), 'after the second instance took over');
    b.proc.kill('SIGTERM');
    expect(await b.exited, b.logs.slice(-20).join('\n')).toBe(0);
  }, 600_000);
});
