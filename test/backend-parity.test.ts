/**
 * One saved model scores the same input on the native TensorFlow backend and on wasm
 * within 1e-4. Skipped, loudly, where the native addon is not installed (npm run native);
 * CI installs it.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildModel, HEADS } from '../src/model/architecture.js';
import { selectBackend, tf } from '../src/model/backend.js';

const native = await selectBackend().then((b) => b.tfjsBackend === 'tensorflow');
if (!native) {
  process.stderr.write('\n*** backend parity test SKIPPED: the native TensorFlow backend is not installed here (run `npm run native`) ***\n\n');
  if (process.env.CI === 'true') throw new Error('CI must run the backend parity test: npm run native did not install the native backend');
}

async function artifactsOf(model: tf.LayersModel): Promise<tf.io.ModelArtifacts> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (a) => ((saved = a), { modelArtifactsInfo: { dateSaved: new Date(0), modelTopologyType: 'JSON' } })));
  return saved as tf.io.ModelArtifacts;
}

async function scoreOn(backend: string, artifacts: tf.io.ModelArtifacts, x: Float32Array, shape: [number, number, number]): Promise<Float32Array> {
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} did not initialise`);
  await tf.ready();
  expect(tf.getBackend()).toBe(backend);
  const model = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
  const input = tf.tensor3d(x, shape);
  const out = (model.predict(input) as tf.Tensor).dataSync() as Float32Array;
  tf.dispose(input);
  model.dispose();
  return Float32Array.from(out);
}

describe.skipIf(!native)('the native backend on this Node', () => {
  it('runs kernels that type their inputs without a warning (tfjs-node calls util.isArray, deprecated at run time since Node 22)', () => {
    // A process of its own: Node warns once per process, and only where the call is made.
    const script = `import { selectBackend, tf } from './src/model/backend.ts';
await selectBackend('tensorflow');
const a = tf.tensor([1, 2, 3]);
process.stdout.write(tf.getBackend() + ' ' + Array.from(tf.concat([tf.sub(a, a), tf.mul(a, a)]).dataSync()).join(','));`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: join(import.meta.dirname, '..'), encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('tensorflow 0,0,0,1,4,9');
    expect(r.stderr).toBe('');
  });
});

describe.skipIf(!native)('native and wasm backends agree', () => {
  it.each(HEADS.flatMap((head) => (['gru', 'lstm'] as const).map((arch) => ({ arch, head }))))('$arch / $head: max |native - wasm| <= 1e-4', async ({ arch, head }) => {
    await tf.setBackend('tensorflow');
    const T = 40;
    const F = 14;
    const n = 256;
    const model = buildModel({ arch, head, pooling: head === 'last' ? 'last-query' : 'mean', T, F, hidden: 32, layers: 1, dense: 16, dropout: 0.1, seed: 9 });
    const artifacts = await artifactsOf(model);
    model.dispose();
    const x = (tf.randomNormal([n, T, F], 0, 1, 'float32', 3) as tf.Tensor).dataSync() as Float32Array;
    const a = await scoreOn('tensorflow', artifacts, x, [n, T, F]);
    await import('@tensorflow/tfjs-backend-wasm');
    const b = await scoreOn('wasm', artifacts, x, [n, T, F]);
    await tf.setBackend('tensorflow');
    let max = 0;
    for (let i = 0; i < n; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
    expect(max).toBeLessThanOrEqual(1e-4);
  });
});
