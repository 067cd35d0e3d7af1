/**
 * onnxruntime's intra-op threads, once an operator's parallel work is done, spin waiting
 * for the next (its default) unless the session says otherwise (`daemon.onnxSpinWait`,
 * false by default: src/model/onnx/session.ts). What that costs and buys, at 5,000 symbols
 * and T = 120 (attention, last query), in one process, the two settings alternating:
 *   - the step at the close and the prefix between closes, each run followed by a gap as
 *     in the daemon (a step, then the close's messages and transaction; the prefix, then
 *     ingest until the next close), median ms a run;
 *   - the CPU the process used over those runs, in cores (process.cpuUsage / wall);
 *   - the work a neighbour thread got done meanwhile (a busy loop standing for the feed's
 *     decoding, the main thread and the broker, which share the cores on a small host), as
 *     a share of what it does alone.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { FEATURE_COUNT } from '../src/features/feature-set.js';
import { buildModel, type ModelSpec } from '../src/model/architecture.js';
import { selectBackend } from '../src/model/backend.js';
import { randomSequences, splitWindows } from '../src/model/onnx/compare.js';
import { weightsOfModel } from '../src/model/onnx/export.js';
import { encodeModel } from '../src/model/onnx/proto.js';
import { createOnnxSession, loadOnnxRuntime } from '../src/model/onnx/session.js';
import { buildPrefixModel, buildStepModel } from '../src/model/onnx/step-graphs.js';
import { OnnxIncremental } from '../src/model/onnx/step-session.js';
import type { WindowPrefix } from '../src/model/predictor.js';
import { fmt, now, option, percentile, type Benchmark, type ResultRow } from './harness.js';

/** A busy loop on its own thread, counting iterations into shared memory until told to stop. */
function neighbour(): { count: () => number; stop: () => Promise<void> } {
  const shared = new Float64Array(new SharedArrayBuffer(16));
  const worker = new Worker(
    `const { workerData } = require('node:worker_threads');
     const s = workerData;
     let x = 1;
     while (s[1] === 0) { for (let i = 0; i < 100000; i++) x = Math.sqrt(x + i); s[0] += 1; }`,
    { eval: true, workerData: shared },
  );
  return {
    count: () => shared[0],
    stop: async () => {
      shared[1] = 1;
      await worker.terminate();
    },
  };
}

export const onnxSpinBenchmark: Benchmark = {
  name: 'onnx-spin',
  description: "onnxruntime's idle intra-op threads spinning (its default) or sleeping (daemon.onnxSpinWait false, the default): a close's step and a prefix at 5,000 symbols, T = 120, the CPU the process uses, and the work a neighbour thread gets done meanwhile.",
  async run(args) {
    const N = option(args, 'n', 5000);
    const rounds = option(args, 'rounds', 3);
    const T = 120;
    await selectBackend(); // tfjs builds the weights the graphs are exported from
    const ort = await loadOnnxRuntime();
    const spec: ModelSpec = { arch: 'gru', head: 'attention', pooling: 'last-query', T, F: FEATURE_COUNT, hidden: 64, layers: 1, dense: 32, dropout: 0.1, seed: 1 };
    const weights = weightsOfModel(buildModel(spec));
    const { prefix: prefixRows, last } = splitWindows(randomSequences(N, T, T), N, T);
    const out = new Float32Array(N);

    // What the neighbour does alone, per second.
    const alone = neighbour();
    await sleep(200);
    const c0 = alone.count();
    const t0 = now();
    await sleep(2_000);
    const aloneRate = (alone.count() - c0) / ((now() - t0) / 1000);
    await alone.stop();

    const parts = [
      { name: 'step at the close', runs: 40, gapMs: 50, run: async (steps: OnnxIncremental, state: WindowPrefix) => steps.step(state, last, out) },
      { name: 'prefix between closes', runs: 6, gapMs: 200, run: async (steps: OnnxIncremental) => (await steps.prefix(prefixRows, N)).dispose() },
    ] as const;
    const results = new Map<string, { ms: number[]; cores: number[]; share: number[] }>();
    for (let r = 0; r < rounds; r++) {
      for (const spinWait of r % 2 === 0 ? [true, false] : [false, true]) {
        const graph = async (build: typeof buildPrefixModel) => (await createOnnxSession(encodeModel(build(spec, weights, 'bench')), { threads: 0, provider: 'cpu', spinWait })).session;
        const steps = new OnnxIncremental(ort, await graph(buildPrefixModel), await graph(buildStepModel), spec);
        const state = await steps.prefix(prefixRows, N);
        await steps.step(state, last, out); // warm-up
        for (const part of parts) {
          const run = (): Promise<unknown> => part.run(steps, state);
          await run();
          const busy = neighbour();
          await sleep(100);
          const n0 = busy.count();
          const cpu0 = process.cpuUsage();
          const w0 = now();
          const ms: number[] = [];
          for (let i = 0; i < part.runs; i++) {
            const a = now();
            await run();
            ms.push(now() - a);
            await sleep(part.gapMs);
          }
          const wall = (now() - w0) / 1000;
          const cpu = process.cpuUsage(cpu0);
          const rate = (busy.count() - n0) / wall;
          await busy.stop();
          // The neighbour's share of its work alone is the cores it used: the process's CPU less that is the sessions'.
          const share = rate / aloneRate;
          const key = `${part.name}\u0000${spinWait}`;
          const res = results.get(key) ?? { ms: [], cores: [], share: [] };
          res.ms.push(percentile(ms, 50));
          res.cores.push((cpu.user + cpu.system) / 1e6 / wall - share);
          res.share.push(share);
          results.set(key, res);
        }
        state.dispose();
        await steps.dispose();
      }
    }
    const rows: ResultRow[] = [];
    for (const part of parts) {
      const on = results.get(`${part.name}\u0000true`);
      const off = results.get(`${part.name}\u0000false`);
      if (on === undefined || off === undefined) continue;
      const range = (xs: number[], digits = 0): string => `${fmt(Math.min(...xs), digits)}–${fmt(Math.max(...xs), digits)}`;
      for (const [setting, res] of [['spin (onnxruntime default)', on], ['sleep (factorstream default)', off]] as const) {
        rows.push({ run: part.name, 'idle threads': setting, 'ms a run (median per round)': range(res.ms, 1), 'cores used by the sessions': range(res.cores, 2), "neighbour's work, share of alone": range(res.share, 2) });
      }
    }
    return {
      rows,
      notes: [
        `${rounds} rounds, the two settings alternating; each round: the step ${parts[0].runs} times with ${parts[0].gapMs} ms gaps, the prefix ${parts[1].runs} times with ${parts[1].gapMs} ms gaps, one session pair per setting (intra-op threads onnxruntime's default, one per core), ${fmt(N)} sequences of standard normal features.`,
        `The neighbour: one thread in a busy loop, ${fmt(aloneRate, 0)} units/s alone; cores used by the sessions = the process's CPU over the wall time less the neighbour's share.`,
      ],
    };
  },
};
