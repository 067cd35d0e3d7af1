/**
 * Kafka as production clusters run it (issue 17, items 1-2): the test broker's SASL_SSL
 * listener (a CA and certificates made on the spot, SCRAM users created when its storage
 * was formatted, ACLs enforced) and its mutual-TLS listener.
 *
 * - `replay` and `serve` through TLS + SCRAM-SHA-512, the password read from a file: the
 *   committed scores equal the offline path on the same events (read back on the plain
 *   listener by a subscriber that shares nothing with them), and no log line holds the
 *   password.
 * - A wrong password and a CA that did not sign the broker's certificate: `serve` exits
 *   non-zero within seconds, saying which in plain words.
 * - `doctor` over PLAIN, over mutual TLS with and without a client certificate, and as a
 *   user without ACLs: it says which of TLS, authentication or authorisation failed.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { SecureKafka } from '../../scripts/kafka-local.mjs';
import { CLI, cli, daemonConfig, expectParity, kafkaSkipReason, offlineReference, parity, run, startDaemon, Subscriber, tempDir, topicsFor, type DaemonProcess, type ScoreValues } from './kafka-harness.js';

const secureJson = inject('kafkaSecure');
const secure = secureJson === '' ? undefined : (JSON.parse(secureJson) as SecureKafka);
const DAY_CLOSE = Date.parse('2026-11-23T15:00:00+08:00');

/** Runs the CLI to its exit (without blocking the event loop: the subscriber keeps its group), with its wall time. */
async function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stderr: string; stdout: string; seconds: number }> {
  const t0 = Date.now();
  const r = await run(process.execPath, [CLI, ...args], env);
  return { ...r, seconds: (Date.now() - t0) / 1000 };
}

describe.skipIf(kafkaSkipReason !== '' || secure === undefined)('Kafka with TLS and SASL', () => {
  const s = secure as SecureKafka;
  const dir = tempDir('secure');
  const market = join(dir, 'market');
  const passwordFile = join(dir, 'kafka-password');
  let offline: Map<string, ScoreValues>;
  const daemons: DaemonProcess[] = [];
  let sub: Subscriber | undefined;

  /** A daemon config on the SASL_SSL listener as user `factorstream`, its password from `passwordFile`. */
  const secureConfig = (id: string, overrides: Record<string, unknown> = {}): string => {
    const config = daemonConfig(dir, id, topicsFor(`${id}-in`), topicsFor(`${id}-out`), {}, { brokers: [s.saslBrokers], tlsCaFile: s.caFile, saslMechanism: 'scram-sha-512', saslUsername: 'factorstream', saslPasswordFile: passwordFile, ...overrides });
    return config;
  };

  beforeAll(() => {
    writeFileSync(passwordFile, `${s.users.factorstream}\n`, { mode: 0o600 });
    const r = cli(['simulate', '--symbols', '40', '--days', '1', '--seed', '23', '--start', '2026-11-23', '--out', market, '--format', 'arrow']);
    expect(r.code, r.stderr).toBe(0);
    offline = offlineReference(dir, [join(market, 'ticks')]);
  }, 180_000);

  afterAll(async () => {
    for (const d of daemons) if (d.proc.exitCode === null) d.proc.kill('SIGKILL');
    await sub?.stop();
  });

  it('replay and serve through TLS + SCRAM-SHA-512 (password from a file) publish the offline scores; the password is in no log', async () => {
    const id = `secure-${Date.now()}`;
    const config = secureConfig(id);
    const replayed = await runCli(['replay', '--config', config, '--input', join(market, 'ticks'), '--format', 'arrow', '--speed', 'max']);
    expect(replayed.code, replayed.stderr).toBe(0);
    // Read back on the plain listener: the scores as any subscriber sees them, by a client that shares nothing with serve.
    sub = await new Subscriber().start(topicsFor(`${id}-out`).scores);
    const subscriber = sub;
    const d = startDaemon(config);
    daemons.push(d);
    await subscriber.until(() => subscriber.messages.length >= offline.size && subscriber.messages.some((m) => m.value.barEnd === DAY_CLOSE && m.value.freq === '30m'), 120_000, 'every offline score');
    await new Promise((r) => setTimeout(r, 1_000));
    d.proc.kill('SIGTERM');
    expect(await d.exited, d.logs.slice(-10).join('\n')).toBe(0);
    expectParity(parity(subscriber.messages, offline), 'serve through TLS + SCRAM');
    expect(readFileSync(config, 'utf8')).not.toContain(s.users.factorstream);
    for (const line of [...d.logs, replayed.stderr]) expect(line).not.toContain(s.users.factorstream);
  }, 300_000);

  it('a wrong password and an unknown CA stop serve at once with a non-zero exit that says which', async () => {
    const wrong = join(dir, 'wrong-password');
    writeFileSync(wrong, 'not-the-password\n');
    const denied = await runCli(['serve', '--config', secureConfig(`wrong-${Date.now()}`, { saslPasswordFile: wrong })]);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/factorstream serve: Kafka: authentication failed: .* refused the credentials of user factorstream with scram-sha-512/);
    expect(denied.stderr).not.toContain('not-the-password');
    expect(denied.seconds).toBeLessThan(30);
    const untrusted = await runCli(['serve', '--config', secureConfig(`ca-${Date.now()}`, { tlsCaFile: s.otherCaFile })]);
    expect(untrusted.code).toBe(1);
    // OpenSSL words it by version (Node 20: unable to verify the first certificate; others: … local issuer certificate).
    expect(untrusted.stderr).toMatch(/factorstream serve: Kafka: TLS handshake failed with .*: Connection error: .*certificate.*; check kafka\.tlsCaFile/);
    expect(untrusted.seconds).toBeLessThan(45);
    const noPassword = await runCli(['serve', '--config', secureConfig(`none-${Date.now()}`, { saslPasswordFile: '' })]);
    expect(noPassword.code).toBe(1);
    expect(noPassword.stderr).toMatch(/needs the password from exactly one of kafka\.saslPasswordFile .* or kafka\.saslPasswordEnv/);
  }, 180_000);

  it('doctor: PLAIN with the password from an environment variable, mutual TLS with and without a client certificate, a user without ACLs', async () => {
    const kafkaCheck = (out: string): { ok: boolean; detail: string } => (JSON.parse(out) as { checks: { area: string; ok: boolean; detail: string }[] }).checks.find((c) => c.area === 'kafka') as { ok: boolean; detail: string };
    const env = (extra: Record<string, string>): NodeJS.ProcessEnv => ({ FACTORSTREAM_KAFKA_BROKERS: JSON.stringify([s.saslBrokers]), FACTORSTREAM_KAFKA_TLS_CA_FILE: s.caFile, ...extra });
    const plain = await runCli(['doctor', '--json'], env({ FACTORSTREAM_KAFKA_SASL_MECHANISM: 'plain', FACTORSTREAM_KAFKA_SASL_USERNAME: 'factorstream', FACTORSTREAM_KAFKA_SASL_PASSWORD_ENV: 'FS_KAFKA_PASSWORD', FS_KAFKA_PASSWORD: s.users.factorstream }));
    expect(kafkaCheck(plain.stdout), plain.stderr).toMatchObject({ ok: true, detail: expect.stringMatching(/^cluster \S+, 1 broker\(s\)/) as unknown });
    const mtls = { FACTORSTREAM_KAFKA_BROKERS: JSON.stringify([s.mtlsBrokers]), FACTORSTREAM_KAFKA_TLS_CA_FILE: s.caFile };
    const withCert = await runCli(['doctor', '--json'], { ...mtls, FACTORSTREAM_KAFKA_TLS_CERT_FILE: s.clientCertFile, FACTORSTREAM_KAFKA_TLS_KEY_FILE: s.clientKeyFile });
    expect(kafkaCheck(withCert.stdout).ok, withCert.stdout).toBe(true);
    const withoutCert = await runCli(['doctor', '--json'], mtls);
    expect(withoutCert.code).toBe(1);
    expect(kafkaCheck(withoutCert.stdout).detail).toMatch(/^TLS handshake failed with /);
    const reader = await runCli(['doctor', '--json'], env({ FACTORSTREAM_KAFKA_SASL_MECHANISM: 'scram-sha-256', FACTORSTREAM_KAFKA_SASL_USERNAME: 'reader', FACTORSTREAM_KAFKA_SASL_PASSWORD_ENV: 'FS_KAFKA_PASSWORD', FS_KAFKA_PASSWORD: s.users.reader }));
    expect(reader.code).toBe(1);
    expect(kafkaCheck(reader.stdout).detail).toMatch(/^not authorised: user reader may not describe md\.ticks/);
  }, 120_000);
});
