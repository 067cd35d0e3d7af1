/**
 * Helpers for tests against the real broker the global setup started: a daemon process
 * (node dist/cli.js serve) with its own topics, group and checkpoint folder, a
 * read_committed subscriber, and replay through the CLI.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel, type Consumer, type KafkaMessage } from 'kafkajs';
import { inject } from 'vitest';

export const brokers = inject('kafkaBrokers');
export const kafkaSkipReason = inject('kafkaSkipReason');
export { cli } from '../helpers.js';
export const CLI = 'dist/cli.js';

export interface Topics {
  ticks: string;
  bars: string;
  scores: string;
  scoresBatch: string;
  deadLetter: string;
}

export function topicsFor(prefix: string): Topics {
  return { ticks: `${prefix}.ticks`, bars: `${prefix}.bars`, scores: `${prefix}.scores`, scoresBatch: `${prefix}.scores.batch`, deadLetter: `${prefix}.deadletter` };
}

/** A config file for one daemon identity (group, transactional id, checkpoint folder). */
export function daemonConfig(dir: string, id: string, inputs: Topics, outputs: Topics, extra: Record<string, unknown> = {}, kafkaExtra: Record<string, unknown> = {}): string {
  const path = join(dir, `${id}.json`);
  writeFileSync(
    path,
    JSON.stringify({
      kafka: {
        brokers: [brokers],
        groupId: `group-${id}`,
        transactionalId: `txn-${id}`,
        ticksTopic: inputs.ticks,
        barsTopic: inputs.bars,
        scoresTopic: outputs.scores,
        scoresBatchTopic: outputs.scoresBatch,
        deadLetterTopic: outputs.deadLetter,
        topicPartitions: 3,
        // Small fetches: many batches and commits, so that kills land between and inside them.
        maxBytesPerPartition: 65_536,
        ...kafkaExtra,
      },
      daemon: { httpPort: 0, checkpointDir: join(dir, `checkpoint-${id}`), archiveDir: join(dir, `archive-${id}`), commitIntervalMs: 200, ...extra },
      log: { level: 'info' },
    }),
  );
  return path;
}

export interface DaemonProcess {
  proc: ChildProcess;
  logs: string[];
  port: Promise<number>;
  exited: Promise<number | null>;
}

export function startDaemon(configPath: string): DaemonProcess {
  const proc = spawn(process.execPath, [CLI, 'serve', '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: string[] = [];
  let buffered = '';
  let resolvePort: (p: number) => void = () => undefined;
  const port = new Promise<number>((r) => (resolvePort = r));
  proc.stderr?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      logs.push(line);
      const m = /"port":(\d+).*http listening/.exec(line);
      if (m !== null) resolvePort(Number(m[1]));
    }
  });
  proc.stdout?.on('data', (chunk: Buffer) => logs.push(chunk.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return { proc, logs, port, exited };
}

/** Resolves when the daemon logs a line matching `pattern` (or fails after timeoutMs). */
export async function waitForLog(d: DaemonProcess, pattern: RegExp, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = d.logs.find((l) => pattern.test(l));
    if (line !== undefined) return line;
    if (Date.now() > deadline || d.proc.exitCode !== null) throw new Error(`daemon never logged ${String(pattern)}:\n${d.logs.slice(-20).join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface Collected {
  value: Record<string, unknown>;
  headers: Record<string, string>;
  key: string | null;
  partition: number;
  offset: string;
}

function decodeHeaders(m: KafkaMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m.headers ?? {})) if (v !== undefined) out[k] = (Array.isArray(v) ? v[0] : v)?.toString() ?? '';
  return out;
}

/** A read_committed consumer of `topic` from the beginning; `raw` keeps values as bytes (Arrow). */
export class Subscriber {
  readonly messages: Collected[] = [];
  readonly raw: Buffer[] = [];
  private consumer: Consumer | undefined;

  async start(topic: string): Promise<this> {
    const kafka = new Kafka({ clientId: 'test-subscriber', brokers: [brokers], logLevel: logLevel.NOTHING });
    // Subscribing before the daemon created its output topics: create them (as it would).
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
    await admin.disconnect();
    this.consumer = kafka.consumer({ groupId: `sub-${topic}-${Date.now()}-${Math.random()}`, readUncommitted: false });
    await this.consumer.connect();
    await this.consumer.subscribe({ topic, fromBeginning: true });
    await this.consumer.run({
      eachMessage: async ({ message, partition }) => {
        const headers = decodeHeaders(message);
        const value = message.value ?? Buffer.alloc(0);
        this.raw.push(Buffer.from(new Uint8Array(value))); // a copy at offset 0: Arrow views it in place
        let parsed: Record<string, unknown> = {};
        if ((headers['content-type'] ?? '').startsWith('application/json')) {
          try {
            parsed = JSON.parse(value.toString()) as Record<string, unknown>;
          } catch {
            parsed = {}; // a dead letter keeps the malformed original
          }
        }
        this.messages.push({ value: parsed, headers, key: message.key?.toString() ?? null, partition, offset: message.offset });
      },
    });
    return this;
  }

  async until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (${this.messages.length} messages so far)`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
  }
}

export function tempDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `fs-${name}-`));
}

/** Identity of a score and its values. */
export function scoreKey(v: Record<string, unknown>): string {
  return `${String(v.symbol)}|${String(v.barEnd)}|${String(v.freq)}|${String(v.modelVersion)}`;
}
