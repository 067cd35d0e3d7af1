/**
 * Inference engines on one cross-section: N = 5,000 sequences at T = 120 (10m) and T = 40
 * (30m), GRU H = 64, F = 14, each head (last-query pooling, plus full attention with mean
 * pooling for its cost), in one process and session:
 *   tfjs   the model on the best tfjs backend here (native TensorFlow after npm run native)
 *   onnx   the same weights through factorstream's ONNX export on onnxruntime-node (CPU)
 *   PyTorch  its CPU reference (bench/peers/torch_model.py: PyTorch's own GRU), when its
 *          venv exists (bench/peers/setup.sh), and the onnx engine on PyTorch's own graph of
 *          those same weights (torch.onnx export): the same-weights comparison with PyTorch.
 *   step   the onnx engine's incremental scoring (step-graphs.ts): the prefix over the first
 *          T-1 rows (between closes) and the step on the last row (at the close), and the
 *          step's difference from the whole window's scores.
 * Each figure is the median of 3 runs after a warm-up; the engines' scores are compared too.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FEATURE_COUNT } from '../src/features/feature-set.js';
import { buildModel, type ModelSpec } from '../src/model/architecture.js';
import { selectBackend } from '../src/model/backend.js';
import { randomSequences, splitWindows } from '../src/model/onnx/compare.js';
import { buildOnnxModel, weightsOfModel } from '../src/model/onnx/export.js';
import { encodeModel } from '../src/model/onnx/proto.js';
import { checkSignature, createOnnxSession, loadOnnxRuntime, onnxRuntimeInfo, OnnxSessionPredictor } from '../src/model/onnx/session.js';
import { TfjsPredictor, type IncrementalScoring, type Predictor } from '../src/model/predictor.js';
import { buildPrefixModel, buildStepModel } from '../src/model/onnx/step-graphs.js';
import { OnnxIncremental } from '../src/model/onnx/step-session.js';
import type * as Ort from 'onnxruntime-node';
import { fmt, now, option, percentile, TORCH_PYTHON, torchPeer, type Benchmark, type ResultRow } from './harness.js';

const CONFIGS: Pick<ModelSpec, 'head' | 'pooling'>[] = [
  { head: 'last', pooling: 'last-query' },
  { head: 'attention', pooling: 'last-query' },
  { head: 'residual', pooling: 'last-query' },
  { head: 'residual', pooling: 'mean' },
];

/** Median ms of `runs` calls of `f` after one warm-up. */
async function medianMs(f: () => Promise<unknown>, runs: number): Promise<number> {
  await f();
  const ms: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = now();
    await f();
    ms.push(now() - t0);
  }
  return percentile(ms, 50);
}

/** Incremental scoring on the onnx engine: the prefix over the first T-1 rows and the step on the last, timed; the step's scores. */
async function stepped(steps: IncrementalScoring, x: Float32Array, n: number, T: number, runs: number): Promise<{ prefixMs: number; stepMs: number; out: Float32Array }> {
  const { prefix: prefixRows, last } = splitWindows(x, n, T);
  const prefixMs = await medianMs(async () => (await steps.prefix(prefixRows, n)).dispose(), runs);
  const state = await steps.prefix(prefixRows, n);
  const out = new Float32Array(n);
  const stepMs = await medianMs(() => steps.step(state, last, out), runs);
  state.dispose();
  return { prefixMs, stepMs, out };
}

/** Median ms of `runs` predictions after one warm-up; the scores of the last. */
async function timed(p: Predictor, x: Float32Array, n: number, runs: number): Promise<{ ms: number; out: Float32Array }> {
  const out = new Float32Array(n);
  return { ms: await medianMs(() => p.predict(x, n, out), runs), out };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export const inferenceBenchmark: Benchmark = {
  name: 'inference',
  description: 'Scoring engines at N = 5,000: onnx (onnxruntime-node) vs tfjs (same weights) vs the PyTorch CPU reference (and onnx on PyTorch\'s own graph).',
  async run(args) {
    const N = option(args, 'n', 5000);
    const runs = option(args, 'runs', 3);
    const threads = option(args, 'threads', 0);
    const F = FEATURE_COUNT;
    const backend = await selectBackend();
    const ort = await loadOnnxRuntime();
    const rows: ResultRow[] = [];
    const notes: string[] = [];
    const ours = new Map<string, { tfjs: number; onnx: number }>();
    for (const T of [120, 40]) {
      const x = randomSequences(N, T, T);
      for (const c of CONFIGS) {
        const spec: ModelSpec = { arch: 'gru', head: c.head, pooling: c.pooling, T, F, hidden: 64, layers: 1, dense: 32, dropout: 0.1, seed: 1 };
        const model = buildModel(spec);
        const weights = weightsOfModel(model);
        const graph = async (build: typeof buildOnnxModel): Promise<Ort.InferenceSession> => (await createOnnxSession(encodeModel(build(spec, weights, 'bench')), { threads, provider: 'cpu', spinWait: false })).session;
        const steps = new OnnxIncremental(ort, await graph(buildPrefixModel), await graph(buildStepModel), spec);
        const onnx = new OnnxSessionPredictor(ort, await graph(buildOnnxModel), 'features', 'score', T, 2, 'cpu', steps);
        const tfjs = new TfjsPredictor(model, T);
        const a = await timed(onnx, x, N, runs);
        const b = await timed(tfjs, x, N, runs);
        const inc = await stepped(steps, x, N, T, runs);
        await onnx.dispose();
        await tfjs.dispose();
        ours.set(`${T} ${c.head} ${c.pooling}`, { tfjs: b.ms, onnx: a.ms });
        rows.push({ T, head: `${c.head} / ${c.pooling}`, [`tfjs ${backend.name}, ms`]: fmt(b.ms), 'onnx, ms': fmt(a.ms), 'onnx / tfjs': (a.ms / b.ms).toFixed(2), 'max abs(onnx − tfjs)': maxAbsDiff(a.out, b.out).toExponential(1), 'onnx prefix (between closes), ms': fmt(inc.prefixMs), 'onnx step (at the close), ms': fmt(inc.stepMs), 'step / whole': (inc.stepMs / a.ms).toFixed(3), 'max abs(step − whole)': maxAbsDiff(inc.out, a.out).toExponential(1), 'PyTorch, ms': '', 'onnx on PyTorch graph, ms': '', 'onnx / PyTorch': '' });
        process.stderr.write(`inference: T=${T} ${c.head}/${c.pooling}: tfjs ${fmt(b.ms)} ms, onnx ${fmt(a.ms)} ms, onnx step ${fmt(inc.stepMs)} ms (prefix ${fmt(inc.prefixMs)} ms)\n`);
      }
    }
    const info = await onnxRuntimeInfo();
    notes.push(`onnxruntime-node ${info.version}, CPU provider, intra-op threads ${threads === 0 ? "onnxruntime's default" : threads}; tfjs ${backend.tfjsVersion} on ${backend.name}${backend.tensorflowVersion === undefined ? '' : ` (TensorFlow ${backend.tensorflowVersion})`}. Median of ${runs} runs after a warm-up, ${fmt(N)} sequences of standard normal features.`);
    const graphs = mkdtempSync(join(tmpdir(), 'bench-torch-onnx-'));
    try {
      const peer = torchPeer(['--n', String(N), '--steps', String(runs), '--inference-only', '--export-dir', graphs]);
      if (peer === undefined) {
        notes.push(`The PyTorch CPU reference was not run: no Python with torch at ${TORCH_PYTHON} (bench/peers/setup.sh makes one).`);
        return { rows, notes };
      }
      for (const r of peer.results) {
        const x = randomSequences(N, r.T, r.T);
        const session = await createOnnxSession(join(graphs, `torch-T${r.T}-${r.head}.onnx`), { threads, provider: 'cpu', spinWait: false });
        const rank = checkSignature(session.session, 'features', 'score', r.T, 'PyTorch graph');
        const onnx = await timed(new OnnxSessionPredictor(ort, session.session, 'features', 'score', r.T, rank, 'cpu'), x, N, runs);
        await session.session.release();
        const torchMs = r.inferenceSeconds * 1000;
        const row = rows.find((w) => w.T === r.T && w.head === `${r.head} / last-query`);
        if (row === undefined) continue;
        Object.assign(row, { 'PyTorch, ms': fmt(torchMs), 'onnx on PyTorch graph, ms': fmt(onnx.ms), 'onnx / PyTorch': (onnx.ms / torchMs).toFixed(2) });
        const own = ours.get(`${r.T} ${r.head} last-query`);
        notes.push(
          `T = ${r.T}, ${r.head}: onnx takes ${(onnx.ms / torchMs).toFixed(2)}x PyTorch's time on PyTorch's own graph and weights (goal ≤ 1.00x)${own === undefined ? '' : `; factorstream's export of the tfjs model takes ${(own.onnx / torchMs).toFixed(2)}x PyTorch's time and ${(own.onnx / own.tfjs).toFixed(2)}x tfjs's`}.`,
        );
      }
      notes.push(`PyTorch ${peer.torch} on the CPU, ${peer.threads} threads, run right after in this session; its GRU applies the reset gate after the recurrent product (ONNX linear_before_reset = 1), tfjs's before it, so the same-weights comparison with PyTorch is onnx on PyTorch's exported graph.`);
    } finally {
      rmSync(graphs, { recursive: true, force: true });
    }
    return { rows, notes };
  },
};
