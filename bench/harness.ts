/**
 * The benchmark harness: each bench file exports a `Benchmark` whose run returns rows of
 * a results table; the runner (bench/run.ts) prints the table and writes it into
 * bench/RESULTS.md between markers named after the benchmark, with the command, date and
 * machine. Benchmarks compare as ratios against baselines run in the same process.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus, homedir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startKafka } from '../scripts/kafka-local.mjs';

export interface ResultRow {
  [column: string]: string | number;
}

export interface BenchmarkResult {
  /** Markdown table rows, first row's keys are the header. */
  rows: ResultRow[];
  /** Free text written under the table (what bounds the figures, targets met or not). */
  notes: string[];
}

export interface Benchmark {
  name: string;
  description: string;
  run(args: string[]): Promise<BenchmarkResult>;
}

export function machine(): string {
  const c = cpus();
  return `${c.length} cores (${c[0]?.model.trim() ?? 'unknown CPU'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, no GPU, Node ${process.version}, ${process.platform}-${process.arch}`;
}

export function now(): number {
  return performance.now();
}

/** Percentile (0..100) of a list of numbers, nearest rank. */
export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

export function fmt(x: number, digits = 0): string {
  return x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

export function table(rows: ResultRow[]): string {
  if (rows.length === 0) return '';
  const cols = Object.keys(rows[0]);
  const line = (cells: (string | number)[]): string => `| ${cells.join(' | ')} |`;
  return [line(cols), line(cols.map(() => '---')), ...rows.map((r) => line(cols.map((c) => r[c] ?? '')))].join('\n');
}

/** A numeric `--name value` argument, or the fallback. */
export function option(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}

/** The Python with torch that bench/peers/setup.sh installs (or FACTORSTREAM_TORCH_PYTHON). */
export const TORCH_PYTHON = process.env.FACTORSTREAM_TORCH_PYTHON ?? join(homedir(), '.cache', 'factorstream', 'torch-venv', 'bin', 'python');

/** What bench/peers/torch_model.py prints. */
export interface TorchPeer {
  torch: string;
  threads: number;
  results: { T: number; head: string; inferenceSeconds: number; trainSamplesPerSecond?: number }[];
}

/** Runs the PyTorch reference (bench/peers/torch_model.py) with `args`; undefined when its Python is not installed. */
export function torchPeer(args: string[]): TorchPeer | undefined {
  if (!existsSync(TORCH_PYTHON)) return undefined;
  process.stderr.write('bench: running the PyTorch peer\n');
  const out = execFileSync(TORCH_PYTHON, [fileURLToPath(new URL('./peers/torch_model.py', import.meta.url)), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return JSON.parse(out) as TorchPeer;
}

/** The broker a benchmark runs against: KAFKA_BROKERS, or a local one started for it (scripts/kafka-local). */
export async function benchBroker(): Promise<{ brokers: string; version: string; stop(): Promise<void> }> {
  const given = process.env.KAFKA_BROKERS ?? '';
  if (given !== '') return { brokers: given, version: 'at KAFKA_BROKERS', stop: async () => undefined };
  const kafka = await startKafka();
  return { brokers: kafka.brokers, version: kafka.version, stop: () => kafka.stop() };
}
