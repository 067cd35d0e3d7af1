/**
 * How every Kafka client of factorstream (serve, replay, reconcile, doctor) connects: the
 * brokers, TLS (a CA file, a client certificate and key for mutual TLS, the server name
 * checked by default) and SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) from `kafka.*`. The
 * password comes from a file (a mounted Kubernetes secret) or an environment variable,
 * never from a flag or the config file, and is never logged.
 *
 * `kafkaFailure` turns what a failed connection threw into plain words for an operator:
 * a TLS handshake that failed, credentials the broker refused, an operation the user is
 * not authorised for, or a broker that cannot be reached.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type { ConsumerConfig, KafkaConfig, SASLOptions } from 'kafkajs';
import type { Config } from '../config.js';

type KafkaSection = Config['kafka'];

/** What kafkajs needs besides the client id and logging. */
export type KafkaConnection = Pick<KafkaConfig, 'brokers' | 'ssl' | 'sasl'>;

function readSecretFile(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`${what} ${path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}

/** The SASL password: the file's first line, or the environment variable's value. */
function saslPassword(k: KafkaSection, env: NodeJS.ProcessEnv): string {
  if ((k.saslPasswordFile === '') === (k.saslPasswordEnv === '')) {
    throw new Error(`kafka.saslMechanism ${k.saslMechanism} needs the password from exactly one of kafka.saslPasswordFile (a file, e.g. a mounted secret) or kafka.saslPasswordEnv (the name of an environment variable)`);
  }
  if (k.saslPasswordFile !== '') return readSecretFile(k.saslPasswordFile, 'kafka.saslPasswordFile').split(/\r?\n/)[0];
  const value = env[k.saslPasswordEnv];
  if (value === undefined || value === '') throw new Error(`kafka.saslPasswordEnv names ${k.saslPasswordEnv}, which is not set`);
  return value;
}

/** The brokers, TLS and SASL options of the configuration (throws a plain message for a missing file or password). */
export function kafkaConnection(k: KafkaSection, env: NodeJS.ProcessEnv = process.env): KafkaConnection {
  const out: KafkaConnection = { brokers: [...k.brokers] };
  const clientCert = k.tlsCertFile !== '' || k.tlsKeyFile !== '';
  if (k.tls || k.tlsCaFile !== '' || clientCert) {
    if (clientCert && (k.tlsCertFile === '' || k.tlsKeyFile === '')) throw new Error('mutual TLS needs both kafka.tlsCertFile and kafka.tlsKeyFile');
    const ssl: ConnectionOptions = { rejectUnauthorized: true };
    if (k.tlsCaFile !== '') ssl.ca = [readSecretFile(k.tlsCaFile, 'kafka.tlsCaFile')];
    if (clientCert) {
      ssl.cert = readSecretFile(k.tlsCertFile, 'kafka.tlsCertFile');
      ssl.key = readSecretFile(k.tlsKeyFile, 'kafka.tlsKeyFile');
    }
    if (k.tlsServerName !== '') ssl.servername = k.tlsServerName;
    // The certificate is still verified against the CA; only the name in it is not compared with the broker's address.
    if (!k.tlsCheckServerName) ssl.checkServerIdentity = () => undefined;
    out.ssl = ssl;
  }
  if (k.saslMechanism !== 'none') {
    if (k.saslUsername === '') throw new Error(`kafka.saslMechanism ${k.saslMechanism} needs kafka.saslUsername`);
    out.sasl = { mechanism: k.saslMechanism, username: k.saslUsername, password: saslPassword(k, env) } as SASLOptions;
  }
  return out;
}

export type KafkaFailureKind = 'tls' | 'authentication' | 'authorisation' | 'unreachable' | 'other';

const TLS_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL|EPROTO|DEPTH_ZERO/;
const TLS_TEXT = /certificate|SSL|TLS|wrong version number|handshake|Hostname\/IP does not match/i;

/** The chain of causes of an error (kafkajs wraps the socket's error, and a retry's last error). */
function causes(err: unknown): { name: string; message: string; code: string; type: string }[] {
  const out = [];
  let e = err as { name?: string; message?: string; code?: unknown; type?: unknown; cause?: unknown; originalError?: unknown } | undefined;
  for (let i = 0; e !== undefined && e !== null && i < 8; i++) {
    out.push({ name: String(e.name ?? ''), message: String(e.message ?? e), code: String(e.code ?? ''), type: String(e.type ?? '') });
    e = (e.cause ?? e.originalError) as typeof e;
  }
  return out;
}

/** What kind of failure a Kafka error is, and a line that says so in plain words. */
export function kafkaFailure(err: unknown, k: KafkaSection): { kind: KafkaFailureKind; text: string } {
  const chain = causes(err);
  const last = chain[chain.length - 1]?.message ?? String(err);
  const any = (f: (c: (typeof chain)[number]) => boolean): boolean => chain.some(f);
  const brokers = k.brokers.join(',');
  if (any((c) => c.name === 'KafkaJSSASLAuthenticationError' || /SASL .*authentication failed|Authentication failed/i.test(c.message))) {
    return { kind: 'authentication', text: `authentication failed: ${brokers} refused the credentials of user ${k.saslUsername || '(none)'} with ${k.saslMechanism} (${last}); check kafka.saslUsername, the password in ${k.saslPasswordFile || `$${k.saslPasswordEnv}`}, and that the broker has this user for this mechanism` };
  }
  if (any((c) => /AUTHORIZATION_FAILED/.test(c.type) || /not authorized|authorization failed/i.test(c.message))) {
    return { kind: 'authorisation', text: `not authorised: user ${k.saslUsername || '(the TLS client certificate)'} lacks an ACL for an operation factorstream needs (${last}); it needs Read on the input topics and its group, Write on the output topics, Describe and Write on its transactional id, and IdempotentWrite on the cluster` };
  }
  if (any((c) => TLS_CODES.test(c.code) || TLS_TEXT.test(c.message))) {
    return { kind: 'tls', text: `TLS handshake failed with ${brokers}: ${last}; check kafka.tlsCaFile (the CA that signed the broker's certificate), kafka.tlsServerName, and for mutual TLS kafka.tlsCertFile and kafka.tlsKeyFile` };
  }
  if (any((c) => /ECONNREFUSED|ENOTFOUND|ETIMEDOUT|EHOSTUNREACH|Connection timeout|KafkaJSConnection/.test(`${c.code} ${c.name} ${c.message}`))) {
    return { kind: 'unreachable', text: `not reachable: ${last} (brokers ${brokers})` };
  }
  return { kind: 'other', text: last };
}

/**
 * A consumer's retry settings (kafkajs's default five retries) that restart it after a
 * retriable crash only while `current()` holds. kafkajs restarts a crashed consumer on a
 * timer it sets after the crash, so a crash that comes after `disconnect()` — the brokers
 * gone, the consumer still in its retries — brought a disconnected consumer back: serve's
 * previous connection rejoined its group beside the new one and took half the partitions,
 * and no close could be scored (seen after a broker restart: "assigned only part of the
 * input partitions").
 */
export function restartOnlyWhile(current: () => boolean): NonNullable<ConsumerConfig['retry']> {
  return { retries: 5, restartOnFailure: async () => current() };
}
