/**
 * The daemon through a real broker (scripts/kafka-local, or KAFKA_BROKERS): ingest rate of
 * `serve` for one-tick JSON messages and for Arrow messages of many ticks (no models: the
 * decode -> validate -> aggregate -> bar-close path with its commits), and
 * bar-close-to-publish latency for 5,000 symbols with a T=120 10m model and a T=40 30m
 * model (GRU, attention, H = 64, the real feature count; weights untrained, cost is the
 * same) while a day is replayed at `--speed` times real time, so that each close is
 * scored as it would be live. The daemon runs in this process (KafkaDaemon), the broker
 * in its own JVM on the same 2 cores.
 */
import { spawn } from 'node:child_process';
import type { Histogram } from 'prom-client';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config.js';
import { KafkaDaemon } from '../src/daemon/serve.js';
import { FEATURE_COUNT } from '../src/features/feature-set.js';
import { expandInputs } from '../src/ingest/file-source.js';
import { replay } from '../src/ingest/replay.js';
import { MarketSimulator } from '../src/ingest/simulator/market.js';
import { writeSimulation } from '../src/ingest/simulator/write.js';
import { createLogger } from '../src/log.js';
import { TradingCalendar } from '../src/market/calendar.js';
import { LiveClock } from '../src/market/clock.js';
import type { Freq } from '../src/market/sessions.js';
import { buildModel, DEFAULT_MODEL_SPEC } from '../src/model/architecture.js';
import { saveModel, untrainedMeta } from '../src/model/artifact.js';
import { selectBackend } from '../src/model/backend.js';
import { exportOnnx } from '../src/model/onnx/export.js';
import type { EngineName } from '../src/model/predictor.js';
import { benchBroker, fmt, now, percentile, option, type Benchmark, type ResultRow } from './harness.js';

const log = createLogger(process.env.FACTORSTREAM_LOG_LEVEL ?? 'warn');
const calendar = TradingCalendar.load();

async function benchModel(dir: string, freq: Freq, T: number): Promise<string> {
  const backend = await selectBackend();
  const spec = { ...DEFAULT_MODEL_SPEC, T, F: FEATURE_COUNT };
  const model = buildModel(spec);
  const out = join(dir, `bench-${freq}`);
  await saveModel(out, model, untrainedMeta(`bench-${freq}`, spec, freq, backend, 0));
  model.dispose();
  exportOnnx(out);
  return out;
}

function daemonConfig(brokers: string, dir: string, id: string, topic: string, models: string[], engine: EngineName = 'onnx', onnxThreads = 0, archive = false): ReturnType<typeof loadConfig> {
  return loadConfig({
    flags: {
      kafka: { brokers: [brokers], groupId: `bench-${id}`, transactionalId: `bench-${id}`, ticksTopic: topic, barsTopic: `${topic}.bars`, scoresTopic: `${id}.scores`, scoresBatchTopic: `${id}.scores.batch`, deadLetterTopic: `${id}.dl`, topicPartitions: 4 },
      daemon: { models, engine, onnxThreads, httpPort: 0, checkpointDir: join(dir, `ckpt-${id}`), archiveDir: archive ? join(dir, `archive-${id}`) : '', commitIntervalMs: 1_000 },
      // The default lateness: partitions that skew in event time wait for each other at each close.
      features: { minCoverage: 0 },
      log: { level: 'warn' },
    },
  });
}

/**
 * Runs a daemon until it has ingested `total` events; returns the steady-state rate, events/s
 * between the 10% and the 90% mark (the start-up — group join, the first close waiting for
 * empty partitions to turn idle — and the last partial fetches are not throughput).
 */
async function ingestRate(brokers: string, dir: string, id: string, topic: string, total: number): Promise<{ rate: number; seconds: number }> {
  const daemon = new KafkaDaemon({ config: daemonConfig(brokers, dir, id, topic, []), calendar, log, clock: new LiveClock() });
  const ingested = async (): Promise<number> => {
    const m = await daemon.metrics.eventsIngested.get();
    return m.values.reduce((n, v) => n + v.value, 0);
  };
  await daemon.start();
  let from = 0;
  let atFrom = 0;
  let n = await ingested();
  for (; n < 0.9 * total; n = await ingested()) {
    if (from === 0 && n >= 0.1 * total) [from, atFrom] = [now(), n];
    await new Promise((r) => setTimeout(r, 5));
  }
  const seconds = (now() - from) / 1000;
  const rate = (n - atFrom) / seconds;
  while ((await ingested()) < total) await new Promise((r) => setTimeout(r, 5));
  await daemon.stop();
  return { rate, seconds };
}

/** Calls `each` with every observation of a histogram, before the histogram takes it. */
function watching(h: Histogram<string>, each: (labels: Record<string, string>, v: number) => void): void {
  const observe = h.observe.bind(h);
  h.observe = ((labels: Record<string, string>, v: number) => {
    each(labels, v);
    observe(labels, v);
  }) as typeof h.observe;
}

/** Records every value a histogram observes, keyed by one of its labels. */
function recording(h: Histogram<string>, label: string): Map<string, number[]> {
  const seen = new Map<string, number[]>();
  watching(h, (labels, v) => {
    const key = labels[label] ?? '';
    const list = seen.get(key);
    if (list === undefined) seen.set(key, [v]);
    else list.push(v);
  });
  return seen;
}

/**
 * The 10m model's close → publish split by whether the 30m model's close of the same bar
 * end went in the same commit (:00 and :30: two steps, 10,000 score messages) or not. A
 * commit that publishes closes observes its phases once, before its closes' latencies.
 */
function sharedCloses(phases: Histogram<string>, latency: Histogram<string>): () => { shared: number[]; alone: number[] } {
  const byCommit: { model: string; seconds: number }[][] = [];
  watching(phases, (labels) => {
    if (labels.phase === 'queued') byCommit.push([]);
  });
  watching(latency, (labels, seconds) => byCommit[byCommit.length - 1]?.push({ model: labels.model, seconds }));
  const tenOf = (commits: { model: string; seconds: number }[][]): number[] => commits.flatMap((c) => c.filter((x) => x.model === 'bench-10m').map((x) => x.seconds));
  const withThirty = (c: { model: string }[]): boolean => c.some((x) => x.model === 'bench-30m');
  return () => ({ shared: tenOf(byCommit.filter(withThirty)), alone: tenOf(byCommit.filter((c) => !withThirty(c))) });
}

export const daemonBenchmark: Benchmark = {
  name: 'daemon',
  description: 'serve through a real Kafka broker: ingest rate (JSON, Arrow) and bar-close-to-publish latency at 5,000 symbols (10m T=120 and 30m T=40 models).',
  async run(args) {
    const symbols = option(args, 'symbols', 5000);
    const jsonSymbols = option(args, 'json-symbols', 1250);
    const speed = option(args, 'speed', 120);
    const withIngest = option(args, 'ingest', 1) !== 0;
    const withLatency = option(args, 'latency', 1) !== 0;
    // daemon.onnxThreads: intra-op threads per onnx session (0: the daemon's default, the cores shared between the inference workers).
    const onnxThreads = option(args, 'onnx-threads', 0);
    // The feed's nice value (0: the daemon's; 10: the feed yields the cores to the daemon, as a host that gives the daemon priority would).
    const feedNice = option(args, 'feed-nice', 0);
    // The daily score archive (1: on, as the daemon's default configuration has it: each close appended after its commit, fsynced ahead of the next checkpoint; 0: off).
    const archive = option(args, 'archive', 1) !== 0;
    const engineArg = args.indexOf('--engines');
    const engines = (engineArg >= 0 ? args[engineArg + 1] : 'onnx,tfjs').split(',') as EngineName[];
    const dir = mkdtempSync(join(tmpdir(), 'bench-daemon-'));
    const kafka = await benchBroker();
    const { brokers } = kafka;
    const rows: ResultRow[] = [];
    const notes: string[] = [];
    try {
      const day = '2026-11-23';
      const simulate = async (n: number, out: string): Promise<number> => {
        const sim = new MarketSimulator({ symbols: n, days: 1, seed: 5, start: day }, calendar);
        const s = await writeSimulation(sim, out, 'arrow', () => undefined);
        return s.ticks;
      };
      const bigTicks = await simulate(symbols, join(dir, 'sim-big'));
      const smallTicks = await simulate(jsonSymbols, join(dir, 'sim-small'));
      const base = { connection: { brokers: [brokers] }, barsTopic: 'unused.bars', partitions: 4, calendar, log };
      // Fresh topic names per run: a broker named by KAFKA_BROKERS may hold an earlier run's.
      const run = Date.now().toString(36);

      if (withIngest) {
        // JSON: one tick a message.
        const t0 = now();
        await replay({ ...base, inputs: expandInputs([join(dir, 'sim-small', 'ticks')]), ticksTopic: `bench.json.${run}`, format: 'json', speed: 'max', arrowRows: 0 });
        const produceJson = smallTicks / ((now() - t0) / 1000);
        const json = await ingestRate(brokers, dir, `json-${run}`, `bench.json.${run}`, smallTicks);
        rows.push({ measure: 'serve ingest, JSON (1 tick/message)', ticks: fmt(smallTicks), seconds: fmt(json.seconds, 1), 'ticks/s': fmt(json.rate), target: '≥ 100,000', met: json.rate >= 100_000 ? 'yes' : 'no' });

        // Arrow: 5,000 ticks a message.
        const t1 = now();
        await replay({ ...base, inputs: expandInputs([join(dir, 'sim-big', 'ticks')]), ticksTopic: `bench.arrow.${run}`, format: 'arrow', speed: 'max', arrowRows: 5000 });
        const produceArrow = bigTicks / ((now() - t1) / 1000);
        const arrow = await ingestRate(brokers, dir, `arrow-${run}`, `bench.arrow.${run}`, bigTicks);
        rows.push({ measure: 'serve ingest, Arrow (≤ 5,000 ticks/message)', ticks: fmt(bigTicks), seconds: fmt(arrow.seconds, 1), 'ticks/s': fmt(arrow.rate), target: '≥ 1,000,000', met: arrow.rate >= 1_000_000 ? 'yes' : 'no' });
        notes.push(`Producer side (replay, kafkajs, same machine): JSON ${fmt(produceJson)} ticks/s, Arrow ${fmt(produceArrow)} ticks/s.`);
      }

      // Latency: the day replayed at `speed`x while the daemon scores each close with both
      // models, once per engine, on the same broker and the same models.
      const models = withLatency ? [await benchModel(dir, '10m', 120), await benchModel(dir, '30m', 40)] : [];
      for (const engine of withLatency ? engines : []) {
        const id = `latency-${engine}-${run}`;
        const topic = `bench.live.${engine}.${run}`;
        const daemon = new KafkaDaemon({ config: daemonConfig(brokers, dir, id, topic, models, engine, onnxThreads, archive), calendar, log, clock: new LiveClock() });
        const latency = recording(daemon.metrics.closeToPublish, 'model');
        const inference = recording(daemon.metrics.inference, 'model');
        const inferenceWait = recording(daemon.metrics.inferenceWait, 'model');
        const latencyWait = recording(daemon.metrics.closeToPublishWait, 'model');
        const prefix = recording(daemon.metrics.windowPrefix, 'model');
        const checkpoints = recording(daemon.metrics.checkpoint, 'kind');
        const phases = recording(daemon.metrics.closePhase, 'phase');
        const lookups = recording(daemon.metrics.endsLookup, 'trigger');
        const tenMinute = sharedCloses(daemon.metrics.closePhase, daemon.metrics.closeToPublish);
        const requests = recording(daemon.metrics.producerRequest, 'api');
        await daemon.start();
        // The feed is another process, as in production: the daemon's event loop is its own.
        const feedArgs = ['--import', 'tsx', 'src/cli.ts', 'replay', '--input', join(dir, 'sim-big', 'ticks'), '--format', 'arrow', '--arrow-rows', '5000', '--speed', `${speed}x`];
        const feed = spawn(feedNice === 0 ? process.execPath : 'nice', feedNice === 0 ? feedArgs : ['-n', String(feedNice), process.execPath, ...feedArgs], {
          env: { ...process.env, FACTORSTREAM_KAFKA_BROKERS: JSON.stringify([brokers]), FACTORSTREAM_KAFKA_TICKS_TOPIC: topic, FACTORSTREAM_LOG_LEVEL: 'warn' },
          stdio: ['ignore', 'ignore', 'inherit'],
        });
        await new Promise((resolve) => feed.once('exit', resolve));
        const deadline = now() + 120_000;
        while ((latency.get('bench-30m')?.length ?? 0) < 8 && now() < deadline) await new Promise((r) => setTimeout(r, 100));
        await daemon.stop();
        const ms = (xs: number[], q: number): string => fmt(percentile(xs, q) * 1000);
        for (const [model, xs] of latency) {
          const inf = inference.get(model) ?? [];
          const pre = prefix.get(model) ?? [];
          const what = `${engine} engine, ${model === 'bench-10m' ? '10m T=120' : '30m T=40'} (${symbols.toLocaleString('en-US')} symbols)`;
          // Each figure over every close, and without the first close of a fresh start: its prefix is prepared from the symbols as they come, beside the start-up.
          const perClose = (measure: string, ys: number[], target: string, met: (p99: number) => boolean): ResultRow => ({ measure, ticks: `${ys.length} closes`, seconds: `p50 ${ms(ys, 50)} / p99 ${ms(ys, 99)} ms`, 'ticks/s': '', target, met: met(percentile(ys, 99)) ? 'yes' : 'no' });
          const timed = (measure: string, ys: number[], limit: number): ResultRow => perClose(measure, ys, `p99 ≤ ${limit * 1000} ms`, (p99) => p99 <= limit);
          const between = (measure: string, ys: number[]): ResultRow => perClose(measure, ys, `≪ the bar (${fmt(600 / speed, 1)} s at ${speed}x)`, (p99) => p99 < 600 / speed / 4);
          rows.push(timed(`bar close → publish, ${what}`, xs, 0.25));
          rows.push(timed(`bar close → publish after the first close, ${what}`, xs.slice(1), 0.25));
          // Profile rows: of each close's latency and inference, the time the thread that did the work was ready to run but waited for a core (the kernel's count).
          const profile = (measure: string, ys: number[]): ResultRow => ({ measure, ticks: `${ys.length} closes`, seconds: `p50 ${ms(ys, 50)} / p99 ${ms(ys, 99)} ms`, 'ticks/s': '', target: '', met: '' });
          const mainWait = latencyWait.get(model) ?? [];
          if (mainWait.length > 0) rows.push(profile(`bar close → publish: the main thread waiting for a core, ${what}`, mainWait));
          rows.push(timed(`inference at the close, ${what}`, inf, 0.03));
          rows.push(timed(`inference at the close after the first, ${what}`, inf.slice(1), 0.03));
          // Observed beside each inference, close by close: the rest is the time on a core.
          const wait = inferenceWait.get(model) ?? [];
          if (wait.length === inf.length && wait.length > 0) {
            rows.push(profile(`inference at the close: waiting for a core, ${what}`, wait), profile(`inference at the close: on a core (the rest), ${what}`, inf.map((x, i) => x - wait[i])));
          }
          if (pre.length > 0) rows.push(between(`prefix between closes, ${what}`, pre), between(`prefix between closes after the first, ${what}`, pre.slice(1)));
        }
        // Where the 10m model's p99 comes from: the closes it shares with the 30m model, or the others.
        const { shared, alone } = tenMinute();
        const tenWhat = `${engine} engine, 10m T=120 (${symbols.toLocaleString('en-US')} symbols)`;
        rows.push({ measure: `bar close → publish at :00 and :30 (both models in one commit; after the first close), ${tenWhat}`, ticks: `${shared.length} closes`, seconds: `p50 ${ms(shared, 50)} / p99 ${ms(shared, 99)} ms`, 'ticks/s': '', target: '', met: '' });
        // The first close of a fresh start (9:40, never shared) left out, as in the rows above.
        const others = alone.slice(1);
        rows.push({ measure: `bar close → publish at the other closes (after the first), ${tenWhat}`, ticks: `${others.length} closes`, seconds: `p50 ${ms(others, 50)} / p99 ${ms(others, 99)} ms`, 'ticks/s': '', target: '', met: '' });
        // The profile of close -> publish: each phase of the commits that published closes.
        for (const [phase, xs] of phases) {
          rows.push({ measure: `close → publish phase: ${phase}, ${engine} run`, ticks: `${xs.length} commits`, seconds: `p50 ${ms(xs, 50)} / p99 ${ms(xs, 99)} ms`, 'ticks/s': '', target: '', met: '' });
        }
        // The transaction phase by request (every commit's, with or without closes): sent to answer read.
        for (const [api, xs] of [...requests].sort(([a], [b]) => a.localeCompare(b))) {
          rows.push({ measure: `score producer request: ${api}, ${engine} run`, ticks: `${xs.length} requests`, seconds: `p50 ${ms(xs, 50)} / p99 ${ms(xs, 99)} ms`, 'ticks/s': '', target: '', met: '' });
        }
        // Before a close decision, so not in close -> publish: a close that waited only for a look at the idle partitions' ends.
        for (const [trigger, xs] of lookups) {
          rows.push({ measure: `look at the ends before a close (after ${trigger === 'fetch' ? 'a batch' : 'an alarm'}), ${engine} run`, ticks: `${xs.length} looks`, seconds: `p50 ${ms(xs, 50)} / p99 ${ms(xs, 99)} ms`, 'ticks/s': '', target: '', met: '' });
        }
        for (const [kind, xs] of checkpoints) {
          rows.push({ measure: `checkpoint (${kind}), ${engine} run (${symbols.toLocaleString('en-US')} symbols)`, ticks: `${xs.length} written`, seconds: `p50 ${ms(xs, 50)} / p99 ${ms(xs, 99)} ms`, 'ticks/s': '', target: kind === 'increment' ? 'p99 ≤ 100 ms' : '', met: kind === 'increment' ? (percentile(xs, 99) <= 0.1 ? 'yes' : 'no') : '' });
        }
      }
      notes.push(`Latency run: the day replayed at ${speed}x real time (a 10-minute bar every ${fmt(600 / speed, 1)} s${feedNice === 0 ? '' : `; the feed at nice ${feedNice}`}; the daily score archive ${archive ? 'on, fsynced ahead of each checkpoint' : 'off'}), both models on one aggregation, minCoverage 0 so that every symbol is scored from the first close; close → publish = scoring both models' pending closes (one recurrent step each from the prefix prepared since the last close; a fresh start prepares its first close once the symbols have come, a restart from a checkpoint at once) + checkpoint (serialised at the commit, fsynced while the transaction sends; the first of a run full, then increments) + the Kafka transaction; the phases are factorstream_close_phase_seconds, per commit that publishes closes; "waiting for a core" is the time the thread doing the work (the main thread for close → publish, the model's inference worker for the inference) was ready to run while both cores were busy, the kernel's own count (factorstream_bar_close_to_publish_wait_seconds, factorstream_inference_wait_seconds).`);
      notes.push(`Engines: ${engines.join(', ')} (onnx: onnxruntime-node, CPU provider, ${onnxThreads === 0 ? 'intra-op threads the cores shared between the inference workers' : `${onnxThreads} intra-op thread(s) per session`}; tfjs: ${(await selectBackend()).name} backend). Kafka ${kafka.version} shares the 2 cores.`);
    } finally {
      await kafka.stop();
      rmSync(dir, { recursive: true, force: true });
    }
    return { rows, notes };
  },
};
