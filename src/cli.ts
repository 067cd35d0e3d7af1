#!/usr/bin/env node
/**
 * factorstream's one entry point. Subcommands:
 *   run        the embedded default: a simulated market through the live pipeline
 *   simulate   write a simulated market (ticks, 1-minute bars, daily data) to a folder
 *   features   offline extraction: tick/bar files -> 10/30-minute bars and feature rows
 *   train, score, evaluate, export   the model offline (export: the ONNX graph)
 *   backtest                         the report's index-enhanced portfolio test (Table 7)
 *   targets                          the target weights serve publishes, recomputed offline
 *   serve, replay, doctor            the daemon, feeding it, and what this machine can run
 *   reconcile                        the daily check: published scores against the offline path
 * Flags override environment variables, which override the config file (src/config.ts).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { loadConfig, type Config, type Overrides } from './config.js';
import { TradingCalendar } from './market/calendar.js';
import { parseFreq, type Freq } from './market/sessions.js';
import { createLogger } from './log.js';
import { stopwatch } from './market/clock.js';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const USAGE = `factorstream ${VERSION} — streaming high-frequency factor engine for China A-shares

Usage: factorstream <command> [flags]

Commands:
  run        Run the pipeline on the embedded simulated market (no Kafka needed) and
             print a summary line at every bar close.
               --symbols N  --days D  --seed S  --speed 1200|600x|max  --source ticks|bars
               --freq 10m,30m  --config FILE
  simulate   Write a simulated market to a folder.
               --symbols N --days D --seed S --out DIR --format arrow|jsonl|csv
               [--start YYYY-MM-DD] [--trades-per-day N] [--snapshot-share X] [--config FILE]
  features   Extract bars and raw feature rows from tick / 1-minute bar files.
               --input FILE|DIR (repeatable) --freq 10m|30m (repeatable or comma list)
               --out DIR [--format arrow|csv|jsonl] [--lateness-ms N] [--config FILE]
               [--reference FILE|DIR]  (daily reference data: limits, ST; README "Reference data")
  train      Train a model on extracted features and daily data.
               --features DIR|FILE --daily daily.csv --freq 10m|30m --out models/NAME
               [--arch gru|lstm] [--head last|attention|residual] [--pooling last-query|mean|flatten]
               [--loss ic|mse] [--epochs N] [--patience N] [--lr X] [--hidden H] [--layers N]
               [--dropout X] [--seed S] [--horizon DAYS] [--label raw|risk-adjusted]
               [--backend auto|tensorflow|wasm|cpu] [--orthogonal] [--seeds N]
               [--reference FILE|DIR]  (industry and size from the reference data)
               [--window DATES [--step DATES]]  (rolling: train on DATES dates, re-train every
               step; each window scores the dates after it, out of sample)
  score      Score a features file with a model folder, bar by bar.
               --model models/NAME --features DIR|FILE --out scores.arrow|scores.csv
               [--daily daily.csv]  (industry and size, for models trained with --orthogonal)
               [--reference FILE|DIR]  (universe filters; industry and size without --daily)
               [--engine auto|onnx|tfjs]
  export     Write a model folder's ONNX graph (model.onnx beside the tfjs weights; every
             member of an ensemble, every window of a rolling set) and check that the onnx
             and tfjs engines score it the same.
               --model models/NAME [--format onnx]
  evaluate   Weekly factor metrics of end-of-day scores against daily data.
               (--scores FILE | --model M --features DIR) --returns daily.csv --out DIR
               [--exposures daily.csv] [--horizon DAYS] [--title TEXT] [--reference FILE|DIR]
               (--exposures: also evaluate the factor neutralised to industry and size)
  backtest   The report's portfolio test (Table 7): a weekly index-enhanced portfolio of each
             factor variant against a benchmark index, solved by HiGHS (LP).
               (--scores FILE ... [--name LABEL ...] | --model M --features DIR)
               --daily daily.csv --reference FILE|DIR --benchmark INDEX --out DIR
               [--deviation 0.01,0.02] [--turnover 0.3] [--cost 0.003] [--factor-bound 2]
               [--exposures FILE [--exposure-bound 0.5] [--neutral NAME ...]]
               [--rebalance last|1-5] [--no-industry-neutral] [--no-size-neutral] [--title TEXT]
  targets    The target weights serve publishes to kafka.targetsTopic (portfolio.*),
             recomputed offline from a scores file: one Arrow file of every decision.
               --scores FILE --daily daily.csv --reference FILE|DIR --out targets.arrow
               [--config FILE] [--benchmark INDEX] [--deviation 0.01] [--turnover 0.3]
               [--factor-bound 2] [--rebalance last|daily|1-5] [--no-industry-neutral]
               [--no-size-neutral] [--model-version V]
  serve      The daemon: Kafka in (ticks and 1-minute bars), scores out, exactly once.
               --config FILE [--brokers host:port,...] [--models DIR,...] [--http-port N]
               [--checkpoint-dir DIR] [--engine auto|onnx|tfjs]
  doctor     What this machine can run: engines, backends, GPU providers, the configured
             models, Kafka reachability, Java for the local broker. Exit 1 when serve
             could not start.  [--config FILE] [--brokers host:port,...] [--no-kafka] [--json]
  reconcile  The daily check: recompute scores from the recorded input with the offline
             path (features + score, the daemon's configuration) and compare them with
             what was published; exit 1 on any missing, extra, duplicated or different score
             (or, from the topics, any dead-letter count that differs from the offline rejects).
               [--input FILE|DIR ...]  (default: the input topics, read while retained)
               [--archive DIR]  (default: the score topic, read_committed)
               [--day YYYY-MM-DD ...] [--tolerance 1e-6] [--brokers host:port,...]
               [--models DIR,...] [--work-dir DIR] [--json] [--timeout-ms N] [--config FILE]
               [--reference FILE|DIR]  (default: the reference topic as it stands)
  replay     Publish tick / 1-minute bar files to Kafka in event-time order.
               --input FILE|DIR (repeatable) [--brokers host:port,...] [--format json|arrow]
               [--speed 60x|max] [--arrow-rows N] [--config FILE]
               [--reference FILE|DIR]  (published to kafka.referenceTopic first)
  help       Show this text; "factorstream help <command>" (or "<command> --help") shows
             that command's flags and examples.

Every config key can also be set with an environment variable FACTORSTREAM_<SECTION>_<KEY>
(see README "Configuration").`;

class UsageError extends Error {}

function num(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isFinite(x)) throw new UsageError(`--${name} must be a number, got "${v}"`);
  return x;
}

function parseSpeed(v: string | undefined): number | 'max' {
  if (v === undefined) return 1200;
  if (v === 'max') return 'max';
  const x = Number(v.endsWith('x') ? v.slice(0, -1) : v);
  if (!(x > 0)) throw new UsageError(`--speed must be a positive multiple of real time (e.g. 600x) or "max", got "${v}"`);
  return x;
}

function parseFreqs(values: string[] | undefined): Freq[] | undefined {
  if (values === undefined || values.length === 0) return undefined;
  try {
    return values.flatMap((v) => v.split(',')).map((v) => parseFreq(v.trim()));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function parse(args: string[], options: ParseArgsConfig['options']): ReturnType<typeof parseArgs> {
  try {
    return parseArgs({ args, options: { ...options, config: { type: 'string' } }, strict: true, allowPositionals: false });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function configFrom(values: Record<string, unknown>, flags: Overrides): Readonly<Config> {
  return loadConfig({ file: values.config as string | undefined, env: process.env, flags });
}

async function cmdRun(args: string[]): Promise<number> {
  const { values } = parse(args, {
    symbols: { type: 'string' },
    days: { type: 'string' },
    seed: { type: 'string' },
    speed: { type: 'string' },
    source: { type: 'string' },
    freq: { type: 'string', multiple: true },
  });
  const source = (values.source as string | undefined) ?? 'ticks';
  if (source !== 'ticks' && source !== 'bars') throw new UsageError('--source must be ticks or bars');
  const config = configFrom(values, {
    simulator: {
      symbols: num(values.symbols as string | undefined, 'symbols'),
      days: num(values.days as string | undefined, 'days'),
      seed: num(values.seed as string | undefined, 'seed'),
    },
    features: { freqs: parseFreqs(values.freq as string[] | undefined) },
  });
  const log = createLogger(config.log.level);
  const calendar = TradingCalendar.fromConfig(config.market);
  const { runDemo } = await import('./daemon/demo.js');
  const abort = new AbortController();
  const stop = (): void => {
    log.info('stopping after the current minute');
    abort.abort();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const summary = await runDemo({
    config,
    calendar,
    log,
    speed: parseSpeed(values.speed as string | undefined),
    source,
    print: (line) => process.stdout.write(line + '\n'),
    signal: abort.signal,
  });
  const rejected = Object.entries(summary.rejected).map(([c, n]) => `${c}=${n}`).join(' ') || 'none';
  process.stdout.write(
    `done: ${summary.days} simulated day(s), ${summary.events.toLocaleString('en-US')} events, ${summary.barsClosed} bar closes, ${summary.scores.toLocaleString('en-US')} scores, rejected: ${rejected}, ${summary.wallSeconds.toFixed(1)} s\n`,
  );
  return 0;
}

async function cmdSimulate(args: string[]): Promise<number> {
  const { values } = parse(args, {
    symbols: { type: 'string' },
    days: { type: 'string' },
    seed: { type: 'string' },
    start: { type: 'string' },
    out: { type: 'string' },
    format: { type: 'string' },
    'trades-per-day': { type: 'string' },
    'snapshot-share': { type: 'string' },
  });
  const out = values.out as string | undefined;
  if (out === undefined) throw new UsageError('simulate needs --out DIR');
  const format = (values.format as string | undefined) ?? 'arrow';
  if (format !== 'arrow' && format !== 'jsonl' && format !== 'csv') throw new UsageError('--format must be arrow, jsonl or csv');
  const config = configFrom(values, {
    simulator: {
      symbols: num(values.symbols as string | undefined, 'symbols'),
      days: num(values.days as string | undefined, 'days'),
      seed: num(values.seed as string | undefined, 'seed'),
      start: values.start as string | undefined,
      tradesPerDay: num(values['trades-per-day'] as string | undefined, 'trades-per-day'),
      snapshotShare: num(values['snapshot-share'] as string | undefined, 'snapshot-share'),
    },
  });
  if (config.simulator.days < 1) throw new UsageError('--days must be at least 1');
  const calendar = TradingCalendar.fromConfig(config.market);
  const { MarketSimulator } = await import('./ingest/simulator/market.js');
  const { writeSimulation } = await import('./ingest/simulator/write.js');
  const sim = new MarketSimulator(config.simulator, calendar);
  const elapsed = stopwatch();
  const summary = await writeSimulation(sim, out, format, (line) => process.stderr.write(line + '\n'), config.bars.label);
  process.stdout.write(
    `simulated ${summary.symbols} symbols x ${summary.days} trading days (seed ${config.simulator.seed}): ${summary.ticks.toLocaleString('en-US')} ticks, ${summary.bars.toLocaleString('en-US')} 1-minute bars -> ${out} in ${(elapsed() / 1000).toFixed(1)} s\n`,
  );
  return 0;
}

async function cmdFeatures(args: string[]): Promise<number> {
  const { values } = parse(args, {
    input: { type: 'string', multiple: true },
    freq: { type: 'string', multiple: true },
    out: { type: 'string' },
    format: { type: 'string' },
    'lateness-ms': { type: 'string' },
    reference: { type: 'string' },
  });
  const inputs = (values.input as string[] | undefined) ?? [];
  if (inputs.length === 0) throw new UsageError('features needs at least one --input FILE|DIR');
  const out = values.out as string | undefined;
  if (out === undefined) throw new UsageError('features needs --out DIR');
  const format = (values.format as string | undefined) ?? 'arrow';
  if (format !== 'arrow' && format !== 'jsonl' && format !== 'csv') throw new UsageError('--format must be arrow, csv or jsonl');
  const config = configFrom(values, {
    features: {
      freqs: parseFreqs(values.freq as string[] | undefined),
      allowedLatenessMs: num(values['lateness-ms'] as string | undefined, 'lateness-ms'),
    },
    reference: { path: values.reference as string | undefined },
  });
  const calendar = TradingCalendar.fromConfig(config.market);
  const { extractFeatures } = await import('./features/extract.js');
  const reference = await referenceOf(config);
  mkdirSync(out, { recursive: true });
  const elapsed = stopwatch();
  const s = await extractFeatures({
    inputs,
    outDir: out,
    freqs: [...config.features.freqs],
    format,
    calendar,
    allowedLatenessMs: config.features.allowedLatenessMs,
    dedupWindow: config.features.dedupWindow,
    features: config.features,
    barLabel: config.bars.label,
    reference,
  });
  if (s.noReference > 0) process.stderr.write(`features: W_NO_REFERENCE: ${s.noReference} symbol-day(s) traded without a reference record (e.g. ${s.noReferenceExamples.slice(0, 3).join(', ')}); their limits come from the last price before the day (README "Reference data")\n`);
  const rejected = Object.entries(s.rejected).map(([c, n]) => `${c}=${n}`).join(' ') || 'none';
  const closes = Object.entries(s.barsClosed).map(([f, n]) => `${f}: ${n} closes, ${s.rows[f as Freq] ?? 0} rows`).join('; ');
  process.stdout.write(
    `features: ${s.inputs.length} file(s), ${s.ticks.toLocaleString('en-US')} ticks, ${s.oneMinuteBars.toLocaleString('en-US')} 1-minute bars, ${s.symbols} symbols; ${closes}; rejected: ${rejected} -> ${out} in ${(elapsed() / 1000).toFixed(1)} s\n`,
  );
  return 0;
}

/** The reference book of reference.path (--reference), or undefined when none is configured. */
async function referenceOf(config: Readonly<Config>): Promise<import('./market/reference.js').ReferenceBook | undefined> {
  if (config.reference.path === '') return undefined;
  const { readReference } = await import('./ingest/reference-codec.js');
  return readReference(config.reference.path);
}

/** The daily panel with its industry and size taken from the reference data (train and evaluate with --reference). */
async function dailyWithReference(path: string, config: Readonly<Config>): Promise<import('./model/labels.js').DailyPanel> {
  const { readDailyCsv, withReferenceExposures } = await import('./model/labels.js');
  const panel = readDailyCsv(path);
  const reference = await referenceOf(config);
  return reference === undefined ? panel : withReferenceExposures(panel, reference);
}

function oneOf<T extends string>(value: string | undefined, allowed: readonly T[], fallback: T, flag: string): T {
  if (value === undefined) return fallback;
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new UsageError(`--${flag} must be one of ${allowed.join(', ')}, got "${value}"`);
}

async function cmdTrain(args: string[]): Promise<number> {
  const { values } = parse(args, {
    features: { type: 'string' },
    daily: { type: 'string' },
    freq: { type: 'string' },
    out: { type: 'string' },
    arch: { type: 'string' },
    head: { type: 'string' },
    pooling: { type: 'string' },
    loss: { type: 'string' },
    epochs: { type: 'string' },
    patience: { type: 'string' },
    lr: { type: 'string' },
    hidden: { type: 'string' },
    layers: { type: 'string' },
    dropout: { type: 'string' },
    seed: { type: 'string' },
    horizon: { type: 'string' },
    label: { type: 'string' },
    backend: { type: 'string' },
    orthogonal: { type: 'boolean' },
    seeds: { type: 'string' },
    window: { type: 'string' },
    step: { type: 'string' },
    reference: { type: 'string' },
  });
  const str = (k: string): string | undefined => values[k] as string | undefined;
  for (const required of ['features', 'daily', 'out']) if (str(required) === undefined) throw new UsageError(`train needs --${required}`);
  const { ARCHS, HEADS, POOLINGS, DEFAULT_MODEL_SPEC } = await import('./model/architecture.js');
  const { DEFAULT_TRAIN_OPTIONS } = await import('./model/train.js');
  const freq = oneOf(str('freq'), ['10m', '30m'] as const, '10m', 'freq');
  const config = configFrom(values, { reference: { path: str('reference') } });
  const log = createLogger(config.log.level);
  const { runTrain } = await import('./model/train-command.js');
  const abort = new AbortController();
  process.once('SIGINT', () => {
    log.warn('interrupted: finishing the current date, then saving the best epoch so far');
    abort.abort();
  });
  const { meta, result, windows } = await runTrain(
    {
      features: str('features') as string,
      daily: str('daily') as string,
      freq,
      out: str('out') as string,
      T: config.features.sequenceLength[freq] ?? (freq === '10m' ? 120 : 40),
      spec: {
        arch: oneOf(str('arch'), ARCHS, DEFAULT_MODEL_SPEC.arch, 'arch'),
        head: oneOf(str('head'), HEADS, DEFAULT_MODEL_SPEC.head, 'head'),
        pooling: oneOf(str('pooling'), POOLINGS, DEFAULT_MODEL_SPEC.pooling, 'pooling'),
        hidden: num(str('hidden'), 'hidden') ?? DEFAULT_MODEL_SPEC.hidden,
        layers: num(str('layers'), 'layers') ?? DEFAULT_MODEL_SPEC.layers,
        dense: DEFAULT_MODEL_SPEC.dense,
        dropout: num(str('dropout'), 'dropout') ?? DEFAULT_MODEL_SPEC.dropout,
        seed: num(str('seed'), 'seed') ?? DEFAULT_MODEL_SPEC.seed,
      },
      train: {
        loss: oneOf(str('loss'), ['ic', 'mse'] as const, DEFAULT_TRAIN_OPTIONS.loss, 'loss'),
        learningRate: num(str('lr'), 'lr') ?? DEFAULT_TRAIN_OPTIONS.learningRate,
        maxEpochs: num(str('epochs'), 'epochs') ?? DEFAULT_TRAIN_OPTIONS.maxEpochs,
        patience: num(str('patience'), 'patience') ?? DEFAULT_TRAIN_OPTIONS.patience,
        validationShare: DEFAULT_TRAIN_OPTIONS.validationShare,
        seed: num(str('seed'), 'seed') ?? DEFAULT_TRAIN_OPTIONS.seed,
      },
      horizon: num(str('horizon'), 'horizon') ?? 5,
      label: oneOf(str('label'), ['raw', 'risk-adjusted'] as const, 'raw', 'label'),
      minCoverage: config.features.minCoverage,
      zClip: config.features.zClip,
      backend: oneOf(str('backend'), ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const, 'auto', 'backend'),
      orthogonal: values.orthogonal === true,
      seeds: num(str('seeds'), 'seeds') ?? 1,
      window: num(str('window'), 'window'),
      step: num(str('step'), 'step'),
      reference: await referenceOf(config),
      calendar: TradingCalendar.fromConfig(config.market),
    },
    log,
    abort.signal,
  );
  process.stdout.write(
    `trained ${meta.name} (${meta.architecture.arch}/${meta.architecture.head}/${meta.architecture.pooling}, ${meta.freq}, T=${meta.T}${meta.ensemble === undefined ? '' : `, ensemble of ${meta.ensemble.members.length} seeds`}) on ${meta.backend.name}: ${
      windows === undefined
        ? `best validation IC ${result.bestValidationIc.toFixed(4)} at epoch ${result.bestEpoch} of ${result.epochs.length}`
        : `${windows.length} rolling windows, validation IC ${windows.map((w) => w.validationIc.toFixed(3)).join(' ')}`
    }${result.interrupted ? ' (interrupted)' : ''}, ${Math.round(result.samplesPerSecond)} samples/s -> ${str('out')}\n`,
  );
  return 0;
}

async function cmdScore(args: string[]): Promise<number> {
  const { values } = parse(args, { model: { type: 'string' }, features: { type: 'string' }, out: { type: 'string' }, daily: { type: 'string' }, reference: { type: 'string' }, engine: { type: 'string' } });
  const [model, features, out] = ['model', 'features', 'out'].map((k) => values[k] as string | undefined);
  if (model === undefined || features === undefined || out === undefined) throw new UsageError('score needs --model, --features and --out');
  const config = configFrom(values, { daemon: { engine: engineFlag(values.engine) }, reference: { path: values.reference as string | undefined } });
  const log = createLogger(config.log.level);
  const dailyPath = values.daily as string | undefined;
  const { readDailyCsv } = await import('./model/labels.js');
  const { crossSectionInputs } = await import('./model/cross-section.js');
  const { scoreModel } = await import('./model/score.js');
  const { engineOptionsOf } = await import('./model/predictor.js');
  const inputs = crossSectionInputs(dailyPath === undefined ? undefined : readDailyCsv(dailyPath), await referenceOf(config));
  const s = await scoreModel(model, features, out, config.features.minCoverage, inputs, log, false, engineOptionsOf(config.daemon));
  process.stdout.write(`scored ${s.rows.toLocaleString('en-US')} rows over ${s.bars} bars (${s.dayCloses} day closes) with ${s.model} ${s.version} on ${s.engine}/${s.backend} -> ${out}\n`);
  return 0;
}

async function cmdEvaluate(args: string[]): Promise<number> {
  const { values } = parse(args, {
    scores: { type: 'string' },
    model: { type: 'string' },
    features: { type: 'string' },
    returns: { type: 'string' },
    exposures: { type: 'string' },
    out: { type: 'string' },
    horizon: { type: 'string' },
    title: { type: 'string' },
    reference: { type: 'string' },
  });
  const [given, model, features, returns, out] = ['scores', 'model', 'features', 'returns', 'out'].map((k) => values[k] as string | undefined);
  if (returns === undefined || out === undefined || (given === undefined) === (model === undefined || features === undefined)) {
    throw new UsageError('evaluate needs --returns, --out and either --scores FILE or --model M with --features DIR');
  }
  let scores = given;
  if (scores === undefined) {
    // Evaluation reads saved predictions: score first, into the output folder, then evaluate that file.
    const config = configFrom(values, { reference: { path: values.reference as string | undefined } });
    const { scoreModel } = await import('./model/score.js');
    const { crossSectionInputs } = await import('./model/cross-section.js');
    mkdirSync(out, { recursive: true });
    scores = `${out}/scores.arrow`;
    const { engineOptionsOf } = await import('./model/predictor.js');
    const inputs = crossSectionInputs(await dailyWithReference(returns, config), await referenceOf(config));
    await scoreModel(model as string, features as string, scores, config.features.minCoverage, inputs, createLogger(config.log.level), true, engineOptionsOf(config.daemon));
  }
  const { evaluate } = await import('./eval/evaluate.js');
  const m = evaluate({ scores, returns, exposures: values.exposures as string | undefined, out, horizon: num(values.horizon as string | undefined, 'horizon') ?? 5, title: (values.title as string | undefined) ?? model ?? scores, metrics: {} });
  process.stdout.write(
    `${m.dates} weeks: IC ${m.ic.toFixed(4)}, Rank IC ${m.rankIc.toFixed(4)}, ICIR ${m.icir.toFixed(2)}, win ${(m.winRate * 100).toFixed(0)}%, long ${(m.longExcess * 100).toFixed(2)}%, short ${(m.shortExcess * 100).toFixed(2)}%, autocorr ${m.autocorrelation.toFixed(2)}, turnover ${(m.turnover * 100).toFixed(0)}%${
      m.neutral === undefined ? '' : `; industry + size neutral: IC ${m.neutral.ic.toFixed(4)}, ICIR ${m.neutral.icir.toFixed(2)}, long ${(m.neutral.longExcess * 100).toFixed(2)}%`
    } -> ${out}/metrics.json, table.md, report.html\n`,
  );
  return 0;
}

async function cmdBacktest(args: string[]): Promise<number> {
  const { values } = parse(args, {
    scores: { type: 'string', multiple: true },
    name: { type: 'string', multiple: true },
    model: { type: 'string' },
    features: { type: 'string' },
    daily: { type: 'string' },
    reference: { type: 'string' },
    benchmark: { type: 'string' },
    out: { type: 'string' },
    deviation: { type: 'string' },
    turnover: { type: 'string' },
    cost: { type: 'string' },
    'factor-bound': { type: 'string' },
    exposures: { type: 'string' },
    'exposure-bound': { type: 'string' },
    neutral: { type: 'string', multiple: true },
    rebalance: { type: 'string' },
    'no-industry-neutral': { type: 'boolean' },
    'no-size-neutral': { type: 'boolean' },
    title: { type: 'string' },
  });
  const str = (k: string): string | undefined => values[k] as string | undefined;
  const given = (values.scores as string[] | undefined) ?? [];
  const [daily, benchmark, out] = [str('daily'), str('benchmark'), str('out')];
  if (daily === undefined || benchmark === undefined || out === undefined || (given.length === 0) === (str('model') === undefined || str('features') === undefined)) {
    throw new UsageError('backtest needs --daily, --reference, --benchmark, --out and either --scores FILE (repeatable) or --model M with --features DIR');
  }
  const config = configFrom(values, { reference: { path: str('reference') } });
  const reference = await referenceOf(config);
  if (reference === undefined) throw new UsageError('backtest needs --reference FILE|DIR (the benchmark weights, industry, size, limits, suspensions)');
  const { readFileSync: read, mkdirSync: mkdir } = await import('node:fs');
  const { basename } = await import('node:path');
  const { readDailyCsv } = await import('./model/labels.js');
  const { readScores } = await import('./eval/evaluate.js');
  const { backtest, readExtraExposures, DEFAULT_BACKTEST_CONFIG } = await import('./eval/backtest.js');
  const { writeBacktest } = await import('./eval/backtest-report.js');
  mkdir(out, { recursive: true });
  const variants: { name: string; path: string }[] = given.map((path, i) => ({ name: (values.name as string[] | undefined)?.[i] ?? basename(path).replace(/\.[^.]+$/, ''), path }));
  if (variants.length === 0) {
    // Score first, as evaluate does: day-close scores of the model over the features.
    const { scoreModel } = await import('./model/score.js');
    const { crossSectionInputs } = await import('./model/cross-section.js');
    const { engineOptionsOf } = await import('./model/predictor.js');
    const path = `${out}/scores.arrow`;
    await scoreModel(str('model') as string, str('features') as string, path, config.features.minCoverage, crossSectionInputs(readDailyCsv(daily), reference), createLogger(config.log.level), true, engineOptionsOf(config.daemon));
    variants.push({ name: basename(str('model') as string), path });
  }
  const rebalanceText = str('rebalance') ?? 'last';
  const rebalance = rebalanceText === 'last' ? 'last' : Number(rebalanceText);
  if (rebalance !== 'last' && !(Number.isInteger(rebalance) && rebalance >= 1 && rebalance <= 5)) throw new UsageError('--rebalance must be last or a weekday 1-5 (Monday = 1)');
  const cfg = {
    ...DEFAULT_BACKTEST_CONFIG,
    benchmark,
    industryNeutral: values['no-industry-neutral'] !== true,
    sizeNeutral: values['no-size-neutral'] !== true,
    factorBound: num(str('factor-bound'), 'factor-bound') ?? DEFAULT_BACKTEST_CONFIG.factorBound,
    extraBound: num(str('exposure-bound'), 'exposure-bound') ?? DEFAULT_BACKTEST_CONFIG.extraBound,
    neutral: (values.neutral as string[] | undefined) ?? [],
    turnoverCap: num(str('turnover'), 'turnover') ?? DEFAULT_BACKTEST_CONFIG.turnoverCap,
    cost: num(str('cost'), 'cost') ?? DEFAULT_BACKTEST_CONFIG.cost,
    rebalance: rebalance as 'last' | number,
  };
  const deviations = (str('deviation') ?? '0.01,0.02').split(',').map((x) => num(x.trim(), 'deviation') as number);
  const panel = readDailyCsv(daily);
  const exposuresPath = str('exposures');
  const extra = exposuresPath === undefined ? undefined : readExtraExposures(exposuresPath, read(exposuresPath, 'utf8'));
  const elapsed = stopwatch();
  const runs = [];
  for (const v of variants) {
    const scores = readScores(v.path);
    for (const deviation of deviations) {
      const run = await backtest(scores, panel, reference, { ...cfg, deviation }, extra);
      runs.push({ variant: v.name, deviation, run });
      const m = run.metrics;
      process.stdout.write(`${v.name} ±${(deviation * 100).toFixed(0)}%: annualised excess ${(m.annualExcess * 100).toFixed(2)}%, tracking error ${(m.trackingError * 100).toFixed(2)}%, IR ${m.informationRatio.toFixed(2)}, max drawdown ${(m.maxDrawdown * 100).toFixed(2)}%, turnover ${(m.meanTurnover * 100).toFixed(1)}%, ${m.rebalances} rebalances (${m.relaxedWeeks} relaxed)\n`);
    }
  }
  const title = str('title') ?? `Index-enhanced portfolio against ${benchmark}`;
  writeBacktest(out, title, runs, cfg);
  process.stdout.write(read(`${out}/table.md`, 'utf8').split('\n').slice(2).join('\n'));
  process.stdout.write(`-> ${out}/metrics.json, table.md, report.html in ${(elapsed() / 1000).toFixed(1)} s\n`);
  return 0;
}

async function cmdTargets(args: string[]): Promise<number> {
  const { values } = parse(args, {
    scores: { type: 'string' },
    daily: { type: 'string' },
    reference: { type: 'string' },
    out: { type: 'string' },
    benchmark: { type: 'string' },
    deviation: { type: 'string' },
    turnover: { type: 'string' },
    'factor-bound': { type: 'string' },
    rebalance: { type: 'string' },
    'no-industry-neutral': { type: 'boolean' },
    'no-size-neutral': { type: 'boolean' },
    'model-version': { type: 'string' },
  });
  const str = (k: string): string | undefined => values[k] as string | undefined;
  const [scoresPath, daily, out] = [str('scores'), str('daily'), str('out')];
  if (scoresPath === undefined || daily === undefined || out === undefined) throw new UsageError('targets needs --scores, --daily, --reference and --out');
  const rebalanceText = str('rebalance');
  const config = configFrom(values, {
    reference: { path: str('reference') },
    portfolio: {
      benchmark: str('benchmark'),
      deviation: num(str('deviation'), 'deviation'),
      turnoverCap: num(str('turnover'), 'turnover'),
      factorBound: num(str('factor-bound'), 'factor-bound'),
      rebalance: rebalanceText === undefined || rebalanceText === 'last' || rebalanceText === 'daily' ? rebalanceText : Number(rebalanceText),
      industryNeutral: values['no-industry-neutral'] === true ? false : undefined,
      sizeNeutral: values['no-size-neutral'] === true ? false : undefined,
    },
  });
  const reference = await referenceOf(config);
  if (reference === undefined) throw new UsageError('targets needs --reference FILE|DIR (the benchmark weights, industry, size, suspensions)');
  if (config.portfolio.benchmark === '') throw new UsageError('targets needs a benchmark: --benchmark INDEX or portfolio.benchmark');
  const { readDailyCsv } = await import('./model/labels.js');
  const { readScores } = await import('./eval/evaluate.js');
  const { offlineTargets } = await import('./eval/live-targets.js');
  const { targetsTable } = await import('./sink/targets.js');
  const { TableWriter } = await import('./ingest/table-writer.js');
  const elapsed = stopwatch();
  const decisions = await offlineTargets(readScores(scoresPath), readDailyCsv(daily), reference, { ...config.portfolio, extraBound: 0, neutral: [] }, TradingCalendar.fromConfig(config.market), str('model-version') ?? '');
  const writer = new TableWriter(out, 'arrow');
  for (const t of decisions) {
    writer.write(targetsTable(t));
    const held = t.weights.filter((w) => w > 0).length;
    process.stdout.write(`${t.date} ${t.kind}: ${held} names held of ${t.symbols.length}, turnover ${(t.turnover * 100).toFixed(1)}%${t.relaxed.length > 0 ? `, relaxed ${t.relaxed.join(', ')}` : ''}\n`);
  }
  await writer.close();
  process.stdout.write(`${decisions.length} decisions -> ${out} in ${(elapsed() / 1000).toFixed(1)} s\n`);
  return 0;
}

function list(v: unknown): string[] | undefined {
  return typeof v === 'string' ? v.split(',').map((x) => x.trim()).filter((x) => x !== '') : undefined;
}

async function cmdServe(args: string[]): Promise<number> {
  const { values } = parse(args, { brokers: { type: 'string' }, models: { type: 'string' }, 'http-port': { type: 'string' }, 'checkpoint-dir': { type: 'string' }, engine: { type: 'string' } });
  const config = configFrom(values, {
    kafka: { brokers: list(values.brokers) },
    daemon: {
      models: list(values.models),
      httpPort: num(values['http-port'] as string | undefined, 'http-port'),
      checkpointDir: values['checkpoint-dir'] as string | undefined,
      engine: engineFlag(values.engine),
    },
  });
  const log = createLogger(config.log.level);
  const calendar = TradingCalendar.fromConfig(config.market);
  const { serve } = await import('./daemon/serve.js');
  const { LiveClock } = await import('./market/clock.js');
  const { Failpoints, FAILPOINTS_ENV } = await import('./daemon/failpoints.js');
  const code = await serve({ config, calendar, log, clock: new LiveClock(), failpoints: new Failpoints(process.env[FAILPOINTS_ENV]) });
  // kafkajs may leave sockets closing: the daemon has stopped, the process ends here.
  process.exit(code);
}

function engineFlag(v: unknown): 'auto' | 'onnx' | 'tfjs' | undefined {
  return v === undefined ? undefined : oneOf(v as string, ['auto', 'onnx', 'tfjs'] as const, 'auto', 'engine');
}

async function cmdExport(args: string[]): Promise<number> {
  const { values } = parse(args, { model: { type: 'string' }, format: { type: 'string' } });
  const model = values.model as string | undefined;
  if (model === undefined) throw new UsageError('export needs --model DIR');
  oneOf(values.format as string | undefined, ['onnx'] as const, 'onnx', 'format');
  const { exportOnnx } = await import('./model/onnx/export.js');
  const { compareEngines, compareSteps } = await import('./model/onnx/compare.js');
  const files = exportOnnx(model);
  const { statSync } = await import('node:fs');
  for (const f of files) process.stdout.write(`wrote ${f} (${Math.round(statSync(f).size / 1024)} kB)\n`);
  const diff = await compareEngines(model, 256);
  process.stdout.write(`onnx and tfjs engines on ${diff.n} random sequences: max |difference| ${diff.maxAbs.toExponential(2)} (tolerance ${diff.tolerance})\n`);
  if (diff.maxAbs > diff.tolerance) {
    process.stderr.write('factorstream export: the engines disagree beyond the tolerance; do not serve this graph\n');
    return 1;
  }
  for (const engine of ['onnx', 'tfjs'] as const) {
    const steps = await compareSteps(model, 256, engine);
    if (steps === undefined) continue;
    process.stdout.write(`${engine}: prefix + step against the whole window on ${steps.n} random sequences: max |difference| ${steps.maxAbs.toExponential(2)} (tolerance ${steps.tolerance})\n`);
    if (steps.maxAbs > steps.tolerance) {
      process.stderr.write('factorstream export: incremental scoring differs from the whole window beyond the tolerance; do not serve this graph\n');
      return 1;
    }
  }
  return 0;
}

async function cmdDoctor(args: string[]): Promise<number> {
  const { values } = parse(args, { brokers: { type: 'string' }, 'no-kafka': { type: 'boolean' }, json: { type: 'boolean' }, 'kafka-timeout-ms': { type: 'string' } });
  const config = configFrom(values, { kafka: { brokers: list(values.brokers) }, log: { level: 'silent' } });
  const { doctor, formatChecks } = await import('./daemon/doctor.js');
  const checks = await doctor(config, { kafka: values['no-kafka'] !== true, kafkaTimeoutMs: num(values['kafka-timeout-ms'] as string | undefined, 'kafka-timeout-ms') ?? 3_000 });
  process.stdout.write(values.json === true ? JSON.stringify({ version: VERSION, checks }, null, 1) + '\n' : `factorstream ${VERSION} doctor\n${formatChecks(checks)}\n`);
  return checks.some((c) => c.required && !c.ok) ? 1 : 0;
}

async function cmdReconcile(args: string[]): Promise<number> {
  const { values } = parse(args, {
    input: { type: 'string', multiple: true },
    archive: { type: 'string' },
    day: { type: 'string', multiple: true },
    tolerance: { type: 'string' },
    brokers: { type: 'string' },
    models: { type: 'string' },
    'work-dir': { type: 'string' },
    json: { type: 'boolean' },
    'timeout-ms': { type: 'string' },
    reference: { type: 'string' },
  });
  const days = values.day as string[] | undefined;
  for (const d of days ?? []) if (!/^\d{4}-\d{2}-\d{2}$/.test(d)) throw new UsageError(`--day must be YYYY-MM-DD, got "${d}"`);
  const config = configFrom(values, { kafka: { brokers: list(values.brokers) }, daemon: { models: list(values.models) }, reference: { path: values.reference as string | undefined } });
  const log = createLogger(config.log.level);
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const given = values['work-dir'] as string | undefined;
  const workDir = given ?? mkdtempSync(join(tmpdir(), 'factorstream-reconcile-'));
  const tolerance = num(values.tolerance as string | undefined, 'tolerance') ?? 1e-6;
  const { reconcile, formatReconciliation } = await import('./daemon/reconcile.js');
  try {
    const inputs = values.input as string[] | undefined;
    const r = await reconcile({
      config,
      calendar: TradingCalendar.fromConfig(config.market),
      log,
      inputs: inputs === undefined || inputs.length === 0 ? undefined : inputs,
      archive: values.archive as string | undefined,
      days,
      tolerance,
      workDir,
      timeoutMs: num(values['timeout-ms'] as string | undefined, 'timeout-ms') ?? 120_000,
    });
    process.stdout.write(values.json === true ? JSON.stringify(r, null, 1) + '\n' : formatReconciliation(r, tolerance) + '\n');
    return r.ok ? 0 : 1;
  } finally {
    if (given === undefined) rmSync(workDir, { recursive: true, force: true });
  }
}

async function cmdReplay(args: string[]): Promise<number> {
  const { values } = parse(args, {
    input: { type: 'string', multiple: true },
    brokers: { type: 'string' },
    format: { type: 'string' },
    speed: { type: 'string' },
    'arrow-rows': { type: 'string' },
    reference: { type: 'string' },
  });
  const inputs = (values.input as string[] | undefined) ?? [];
  if (inputs.length === 0 && values.reference === undefined) throw new UsageError('replay needs --input FILE|DIR (or --reference FILE|DIR alone)');
  const format = oneOf(values.format as string | undefined, ['json', 'arrow'] as const, 'json', 'format');
  const config = configFrom(values, { kafka: { brokers: list(values.brokers) }, reference: { path: values.reference as string | undefined } });
  const reference = await referenceOf(config);
  const log = createLogger(config.log.level);
  const { expandInputs } = await import('./ingest/file-source.js');
  const { replay } = await import('./ingest/replay.js');
  const { kafkaConnection } = await import('./ingest/kafka-client.js');
  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort());
  const s = await replay({
    inputs: expandInputs(inputs),
    connection: kafkaConnection(config.kafka),
    ticksTopic: config.kafka.ticksTopic,
    barsTopic: config.kafka.barsTopic,
    format,
    speed: values.speed === undefined ? 'max' : parseSpeed(values.speed as string),
    arrowRows: num(values['arrow-rows'] as string | undefined, 'arrow-rows') ?? 5_000,
    partitions: config.kafka.topicPartitions,
    barLabel: config.bars.label,
    reference: reference?.records(),
    referenceTopic: config.kafka.referenceTopic,
    calendar: TradingCalendar.fromConfig(config.market),
    log,
    signal: abort.signal,
  });
  process.stdout.write(
    `replayed ${s.reference > 0 ? `${s.reference.toLocaleString('en-US')} reference records to ${config.kafka.referenceTopic}, ` : ''}${s.ticks.toLocaleString('en-US')} ticks and ${s.bars.toLocaleString('en-US')} bars in ${s.messages.toLocaleString('en-US')} ${format} messages to ${config.kafka.brokers.join(',')} in ${s.seconds.toFixed(1)} s (${s.rejected} input rows rejected)\n`,
  );
  return 0;
}

function usage(code: number): number {
  (code === 0 ? process.stdout : process.stderr).write(USAGE + '\n');
  return code;
}

/** What `factorstream <command> --help` adds to the command's lines of USAGE. */
const EXAMPLES: Readonly<Record<string, readonly string[]>> = {
  run: ['factorstream run --symbols 300 --days 2', 'factorstream run --speed max --source bars --freq 30m'],
  simulate: ['factorstream simulate --symbols 300 --days 20 --out data/sim --format arrow'],
  features: ['factorstream features --input data/sim/ticks --freq 10m,30m --out data/features --reference data/sim/reference.csv'],
  train: ['factorstream train --features data/features --daily data/sim/daily.csv --freq 30m --out models/gru-attn-30m --arch gru --head attention'],
  score: ['factorstream score --model models/demo-30m --features data/features --out data/scores.arrow'],
  export: ['factorstream export --model models/gru-attn-30m'],
  evaluate: ['factorstream evaluate --scores data/scores.arrow --returns data/sim/daily.csv --out data/eval'],
  backtest: ['factorstream backtest --scores data/scores.arrow --daily data/sim/daily.csv --reference data/sim/reference.csv --benchmark SIM-MID --out data/backtest'],
  targets: ['factorstream targets --scores data/scores.arrow --daily data/sim/daily.csv --reference data/sim/reference.csv --benchmark SIM-MID --out data/targets.arrow'],
  serve: ['factorstream serve --config /etc/factorstream/config.yaml', 'factorstream serve --brokers 127.0.0.1:9092 --models models/demo-10m,models/demo-30m --http-port 9464'],
  doctor: ['factorstream doctor --no-kafka', 'factorstream doctor --config /etc/factorstream/config.yaml --json'],
  reconcile: ['factorstream reconcile --config /etc/factorstream/config.yaml --day 2026-01-06', 'factorstream reconcile --input data/sim/ticks --archive data/scores --json'],
  replay: ['factorstream replay --input data/sim/ticks --reference data/sim/reference.csv --format arrow --speed max', 'factorstream replay --input data/sim/ticks --speed 60x'],
};

/** One command's lines of USAGE (its description and flags) and its examples; undefined for an unknown command. */
export function commandUsage(command: string): string | undefined {
  const lines = USAGE.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`  ${command} `));
  const examples = EXAMPLES[command];
  if (start < 0 || examples === undefined) return undefined;
  let end = start + 1;
  // Its continuation lines are indented further than a command's name.
  while (end < lines.length && /^ {3,}\S/.test(lines[end])) end++;
  return [`Usage: factorstream ${command} [flags]`, '', ...lines.slice(start, end), '', 'Examples:', ...examples.map((e) => `  ${e}`), '', 'Every config key can also be set with an environment variable FACTORSTREAM_<SECTION>_<KEY>', '(see README "Configuration"); flags win over the environment, which wins over --config.'].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  // `factorstream <command> --help` and `factorstream help <command>`: that command's flags and examples.
  const helpOf = command === 'help' ? rest[0] : rest.includes('--help') || rest.includes('-h') ? command : undefined;
  if (helpOf !== undefined) {
    const text = commandUsage(helpOf);
    if (text !== undefined) {
      process.stdout.write(text + '\n');
      return 0;
    }
    if (command === 'help') {
      process.stderr.write(`unknown command "${helpOf}"\n\n`);
      return usage(2);
    }
  }
  try {
    switch (command) {
      case 'run':
        return await cmdRun(rest);
      case 'simulate':
        return await cmdSimulate(rest);
      case 'features':
        return await cmdFeatures(rest);
      case 'train':
        return await cmdTrain(rest);
      case 'score':
        return await cmdScore(rest);
      case 'evaluate':
        return await cmdEvaluate(rest);
      case 'backtest':
        return await cmdBacktest(rest);
      case 'targets':
        return await cmdTargets(rest);
      case 'serve':
        return await cmdServe(rest);
      case 'replay':
        return await cmdReplay(rest);
      case 'reconcile':
        return await cmdReconcile(rest);
      case 'export':
        return await cmdExport(rest);
      case 'doctor':
        return await cmdDoctor(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        return usage(command === undefined ? 2 : 0);
      case '--version':
      case 'version':
        process.stdout.write(VERSION + '\n');
        return 0;
      default:
        process.stderr.write(`unknown command "${command}"\n\n`);
        return usage(2);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`factorstream ${command}: ${err.message}\n(see factorstream help)\n`);
      return 2;
    }
    process.stderr.write(`factorstream ${command}: ${(err as Error).message}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
