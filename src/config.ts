/**
 * One configuration schema (zod). Sources, later ones winning: built-in defaults < a
 * config file (JSON or YAML) < environment variables FACTORSTREAM_<SECTION>_<KEY> (upper
 * snake case, e.g. FACTORSTREAM_FEATURES_LARGE_TRADE_AMOUNT=500000) < command-line
 * flags. The result is checked once and frozen; nothing reads configuration afterwards.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { DEFAULT_HOLIDAYS_PATH, DEFAULT_SESSION_GRACE } from './market/calendar.js';
import { BAR_LABELS, FREQUENCIES } from './market/sessions.js';
import { DEFAULT_SIM_PARAMS } from './ingest/simulator/market.js';

const Freq = z.enum(FREQUENCIES);
/** Up to 10 minutes: a grace never reaches the next session (the lunch break is 90 minutes). */
const SessionGrace = z.object({ morning: z.number().int().min(0).max(600_000), close: z.number().int().min(0).max(600_000) }).strict();

export const ConfigSchema = z
  .object({
    market: z
      .object({
        /** Exchange closures file (config/holidays.json, see scripts/update-holidays). */
        holidaysFile: z.string().default(DEFAULT_HOLIDAYS_PATH),
        /** Per exchange, how long after 11:30:00 (morning) and 15:00:00 (close) an event still belongs to the bar that ended (ms). */
        sessionGraceMs: z
          .object({ SH: SessionGrace.default({ ...DEFAULT_SESSION_GRACE.SH }), SZ: SessionGrace.default({ ...DEFAULT_SESSION_GRACE.SZ }), BJ: SessionGrace.default({ ...DEFAULT_SESSION_GRACE.BJ }) })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    bars: z
      .object({
        /** How the 1-minute bar feed (files, the bar topic) labels a bar: by its end (09:31 … 15:00) or its start (09:30 … 14:59). */
        label: z.enum(BAR_LABELS).default('end'),
      })
      .strict()
      .prefault({}),
    reference: z
      .object({
        /** Reference data (a .csv, .jsonl or .arrow file, or a folder of them) for features, train, score and evaluate ('' none; serve reads kafka.referenceTopic). */
        path: z.string().default(''),
      })
      .strict()
      .prefault({}),
    features: z
      .object({
        /** Bar frequencies aggregated side by side. */
        freqs: z.array(Freq).min(1).default(['10m', '30m']),
        /** Event time may lag the newest event by this much before a bar closes (ms, < 30 min). */
        allowedLatenessMs: z.number().int().min(0).max(29 * 60_000).default(2_000),
        /** Sequence numbers remembered per symbol for duplicate detection. */
        dedupWindow: z.number().int().min(1).max(65_536).default(256),
        /** A trade of at least this many CNY counts as a large order. */
        largeTradeAmount: z.number().positive().default(200_000),
        /** Trading days of same-slot volume history for relVolume. */
        volumeLookbackDays: z.number().int().min(1).max(60).default(5),
        /** Robust z-scores are clipped at ±zClip. */
        zClip: z.number().positive().default(5),
        /** Sequence length T per frequency (default: five trading days). */
        sequenceLength: z.record(Freq, z.number().int().min(1).max(2_400)).default({ '1m': 1_200, '10m': 120, '30m': 40 }),
        /** A symbol whose window has fewer present bars than this fraction is not scored. */
        minCoverage: z.number().min(0).max(1).default(0.5),
      })
      .strict()
      .prefault({}),
    simulator: z
      .object({
        symbols: z.number().int().min(1).max(14_000).default(DEFAULT_SIM_PARAMS.symbols),
        days: z.number().int().min(0).default(DEFAULT_SIM_PARAMS.days),
        seed: z.number().int().default(DEFAULT_SIM_PARAMS.seed),
        start: z.string().regex(/^\d{4}-\d{2}-\d{2}$/).default(DEFAULT_SIM_PARAMS.start),
        tradesPerDay: z.number().positive().default(DEFAULT_SIM_PARAMS.tradesPerDay),
        snapshotShare: z.number().min(0).max(1).default(DEFAULT_SIM_PARAMS.snapshotShare),
        snapshotIntervalSec: z.number().int().min(1).max(60).default(DEFAULT_SIM_PARAMS.snapshotIntervalSec),
        suspensionRate: z.number().min(0).max(1).default(DEFAULT_SIM_PARAMS.suspensionRate),
        limitEventRate: z.number().min(0).max(1).default(DEFAULT_SIM_PARAMS.limitEventRate),
        shortSignal: z.number().min(0).default(DEFAULT_SIM_PARAMS.shortSignal),
        longSignal: z.number().min(0).default(DEFAULT_SIM_PARAMS.longSignal),
      })
      .strict()
      .prefault({}),
    kafka: z
      .object({
        /** Bootstrap brokers, host:port. */
        brokers: z.array(z.string().min(1)).min(1).default(['127.0.0.1:9092']),
        /** Connect with TLS (kafka.tlsCaFile, or the system's CAs); on by itself when a CA or client certificate file is given. */
        tls: z.boolean().default(false),
        /** PEM file of the CA(s) that signed the brokers' certificates ('' the system's). */
        tlsCaFile: z.string().default(''),
        /** Mutual TLS: PEM files of this client's certificate and (unencrypted) key. */
        tlsCertFile: z.string().default(''),
        tlsKeyFile: z.string().default(''),
        /** The name sent (SNI) and checked against the broker's certificate, where brokers are addressed otherwise ('' their host). */
        tlsServerName: z.string().default(''),
        /** Compare the certificate's name with the broker's (the certificate is verified against the CA either way). */
        tlsCheckServerName: z.boolean().default(true),
        /** SASL: none, plain, scram-sha-256 or scram-sha-512 (with TLS unless the network is private). */
        saslMechanism: z.enum(['none', 'plain', 'scram-sha-256', 'scram-sha-512']).default('none'),
        saslUsername: z.string().default(''),
        /** The SASL password: the first line of this file (a mounted secret) … */
        saslPasswordFile: z.string().default(''),
        /** … or the value of the environment variable of this name; never a flag or the config file. */
        saslPasswordEnv: z.string().default(''),
        clientId: z.string().default('factorstream'),
        /** Consumer group of the input topics; one daemon consumes every partition (it scores the whole cross-section). */
        groupId: z.string().default('factorstream'),
        /** Transactional id of the score producer: stable per deployment, so that a restart fences its predecessor. */
        transactionalId: z.string().default('factorstream-scores'),
        ticksTopic: z.string().default('md.ticks'),
        barsTopic: z.string().default('md.bars.1m'),
        scoresTopic: z.string().default('factor.scores'),
        scoresBatchTopic: z.string().default('factor.scores.batch'),
        deadLetterTopic: z.string().default('md.deadletter'),
        /** Daily reference data, compacted, keyed by symbol: read to its end at start and followed (README "Reference data"). */
        referenceTopic: z.string().default('md.reference'),
        /** Target weights of the configured portfolio (portfolio.model), one Arrow message per rebalance, in the transaction of that close's scores. */
        targetsTopic: z.string().default('factor.targets'),
        /** Scores of shadow models (daemon.shadowModels): measured, not for trading systems. */
        shadowScoresTopic: z.string().default('factor.scores.shadow'),
        /** Create missing topics at start (partitions for new topics below). */
        createTopics: z.boolean().default(true),
        topicPartitions: z.number().int().min(1).default(4),
        /** Largest fetch per partition (bytes): smaller means shorter batches between commits. */
        maxBytesPerPartition: z.number().int().min(1_024).default(4_194_304),
        /** Transactions the broker aborts if not committed within this time (ms). */
        transactionTimeoutMs: z.number().int().min(1_000).default(60_000),
      })
      .strict()
      .prefault({}),
    daemon: z
      .object({
        /** Model folders served side by side (a 10m and a 30m model share one aggregation). */
        models: z.array(z.string().min(1)).default(['models/demo-10m', 'models/demo-30m']),
        /** Model folders scored and measured beside the live ones, published to kafka.shadowScoresTopic only (a candidate before promotion). */
        shadowModels: z.array(z.string().min(1)).default([]),
        /** Inference engine: onnx (onnxruntime-node), tfjs, or auto (onnx where onnxruntime loads, else tfjs). */
        engine: z.enum(['auto', 'onnx', 'tfjs']).default('auto'),
        /** onnx engine: intra-op threads per session (0: on inference workers the cores shared between them, at least one each; on the calling thread onnxruntime's default, one per physical core). */
        onnxThreads: z.number().int().min(0).max(256).default(0),
        /** onnx engine: whether idle intra-op threads spin waiting for work (onnxruntime's default) instead of sleeping; spinning takes the CPU that the feed, the broker and the main thread need where they share the cores. */
        onnxSpinWait: z.boolean().default(false),
        /** onnx engine: worker threads the models are scored in, folders placed round-robin (absent: one per model folder; 0: on the main thread, which then pauses ingest while it infers). */
        inferenceWorkers: z.number().int().min(0).max(64).optional(),
        /** V8's old-generation growth factor as 1 + percent/100 (0: V8's own, about 1.3 for this heap): fewer full garbage collections during closes, for a heap up to that factor above the live one. */
        heapGrowthPercent: z.number().int().min(0).max(1_000).default(300),
        /** onnx engine: execution provider; cuda falls back to cpu with a warning where its provider is not installed. */
        onnxProvider: z.enum(['cpu', 'cuda']).default('cpu'),
        /** tfjs engine: backend; auto picks tensorflow-gpu, tensorflow, wasm, cpu in that order. */
        backend: z.enum(['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']).default('auto'),
        httpHost: z.string().default('127.0.0.1'),
        /** /metrics, /healthz, /readyz; 0 picks a free port (logged). */
        httpPort: z.number().int().min(0).max(65_535).default(9464),
        /** State (aggregation and sequences) written atomically after each commit. */
        checkpointDir: z.string().default('data/checkpoint'),
        /** Daily Arrow files of every published score ('' turns the archive off). */
        archiveDir: z.string().default('data/scores'),
        /** Between bar closes, offsets and dead letters are committed (with a checkpoint) this often (ms). */
        commitIntervalMs: z.number().int().min(50).default(5_000),
        /** A quiet feed's bars close when the wall clock passes their end plus this (ms). */
        wallClockGraceMs: z.number().int().min(0).default(5_000),
        /** A caught-up input partition silent for this long (wall time, ms) stops holding the watermark back. */
        idleTimeoutMs: z.number().int().min(0).default(5_000),
        /** Larger input messages are dead-lettered as E_OVERSIZED. */
        maxMessageBytes: z.number().int().min(1_024).default(1_048_576),
        /** /readyz fails while total consumer lag exceeds this many messages. */
        readyMaxLag: z.number().int().min(0).default(50_000),
        /** SIGTERM: stop consuming, publish what is pending, checkpoint and exit within this time (ms). */
        shutdownTimeoutMs: z.number().int().min(1_000).default(8_000),
        /** Optional file with one symbol per line: events for other symbols are E_UNKNOWN_SYMBOL. */
        universeFile: z.string().default(''),
      })
      .strict()
      .prefault({}),
    portfolio: z
      .object({
        /** The served (live) model whose end-of-day scores drive the target weights published to kafka.targetsTopic ('' publishes none). */
        model: z.string().default(''),
        /** The portfolio's name: the targets message's key and header. */
        name: z.string().default('enhanced'),
        /** The benchmark index (a name in the reference data's indexes): its members are the candidates. */
        benchmark: z.string().default(''),
        /** Largest |weight − benchmark weight| per stock. */
        deviation: z.number().positive().max(1).default(0.01),
        industryNeutral: z.boolean().default(true),
        sizeNeutral: z.boolean().default(true),
        /** |active exposure| bound of the factor (standardised). */
        factorBound: z.number().min(0).default(2),
        /** Largest one-way turnover per rebalance against the previous targets drifted to the close. */
        turnoverCap: z.number().positive().max(1).default(0.3),
        /** last: the week's last trading day; daily; or a weekday 1-5 (Monday = 1). */
        rebalance: z.union([z.enum(['last', 'daily']), z.number().int().min(1).max(5)]).default('last'),
        /** Rebalance periods of factor premia averaged into the expected returns (52 weeks: the report's 12 months). */
        premiumWindow: z.number().int().min(1).default(52),
      })
      .strict()
      .prefault({}),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type Config = z.infer<typeof ConfigSchema>;
type Section = keyof Config;

function deepFreeze<T>(o: T): T {
  if (o !== null && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

function camelToSnake(s: string): string {
  return s.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/** Reads a value given as text: JSON when it parses (numbers, booleans, arrays), else the text. */
function envValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The environment variable name of a config key, e.g. features.largeTradeAmount -> FACTORSTREAM_FEATURES_LARGE_TRADE_AMOUNT. */
export function envName(section: string, key: string): string {
  return `FACTORSTREAM_${camelToSnake(section)}_${camelToSnake(key)}`;
}

/** Every config key with its environment variable (README and tests use this). */
export function configKeys(): { path: string; env: string }[] {
  const out: { path: string; env: string }[] = [];
  const shape = ConfigSchema.shape;
  for (const section of Object.keys(shape) as Section[]) {
    const inner = (shape[section] as unknown as { unwrap(): z.ZodObject }).unwrap();
    for (const key of Object.keys(inner.shape)) out.push({ path: `${section}.${key}`, env: envName(section, key) });
  }
  return out;
}

export type Overrides = { [S in Section]?: Partial<Record<string, unknown>> };

function merge(into: Overrides, from: Overrides): void {
  for (const [section, values] of Object.entries(from)) {
    if (values === undefined) continue;
    const target = (into[section as Section] ??= {});
    for (const [k, v] of Object.entries(values)) if (v !== undefined) target[k] = v;
  }
}

export function readConfigFile(path: string): Overrides {
  const text = readFileSync(path, 'utf8');
  const data: unknown = /\.ya?ml$/i.test(path) ? parseYaml(text) : JSON.parse(text);
  if (data === null || typeof data !== 'object') throw new Error(`config file ${path} does not hold an object`);
  return data as Overrides;
}

export function envOverrides(env: NodeJS.ProcessEnv): Overrides {
  const out: Overrides = {};
  for (const { path, env: name } of configKeys()) {
    const text = env[name];
    if (text === undefined) continue;
    const [section, key] = path.split('.') as [Section, string];
    (out[section] ??= {})[key] = envValue(text);
  }
  return out;
}

/** Builds the frozen config: defaults < file < env < flags. Throws with every problem listed. */
export function loadConfig(opts: { file?: string; env?: NodeJS.ProcessEnv; flags?: Overrides } = {}): Readonly<Config> {
  const merged: Overrides = {};
  if (opts.file !== undefined) merge(merged, readConfigFile(opts.file));
  merge(merged, envOverrides(opts.env ?? {}));
  if (opts.flags !== undefined) merge(merged, opts.flags);
  const parsed = ConfigSchema.safeParse(merged);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`).join('\n');
    throw new Error(`invalid configuration:\n${problems}`);
  }
  return deepFreeze(parsed.data);
}
