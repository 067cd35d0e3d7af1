/**
 * Helpers for tests against the real broker the global setup started: a daemon process
 * (node dist/cli.js serve) with its own topics, group and checkpoint folder, a
 * read_committed subscriber, and replay through the CLI.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as A from 'apache-arrow';
import { Kafka, logLevel, type Consumer, type KafkaMessage } from 'kafkajs';
import { inject } from 'vitest';
import { cli } from '../helpers.js';

export const brokers = inject('kafkaBrokers');
export const kafkaSkipReason = inject('kafkaSkipReason');
export { cli };
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

/**
 * The daemon's log for a failure message: one short line per record (seconds since the
 * first, level, message, the other fields cut to `width`), the last `n` records that match
 * `keep` — by default all but the per-close "scores published" lines.
 */
export function logDigest(d: DaemonProcess, n = 40, keep: (line: string) => boolean = (l) => !l.includes('scores published'), width = 240): string {
  let first: number | undefined;
  const lines = d.logs.map((line) => {
    try {
      const { time, level, msg, pid: _pid, hostname: _host, name: _name, ...rest } = JSON.parse(line) as Record<string, unknown>;
      first ??= Number(time);
      return `+${((Number(time) - first) / 1000).toFixed(1)}s ${String(level)} ${String(msg)} ${JSON.stringify(rest).slice(0, width)}`;
    } catch {
      return line.slice(0, width);
    }
  });
  return lines.filter((_, i) => keep(d.logs[i] ?? '')).slice(-n).join('\n');
}

/** `serve` on `configPath` in a child process; `wrapper` runs it under another command (e.g. strace and its options). */
export function startDaemon(configPath: string, env: Record<string, string> = {}, wrapper: string[] = []): DaemonProcess {
  const command = [...wrapper, process.execPath, CLI, 'serve', '--config', configPath];
  const proc = spawn(command[0], command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
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
    if (Date.now() > deadline || d.proc.exitCode !== null) throw new Error(`daemon never logged ${String(pattern)}:\n${logDigest(d, 30)}`);
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
  /**
   * Messages the consumer got again (same partition and offset: its group rebalanced before
   * it committed). Kept out of `messages`: a score published twice has two offsets.
   */
  redelivered = 0;
  private readonly offsets = new Set<string>();
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
        const at = `${partition}/${message.offset}`;
        if (this.offsets.has(at)) {
          this.redelivered++;
          return;
        }
        this.offsets.add(at);
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

/**
 * Runs a command without blocking this process's event loop (spawnSync would): a
 * Subscriber in this process keeps heartbeating to its group meanwhile, instead of being
 * evicted and having its uncommitted messages delivered again.
 */
export function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    p.once('error', reject);
    p.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

export function tempDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `fs-${name}-`));
}

/** Identity of a score and its values. */
export function scoreKey(v: Record<string, unknown>): string {
  return `${String(v.symbol)}|${String(v.barEnd)}|${String(v.freq)}|${String(v.modelVersion)}`;
}

export const kcatSkipReason = inject('kcatSkipReason');

/** Why the test that traces the daemon's file-system calls with strace cannot run here ('' when it can); CI must run it. */
export const straceSkipReason = ((): string => {
  if (kafkaSkipReason !== '') return kafkaSkipReason;
  const probe = spawnSync('strace', ['-qq', '-e', 'trace=none', 'true'], { encoding: 'utf8' });
  if (probe.status === 0) return '';
  const reason = probe.error !== undefined ? 'strace (Debian package strace) is not installed' : `strace cannot trace here: ${probe.stderr.trim()}`;
  if (process.env.CI === 'true') throw new Error(`${reason}; CI=true requires the test of the archive's fsyncs to run`);
  process.stderr.write(`\n!! TEST WITH strace SKIPPED: ${reason}.\n\n`);
  return reason;
})();

/** Every value of a topic as read by kcat (librdkafka, read_committed) from the beginning to its end: `%S` (the value's size), then its bytes. */
export async function kcatValues(topic: string, at: string = brokers): Promise<Buffer[]> {
  const p = spawn('kcat', ['-C', '-b', at, '-t', topic, '-o', 'beginning', '-e', '-q', '-X', 'isolation.level=read_committed', '-f', '%S\n%s'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const chunks: Buffer[] = [];
  let stderr = '';
  p.stdout.on('data', (c: Buffer) => chunks.push(c));
  p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((res) => p.once('exit', res));
  if (code !== 0) throw new Error(`kcat failed (${code}): ${stderr}`);
  const all = Buffer.concat(chunks);
  const out: Buffer[] = [];
  for (let i = 0; i < all.length; ) {
    const nl = all.indexOf(10, i);
    const size = Number(all.subarray(i, nl).toString());
    out.push(Buffer.from(all.subarray(nl + 1, nl + 1 + size)));
    i = nl + 1 + size;
  }
  return out;
}

/** Each message's key and partition as kcat (librdkafka) reads them, and the topic's partition count from its metadata. */
export async function kcatKeyPartitions(topic: string, at: string = brokers): Promise<{ partitions: number; messages: { key: string; partition: number }[] }> {
  const meta = await run('kcat', ['-L', '-b', at, '-t', topic]);
  if (meta.code !== 0) throw new Error(`kcat -L failed (${meta.code}): ${meta.stderr}`);
  const partitions = Number(/topic "[^"]+" with (\d+) partitions/.exec(meta.stdout)?.[1] ?? NaN);
  const read = await run('kcat', ['-C', '-b', at, '-t', topic, '-o', 'beginning', '-e', '-q', '-X', 'isolation.level=read_committed', '-f', '%k\t%p\n']);
  if (read.code !== 0) throw new Error(`kcat failed (${read.code}): ${read.stderr}`);
  const messages = read.stdout.split('\n').filter((l) => l !== '').map((l) => {
    const [key, partition] = l.split('\t');
    return { key, partition: Number(partition) };
  });
  return { partitions, messages };
}

/** A published score's fields that must equal the offline path's. */
export interface ScoreValues {
  score: number;
  z: number;
  rank: number;
  coverage: number;
  universe: number;
}

/**
 * The offline path on the same events, as a user runs it: `factorstream features` on the
 * input files, then `factorstream score` per model; keyed like scoreKey (symbol, barEnd,
 * freq, modelVersion), with universe the number scored at the bar end.
 */
export function offlineReference(dir: string, inputs: string[], models: string[] = ['models/demo-10m', 'models/demo-30m']): Map<string, ScoreValues> {
  const features = join(dir, 'offline-features');
  const f = cli(['features', ...inputs.flatMap((i) => ['--input', i]), '--freq', '10m', '--freq', '30m', '--out', features]);
  if (f.code !== 0) throw new Error(`features failed: ${f.stderr}`);
  const out = new Map<string, ScoreValues>();
  for (const model of models) {
    const meta = JSON.parse(readFileSync(join(model, 'meta.json'), 'utf8')) as { version: string; freq: string };
    const file = join(dir, `offline-${meta.freq}-${meta.version}.arrow`);
    const s = cli(['score', '--model', model, '--features', features, '--out', file]);
    if (s.code !== 0) throw new Error(`score failed: ${s.stderr}`);
    const rows = [...A.tableFromIPC(readFileSync(file))].map((r) => ({ symbol: String(r.symbol), barEnd: Number(r.barEnd), score: Number(r.score), z: Number(r.z), rank: Number(r.rank), coverage: Number(r.coverage) }));
    const universe = new Map<number, number>();
    for (const r of rows) universe.set(r.barEnd, (universe.get(r.barEnd) ?? 0) + 1);
    for (const r of rows) out.set(scoreKey({ symbol: r.symbol, barEnd: r.barEnd, freq: meta.freq, modelVersion: meta.version }), { score: r.score, z: r.z, rank: r.rank, coverage: r.coverage, universe: universe.get(r.barEnd) as number });
  }
  return out;
}

export interface ParityReport {
  published: number;
  offline: number;
  missing: string[];
  extra: string[];
  duplicated: string[];
  /** Largest |published - offline| over score, z, rank, coverage and universe. */
  maxDiff: number;
  worst: string;
}

/** Committed scores against the offline reference: none missing, none extra, none twice, every field within tolerance. */
export function parity(messages: readonly Collected[], reference: ReadonlyMap<string, ScoreValues>): ParityReport {
  const seen = new Map<string, number>();
  const report: ParityReport = { published: messages.length, offline: reference.size, missing: [], extra: [], duplicated: [], maxDiff: 0, worst: '' };
  for (const m of messages) {
    const k = scoreKey(m.value);
    seen.set(k, (seen.get(k) ?? 0) + 1);
    const ref = reference.get(k);
    if (ref === undefined) {
      report.extra.push(k);
      continue;
    }
    for (const field of ['score', 'z', 'rank', 'coverage', 'universe'] as const) {
      const d = Math.abs((m.value[field] as number) - ref[field]);
      if (d > report.maxDiff) {
        report.maxDiff = d;
        report.worst = `${field} of ${k}: published ${String(m.value[field])}, offline ${ref[field]}`;
      }
    }
  }
  for (const [k, n] of seen) if (n > 1) report.duplicated.push(k);
  for (const k of reference.keys()) if (!seen.has(k)) report.missing.push(k);
  return report;
}

/** Asserts parity with a readable failure: counts first, then a few identities of each kind. */
export function expectParity(report: ParityReport, what: string): void {
  const brief = { ...report, missing: report.missing.slice(0, 5), extra: report.extra.slice(0, 5), duplicated: report.duplicated.slice(0, 5), counts: { missing: report.missing.length, extra: report.extra.length, duplicated: report.duplicated.length } };
  const ok = report.missing.length === 0 && report.extra.length === 0 && report.duplicated.length === 0 && report.maxDiff <= 1e-6 && report.offline > 0;
  if (!ok) throw new Error(`${what}: the committed scores differ from features + score on the same events: ${JSON.stringify(brief)}`);
}

/** Sums a counter's samples in a Prometheus text exposition (all label sets), e.g. factorstream_events_ingested_total. */
export function counterSum(metrics: string, name: string, label = ''): number {
  let sum = 0;
  for (const line of metrics.split('\n')) if ((line.startsWith(`${name}{`) || line.startsWith(`${name} `)) && line.includes(label)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}
