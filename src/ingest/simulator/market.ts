/**
 * A seeded synthetic A-share market (DESIGN §9). It generates, minute by minute across
 * the whole universe, trade ticks or Level-1 snapshots (per symbol), the 1-minute bars
 * those trades make, and daily reference data, following the market rules of §3:
 * opening auction print at 09:25, continuous sessions, lunch break, no trades in the
 * closing call auction until its 15:00 print, U-shaped intraday volume, daily price
 * limits by board and ST status, suspensions, trade sides and quotes.
 *
 * Returns: r = beta * market + industry + alpha + idiosyncratic, where alpha carries two
 * planted signals (see SIGNALS below and docs/simulator.md). Results on this data are
 * synthetic, never market evidence.
 */
import type { TradingCalendar } from '../../market/calendar.js';
import { MORNING_SLOTS, SLOTS_PER_DAY } from '../../market/sessions.js';
import { limitFraction, roundToFen, type Board } from '../../market/symbols.js';
import type { ReferenceRecord } from '../../market/reference.js';
import { dayStart, dayToIso, hm, isoToDay } from '../../market/time.js';
import {
  BarBatch,
  copyTickRow,
  HAS_AMOUNT,
  HAS_QUOTE,
  HAS_SEQ,
  HAS_SIDES,
  HAS_TRADES,
  KIND_SNAPSHOT,
  KIND_TRADE,
  SIDE_BUY,
  SIDE_SELL,
  SIDE_UNKNOWN,
  SymbolTable,
  TickBatch,
} from '../events.js';
import { Rng } from './rng.js';

export const INDUSTRIES = [
  'Banks',
  'NonBankFinancials',
  'RealEstate',
  'Pharmaceuticals',
  'Electronics',
  'Computers',
  'FoodBeverage',
  'Machinery',
  'Chemicals',
  'Utilities',
] as const;

export interface SimParams {
  symbols: number;
  days: number;
  seed: number;
  /** First calendar date (YYYY-MM-DD); the first trading day on or after it starts. */
  start: string;
  /** Mean continuous-session trades per symbol per day. */
  tradesPerDay: number;
  /** Fraction of symbols whose tick feed is Level-1 snapshots instead of trades. */
  snapshotShare: number;
  snapshotIntervalSec: number;
  /** Probability that a symbol starts a suspension on a given day. */
  suspensionRate: number;
  /** Probability of a limit-size move for a symbol-day. */
  limitEventRate: number;
  /** Weekly excess return per standard deviation of the short-memory latent. */
  shortSignal: number;
  /** Weekly excess return per standard deviation of the long-memory latent. */
  longSignal: number;
}

export const DEFAULT_SIM_PARAMS: SimParams = {
  symbols: 300,
  days: 20,
  seed: 1,
  start: '2026-01-05',
  tradesPerDay: 400,
  snapshotShare: 0.1,
  snapshotIntervalSec: 3,
  suspensionRate: 0.002,
  limitEventRate: 0.004,
  shortSignal: 0.006,
  longSignal: 0.005,
};

/** How the planted signals are built; docs/simulator.md explains them with their strength. */
export const SIGNALS = {
  /** Days over which a latent's effect on returns is spread. */
  horizon: 5,
  /** The long-memory latent acts from this many days after it shows. */
  longDelay: 5,
  /** Latent days generated before the first simulated day (so early days carry signal too). */
  warmup: 10,
} as const;

/** The synthetic indexes of the reference data (see MarketSimulator.buildIndexes). */
export const SIM_INDEXES = ['SIM-LARGE', 'SIM-MID'] as const;

/** Float market value (CNY) of a simulated symbol: exp of its log size as daily.csv writes it (4 decimals), so both give one size. */
export function floatMarketValue(u: SimSymbol): number {
  return Math.exp(Number(u.logSize.toFixed(4)));
}

export interface SimSymbol {
  symbol: string;
  board: Board;
  industry: number;
  logSize: number;
  isST: boolean;
  feed: 'trade' | 'snapshot';
  beta: number;
  idioVol: number;
  liquidity: number;
}

export interface DailyRow {
  day: number;
  symbol: number;
  prevClose: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  amount: number;
  suspended: boolean;
}

/** One minute of output, in time order: ticks sorted by time, and the 1-minute bars ending at the minute's end. */
export interface SimMinute {
  day: number;
  slot: number;
  ticks: TickBatch;
  bars: BarBatch;
}

const BOARD_PREFIXES: Record<string, { board: Board; exchange: string; prefixes: string[] }> = {
  shMain: { board: 'main', exchange: 'SH', prefixes: ['600', '601', '603', '605'] },
  szMain: { board: 'main', exchange: 'SZ', prefixes: ['000', '001', '002', '003'] },
  chinext: { board: 'chinext', exchange: 'SZ', prefixes: ['300', '301'] },
  star: { board: 'star', exchange: 'SH', prefixes: ['688'] },
  bse: { board: 'bse', exchange: 'BJ', prefixes: ['430', '830', '870'] },
};
const BOARD_MIX: [keyof typeof BOARD_PREFIXES, number][] = [
  ['shMain', 0.4],
  ['szMain', 0.3],
  ['chinext', 0.15],
  ['star', 0.1],
  ['bse', 0.05],
];

/** Start of continuous minute j (0..236) as time of day. */
function minuteStart(j: number): number {
  return j < MORNING_SLOTS ? hm(9, 30) + j * 60_000 : hm(13, 0) + (j - MORNING_SLOTS) * 60_000;
}

const CONTINUOUS_MINUTES = 237;
const AUCTION_OPEN_TIME = hm(9, 25);
const CLOSE_TIME = hm(15, 0);

/** U-shaped intraday activity over the 237 continuous minutes, normalised to sum 1. */
const INTRADAY_PROFILE: Float64Array = (() => {
  const w = new Float64Array(CONTINUOUS_MINUTES);
  let sum = 0;
  for (let j = 0; j < CONTINUOUS_MINUTES; j++) {
    const fromOpen = j < MORNING_SLOTS ? j : j - MORNING_SLOTS + 30; // the afternoon starts calmer
    const toClose = CONTINUOUS_MINUTES - 1 - j;
    w[j] = 1 + 2.2 * Math.exp(-fromOpen / 18) + 1.3 * Math.exp(-toClose / 25);
    sum += w[j];
  }
  for (let j = 0; j < CONTINUOUS_MINUTES; j++) w[j] /= sum;
  return w;
})();

export class MarketSimulator {
  readonly params: SimParams;
  readonly calendar: TradingCalendar;
  readonly symbols = new SymbolTable();
  readonly universe: SimSymbol[] = [];
  readonly days: number[];
  /** Latents [day index + warmup][symbol]. */
  readonly latentShort: Float64Array;
  readonly latentLong: Float64Array;
  private readonly prevClose: Float64Array;
  private readonly suspendedLeft: Int32Array;
  /** Index memberships and weights (SIM_INDEXES), fixed over the run. */
  private readonly indexWeights: Record<string, number>[];
  /** Reference records by day index, set when generateDay(d) starts (before its first minute). */
  private readonly references = new Map<number, ReferenceRecord[]>();

  constructor(params: Partial<SimParams>, calendar: TradingCalendar) {
    this.params = { ...DEFAULT_SIM_PARAMS, ...params };
    const p = this.params;
    if (!(p.symbols >= 1 && p.days >= 1)) throw new RangeError('symbols and days must be at least 1');
    this.calendar = calendar;
    this.days = calendar.tradingDays(isoToDay(p.start), p.days);
    this.buildUniverse();
    const n = this.universe.length;
    const total = p.days + SIGNALS.warmup;
    this.latentShort = new Float64Array(total * n);
    this.latentLong = new Float64Array(total * n);
    for (let d = 0; d < total; d++) {
      const rng = new Rng(p.seed, 7, d);
      for (let i = 0; i < n; i++) {
        this.latentShort[d * n + i] = rng.normal();
        this.latentLong[d * n + i] = rng.normal();
      }
    }
    this.prevClose = new Float64Array(n);
    const rng = new Rng(p.seed, 3, 0);
    for (let i = 0; i < n; i++) this.prevClose[i] = roundToFen(Math.max(2, Math.exp(Math.log(14) + 0.6 * rng.normal())));
    this.suspendedLeft = new Int32Array(n);
    this.indexWeights = this.buildIndexes();
  }

  /**
   * Two synthetic indexes: SIM-LARGE, the largest third of the universe by size, and
   * SIM-MID, the middle third; weights proportional to float market value (adding up to 1).
   */
  private buildIndexes(): Record<string, number>[] {
    const n = this.universe.length;
    const bySize = this.universe.map((_, i) => i).sort((a, b) => this.universe[b].logSize - this.universe[a].logSize || a - b);
    const out: Record<string, number>[] = this.universe.map(() => ({}));
    const third = Math.max(1, Math.floor(n / 3));
    SIM_INDEXES.forEach((name, k) => {
      const members = bySize.slice(k * third, (k + 1) * third);
      const total = members.reduce((sum, i) => sum + floatMarketValue(this.universe[i]), 0);
      for (const i of members) out[i][name] = floatMarketValue(this.universe[i]) / total;
    });
    return out;
  }

  /** The reference records of day index d (what a data desk publishes before the open); generateDay(d) must have started. */
  reference(d: number): ReferenceRecord[] {
    const records = this.references.get(d);
    if (records === undefined) throw new Error(`the reference of simulated day ${d} is made when generateDay(${d}) starts`);
    return records;
  }

  private buildUniverse(): void {
    const p = this.params;
    const rng = new Rng(p.seed, 1, 0);
    const entries: SimSymbol[] = [];
    let assigned = 0;
    BOARD_MIX.forEach(([key, share], k) => {
      const spec = BOARD_PREFIXES[key];
      const count = k === BOARD_MIX.length - 1 ? p.symbols - assigned : Math.round(p.symbols * share);
      assigned += count;
      const capacity = spec.prefixes.length * 1000;
      // Codes spread over the board's ranges; position 0 is skipped (000000 is no symbol).
      if (count > capacity - 1) throw new RangeError(`too many symbols for board ${key} (max ${capacity - 1})`);
      const step = Math.max(1, Math.floor((capacity - 1) / Math.max(1, count)));
      for (let c = 0; c < count; c++) {
        const pos = 1 + c * step + (step > 1 ? rng.int(step) : 0);
        const prefix = spec.prefixes[Math.floor(pos / 1000)];
        const symbol = `${prefix}${String(pos % 1000).padStart(3, '0')}.${spec.exchange}`;
        entries.push({
          symbol,
          board: spec.board,
          industry: rng.int(INDUSTRIES.length),
          logSize: 23.2 + 0.9 * rng.normal(),
          isST: spec.board === 'main' && rng.chance(0.03),
          feed: rng.chance(p.snapshotShare) ? 'snapshot' : 'trade',
          beta: rng.uniform(0.7, 1.3),
          idioVol: rng.uniform(0.014, 0.028),
          liquidity: Math.exp(0.5 * rng.normal()),
        });
      }
    });
    entries.sort((a, b) => (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0));
    for (const e of entries) {
      if (this.symbols.idOf(e.symbol) !== undefined) continue;
      this.symbols.intern(e.symbol);
      this.universe.push(e);
    }
  }

  /** The short- and long-memory latents of symbol i on simulated day index d (d may be negative, down to -warmup). */
  latent(kind: 'short' | 'long', d: number, i: number): number {
    const arr = kind === 'short' ? this.latentShort : this.latentLong;
    return arr[(d + SIGNALS.warmup) * this.universe.length + i];
  }

  /** Planted daily expected excess return of symbol i on day index d. */
  alpha(d: number, i: number): number {
    const p = this.params;
    const h = SIGNALS.horizon;
    let a = 0;
    for (let j = 1; j <= h; j++) {
      if (d - j >= -SIGNALS.warmup) a += (p.shortSignal / h) * this.latent('short', d - j, i);
      const k = d - SIGNALS.longDelay - j + 1;
      if (k >= -SIGNALS.warmup) a += (p.longSignal / h) * this.latent('long', k, i);
    }
    return a;
  }

  /**
   * Generates day `d` (index into `days`) minute by minute: yields every slot in time
   * order (the same TickBatch/BarBatch objects are reused: copy what you keep), then
   * returns the day's reference rows.
   */
  *generateDay(d: number): Generator<SimMinute, DailyRow[]> {
    const p = this.params;
    const day = this.days[d];
    const n = this.universe.length;
    const t0 = dayStart(day);
    const common = new Rng(p.seed, 5, d);
    const market = 0.0002 + 0.012 * common.normal();
    const industry = INDUSTRIES.map(() => 0.007 * common.normal());

    const states: (SymbolDay | undefined)[] = [];
    const daily: DailyRow[] = [];
    for (let i = 0; i < n; i++) {
      const u = this.universe[i];
      const rng = new Rng(p.seed, 100 + i, d);
      let prev = this.prevClose[i];
      let suspended = false;
      if (this.suspendedLeft[i] > 0) {
        this.suspendedLeft[i]--;
        suspended = true;
      } else if (rng.chance(p.suspensionRate)) {
        this.suspendedLeft[i] = rng.int(4);
        suspended = true;
      }
      // One symbol a day (from the second day) goes ex-dividend: its reference price, the
      // base of its limits and of its price path, is the last close less a 2% dividend.
      if (d > 0 && i === (d * 7919) % n) prev = roundToFen(prev - Math.max(0.01, roundToFen(prev * 0.02)));
      daily.push({ day, symbol: i, prevClose: prev, open: prev, high: prev, low: prev, close: prev, volume: 0, amount: 0, suspended });
      if (suspended) {
        states.push(undefined);
        continue;
      }
      let r = u.beta * market + industry[u.industry] + this.alpha(d, i) + u.idioVol * rng.normal();
      if (rng.chance(p.limitEventRate)) r += (rng.chance(0.5) ? 1 : -1) * 0.25;
      states.push(new SymbolDay(i, u, rng, prev, r, this.latent('short', d, i), this.latent('long', d, i), p, t0));
    }

    this.references.set(
      d,
      daily.map((r) => {
        const u = this.universe[r.symbol];
        return { date: dayToIso(day), symbol: u.symbol, prevClose: r.prevClose, st: u.isST, suspended: r.suspended, industry: INDUSTRIES[u.industry], floatMarketValue: floatMarketValue(u), indexes: this.indexWeights[r.symbol] };
      }),
    );
    const staging = new TickBatch(4096);
    const ticks = new TickBatch(4096);
    const bars = new BarBatch(Math.max(64, n));
    let order = new Int32Array(4096);
    for (let slot = 0; slot < SLOTS_PER_DAY; slot++) {
      staging.clear();
      ticks.clear();
      bars.clear();
      for (const s of states) s?.emitSlot(slot, staging, bars);
      if (order.length < staging.length) order = new Int32Array(staging.length * 2);
      for (let k = 0; k < staging.length; k++) order[k] = k;
      const view = order.subarray(0, staging.length);
      const ts = staging.ts;
      view.sort((a, b) => ts[a] - ts[b] || a - b);
      for (let k = 0; k < view.length; k++) copyTickRow(staging, view[k], ticks);
      yield { day, slot, ticks, bars };
    }
    for (const s of states) {
      if (s === undefined) continue;
      const row = daily[s.index];
      row.open = s.openPrice;
      row.close = s.lastPrice;
      row.high = s.dayHigh;
      row.low = s.dayLow;
      row.volume = s.cumVolume;
      row.amount = s.cumAmount;
      this.prevClose[s.index] = s.lastPrice;
    }
    return daily;
  }

  isoDay(d: number): string {
    return dayToIso(this.days[d]);
  }
}

/** One symbol's generation state for one day. */
class SymbolDay {
  readonly index: number;
  private readonly info: SimSymbol;
  private readonly rng: Rng;
  private readonly params: SimParams;
  private readonly t0: number;
  private readonly up: number;
  private readonly down: number;
  private readonly logPath: Float64Array;
  private readonly lambda: Float64Array;
  private readonly shortLatent: number;
  private readonly longLatent: number;
  openPrice = 0;
  closePrice = 0;
  lastPrice = 0;
  dayHigh = 0;
  dayLow = Infinity;
  cumVolume = 0;
  cumAmount = 0;
  private seq = 0;
  private bid1 = 0;
  private ask1 = 0;
  private bidVol1 = 0;
  private askVol1 = 0;
  private nextSnapshot = 0;
  // The current 1-minute bar being built from this symbol's trades.
  private barOpen = 0;
  private barHigh = 0;
  private barLow = 0;
  private barClose = 0;
  private barVolume = 0;
  private barAmount = 0;
  private barBuy = 0;
  private barSell = 0;
  private barTrades = 0;

  constructor(index: number, info: SimSymbol, rng: Rng, prevClose: number, dayReturn: number, shortLatent: number, longLatent: number, params: SimParams, t0: number) {
    this.index = index;
    this.info = info;
    this.rng = rng;
    this.params = params;
    this.t0 = t0;
    this.shortLatent = shortLatent;
    this.longLatent = longLatent;
    const f = limitFraction(info.board, info.isST);
    this.up = roundToFen(prevClose * (1 + f));
    this.down = roundToFen(prevClose * (1 - f));
    const clamp = (x: number): number => Math.min(this.up, Math.max(this.down, roundToFen(x)));
    this.closePrice = clamp(prevClose * Math.exp(dayReturn));
    this.openPrice = clamp(prevClose * Math.exp(0.25 * dayReturn + 0.004 * rng.normal()));

    // Log-price path at the 238 continuous-minute boundaries: a Brownian bridge from the
    // open to (near) the close, with U-shaped volatility and, for the short latent, a
    // relative drift into the last hour.
    const m = CONTINUOUS_MINUTES;
    const path = new Float64Array(m + 1);
    const sigma = info.idioVol * 0.9;
    for (let j = 0; j < m; j++) {
      const step = sigma * Math.sqrt(INTRADAY_PROFILE[j]) * rng.normal() + (j >= m - 60 ? (0.0015 * shortLatent) / 60 : 0);
      path[j + 1] = path[j] + step;
    }
    const target = Math.log(this.closePrice / this.openPrice) + 0.0008 * rng.normal();
    const gap = target - path[m];
    for (let j = 0; j <= m; j++) path[j] = Math.log(this.openPrice) + path[j] + (gap * j) / m;
    this.logPath = path;

    const tradesToday = params.tradesPerDay * info.liquidity * Math.exp(0.25 * rng.normal()) * (1 + 2 * Math.abs(dayReturn));
    this.lambda = new Float64Array(m);
    const morningBoost = Math.exp(0.35 * longLatent);
    for (let j = 0; j < m; j++) this.lambda[j] = tradesToday * INTRADAY_PROFILE[j] * (j < 60 ? morningBoost : 1);
    this.lastPrice = this.openPrice;
    this.nextSnapshot = t0 + hm(9, 30) + params.snapshotIntervalSec * 1000;
  }

  private clampPrice(x: number): number {
    return Math.min(this.up, Math.max(this.down, roundToFen(x)));
  }

  private lots(): number {
    return Math.max(1, Math.round(Math.exp(Math.log(6) + 0.9 * this.rng.normal())));
  }

  /** Sets L1 quotes around a trade at `price` with aggressor `side`. */
  private quote(price: number, side: number, slot: number): void {
    const rng = this.rng;
    const morning = slot < 60;
    const imb = Math.max(-0.95, Math.min(0.95, 0.35 * Math.tanh(this.longLatent) * (morning ? 1 : 0.2) + 0.3 * rng.normal()));
    const depth = Math.max(1, Math.round(Math.exp(Math.log(50) + 0.7 * rng.normal())));
    const spread = (1 + (rng.chance(0.25) ? 1 : 0) + (price > 30 && rng.chance(0.3) ? 1 : 0)) / 100;
    if (price >= this.up) {
      this.bid1 = this.up;
      this.ask1 = 0;
      this.bidVol1 = depth * 2000;
      this.askVol1 = 0;
      return;
    }
    if (price <= this.down) {
      this.bid1 = 0;
      this.ask1 = this.down;
      this.bidVol1 = 0;
      this.askVol1 = depth * 2000;
      return;
    }
    if (side === SIDE_SELL) {
      this.bid1 = price;
      this.ask1 = roundToFen(price + spread);
    } else {
      this.ask1 = price;
      this.bid1 = roundToFen(price - spread);
    }
    this.bidVol1 = Math.max(1, Math.round(depth * (1 + imb))) * 100;
    this.askVol1 = Math.max(1, Math.round(depth * (1 - imb))) * 100;
  }

  private startBar(): void {
    this.barVolume = 0;
    this.barAmount = 0;
    this.barBuy = 0;
    this.barSell = 0;
    this.barTrades = 0;
  }

  /** Records one trade: internal state, the bar, and (trade feed) a tick row. */
  private trade(ts: number, slot: number, price: number, volume: number, side: number, out: TickBatch): void {
    const amount = price * volume;
    this.cumVolume += volume;
    this.cumAmount += amount;
    this.lastPrice = price;
    if (price > this.dayHigh) this.dayHigh = price;
    if (price < this.dayLow) this.dayLow = price;
    if (this.barTrades === 0) {
      this.barOpen = price;
      this.barHigh = price;
      this.barLow = price;
    } else {
      if (price > this.barHigh) this.barHigh = price;
      if (price < this.barLow) this.barLow = price;
    }
    this.barClose = price;
    this.barVolume += volume;
    this.barAmount += amount;
    this.barTrades++;
    if (side === SIDE_BUY) this.barBuy += volume;
    else if (side === SIDE_SELL) this.barSell += volume;
    this.quote(price, side, slot);
    if (this.info.feed !== 'trade') return;
    out.reserve(1);
    const i = out.length;
    out.symbol[i] = this.index;
    out.ts[i] = ts;
    out.kind[i] = KIND_TRADE;
    out.side[i] = side;
    out.price[i] = price;
    out.volume[i] = volume;
    out.amount[i] = amount;
    out.seq[i] = ++this.seq;
    out.flags[i] = HAS_AMOUNT | HAS_SEQ | HAS_QUOTE;
    this.writeQuote(out, i);
    out.origin[i] = -1;
    out.length = i + 1;
  }

  private writeQuote(out: TickBatch, i: number): void {
    out.bid1[i] = this.bid1;
    out.ask1[i] = this.ask1;
    out.bidVol1[i] = this.bidVol1;
    out.askVol1[i] = this.askVol1;
  }

  private snapshot(ts: number, out: TickBatch): void {
    out.reserve(1);
    const i = out.length;
    out.symbol[i] = this.index;
    out.ts[i] = ts;
    out.kind[i] = KIND_SNAPSHOT;
    out.side[i] = SIDE_UNKNOWN;
    out.price[i] = this.lastPrice;
    out.cumVolume[i] = this.cumVolume;
    out.cumAmount[i] = this.cumAmount;
    out.seq[i] = ++this.seq;
    out.flags[i] = HAS_SEQ | HAS_QUOTE;
    this.writeQuote(out, i);
    out.origin[i] = -1;
    out.length = i + 1;
  }

  /** Snapshots due up to and including `until` (snapshot feed only). */
  private snapshotsUntil(until: number, out: TickBatch, sessionEnd: number): void {
    if (this.info.feed !== 'snapshot') return;
    while (this.nextSnapshot <= until && this.nextSnapshot <= sessionEnd) {
      this.snapshot(this.nextSnapshot, out);
      this.nextSnapshot += this.params.snapshotIntervalSec * 1000;
    }
  }

  private auctionVolume(share: number): number {
    const expected = this.params.tradesPerDay * this.info.liquidity * 600;
    return Math.max(100, Math.round((expected * share * Math.exp(0.3 * this.rng.normal())) / 100) * 100);
  }

  emitSlot(slot: number, out: TickBatch, bars: BarBatch): void {
    this.startBar();
    const t0 = this.t0;
    if (slot === 0) {
      // Opening call auction: one print at 09:25:00, then the snapshot after the match.
      this.trade(t0 + AUCTION_OPEN_TIME, 0, this.openPrice, this.auctionVolume(0.03), SIDE_UNKNOWN, out);
      if (this.info.feed === 'snapshot') this.snapshot(t0 + AUCTION_OPEN_TIME, out);
    }
    if (slot < CONTINUOUS_MINUTES) this.continuousMinute(slot, out);
    if (slot === SLOTS_PER_DAY - 1) {
      this.trade(t0 + CLOSE_TIME, slot, this.closePrice, this.auctionVolume(0.04), SIDE_UNKNOWN, out);
      if (this.info.feed === 'snapshot') this.snapshot(t0 + CLOSE_TIME, out);
    }
    if (this.barTrades > 0) this.writeBar(slot, bars);
  }

  private continuousMinute(j: number, out: TickBatch): void {
    const rng = this.rng;
    const start = this.t0 + minuteStart(j);
    const sessionEnd = this.t0 + (j < MORNING_SLOTS ? hm(11, 30) : hm(14, 57));
    const count = rng.poisson(this.lambda[j]);
    const lo = this.logPath[j];
    const hi = this.logPath[j + 1];
    const u = Math.tanh(this.shortLatent);
    const offsets: number[] = [];
    for (let k = 0; k < count; k++) offsets.push(Math.floor(rng.next() * 60_000));
    offsets.sort((a, b) => a - b);
    for (const off of offsets) {
      const ts = start + off;
      this.snapshotsUntil(ts - 1, out, sessionEnd);
      const x = off / 60_000;
      const price = this.clampPrice(Math.exp(lo + x * (hi - lo) + 0.0004 * rng.normal()));
      let side: number;
      if (price > this.lastPrice) side = rng.chance(0.85) ? SIDE_BUY : SIDE_SELL;
      else if (price < this.lastPrice) side = rng.chance(0.85) ? SIDE_SELL : SIDE_BUY;
      else side = rng.chance(0.5 + 0.1 * u) ? SIDE_BUY : SIDE_SELL;
      if (rng.chance(0.1 * Math.abs(u))) side = u > 0 ? SIDE_BUY : SIDE_SELL;
      if (price >= this.up) side = SIDE_SELL;
      else if (price <= this.down) side = SIDE_BUY;
      let lots = this.lots();
      if (rng.chance(0.004 * (1 + 2 * Math.abs(u)))) {
        lots = 200 + rng.int(800);
        const withSignal = rng.chance(0.75);
        side = (u > 0) === withSignal ? SIDE_BUY : SIDE_SELL;
      }
      if (rng.chance(0.05)) side = SIDE_UNKNOWN;
      this.trade(ts, j, price, lots * 100, side, out);
    }
    // Snapshots for the rest of the minute; the session's last instant (11:30:00.000 or
    // 14:57:00.000) is included in the minute that ends then.
    const end = start + 60_000;
    this.snapshotsUntil(end === sessionEnd ? end : end - 1, out, sessionEnd);
    if (end === this.t0 + hm(11, 30)) this.nextSnapshot = this.t0 + hm(13, 0) + this.params.snapshotIntervalSec * 1000;
  }

  private writeBar(slot: number, bars: BarBatch): void {
    bars.reserve(1);
    const i = bars.length;
    const end = slot < MORNING_SLOTS ? hm(9, 30) + (slot + 1) * 60_000 : hm(13, 0) + (slot - MORNING_SLOTS + 1) * 60_000;
    bars.symbol[i] = this.index;
    bars.ts[i] = this.t0 + end;
    bars.open[i] = this.barOpen;
    bars.high[i] = this.barHigh;
    bars.low[i] = this.barLow;
    bars.close[i] = this.barClose;
    bars.volume[i] = this.barVolume;
    bars.amount[i] = this.barAmount;
    bars.buyVolume[i] = this.barBuy;
    bars.sellVolume[i] = this.barSell;
    bars.trades[i] = this.barTrades;
    bars.flags[i] = this.info.feed === 'trade' ? HAS_SIDES | HAS_TRADES : 0;
    bars.origin[i] = -1;
    bars.length = i + 1;
  }
}
