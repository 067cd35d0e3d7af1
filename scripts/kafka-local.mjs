/**
 * A real single-node Apache Kafka (KRaft: broker and controller in one JVM) for tests and
 * local runs, built from Maven Central jars, since the Apache download host is not
 * reachable from every machine that runs this project.
 *
 *   scripts/kafka-local start [--port N]   start in the foreground; prints KAFKA_BROKERS=...
 *   scripts/kafka-local jars               fetch the jars only (cached)
 *   scripts/kafka-local version            the Kafka version used
 *
 * The vitest global setup imports startKafka() from here when KAFKA_BROKERS is unset.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
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

/**
 * Starts a broker on free loopback ports in a fresh temporary directory and resolves once
 * it logs that it started. `stop()` sends SIGTERM and waits for the JVM to exit.
 */
export async function startKafka({ port, quiet = true, timeoutMs = 60_000 } = {}) {
  const jars = fetchJars();
  const dir = mkdtempSync(join(tmpdir(), 'kafka-local-'));
  const brokerPort = port ?? (await freePort());
  const controllerPort = await freePort();
  const props = join(dir, 'server.properties');
  const log4j = join(dir, 'log4j2.properties');
  writeFileSync(
    props,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.bootstrap.servers=127.0.0.1:${controllerPort}`,
      `listeners=PLAINTEXT://127.0.0.1:${brokerPort},CONTROLLER://127.0.0.1:${controllerPort}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${brokerPort},CONTROLLER://127.0.0.1:${controllerPort}`,
      'inter.broker.listener.name=PLAINTEXT',
      'controller.listener.names=CONTROLLER',
      'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
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
  execFileSync('java', ['-cp', cp, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', props, '--standalone'], { stdio: 'ignore' });
  const jvm = spawn('java', ['-Xmx768m', '-XX:+UseSerialGC', `-Dlog4j2.configurationFile=${log4j}`, '-cp', cp, 'kafka.Kafka', props], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk) => {
    output = (output + chunk.toString()).slice(-20_000);
    if (!quiet) process.stderr.write(chunk);
  };
  jvm.stdout.on('data', keep);
  jvm.stderr.on('data', keep);
  const exited = new Promise((resolve) => jvm.once('exit', resolve));
  const deadline = Date.now() + timeoutMs;
  while (!/Kafka Server started/.test(output) || !(await accepts(brokerPort))) {
    if (jvm.exitCode !== null || Date.now() > deadline) {
      jvm.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`Kafka did not start (exit ${jvm.exitCode}):\n${output.slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const brokers = `127.0.0.1:${brokerPort}`;
  return {
    brokers,
    version: KAFKA_VERSION,
    dir,
    async stop() {
      if (jvm.exitCode === null) {
        jvm.kill('SIGTERM');
        const timer = setTimeout(() => jvm.kill('SIGKILL'), 20_000);
        await exited;
        clearTimeout(timer);
      }
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
  const t0 = Date.now();
  const kafka = await startKafka({ port, quiet: false });
  say(`Apache Kafka ${KAFKA_VERSION} (KRaft) ready in ${((Date.now() - t0) / 1000).toFixed(1)} s, data in ${kafka.dir}; Ctrl-C stops it`);
  process.stdout.write(`KAFKA_BROKERS=${kafka.brokers}\n`);
  const stop = () => {
    say('stopping');
    void kafka.stop().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((err) => {
    say(err instanceof Error ? err.message : String(err));
    process.exit(1);
  });
}
