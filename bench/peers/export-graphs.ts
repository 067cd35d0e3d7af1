/**
 * Writes the inference benchmark's models (GRU, H = 64, F = 14, T = 120 and 40, each head;
 * untrained weights, seed 1, as bench/inference.bench.ts builds them) as factorstream's
 * ONNX graphs into a folder, for runtimes on machines without Node (bench/peers/gpu-check.sh).
 *
 *     node --import tsx bench/peers/export-graphs.ts OUT_DIR
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FEATURE_COUNT } from '../../src/features/feature-set.js';
import { buildModel, type ModelSpec } from '../../src/model/architecture.js';
import { selectBackend } from '../../src/model/backend.js';
import { buildOnnxModel, weightsOfModel } from '../../src/model/onnx/export.js';
import { encodeModel } from '../../src/model/onnx/proto.js';

const out = process.argv[2] ?? '.device/graphs';
mkdirSync(out, { recursive: true });
await selectBackend();
for (const T of [120, 40]) {
  for (const [head, pooling] of [['last', 'last-query'], ['attention', 'last-query'], ['residual', 'last-query'], ['residual', 'mean']] as const) {
    const spec: ModelSpec = { arch: 'gru', head, pooling, T, F: FEATURE_COUNT, hidden: 64, layers: 1, dense: 32, dropout: 0.1, seed: 1 };
    const model = buildModel(spec);
    const file = join(out, `factorstream-T${T}-${head}-${pooling}.onnx`);
    writeFileSync(file, encodeModel(buildOnnxModel(spec, weightsOfModel(model), 'bench')));
    model.dispose();
    process.stdout.write(`${file}\n`);
  }
}
