/**
 * A real single-node Apache Kafka (KRaft: broker and controller in one JVM) for tests and
 * local runs, built from Maven Central jars, since the Apache download host is not
 * reachable from every machine that runs this project.
 *
 *   scripts/kafka-local start [--port N] [--secure]
 *                                          start in the foreground; prints KAFKA_BROKERS=...
 *                                          --secure adds a SASL_SSL listener (SCRAM-SHA-512,
 *                                          SCRAM-SHA-256, PLAIN) and an SSL listener that
 *                                          requires a client certificate, with a CA and
 *                                          certificates made on the spot (openssl), SCRAM
 *                                          users created when the storage is formatted, and
 *                                          ACLs enforced; prints where the files are.
 *                                          SIGHUP restarts the broker on the same data
 *                                          folder and ports (a broker restart, for trying
 *                                          what clients do meanwhile); Ctrl-C stops it
 *   scripts/kafka-local jars               fetch the jars only (cached)
 *   scripts/kafka-local version            the Kafka version used
 *
 * The vitest global setup imports startKafka() from here when KAFKA_BROKERS is unset.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The broker version kafkajs 2.2.4 is tested against in this repository. */
export const KAFKA_VERSION = '4.1.1';
const LOG4J_BINDING = '2.24.3';

const CACHE = process.env.FACTORSTREAM_CACHE ?? join(homedir(), '.cache', 'factorstream');
const JARS = join(CACHE, `kafka-${KAFKA_VERSION}`, 'libs');

function say(line) {
  process.stderr.write(`[kafka-local] ${line}\n`);
}

/** What is missing for a local broker, or undefined when Java and Maven are both present. */
export function missingTools() {
  const missing = [];
  if (spawnSync('java', ['-version'], { stdio: 'ignore' }).status !== 0) missing.push('java (a JRE 17 or newer)');
  if (!haveJars() && spawnSync('mvn', ['-v'], { stdio: 'ignore' }).status !== 0) missing.push('mvn (Maven, to fetch the Kafka jars once)');
  return missing.length === 0 ? undefined : missing.join(' and ');
}

function haveJars() {
  return existsSync(JARS) && readdirSync(JARS).some((f) => f.startsWith('kafka_2.13-'));
}

/** Fetches the broker's runtime jars into the cache (once; later calls return at once). */
export function fetchJars() {
  if (haveJars()) return JARS;
  const work = mkdtempSync(join(tmpdir(), 'kafka-pom-'));
  // Kafka 4 brings slf4j-api and log4j2 but no binding: without it the broker logs nothing.
  writeFileSync(
    join(work, 'pom.xml'),
    `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>factorstream</groupId><artifactId>kafka-local</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>${KAFKA_VERSION}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>${LOG4J_BINDING}</version></dependency>
  </dependencies>
</project>
`,
  );
  say(`fetching Apache Kafka ${KAFKA_VERSION} jars from Maven Central into ${JARS}`);
  mkdirSync(JARS, { recursive: true });
  execFileSync('mvn', ['-q', '-B', 'dependency:copy-dependencies', `-DoutputDirectory=${JARS}`, '-DincludeScope=runtime'], {
    cwd: work,
    stdio: ['ignore', 2, 2],
  });
  rmSync(work, { recursive: true, force: true });
  return JARS;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function accepts(port) {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** The users of a secure broker: `factorstream` may do anything (a super user), `reader` nothing (no ACL). */
export const SECURE_USERS = { factorstream: 'factorstream-secret', reader: 'reader-secret' };
/** The mutual-TLS client's certificate subject, and so its principal (a super user). */
const CLIENT_CN = 'factorstream-client';

function openssl(args, cwd) {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA, and certificates it signs (the broker's for 127.0.0.1 and localhost, a client's), in `dir`; and an unrelated CA. */
function makeCertificates(dir) {
  mkdirSync(dir, { recursive: true });
  const ca = (name, cn) => openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '30', '-subj', `/CN=${cn}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  ca('ca', 'factorstream-test-ca');
  ca('other-ca', 'an-unrelated-ca');
  const signed = (name, cn, ext) => {
    writeFileSync(join(dir, `${name}.ext`), `${ext}\n`);
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '30', '-extfile', `${name}.ext`], dir);
  };
  signed('broker', 'localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth');
  signed('client', CLIENT_CN, 'extendedKeyUsage=clientAuth');
  // Kafka's PEM key store: the (PKCS#8, unencrypted) key, then the certificate.
  writeFileSync(join(dir, 'broker-keystore.pem'), readFileSync(join(dir, 'broker.key'), 'utf8') + readFileSync(join(dir, 'broker.pem'), 'utf8'));
  return { caFile: join(dir, 'ca.pem'), otherCaFile: join(dir, 'other-ca.pem'), clientCertFile: join(dir, 'client.pem'), clientKeyFile: join(dir, 'client.key'), keystore: join(dir, 'broker-keystore.pem') };
}

/**
 * Starts a broker on free loopback ports in a fresh temporary directory and resolves once
 * it logs that it started. `stop()` sends SIGTERM and waits for the JVM to exit.
 */
export async function startKafka({ port, quiet = true, timeoutMs = 60_000, secure = false } = {}) {
  const jars = fetchJars();
  const dir = mkdtempSync(join(tmpdir(), 'kafka-local-'));
  const brokerPort = port ?? (await freePort());
  const controllerPort = await freePort();
  const saslPort = secure ? await freePort() : 0;
  const mtlsPort = secure ? await freePort() : 0;
  const certs = secure ? makeCertificates(join(dir, 'tls')) : undefined;
  const listeners = [`PLAINTEXT://127.0.0.1:${brokerPort}`, `CONTROLLER://127.0.0.1:${controllerPort}`, ...(secure ? [`SASL_SSL://127.0.0.1:${saslPort}`, `SSL://127.0.0.1:${mtlsPort}`] : [])].join(',');
  const secureProps = secure
    ? [
        'ssl.keystore.type=PEM',
        `ssl.keystore.location=${certs.keystore}`,
        'ssl.truststore.type=PEM',
        `ssl.truststore.location=${certs.caFile}`,
        'listener.name.ssl.ssl.client.auth=required',
        'sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN',
        'listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
        'listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
        `listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required ${Object.entries(SECURE_USERS).map(([u, p]) => `user_${u}="${p}"`).join(' ')};`,
        // ACLs enforced: the plaintext listener (ANONYMOUS, the tests' own clients and the controller), the factorstream user and the TLS client are super users; reader has no ACL.
        'authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer',
        `super.users=User:ANONYMOUS;User:factorstream;User:CN=${CLIENT_CN}`,
      ]
    : [];
  const props = join(dir, 'server.properties');
  const log4j = join(dir, 'log4j2.properties');
  writeFileSync(
    props,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.bootstrap.servers=127.0.0.1:${controllerPort}`,
      `listeners=${listeners}`,
      `advertised.listeners=${listeners}`,
      'inter.broker.listener.name=PLAINTEXT',
      'controller.listener.names=CONTROLLER',
      'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL',
      ...secureProps,
      `log.dirs=${join(dir, 'data')}`,
      'num.partitions=4',
      'offsets.topic.replication.factor=1',
      'offsets.topic.num.partitions=4',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'transaction.state.log.num.partitions=4',
      'share.coordinator.state.topic.replication.factor=1',
      'share.coordinator.state.topic.min.isr=1',
      'group.initial.rebalance.delay.ms=0',
      'auto.create.topics.enable=true',
      // Oversized-message tests send just over this; the daemon's own limit is lower.
      'message.max.bytes=4194304',
      '',
    ].join('\n'),
  );
  writeFileSync(
    log4j,
    [
      'status = warn',
      'appender.out.type = Console',
      'appender.out.name = out',
      'appender.out.layout.type = PatternLayout',
      'appender.out.layout.pattern = [%d] %p %m (%c)%n',
      'rootLogger.level = warn',
      'rootLogger.appenderRef.out.ref = out',
      'logger.server.name = kafka.server.KafkaRaftServer',
      'logger.server.level = info',
      '',
    ].join('\n'),
  );
  const cp = `${jars}/*`;
  const clusterId = execFileSync('java', ['-cp', cp, 'kafka.tools.StorageTool', 'random-uuid']).toString().trim();
  // SCRAM users are part of the formatted storage (KRaft keeps them in the metadata log).
  const scram = secure ? Object.entries(SECURE_USERS).flatMap(([u, p]) => ['SCRAM-SHA-512', 'SCRAM-SHA-256'].flatMap((m) => ['--add-scram', `${m}=[name=${u},password=${p}]`])) : [];
  execFileSync('java', ['-cp', cp, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', props, '--standalone', ...scram], { stdio: 'ignore' });
  let jvm;
  let exited;
  /** Starts the JVM on the formatted data folder and waits until it serves. */
  const launch = async () => {
    jvm = spawn('java', ['-Xmx768m', '-XX:+UseSerialGC', `-Dlog4j2.configurationFile=${log4j}`, '-cp', cp, 'kafka.Kafka', props], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const keep = (chunk) => {
      output = (output + chunk.toString()).slice(-20_000);
      if (!quiet) process.stderr.write(chunk);
    };
    jvm.stdout.on('data', keep);
    jvm.stderr.on('data', keep);
    const self = jvm;
    exited = new Promise((resolve) => self.once('exit', resolve));
    const deadline = Date.now() + timeoutMs;
    while (!/Kafka Server started/.test(output) || !(await accepts(brokerPort))) {
      if (self.exitCode !== null || Date.now() > deadline) {
        self.kill('SIGKILL');
        throw new Error(`Kafka did not start (exit ${self.exitCode}):\n${output.slice(-4000)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  /** Stops the JVM (SIGTERM, or SIGKILL: a crash), keeping its data. */
  const halt = async (signal = 'SIGTERM') => {
    if (jvm.exitCode === null && jvm.signalCode === null) {
      jvm.kill(signal);
      const timer = setTimeout(() => jvm.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    }
  };
  try {
    await launch();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const brokers = `127.0.0.1:${brokerPort}`;
  return {
    brokers,
    version: KAFKA_VERSION,
    dir,
    /** With `secure`: the SASL_SSL listener, the mutual-TLS listener, the PEM files and the users. */
    secure: secure ? { saslBrokers: `127.0.0.1:${saslPort}`, mtlsBrokers: `127.0.0.1:${mtlsPort}`, caFile: certs.caFile, otherCaFile: certs.otherCaFile, clientCertFile: certs.clientCertFile, clientKeyFile: certs.clientKeyFile, users: SECURE_USERS } : undefined,
    /** A broker restart: stopped (SIGTERM, or SIGKILL for a crash), then started again on the same data folder and ports. */
    halt,
    resume: launch,
    async stop() {
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function main(argv) {
  const [command = 'start', ...rest] = argv;
  if (command === 'version') {
    process.stdout.write(`${KAFKA_VERSION}\n`);
    return;
  }
  const missing = missingTools();
  if (missing !== undefined) {
    say(`cannot run a local broker: missing ${missing}`);
    process.exit(2);
  }
  if (command === 'jars') {
    process.stdout.write(`${fetchJars()}\n`);
    return;
  }
  if (command !== 'start') {
    say(`unknown command ${command}; use start [--port N], jars or version`);
    process.exit(2);
  }
  const at = rest.indexOf('--port');
  const port = at >= 0 ? Number(rest[at + 1]) : undefined;
  const secure = rest.includes('--secure');
  const t0 = Date.now();
  const kafka = await startKafka({ port, quiet: false, secure });
  say(`Apache Kafka ${KAFKA_VERSION} (KRaft) ready in ${((Date.now() - t0) / 1000).toFixed(1)} s, data in ${kafka.dir}; Ctrl-C stops it`);
  process.stdout.write(`KAFKA_BROKERS=${kafka.brokers}\n`);
  if (kafka.secure !== undefined) {
    const s = kafka.secure;
    process.stdout.write(`KAFKA_SASL_SSL_BROKERS=${s.saslBrokers}\nKAFKA_MTLS_BROKERS=${s.mtlsBrokers}\nKAFKA_CA_FILE=${s.caFile}\nKAFKA_CLIENT_CERT_FILE=${s.clientCertFile}\nKAFKA_CLIENT_KEY_FILE=${s.clientKeyFile}\n`);
    say(`SCRAM-SHA-512/256 and PLAIN users: ${Object.entries(s.users).map(([u, p]) => `${u} (password ${p})`).join(', ')}; only factorstream and the TLS client are authorised`);
  }
  const stop = () => {
    say('stopping');
    void kafka.stop().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  process.on('SIGHUP', () => {
    say('SIGHUP: restarting the broker on the same data folder and ports');
    const t1 = Date.now();
    void kafka
      .halt()
      .then(() => kafka.resume())
      .then(() => say(`restarted in ${((Date.now() - t1) / 1000).toFixed(1)} s`), (err) => say(`restart failed: ${err instanceof Error ? err.message : String(err)}`));
  });
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((err) => {
    say(err instanceof Error ? err.message : String(err));
    process.exit(1);
  });
}
