/**
 * A plainly written reference for the baseline features, deliberately sharing no code
 * with src/features: events are bucketed into minutes from the local clock string, bars
 * are built with plain arrays, and each formula is written out as the README states it.
 */
import { FEATURE_NAMES } from '../src/features/feature-set.js';

export interface RefEvent {
  ts: number;
  price: number;
  /** Trade volume, or for snapshots the cumulative volume. */
  volume: number;
  amount: number;
  side?: 'B' | 'S' | 'N';
  snapshot?: boolean;
  cumVolume?: number;
  cumAmount?: number;
  bid1?: number;
  ask1?: number;
  bidVol1?: number;
  askVol1?: number;
}

interface Minute {
  prices: number[];
  volumes: number[];
  amounts: number[];
  buy: number;
  sell: number;
  largeBuy: number;
  largeSell: number;
  trades: number;
  tradeCounts: boolean;
  tradeLevel: boolean;
  imbalances: number[];
  spreads: number[];
}

/** Minute index 0..239 from the Shanghai wall clock, by reading hours and minutes. */
function minuteIndex(ts: number): number {
  const local = new Date(ts + 8 * 3600_000);
  const hh = local.getUTCHours();
  const mm = local.getUTCMinutes();
  const rest = local.getUTCSeconds() * 1000 + local.getUTCMilliseconds();
  const hhmm = hh * 100 + mm;
  if (hhmm < 930) return 0; // auction prints
  if (hhmm === 1130 && rest === 0) return 119;
  if (hhmm === 1500 && rest === 0) return 239;
  if (hhmm < 1130) return (hh - 9) * 60 + mm - 30;
  return 120 + (hh - 13) * 60 + mm;
}

function dayKey(ts: number): string {
  return new Date(ts + 8 * 3600_000).toISOString().slice(0, 10);
}

export interface RefRow {
  day: string;
  bar: number;
  missing: boolean;
  open?: number;
  high?: number;
  low?: number;
  close?: number;
  volume: number;
  features: Record<string, number | undefined>;
}

/**
 * Features of one symbol's events (in time order) for bars of `minutesPerBar` on the
 * given days (every bar of every day, missing or not).
 */
export function referenceFeatures(events: RefEvent[], days: string[], minutesPerBar: number, largeTradeAmount: number, lookbackDays: number): RefRow[] {
  const byDay = new Map<string, Minute[]>();
  for (const d of days) {
    byDay.set(
      d,
      Array.from({ length: 240 }, () => ({ prices: [], volumes: [], amounts: [], buy: 0, sell: 0, largeBuy: 0, largeSell: 0, trades: 0, tradeCounts: true, tradeLevel: true, imbalances: [], spreads: [] })),
    );
  }
  let lastCumV = 0;
  let lastCumA = 0;
  let lastDay = '';
  for (const e of events) {
    const day = dayKey(e.ts);
    const minutes = byDay.get(day);
    if (minutes === undefined) continue;
    if (day !== lastDay) {
      lastCumV = 0;
      lastCumA = 0;
      lastDay = day;
    }
    const m = minutes[minuteIndex(e.ts)];
    if (e.snapshot === true) {
      const dv = (e.cumVolume as number) - lastCumV;
      const da = (e.cumAmount as number) - lastCumA;
      lastCumV = e.cumVolume as number;
      lastCumA = e.cumAmount as number;
      if (dv > 0) {
        m.prices.push(e.price);
        m.volumes.push(dv);
        m.amounts.push(da);
        m.tradeCounts = false;
        m.tradeLevel = false;
      }
    } else {
      m.prices.push(e.price);
      m.volumes.push(e.volume);
      m.amounts.push(e.amount);
      m.trades++;
      if (e.side === 'B') {
        m.buy += e.volume;
        if (e.amount >= largeTradeAmount) m.largeBuy += e.amount;
      }
      if (e.side === 'S') {
        m.sell += e.volume;
        if (e.amount >= largeTradeAmount) m.largeSell += e.amount;
      }
    }
    if (e.bid1 !== undefined && e.ask1 !== undefined && e.bidVol1 !== undefined && e.askVol1 !== undefined) {
      if (e.bidVol1 + e.askVol1 > 0) m.imbalances.push((e.bidVol1 - e.askVol1) / (e.bidVol1 + e.askVol1));
      if (e.bid1 > 0 && e.ask1 > e.bid1) m.spreads.push((e.ask1 - e.bid1) / ((e.ask1 + e.bid1) / 2));
    }
  }

  const rows: RefRow[] = [];
  let prevBarClose: number | undefined;
  const history = new Map<number, number[]>();
  for (const day of days) {
    const minutes = byDay.get(day) as Minute[];
    let lastMinuteClose: number | undefined;
    for (let bar = 0; bar < 240 / minutesPerBar; bar++) {
      const ms = minutes.slice(bar * minutesPerBar, (bar + 1) * minutesPerBar);
      const imbalances = ms.flatMap((m) => m.imbalances);
      const spreads = ms.flatMap((m) => m.spreads);
      const filled = ms.filter((m) => m.prices.length > 0);
      const features: Record<string, number | undefined> = {};
      if (filled.length === 0) {
        rows.push({ day, bar, missing: true, volume: 0, features });
        continue;
      }
      const mOpen = filled.map((m) => m.prices[0]);
      const mClose = filled.map((m) => m.prices[m.prices.length - 1]);
      const mVol = filled.map((m) => m.volumes.reduce((a, b) => a + b, 0));
      const open = mOpen[0];
      const close = mClose[mClose.length - 1];
      const high = Math.max(...filled.flatMap((m) => m.prices));
      const low = Math.min(...filled.flatMap((m) => m.prices));
      const volume = mVol.reduce((a, b) => a + b, 0);
      const amount = filled.flatMap((m) => m.amounts).reduce((a, b) => a + b, 0);
      const returns: number[] = [];
      for (let j = 0; j < filled.length; j++) {
        const ref = j === 0 ? (lastMinuteClose ?? mOpen[0]) : mClose[j - 1];
        returns.push(Math.log(mClose[j] / ref));
      }
      lastMinuteClose = close;
      if (prevBarClose !== undefined) features.ret = Math.log(close / prevBarClose);
      prevBarClose = close;
      features.range = Math.log(high / low);
      features.closeLocation = high > low ? (close - low) / (high - low) : 0.5;
      features.closeVsVwap = Math.log(close / (amount / volume));
      const past = history.get(bar) ?? [];
      if (past.length > 0) features.relVolume = Math.log((volume + 1) / (past.reduce((a, b) => a + b, 0) / past.length + 1));
      history.set(bar, [...past, volume].slice(-lookbackDays));
      features.realizedVol = Math.sqrt(returns.reduce((a, r) => a + r * r, 0));
      const n = returns.length;
      if (n >= 3) {
        const mean = returns.reduce((a, b) => a + b, 0) / n;
        const m2 = returns.reduce((a, r) => a + (r - mean) ** 2, 0);
        const m3 = returns.reduce((a, r) => a + (r - mean) ** 3, 0);
        if (m2 > 1e-18) features.realizedSkew = (Math.sqrt(n) * m3) / m2 ** 1.5;
        const mc = mClose.reduce((a, b) => a + b, 0) / n;
        const mv = mVol.reduce((a, b) => a + b, 0) / n;
        let cov = 0;
        let vc = 0;
        let vv = 0;
        for (let j = 0; j < n; j++) {
          cov += (mClose[j] - mc) * (mVol[j] - mv);
          vc += (mClose[j] - mc) ** 2;
          vv += (mVol[j] - mv) ** 2;
        }
        if (vc > 1e-18 * n && vv > 1e-18 * n) features.priceVolumeCorr = cov / Math.sqrt(vc * vv);
      }
      features.upVolumeShare = returns.reduce((a, r, j) => a + (r > 0 ? mVol[j] : 0), 0) / volume;
      const buy = filled.reduce((a, m) => a + m.buy, 0);
      const sell = filled.reduce((a, m) => a + m.sell, 0);
      if (buy + sell > 0) features.buyVolumeShare = buy / (buy + sell);
      if (filled.every((m) => m.tradeLevel)) features.largeNetBuyShare = (filled.reduce((a, m) => a + m.largeBuy - m.largeSell, 0)) / amount;
      const trades = filled.reduce((a, m) => a + m.trades, 0);
      if (filled.every((m) => m.tradeCounts) && trades > 0) features.avgTradeSize = Math.log(amount / trades);
      if (imbalances.length > 0) features.orderImbalance = imbalances.reduce((a, b) => a + b, 0) / imbalances.length;
      if (spreads.length > 0) features.relSpread = spreads.reduce((a, b) => a + b, 0) / spreads.length;
      rows.push({ day, bar, missing: false, open, high, low, close, volume, features });
    }
  }
  for (const r of rows) for (const name of FEATURE_NAMES) if (!(name in r.features)) r.features[name] = undefined;
  return rows;
}
