/**
 * Model cost: inference over a full cross-section (N sequences of T steps, F = 14) and
 * training throughput (samples/s at batch 1,024, IC loss, Adam), for each head, on every
 * tfjs backend present here (native TensorFlow and wasm), in one process. PyTorch on the
 * same machine is the reference (bench/peers/torch_model.py, run after the tfjs part when
 * its Python exists: bench/peers/setup.sh).
 */
import { FEATURE_COUNT } from '../src/features/feature-set.js';
import { buildModel, predictAll, type ModelSpec } from '../src/model/architecture.js';
import { selectBackend, tf } from '../src/model/backend.js';
import { trainStep } from '../src/model/train.js';
import { fmt, now, percentile, TORCH_PYTHON, torchPeer, type Benchmark, type ResultRow, option } from './harness.js';

const CONFIGS: Pick<ModelSpec, 'head' | 'pooling'>[] = [
  { head: 'last', pooling: 'last-query' },
  { head: 'attention', pooling: 'last-query' },
  { head: 'residual', pooling: 'last-query' },
  { head: 'residual', pooling: 'mean' },
];


export const modelBenchmark: Benchmark = {
  name: 'model',
  description: 'GRU (H = 64) inference over N sequences and training samples/s at batch 1,024, per head and tfjs backend.',
  async run(args) {
    const N = option(args, 'n', 5000);
    const batch = option(args, 'batch', 1024);
    const steps = option(args, 'steps', 3);
    const F = FEATURE_COUNT;
    const first = await selectBackend();
    const backends = first.tfjsBackend === 'tensorflow' ? ['tensorflow', 'wasm'] : ['wasm'];
    await import('@tensorflow/tfjs-backend-wasm');
    const rows: ResultRow[] = [];
    const results = new Map<string, { infer: number; train: number }>();
    for (const backend of backends) {
      await tf.setBackend(backend);
      await tf.ready();
      for (const T of [40, 120]) {
        for (const c of CONFIGS) {
          const model = buildModel({ arch: 'gru', head: c.head, pooling: c.pooling, T, F, hidden: 64, layers: 1, dense: 32, dropout: 0.1, seed: 1 });
          const x = tf.randomNormal([N, T, F]) as tf.Tensor3D;
          const warm = predictAll(model, x);
          warm.dataSync();
          warm.dispose();
          const inferMs: number[] = [];
          for (let r = 0; r < 3; r++) {
            const t0 = now();
            const y = predictAll(model, x);
            y.dataSync();
            inferMs.push(now() - t0);
            y.dispose();
          }
          x.dispose();
          const optimizer = tf.train.adam(1e-3);
          const tx = { x: tf.randomNormal([batch, T, F]) as tf.Tensor3D, y: tf.randomNormal([batch]) as tf.Tensor1D };
          trainStep(model, optimizer, tx, 'ic');
          const t0 = now();
          for (let s = 0; s < steps; s++) trainStep(model, optimizer, tx, 'ic');
          const samplesPerSecond = (steps * batch) / ((now() - t0) / 1000);
          tf.dispose([tx.x, tx.y]);
          optimizer.dispose();
          model.dispose();
          const infer = percentile(inferMs, 50);
          results.set(`${backend} ${T} ${c.head} ${c.pooling}`, { infer, train: samplesPerSecond });
          rows.push({
            backend,
            T,
            head: c.head,
            pooling: c.pooling,
            [`inference ${fmt(N)} seq, ms`]: fmt(infer),
            'training, samples/s': fmt(samplesPerSecond),
          });
          process.stderr.write(`model: ${backend} T=${T} ${c.head}/${c.pooling}: ${fmt(infer)} ms, ${fmt(samplesPerSecond)} samples/s\n`);
        }
      }
    }
    const notes = [`Inference: median of 3 predictions of ${fmt(N)} sequences after one warm-up. Training: ${steps} Adam steps at batch ${fmt(batch)} with the IC loss after one warm-up step.`];
    if (backends.length === 2) {
      for (const T of [40, 120]) {
        const a = results.get(`tensorflow ${T} last last-query`);
        const b = results.get(`wasm ${T} last last-query`);
        if (a !== undefined && b !== undefined) notes.push(`T = ${T}, last-state head: native TensorFlow is ${(b.infer / a.infer).toFixed(1)}x faster than wasm at inference and ${(a.train / b.train).toFixed(1)}x at training.`);
      }
    } else {
      notes.push('The native backend is not installed here (npm run native), so only wasm was measured.');
    }
    const peer = torchPeer(['--n', String(N), '--batch', String(batch), '--steps', String(steps)]);
    if (peer === undefined) {
      notes.push(`The PyTorch CPU reference was not run: no Python with torch at ${TORCH_PYTHON} (bench/peers/setup.sh makes one).`);
    } else {
      notes.push(`PyTorch ${peer.torch} on the CPU (${peer.threads} threads), bench/peers/torch_model.py, same architecture and training step, run right after in this session:`);
      for (const r of peer.results) {
        const pooling = 'last-query';
        const native = results.get(`tensorflow ${r.T} ${r.head} ${pooling}`) ?? results.get(`wasm ${r.T} ${r.head} ${pooling}`);
        if (native === undefined) continue;
        const torchMs = r.inferenceSeconds * 1000;
        rows.push({ backend: `pytorch ${peer.torch}`, T: r.T, head: r.head, pooling, [`inference ${fmt(N)} seq, ms`]: fmt(torchMs), 'training, samples/s': fmt(r.trainSamplesPerSecond ?? 0) });
        notes.push(
          `T = ${r.T}, ${r.head}: tfjs ${backends[0]} inference takes ${(native.infer / torchMs).toFixed(2)}x PyTorch's time (goal ≤ 1.5x); training reaches ${(native.train / (r.trainSamplesPerSecond ?? Number.NaN)).toFixed(2)}x PyTorch's samples/s (goal ≥ 0.5x).`,
        );
      }
    }
    return { rows, notes };
  },
};
