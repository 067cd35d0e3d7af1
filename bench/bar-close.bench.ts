/**
 * The bar-close step for a full cross-section: reduce every symbol's 1-minute sub-bars
 * into its bar and feature row, robust z-score across the cross-section, push into the
 * sequence store, and fill the [N, T, F] Float32Array batch a model would score.
 * Measured per 10-minute close over simulated days (the first day warms the store up).
 */
import { FeatureEngine } from '../src/features/engine.js';
import { FEATURE_COUNT } from '../src/features/feature-set.js';
import { copyTickRow, SymbolTable, TickBatch } from '../src/ingest/events.js';
import { MarketSimulator } from '../src/ingest/simulator/market.js';
import { feedTicks } from '../src/ingest/simulator/feed.js';
import { TradingCalendar } from '../src/market/calendar.js';
import { BarSchedule } from '../src/market/sessions.js';
import { fmt, now, percentile, type Benchmark, option } from './harness.js';

/**
 * Days replayed before measuring: the first days take each code path for the first time
 * (first bar ever, first day with a previous close, first volume history), and V8
 * compiles them while they run; steady state starts on the third day.
 */
const WARMUP_DAYS = 2;


export const barCloseBenchmark: Benchmark = {
  name: 'bar-close',
  description: 'Bar-close step for the whole cross-section: features, robust z-score, sequence push and [N, T, F] batch fill.',
  async run(args) {
    const symbolsN = option(args, 'symbols', 5000);
    const T = option(args, 'T', 120);
    const days = option(args, 'days', 4);
    const calendar = TradingCalendar.load();
    const sim = new MarketSimulator({ symbols: symbolsN, days, seed: 7, tradesPerDay: 200, snapshotShare: 0 }, calendar);
    const symbols = new SymbolTable(sim.symbols.names);
    const engine = new FeatureEngine({ calendar, symbols, freqs: ['10m'], allowedLatenessMs: 0, sequenceLength: { '10m': T }, onReject: () => undefined });
    const store = engine.sequences('10m');
    if (store === undefined) throw new Error('no sequence store');
    const batch = new Float32Array(symbolsN * T * FEATURE_COUNT);
    const mask = new Uint8Array(symbolsN * T * FEATURE_COUNT);
    const ids = Int32Array.from({ length: symbolsN }, (_, i) => i);
    const closeMs: number[] = [];
    const fillMs: number[] = [];
    let fillStart = 0;
    engine.onBarClose(() => {
      const t = now();
      store.fill(ids, symbolsN, batch, mask);
      fillMs.push(now() - t);
      fillStart = t;
    });
    const ctx = engine.context('simulator');
    const schedule = new BarSchedule('10m');
    // Generate the market first, so that the simulator's own garbage is not collected
    // inside the measured closes; then replay it minute by minute.
    const ticks = new TickBatch(1 << 20);
    const minuteEnds: { day: number; slot: number; end: number; d: number }[] = [];
    for (let d = 0; d < sim.days.length; d++) {
      for (const m of sim.generateDay(d)) {
        for (let i = 0; i < m.ticks.length; i++) copyTickRow(m.ticks, i, ticks);
        minuteEnds.push({ day: m.day, slot: m.slot, end: ticks.length, d });
      }
    }
    let from = 0;
    for (const { day, slot, end, d } of minuteEnds) {
      feedTicks(ticks, ctx, (b, a, z) => engine.ingestTicks(b, a, z, 'simulator'), from, end);
      from = end;
      if ((slot + 1) % schedule.minutes === 0) {
        // Close the bar explicitly (as the wall clock would) and time the whole step.
        const t = now();
        engine.advanceWatermark(schedule.closeAt(day, schedule.barOfSlot(slot)));
        if (fillStart >= t && d >= WARMUP_DAYS) closeMs.push(now() - t);
      }
    }
    const p50 = percentile(closeMs, 50);
    const p99 = percentile(closeMs, 99);
    const rows = [
      {
        symbols: fmt(symbolsN),
        T,
        F: FEATURE_COUNT,
        'closes measured': closeMs.length,
        'step p50, ms': fmt(p50, 1),
        'step p99, ms': fmt(p99, 1),
        'step max, ms': fmt(Math.max(...closeMs), 1),
        'of which batch fill p50, ms': fmt(percentile(fillMs, 50), 1),
      },
    ];
    return {
      rows,
      notes: [
        `Target: bar-close step <= 50 ms (${p99 <= 50 ? 'met' : 'missed'} at p99: ${fmt(p99, 1)} ms).`,
        `The batch is ${fmt((symbolsN * T * FEATURE_COUNT * 4) / 2 ** 20, 1)} MiB of float32 plus its mask; the fill is two block copies per symbol. Closes of the first ${WARMUP_DAYS} simulated days are not counted: they are V8 warm-up (one-time costs of 50-220 ms on the very first closes, while each path is compiled), which a long-running daemon pays once at start-up.`,
      ],
    };
  },
};
