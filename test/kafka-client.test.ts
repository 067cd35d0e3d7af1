/**
 * The Kafka connection options every client builds from kafka.* (issue 17, item 1): TLS
 * from PEM files, mutual TLS, the server-name check, SASL with the password from a file or
 * an environment variable and nowhere else, and plain messages for what is missing.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { kafkaConnection, kafkaFailure } from '../src/ingest/kafka-client.js';

const dir = mkdtempSync(join(tmpdir(), 'fs-kafka-client-'));
const file = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
const kafka = (k: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) => loadConfig({ flags: { kafka: k }, env }).kafka;

describe('kafkaConnection', () => {
  it('plaintext by default: brokers only', () => {
    expect(kafkaConnection(kafka({ brokers: ['a:9092', 'b:9092'] }))).toEqual({ brokers: ['a:9092', 'b:9092'] });
  });

  it('TLS with a CA file and a client certificate; the server name checked unless turned off', () => {
    const ca = file('ca.pem', 'CA PEM');
    const cert = file('client.pem', 'CERT PEM');
    const key = file('client.key', 'KEY PEM');
    const c = kafkaConnection(kafka({ tlsCaFile: ca, tlsCertFile: cert, tlsKeyFile: key, tlsServerName: 'kafka.internal' }));
    const ssl = c.ssl as ConnectionOptions;
    expect(ssl).toMatchObject({ ca: ['CA PEM'], cert: 'CERT PEM', key: 'KEY PEM', servername: 'kafka.internal', rejectUnauthorized: true });
    expect(ssl.checkServerIdentity).toBeUndefined();
    const loose = kafkaConnection(kafka({ tls: true, tlsCheckServerName: false })).ssl as ConnectionOptions;
    expect(loose.rejectUnauthorized).toBe(true);
    expect(loose.checkServerIdentity?.('any', {} as never)).toBeUndefined();
    expect(() => kafkaConnection(kafka({ tlsCertFile: cert }))).toThrow('mutual TLS needs both kafka.tlsCertFile and kafka.tlsKeyFile');
    expect(() => kafkaConnection(kafka({ tlsCaFile: join(dir, 'nope.pem') }))).toThrow(/kafka.tlsCaFile .*nope.pem cannot be read: ENOENT/);
  });

  it('SASL: the password from a file (its first line) or a named environment variable, exactly one of them', () => {
    const pw = file('password', 's3cret\n');
    expect(kafkaConnection(kafka({ saslMechanism: 'scram-sha-512', saslUsername: 'fs', saslPasswordFile: pw })).sasl).toEqual({ mechanism: 'scram-sha-512', username: 'fs', password: 's3cret' });
    expect(kafkaConnection(kafka({ saslMechanism: 'plain', saslUsername: 'fs', saslPasswordEnv: 'PW' }), { PW: 'from-env' }).sasl).toEqual({ mechanism: 'plain', username: 'fs', password: 'from-env' });
    expect(() => kafkaConnection(kafka({ saslMechanism: 'plain', saslUsername: 'fs', saslPasswordEnv: 'PW' }), {})).toThrow('kafka.saslPasswordEnv names PW, which is not set');
    expect(() => kafkaConnection(kafka({ saslMechanism: 'plain', saslUsername: 'fs' }))).toThrow(/exactly one of kafka.saslPasswordFile/);
    expect(() => kafkaConnection(kafka({ saslMechanism: 'plain', saslUsername: 'fs', saslPasswordFile: pw, saslPasswordEnv: 'PW' }))).toThrow(/exactly one of/);
    expect(() => kafkaConnection(kafka({ saslMechanism: 'scram-sha-256', saslPasswordFile: pw }))).toThrow('kafka.saslMechanism scram-sha-256 needs kafka.saslUsername');
    // No key takes the password itself.
    expect(() => loadConfig({ flags: { kafka: { saslPassword: 'x' } } })).toThrow(/saslPassword/);
  });

  it('names the kind of a failure from the error chain kafkajs throws', () => {
    const k = kafka({ saslMechanism: 'scram-sha-512', saslUsername: 'fs', saslPasswordFile: '/run/secrets/kafka' });
    const wrapped = (inner: Error): Error => Object.assign(new Error('retries exceeded'), { name: 'KafkaJSNumberOfRetriesExceeded', cause: inner });
    expect(kafkaFailure(Object.assign(new Error('SASL SCRAM SHA512 authentication failed: invalid credentials'), { name: 'KafkaJSSASLAuthenticationError' }), k).kind).toBe('authentication');
    expect(kafkaFailure(wrapped(Object.assign(new Error('Connection error: self-signed certificate in certificate chain'), { name: 'KafkaJSConnectionError', code: 'SELF_SIGNED_CERT_IN_CHAIN' })), k).kind).toBe('tls');
    expect(kafkaFailure(Object.assign(new Error('Not authorized to access topics: [Topic authorization failed]'), { name: 'KafkaJSProtocolError', type: 'TOPIC_AUTHORIZATION_FAILED' }), k).kind).toBe('authorisation');
    expect(kafkaFailure(wrapped(Object.assign(new Error('Connection error: connect ECONNREFUSED 127.0.0.1:9092'), { name: 'KafkaJSConnectionError', code: 'ECONNREFUSED' })), k).kind).toBe('unreachable');
    expect(kafkaFailure(new Error('model folder missing'), k).kind).toBe('other');
  });
});
