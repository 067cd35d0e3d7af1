/**
 * Benchmark runner: `npm run bench -- <name> [args]` (names: ingest, bar-close, model, inference, onnx-spin, daemon, kafka-clients, score-transaction, portfolio, or all).
 * Prints the result table and records it in bench/RESULTS.md (section between
 * `<!-- bench:NAME -->` markers), with the command, date and machine.
 */
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { machine, table, type Benchmark } from './harness.js';
import { ingestBenchmark } from './ingest.bench.js';
import { barCloseBenchmark } from './bar-close.bench.js';
import { modelBenchmark } from './model.bench.js';
import { daemonBenchmark } from './daemon.bench.js';
import { inferenceBenchmark } from './inference.bench.js';
import { portfolioBenchmark } from './portfolio.bench.js';
import { kafkaClientsBenchmark } from './kafka-clients.bench.js';
import { scoreTransactionBenchmark } from './score-transaction.bench.js';
import { onnxSpinBenchmark } from './onnx-spin.bench.js';

const BENCHMARKS: Benchmark[] = [ingestBenchmark, barCloseBenchmark, modelBenchmark, inferenceBenchmark, onnxSpinBenchmark, daemonBenchmark, kafkaClientsBenchmark, scoreTransactionBenchmark, portfolioBenchmark];
const RESULTS = fileURLToPath(new URL('./RESULTS.md', import.meta.url));

function record(name: string, section: string): void {
  const begin = `<!-- bench:${name} -->`;
  const end = `<!-- /bench:${name} -->`;
  let text = existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : '# Benchmark results\n';
  const block = `${begin}\n${section}\n${end}`;
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  text = i >= 0 && j > i ? text.slice(0, i) + block + text.slice(j + end.length) : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(RESULTS, text);
}

async function main(): Promise<void> {
  const [name = 'all', ...args] = process.argv.slice(2);
  const selected = name === 'all' ? BENCHMARKS : BENCHMARKS.filter((b) => b.name === name);
  if (selected.length === 0) {
    process.stderr.write(`unknown benchmark "${name}"; known: ${BENCHMARKS.map((b) => b.name).join(', ')}, all\n`);
    process.exitCode = 2;
    return;
  }
  for (const b of selected) {
    process.stderr.write(`bench ${b.name}: ${b.description}\n`);
    const result = await b.run(args);
    const md = table(result.rows);
    process.stdout.write(`${md}\n${result.notes.map((n) => `- ${n}`).join('\n')}\n\n`);
    const command = `npm run bench -- ${[b.name, ...args].join(' ')}`;
    const when = new Date().toISOString().slice(0, 16).replace('T', ' ');
    record(
      b.name,
      `## ${b.name}\n\n${b.description}\n\nCommand: \`${command}\` · ${when} UTC · ${machine()}\n\n${md}\n\n${result.notes.map((n) => `- ${n}`).join('\n')}`,
    );
  }
}

await main();
