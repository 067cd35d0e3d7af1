/**
 * The benchmark harness: each bench file exports a `Benchmark` whose run returns rows of
 * a results table; the runner (bench/run.ts) prints the table and writes it into
 * bench/RESULTS.md between markers named after the benchmark, with the command, date and
 * machine. Benchmarks compare as ratios against baselines run in the same process.
 */
import { cpus, totalmem } from 'node:os';

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
