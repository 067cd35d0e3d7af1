/**
 * The embedded default (`factorstream run`, the README's first command): an in-process
 * simulated market feeds the daemon's own pipeline (ScoringPipeline: the same decoding,
 * checks, aggregation, bar close, batched inference and score records as `serve`) on a
 * simulated clock paced at `speed` times real time. Each minute's ticks travel as one
 * Arrow message of a one-partition "topic", delivered at the minute's end, exactly as a
 * Kafka message would; the pipeline's wall-clock closes are alarms on the simulated clock,
 * fired as it moves, as serve's are on the live one. Bar closes and scores print to
 * stdout, scores go to the daily Arrow archive, and /metrics, /healthz and /readyz are
 * served as by the daemon. No Kafka is needed.
 */
import type { TargetWeights } from '../eval/live-targets.js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config.js';
import type { ErrorCode } from '../errors.js';
import type { TradingCalendar } from '../market/calendar.js';
import { SimulatedClock, stopwatch, systemClock } from '../market/clock.js';
import { DAY_CLOSE, slotEndTimeOfDay } from '../market/sessions.js';
import { dayStart, dayToIso, toLocalIso } from '../market/time.js';
import { ReferenceBook } from '../market/reference.js';
import type { BarCloseEvent } from '../features/engine.js';
import { F_RET, FEATURE_COUNT } from '../features/feature-set.js';
import { encodeBarsArrow, encodeTicksArrow } from '../ingest/arrow-codec.js';
import { CONTENT_TYPE_ARROW } from '../ingest/decode.js';
import { MarketSimulator } from '../ingest/simulator/market.js';
import type { Logger } from '../log.js';
import { ScoreArchive } from '../sink/archive.js';
import { HttpServer } from '../sink/http.js';
import { Metrics } from '../sink/metrics.js';
import { engineOptionsOf } from '../model/predictor.js';
import { setHeapGrowth } from './heap.js';
import { loadServedModels, type ServedModel } from './models.js';
import { ScoringPipeline, type ScoredClose } from './pipeline.js';

export interface DemoOptions {
  config: Readonly<Config>;
  calendar: TradingCalendar;
  log: Logger;
  /** Simulated seconds per real second, or 'max' for as fast as possible. */
  speed: number | 'max';
  source: 'ticks' | 'bars';
  print: (line: string) => void;
  signal?: AbortSignal;
  /** Serve /metrics, /healthz, /readyz on config.daemon.httpPort (default true). */
  http?: boolean;
}

export interface DemoSummary {
  days: number;
  events: number;
  barsClosed: number;
  scores: number;
  rejected: Partial<Record<ErrorCode, number>>;
  wallSeconds: number;
  httpPort: number;
}

function pct(x: number): string {
  return `${x >= 0 ? '+' : ''}${(x * 100).toFixed(2)}%`;
}

function hhmm(ts: number): string {
  return toLocalIso(ts).slice(0, 16).replace('T', ' ');
}

/** One line per bar close: what a person watching the market wants to see. */
export function barCloseLine(e: BarCloseEvent, names: readonly string[], minCoverage: number): string {
  const b = e.bars;
  let present = 0;
  let limits = 0;
  let best = -1;
  let worst = -1;
  let volume = 0;
  for (let s = 0; s < b.n; s++) {
    if (b.missing[s] === 1) continue;
    present++;
    volume += b.volume[s];
    if (b.limit[s] !== 0) limits++;
    if (b.featureMask[s * FEATURE_COUNT + F_RET] !== 1) continue;
    const r = b.features[s * FEATURE_COUNT + F_RET];
    if (best < 0 || r > b.features[best * FEATURE_COUNT + F_RET]) best = s;
    if (worst < 0 || r < b.features[worst * FEATURE_COUNT + F_RET]) worst = s;
  }
  let ready = 0;
  const seq = e.sequences;
  if (seq !== undefined) for (let s = 0; s < b.n; s++) if (seq.coverage(s) >= minCoverage) ready++;
  const time = toLocalIso(b.barEnd).slice(0, 16).replace('T', ' ');
  const movers =
    best >= 0
      ? ` | top ${names[best]} ${pct(Math.expm1(b.features[best * FEATURE_COUNT + F_RET]))} bottom ${names[worst]} ${pct(Math.expm1(b.features[worst * FEATURE_COUNT + F_RET]))}`
      : '';
  const window = seq === undefined ? '' : ` | window ${Math.min(seq.pushed, seq.T)}/${seq.T}, ${ready} ready to score`;
  return `${time} ${b.freq.padStart(3)} close: ${present}/${b.n} traded, ${b.n - present} missing, ${limits} at limit, volume ${Math.round(volume).toLocaleString('en-US')}${movers}${window}`;
}

/** One line per model and close: what a person watching the scores wants to see. */
export function scoreLine(c: ScoredClose): string {
  const r = c.records;
  let best = 0;
  let worst = 0;
  for (let i = 1; i < r.length; i++) {
    if (r[i].score > r[best].score) best = i;
    if (r[i].score < r[worst].score) worst = i;
  }
  const ends = r.length === 0 ? '' : ` | top ${r[best].symbol} z ${r[best].z.toFixed(2)}, bottom ${r[worst].symbol} z ${r[worst].z.toFixed(2)}`;
  return `${hhmm(r[0]?.barEnd ?? 0)} ${c.source.freq.padStart(3)} scores ${c.source.model}: ${r.length} scored, ${c.skipped} skipped (window coverage or universe), inference ${(c.inference.seconds * 1000).toFixed(0)} ms${ends}`;
}

/** One line per target-weight decision (portfolio.model). */
export function targetsLine(t: TargetWeights): string {
  const held = t.weights.reduce((n, w) => n + (w > 0 ? 1 : 0), 0);
  const relaxed = t.relaxed.length > 0 ? `, relaxed ${t.relaxed.join(', ')}` : '';
  return `${hhmm(t.barEnd)}     targets ${t.portfolio} (${t.model} vs ${t.benchmark}): ${t.kind}, ${held} names held of ${t.symbols.length}, turnover ${(t.turnover * 100).toFixed(1)}%${relaxed}`;
}

export async function runDemo(opts: DemoOptions): Promise<DemoSummary> {
  const { config, calendar, log } = opts;
  setHeapGrowth(config.daemon.heapGrowthPercent);
  const sim = new MarketSimulator(config.simulator, calendar);
  const elapsed = stopwatch();
  const metrics = new Metrics();
  const clock = new SimulatedClock(dayStart(sim.days[0]));
  let models: ServedModel[] = [];
  if (config.daemon.models.length > 0) {
    models = await loadServedModels(config.daemon.models, engineOptionsOf(config.daemon, log, 'daemon'), config.features.minCoverage, metrics, log);
  }
  const topic = opts.source === 'ticks' ? config.kafka.ticksTopic : config.kafka.barsTopic;
  const summary: DemoSummary = { days: 0, events: 0, barsClosed: 0, scores: 0, rejected: {}, wallSeconds: 0, httpPort: 0 };
  const pipeline = new ScoringPipeline({
    config,
    calendar,
    topics: { ticks: config.kafka.ticksTopic, bars: config.kafka.barsTopic, scores: config.kafka.scoresTopic, scoresBatch: config.kafka.scoresBatchTopic, deadLetter: config.kafka.deadLetterTopic, targets: config.kafka.targetsTopic },
    models,
    metrics,
    universe: sim.symbols.names,
    // The simulator's reference data, each day's put in before its first event (as a data desk publishes it before the open).
    reference: new ReferenceBook(),
    onNoReference: (symbol, day) => log.warn({ code: 'W_NO_REFERENCE', symbol, day: dayToIso(day) }, 'no reference record'),
    now: () => clock.now(),
    onBarClose: (e) => {
      summary.barsClosed++;
      opts.print(barCloseLine(e, pipeline.engine.symbols.names, config.features.minCoverage));
    },
  });
  // One partition that always holds everything there is: between minutes it is quiet, and
  // the wall clock closes its bars a grace period after their end, as on a live feed.
  pipeline.assign(topic, 0, 0, true);
  let alarm = -1;
  let alarmAt = Infinity;
  const rearm = (): void => {
    if (alarm >= 0) clock.cancelAlarm(alarm);
    alarm = -1;
    alarmAt = pipeline.nextAlarm();
    if (alarmAt < Infinity) {
      alarm = clock.setAlarm(alarmAt, () => {
        alarm = -1;
        pipeline.advanceTime();
        rearm();
      });
    }
  };
  // The in-process source hands over each minute as it is generated: never a backlog.
  metrics.consumerLag.set({ topic, partition: '0' }, 0);
  const archive = config.daemon.archiveDir === '' ? undefined : new ScoreArchive(config.daemon.archiveDir, String(systemClock.now()));
  let http: HttpServer | undefined;
  if (opts.http !== false) {
    http = new HttpServer({
      host: config.daemon.httpHost,
      port: config.daemon.httpPort,
      metrics,
      readiness: () => ({ ready: models.length > 0 || config.daemon.models.length === 0, checks: { modelsLoaded: models.length, source: 'simulator' } }),
      status: () => pipeline.status(),
    });
    summary.httpPort = await http.listen();
    log.info({ host: config.daemon.httpHost, port: summary.httpPort }, 'http listening (/ status page, /metrics, /healthz, /readyz)');
  }
  const publish = async (): Promise<void> => {
    if (!pipeline.hasOutput) return;
    const { closes, targets, batches } = await pipeline.takeOutputs();
    for (const c of closes) {
      summary.scores += c.records.length;
      pipeline.markPublished(c);
      archive?.append(c.records, c.source);
      opts.print(scoreLine(c));
    }
    for (const t of targets) {
      pipeline.markTargetsPublished(t);
      opts.print(targetsLine(t));
    }
    for (const b of batches) if (b.topic === config.kafka.deadLetterTopic) log.warn({ deadLetters: b.messages.length, codes: [...new Set(b.messages.map((m) => m.headers.error))] }, 'events rejected');
    pipeline.startPrefixes();
  };
  /** Moves the simulated clock to `to`, publishing what each alarm on the way closes when it closes it. */
  const runClockTo = async (to: number): Promise<void> => {
    while (alarmAt <= to) {
      clock.advanceTo(alarmAt);
      await publish();
    }
    clock.advanceTo(to);
  };
  const msPerMinute = opts.speed === 'max' ? 0 : 60_000 / opts.speed;
  log.info(
    { symbols: sim.universe.length, days: sim.days.length, seed: config.simulator.seed, speed: opts.speed, source: opts.source, freqs: config.features.freqs, models: models.map((m) => m.meta.name) },
    'simulated market started',
  );
  const aborted = (): boolean => opts.signal?.aborted === true;
  let offset = 0;
  try {
    for (let d = 0; d < sim.days.length && !aborted(); d++) {
      const gen = sim.generateDay(d);
      let minute = stopwatch();
      while (true) {
        const next = gen.next();
        if (next.done === true) break;
        const m = next.value;
        if (m.slot === 0) for (const r of sim.reference(d)) pipeline.engine.putReference(r);
        const rows = opts.source === 'ticks' ? m.ticks.length : m.bars.length;
        summary.events += rows;
        // The minute's events have all arrived by its end: the clock moves there first (firing
        // the wall-clock closes due before), then they are delivered.
        await runClockTo(dayStart(m.day) + slotEndTimeOfDay(m.slot));
        if (rows > 0) {
          const value = opts.source === 'ticks' ? encodeTicksArrow(m.ticks, sim.symbols) : encodeBarsArrow(m.bars, sim.symbols, 0, m.bars.length, config.bars.label);
          pipeline.ingest({ topic, partition: 0, offset: offset++, key: null, value: Buffer.from(value.buffer, value.byteOffset, value.byteLength), headers: { 'content-type': CONTENT_TYPE_ARROW } });
        }
        rearm();
        pipeline.refreshGauges();
        await publish();
        pipeline.prepareForNewSymbols();
        if (msPerMinute > 0) {
          const wait = msPerMinute - minute();
          if (wait > 0) await sleep(wait);
          minute = stopwatch();
        } else if (m.slot % 30 === 29) {
          await sleep(0);
        }
        if (aborted()) break;
      }
      // After the session the clock runs on until the day's last bars have closed.
      await runClockTo(dayStart(sim.days[d]) + DAY_CLOSE + 60_000);
      summary.days++;
      log.info({ day: dayToIso(sim.days[d]), events: summary.events, scores: summary.scores }, 'simulated day done');
    }
  } finally {
    archive?.close();
    await http?.close();
    // The models' sessions and inference workers.
    for (const m of pipeline.models) await m.scorer.dispose();
  }
  for (const [code, n] of pipeline.engine.rejected) summary.rejected[code] = n;
  summary.wallSeconds = elapsed() / 1000;
  return summary;
}
