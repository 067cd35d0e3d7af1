/**
 * `factorstream doctor`: what this machine can run, checked rather than assumed — the
 * inference engines and their backends (onnxruntime and its providers, the tfjs backends),
 * the GPU, each configured model on the engine serve would pick, the Kafka brokers, and
 * Java and Maven for the local test broker. Every check reports ok or why not; the exit
 * code says whether `serve` could start with this configuration (models servable, brokers
 * reachable).
 */
import { spawnSync } from 'node:child_process';
import { availableParallelism, cpus } from 'node:os';
import { resolve } from 'node:path';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { kafkaConnection, kafkaFailure } from '../ingest/kafka-client.js';
import type { Config } from '../config.js';
import { probeBackends } from '../model/backend.js';
import { ONNX_INPUT, ONNX_OUTPUT } from '../model/onnx/export.js';
import { encodeModel, ONNX_FLOAT, ONNX_IR_VERSION, ONNX_OPSET } from '../model/onnx/proto.js';
import { createOnnxSession, onnxRuntimeInfo } from '../model/onnx/session.js';
import { engineOptionsOf, loadPredictor } from '../model/predictor.js';

export interface Check {
  area: 'system' | 'onnx' | 'tfjs' | 'gpu' | 'model' | 'kafka' | 'tools';
  name: string;
  ok: boolean;
  detail: string;
  /** Whether serve needs this check to pass (the exit code). */
  required: boolean;
}

/** A one-node graph (Identity) for trying an execution provider. */
function identityGraph(): Uint8Array {
  const type = { tensorType: { elemType: ONNX_FLOAT, shape: { dim: [{ dimValue: 1 }] } } };
  return encodeModel({
    irVersion: ONNX_IR_VERSION,
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    producerName: 'factorstream-doctor',
    producerVersion: '',
    graph: { name: 'probe', node: [{ name: 'id', opType: 'Identity', input: [ONNX_INPUT], output: [ONNX_OUTPUT], attribute: [] }], initializer: [], input: [{ name: ONNX_INPUT, type }], output: [{ name: ONNX_OUTPUT, type }] },
  });
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0];
}

async function onnxChecks(): Promise<Check[]> {
  const out: Check[] = [];
  let version: string;
  try {
    const info = await onnxRuntimeInfo();
    version = info.version;
    out.push({ area: 'onnx', name: 'onnxruntime-node', ok: true, detail: `${info.version}; providers in this build: ${info.backends.map((b) => `${b.name}${b.bundled ? '' : ' (libraries installed separately)'}`).join(', ')}`, required: false });
  } catch (err) {
    out.push({ area: 'onnx', name: 'onnxruntime-node', ok: false, detail: `does not load: ${firstLine(err)} (the tfjs engine serves instead)`, required: false });
    return out;
  }
  for (const provider of ['cpu', 'cuda'] as const) {
    try {
      const s = await createOnnxSession(identityGraph(), { threads: 1, provider, spinWait: false });
      await s.session.release();
      out.push({ area: 'onnx', name: `provider ${provider}`, ok: s.fallback === '', detail: s.fallback === '' ? `a session runs on it (onnxruntime ${version})` : s.fallback, required: false });
    } catch (err) {
      out.push({ area: 'onnx', name: `provider ${provider}`, ok: false, detail: firstLine(err), required: false });
    }
  }
  return out;
}

function gpuChecks(): Check[] {
  const smi = spawnSync('nvidia-smi', ['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader'], { encoding: 'utf8', timeout: 10_000 });
  if (smi.status === 0) return [{ area: 'gpu', name: 'nvidia-smi', ok: true, detail: smi.stdout.trim().split('\n').join('; '), required: false }];
  return [{ area: 'gpu', name: 'nvidia-smi', ok: false, detail: 'no NVIDIA GPU or driver found (CPU inference only)', required: false }];
}

async function modelChecks(config: Readonly<Config>): Promise<Check[]> {
  const out: Check[] = [];
  for (const dir of config.daemon.models) {
    try {
      const { predictor, meta, fallback } = await loadPredictor(resolve(dir), engineOptionsOf(config.daemon));
      await predictor.dispose();
      const kind = meta.architecture === undefined ? 'external ONNX' : `${meta.architecture.arch}/${meta.architecture.head}/${meta.architecture.pooling}`;
      out.push({ area: 'model', name: dir, ok: true, detail: `${meta.name} ${meta.version} (${kind}, ${meta.freq}, T=${meta.T}) on ${predictor.engine}/${predictor.backend}${fallback === '' ? '' : ` — ${fallback}`}`, required: true });
    } catch (err) {
      out.push({ area: 'model', name: dir, ok: false, detail: firstLine(err), required: true });
    }
  }
  return out;
}

async function kafkaCheck(config: Readonly<Config>, timeoutMs: number): Promise<Check> {
  const brokers = config.kafka.brokers.join(',');
  let admin: Admin;
  try {
    admin = new Kafka({ clientId: `${config.kafka.clientId}-doctor`, ...kafkaConnection(config.kafka), connectionTimeout: timeoutMs, requestTimeout: timeoutMs, retry: { retries: 0 }, logLevel: logLevel.NOTHING }).admin();
  } catch (err) {
    return { area: 'kafka', name: brokers, ok: false, detail: `not configured: ${firstLine(err)}`, required: true };
  }
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    const topics = new Set(await admin.listTopics());
    const wanted = [config.kafka.ticksTopic, config.kafka.barsTopic, config.kafka.scoresTopic, config.kafka.scoresBatchTopic, config.kafka.deadLetterTopic];
    // A topic the user may not describe is not listed either: asked for by name, the broker says which it is.
    const unauthorised: string[] = [];
    for (const t of wanted.filter((x) => !topics.has(x))) {
      try {
        await admin.fetchTopicMetadata({ topics: [t] });
      } catch (err) {
        if (kafkaFailure(err, config.kafka).kind === 'authorisation') unauthorised.push(t);
      }
    }
    if (unauthorised.length > 0) {
      return { area: 'kafka', name: brokers, ok: false, detail: `not authorised: user ${config.kafka.saslUsername || '(the TLS client certificate)'} may not describe ${unauthorised.join(', ')}; factorstream needs Read on the input topics and its group, Write on the output topics, Describe and Write on its transactional id, and IdempotentWrite on the cluster`, required: true };
    }
    const missing = wanted.filter((t) => !topics.has(t) && !unauthorised.includes(t));
    const topicNote = missing.length === 0 ? 'all topics exist' : `missing topics: ${missing.join(', ')}${config.kafka.createTopics ? ' (serve creates them: kafka.createTopics)' : ''}`;
    return { area: 'kafka', name: brokers, ok: true, detail: `cluster ${cluster.clusterId}, ${cluster.brokers.length} broker(s), controller ${cluster.controller ?? 'unknown'}; ${topicNote}`, required: true };
  } catch (err) {
    return { area: 'kafka', name: brokers, ok: false, detail: kafkaFailure(err, config.kafka).text, required: true };
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

function toolCheck(cmd: string, args: string[], purpose: string): Check {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 20_000 });
  // eslint-disable-next-line no-control-regex -- Maven colours its version line
  const text = (`${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n')[0] ?? '').replace(/\x1b\[[0-9;]*m/g, '');
  return r.status === 0 ? { area: 'tools', name: cmd, ok: true, detail: `${text} (${purpose})`, required: false } : { area: 'tools', name: cmd, ok: false, detail: `not found (${purpose})`, required: false };
}

export async function doctor(config: Readonly<Config>, opts: { kafka: boolean; kafkaTimeoutMs: number }): Promise<Check[]> {
  const checks: Check[] = [
    { area: 'system', name: 'node', ok: true, detail: `${process.version} on ${process.platform}/${process.arch}, ${availableParallelism()} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'})`, required: false },
  ];
  checks.push(...(await onnxChecks()));
  for (const b of await probeBackends()) checks.push({ area: 'tfjs', name: `backend ${b.name}`, ok: b.ok, detail: b.detail, required: false });
  checks.push(...gpuChecks());
  checks.push(...(await modelChecks(config)));
  if (opts.kafka) checks.push(await kafkaCheck(config, opts.kafkaTimeoutMs));
  checks.push(toolCheck('java', ['-version'], 'runs the local Kafka broker of the tests: scripts/kafka-local'));
  checks.push(toolCheck('mvn', ['-v'], 'fetches the Kafka jars from Maven Central once'));
  return checks;
}

export function formatChecks(checks: readonly Check[]): string {
  const width = Math.max(...checks.map((c) => `${c.area} ${c.name}`.length));
  return checks.map((c) => `${c.ok ? ' ok ' : c.required ? 'FAIL' : ' -- '}  ${`${c.area} ${c.name}`.padEnd(width)}  ${c.detail}`).join('\n');
}
