/**
 * Target weights for trading systems (`factor.targets`): the report's index-enhanced
 * portfolio decided by the daemon itself at the close of each rebalance day, from the
 * configured model's end-of-day scores, by the same decision as `backtest`
 * (rebalance-decision.ts: premia, expected returns, the LP and its relaxations).
 *
 * What differs from the backtest is only what cannot be known at the close:
 * - the weights held are the previous targets drifted with the closes since their
 *   decision (the trading system's fills are not known to the daemon);
 * - a stock suspended today (in the reference data, or without a price today) is held at
 *   its drifted weight; tomorrow's limit locks are not known, so none is assumed (each
 *   score carries today's `limit` flag for the trading system).
 *
 * State (premia, the last decision's exposures and prices, the targets held) is part of
 * the daemon's checkpoint, so a restart decides the next rebalance exactly as an
 * uninterrupted run would.
 */
import type { TradingCalendar } from '../market/calendar.js';
import type { ReferenceBook } from '../market/reference.js';
import { DAY_CLOSE } from '../market/sessions.js';
import { dayStart, dayToIso, isoToDay } from '../market/time.js';
import type { DailyPanel } from '../model/labels.js';
import { scoresByDate, type ScoreRow } from './evaluate.js';
import { isRebalanceDay, RebalanceDecider, type Decision, type DeciderState, type PortfolioConstraints } from './rebalance-decision.js';

export interface TargetPortfolioConfig extends PortfolioConstraints {
  /** The portfolio's name: the message key and header. */
  name: string;
  /** The served model whose end-of-day scores are the factor. */
  model: string;
}

/** One decision as published. */
export interface TargetWeights extends Decision {
  portfolio: string;
  benchmark: string;
  model: string;
  modelVersion: string;
  /** The close the decision was made at (epoch ms, the day's 15:00). */
  barEnd: number;
}

export interface LiveTargetsState {
  decider: DeciderState;
  /** The targets last published and each one's close at that decision. */
  held: { symbols: string[]; weights: Float64Array; closes: Float64Array } | null;
  /** Local day of the last decision (-1 none). */
  lastDay: number;
}

export class LiveTargets {
  private readonly decider: RebalanceDecider;
  private held: LiveTargetsState['held'] = null;
  private lastDay = -1;
  /** The closing prices of the day being closed (day, by symbol). */
  private closes: { day: number; price: ReadonlyMap<string, number> } = { day: -1, price: new Map() };

  constructor(
    readonly cfg: Readonly<TargetPortfolioConfig>,
    private readonly calendar: TradingCalendar,
    private readonly reference: ReferenceBook,
  ) {
    this.decider = new RebalanceDecider(cfg, reference);
  }

  /** Whether the targets are decided at `day`'s close. */
  decidesOn(day: number): boolean {
    return day > this.lastDay && isRebalanceDay(this.cfg.rebalance, day, (d) => this.calendar.nextTradingDay(d));
  }

  /** The day's closing prices (its last trade price, for each symbol that traded that day): given before its scores. */
  dayClose(day: number, price: ReadonlyMap<string, number>): void {
    this.closes = { day, price };
  }

  /** The model's end-of-day scores of `day`: the decision when it is a rebalance day. */
  async dayScores(modelVersion: string, day: number, scores: ReadonlyMap<string, number>): Promise<TargetWeights | undefined> {
    if (!this.decidesOn(day)) return undefined;
    if (this.closes.day !== day) throw new Error(`target weights of ${dayToIso(day)}: the day's closing prices were not given`);
    const price = this.closes.price;
    const close = (s: string): number => price.get(s) ?? Number.NaN;
    // The previous targets drifted with each stock's close since their decision (unknown: unchanged).
    const held = new Map<string, number>();
    if (this.held !== null) {
      const h = this.held;
      let total = 0;
      h.symbols.forEach((s, i) => {
        const g = close(s) / h.closes[i];
        const w = h.weights[i] * (Number.isFinite(g) ? g : 1);
        held.set(s, w);
        total += w;
      });
      if (total > 0) for (const [s, w] of held) held.set(s, w / total);
    }
    const decision = await this.decider.decide({
      date: dayToIso(day),
      scores,
      members: this.reference.indexWeights(day, this.cfg.benchmark),
      held,
      close,
      tradable: (symbols, canBuy, canSell) =>
        symbols.forEach((s, i) => {
          if (this.reference.get(day, s)?.suspended === true || !(close(s) > 0)) {
            canBuy[i] = 0;
            canSell[i] = 0;
          }
        }),
    });
    this.lastDay = day;
    const kept = decision.symbols.map((_, i) => i).filter((i) => decision.weights[i] > 0);
    this.held = {
      symbols: kept.map((i) => decision.symbols[i]),
      weights: Float64Array.from(kept, (i) => decision.weights[i]),
      closes: Float64Array.from(kept, (i) => close(decision.symbols[i])),
    };
    return { ...decision, portfolio: this.cfg.name, benchmark: this.cfg.benchmark, model: this.cfg.model, modelVersion, barEnd: dayStart(day) + DAY_CLOSE };
  }

  snapshot(): LiveTargetsState {
    return { decider: this.decider.snapshot(), held: this.held, lastDay: this.lastDay };
  }

  restore(state: LiveTargetsState): void {
    this.decider.restore(state.decider);
    this.held = state.held;
    this.lastDay = state.lastDay;
  }
}

/**
 * The targets the daemon publishes, recomputed offline (`factorstream targets`): the
 * end-of-day scores of a scores file and the daily data's closes (a suspended day has
 * none) in place of the live bars, day by day through LiveTargets.
 */
export async function offlineTargets(scores: readonly ScoreRow[], daily: DailyPanel, reference: ReferenceBook, cfg: TargetPortfolioConfig, calendar: TradingCalendar, modelVersion: string): Promise<TargetWeights[]> {
  const S = daily.symbols.length;
  const dayIndex = new Map(daily.days.map((d, i) => [d, i]));
  const byDate = scoresByDate(scores);
  const live = new LiveTargets(cfg, calendar, reference);
  const out: TargetWeights[] = [];
  for (const date of [...byDate.keys()].filter((d) => dayIndex.has(d)).sort()) {
    const d = dayIndex.get(date) as number;
    const price = new Map<string, number>();
    daily.symbols.forEach((s, k) => {
      if (daily.traded[d * S + k] === 1 && daily.close[d * S + k] > 0) price.set(s, daily.close[d * S + k]);
    });
    const day = isoToDay(date);
    live.dayClose(day, price);
    const t = await live.dayScores(modelVersion, day, byDate.get(date) as Map<string, number>);
    if (t !== undefined) out.push(t);
  }
  return out;
}
