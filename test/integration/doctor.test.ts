/**
 * `factorstream doctor` as an operator runs it: against the test broker it reports the
 * cluster, the engines and the served models and exits 0; against a port where no broker
 * listens it says so and exits 1.
 */
import { describe, expect, it } from 'vitest';
import { brokers, cli, kafkaSkipReason } from './kafka-harness.js';

interface Check {
  area: string;
  name: string;
  ok: boolean;
  detail: string;
  required: boolean;
}

describe.skipIf(kafkaSkipReason !== '')('factorstream doctor', () => {
  it('reports the broker, the engines and the demo models on the onnx engine, and exits 0', () => {
    const r = cli(['doctor', '--json', '--brokers', brokers]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const { checks } = JSON.parse(r.stdout) as { checks: Check[] };
    const find = (area: string, name: string): Check | undefined => checks.find((c) => c.area === area && c.name === name);
    expect(find('kafka', brokers)).toMatchObject({ ok: true, required: true });
    expect(find('kafka', brokers)?.detail).toMatch(/^cluster \S+, 1 broker\(s\)/);
    expect(find('onnx', 'onnxruntime-node')?.detail).toMatch(/^1\.\d+\.\d+; providers in this build: cpu/);
    expect(find('onnx', 'provider cpu')?.ok).toBe(true);
    expect(find('onnx', 'provider cuda')).toBeDefined();
    expect(find('tfjs', 'backend wasm')?.ok).toBe(true);
    expect(find('model', 'models/demo-10m')?.detail).toMatch(/^demo-10m \S+ \(gru\/attention\/last-query, 10m, T=12\) on onnx\/cpu$/);
    expect(find('tools', 'java')?.ok).toBe(true);
  });

  it('says the broker is not reachable and exits 1', () => {
    const r = cli(['doctor', '--brokers', '127.0.0.1:9', '--kafka-timeout-ms', '1000']);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(/^FAIL {2}kafka 127\.0\.0\.1:9 +not reachable: /m);
    expect(r.stdout).toMatch(/^ ok {3}model models\/demo-30m/m);
  });
});
