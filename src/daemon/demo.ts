/**
 * The embedded default: an in-process simulated market drives the feature engine on a
 * simulated clock, paced at `speed` times real time, and each bar close prints a summary
 * line. No Kafka is needed. The daemon issue turns this into the scoring daemon; the
 * wiring (simulator -> checks -> aggregation -> bar close -> normalisation -> sequences)
 * is already the production path.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config.js';
import type { ErrorCode } from '../errors.js';
import type { TradingCalendar } from '../market/calendar.js';
import { SimulatedClock } from '../market/clock.js';
import { DAY_CLOSE, slotEndTimeOfDay } from '../market/sessions.js';
import { dayStart, dayToIso, toLocalIso } from '../market/time.js';
import { FeatureEngine, type BarCloseEvent } from '../features/engine.js';
import { F_RET, FEATURE_COUNT } from '../features/feature-set.js';
import { MarketSimulator } from '../ingest/simulator/market.js';
import { feedBars, feedTicks } from '../ingest/simulator/feed.js';
import type { Logger } from '../log.js';

export interface DemoOptions {
  config: Readonly<Config>;
  calendar: TradingCalendar;
  log: Logger;
  /** Simulated seconds per real second, or 'max' for as fast as possible. */
  speed: number | 'max';
  source: 'ticks' | 'bars';
  print: (line: string) => void;
  signal?: AbortSignal;
}

export interface DemoSummary {
  days: number;
  events: number;
  barsClosed: number;
  rejected: Partial<Record<ErrorCode, number>>;
  wallSeconds: number;
}

function pct(x: number): string {
  return `${x >= 0 ? '+' : ''}${(x * 100).toFixed(2)}%`;
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

export async function runDemo(opts: DemoOptions): Promise<DemoSummary> {
  const { config, calendar, log } = opts;
  const sim = new MarketSimulator(config.simulator, calendar);
  const started = performance.now();
  const engine = new FeatureEngine({
    calendar,
    symbols: sim.symbols,
    freqs: config.features.freqs,
    allowedLatenessMs: config.features.allowedLatenessMs,
    dedupWindow: config.features.dedupWindow,
    features: config.features,
    zClip: config.features.zClip,
    sequenceLength: config.features.sequenceLength,
    onReject: (r) => log.warn({ reject: r }, 'event rejected'),
  });
  const summary: DemoSummary = { days: 0, events: 0, barsClosed: 0, rejected: {}, wallSeconds: 0 };
  engine.onBarClose((e) => {
    summary.barsClosed++;
    opts.print(barCloseLine(e, sim.symbols.names, config.features.minCoverage));
  });
  const ctx = engine.context('simulator');
  const clock = new SimulatedClock(dayStart(sim.days[0]));
  const graceMs = config.features.allowedLatenessMs;
  const msPerMinute = opts.speed === 'max' ? 0 : 60_000 / opts.speed;
  log.info(
    { symbols: sim.universe.length, days: sim.days.length, seed: config.simulator.seed, speed: opts.speed, source: opts.source, freqs: config.features.freqs },
    'simulated market started',
  );
  const aborted = (): boolean => opts.signal?.aborted === true;
  for (let d = 0; d < sim.days.length && !aborted(); d++) {
    const gen = sim.generateDay(d);
    let tick = performance.now();
    while (true) {
      const next = gen.next();
      if (next.done === true) break;
      const m = next.value;
      if (opts.source === 'ticks') {
        summary.events += m.ticks.length;
        feedTicks(m.ticks, ctx, (b, from, to) => engine.ingestTicks(b, from, to, 'simulator'));
      } else {
        summary.events += m.bars.length;
        feedBars(m.bars, ctx, (b, from, to) => engine.ingestBars(b, from, to, 'simulator'));
      }
      // The wall clock closes bars of a quiet feed once it passes their end plus grace.
      clock.advanceTo(dayStart(m.day) + slotEndTimeOfDay(m.slot));
      engine.advanceWatermark(clock.now() - graceMs);
      if (msPerMinute > 0) {
        const wait = msPerMinute - (performance.now() - tick);
        if (wait > 0) await sleep(wait);
        tick = performance.now();
      } else if (m.slot % 30 === 29) {
        await sleep(0);
      }
      if (aborted()) break;
    }
    // End of the session: the wall clock passes 15:00 plus grace.
    clock.advanceTo(dayStart(sim.days[d]) + DAY_CLOSE + 1 + graceMs);
    engine.advanceWatermark(dayStart(sim.days[d]) + DAY_CLOSE + 1);
    summary.days++;
    log.info({ day: dayToIso(sim.days[d]), events: summary.events }, 'simulated day done');
  }
  for (const [code, n] of engine.rejected) summary.rejected[code] = n;
  summary.wallSeconds = (performance.now() - started) / 1000;
  return summary;
}
