/**
 * Before the tests: builds dist/ once, so that end-to-end tests run the CLI exactly as a
 * user does (node dist/cli.js) and never a stale build; and, unless KAFKA_BROKERS names
 * a broker already, starts a real single-node Kafka (scripts/kafka-local.mjs) for the
 * integration tests. Without Java the Kafka tests skip with a loud message, except under
 * CI=true, where a missing broker fails the run; the same for kcat, the independent
 * Kafka client some of them produce with.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import type { TestProject } from 'vitest/node';
import { KAFKA_VERSION, missingTools, startKafka, type LocalKafka } from '../scripts/kafka-local.mjs';

/** The secured listeners need certificates made on the spot. */
const haveOpenssl = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string;
    kafkaSkipReason: string;
    /** Why the tests with an independent Kafka client (Debian's kcat) cannot run, or ''. */
    kcatSkipReason: string;
    /** The local broker's TLS and SASL listeners and files (JSON of SecureKafka), or '' (an external broker, or no openssl). */
    kafkaSecure: string;
  }
}

let kafka: LocalKafka | undefined;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
  let brokers = process.env.KAFKA_BROKERS ?? '';
  let skip = '';
  if (brokers === '') {
    const missing = missingTools();
    if (missing !== undefined) {
      skip = `no local Kafka broker: missing ${missing}`;
      if (process.env.CI === 'true') throw new Error(`${skip}; CI=true requires the Kafka tests to run`);
      process.stderr.write(`\n${'!'.repeat(78)}\n!! KAFKA TESTS SKIPPED: ${skip}.\n!! Install Java 17+ and Maven, or set KAFKA_BROKERS=host:port.\n${'!'.repeat(78)}\n\n`);
    } else {
      const t0 = Date.now();
      if (!haveOpenssl) {
        if (process.env.CI === 'true') throw new Error('openssl is missing; CI=true requires the TLS and SASL tests to run');
        process.stderr.write('\n!! KAFKA TLS AND SASL TESTS SKIPPED: openssl is not installed (apt-get install openssl).\n\n');
      }
      kafka = await startKafka({ secure: haveOpenssl });
      brokers = kafka.brokers;
      process.stderr.write(`[global-setup] Apache Kafka ${KAFKA_VERSION} (KRaft) at ${brokers}, started in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    }
  }
  project.provide('kafkaBrokers', brokers);
  project.provide('kafkaSkipReason', skip);
  project.provide('kafkaSecure', kafka?.secure === undefined ? '' : JSON.stringify(kafka.secure));
  // The Kafka contract is also checked with a client this project did not write: librdkafka's kcat.
  let kcatSkip = '';
  if (spawnSync('kcat', ['-V'], { stdio: 'ignore' }).status !== 0) {
    kcatSkip = 'kcat (Debian package kcat) is not installed';
    if (process.env.CI === 'true' && skip === '') throw new Error(`${kcatSkip}; CI=true requires the tests with an independent Kafka client to run`);
    process.stderr.write(`\n!! TESTS WITH kcat SKIPPED: ${kcatSkip} (apt-get install kcat).\n\n`);
  }
  project.provide('kcatSkipReason', kcatSkip);
  return async () => {
    await kafka?.stop();
  };
}
