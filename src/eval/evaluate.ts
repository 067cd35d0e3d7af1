/**
 * `factorstream evaluate`: saved scores + daily data -> the report's weekly metrics.
 * Evaluation reads predictions, not the model. The factor of a week is each symbol's
 * end-of-day score on the week's last trading day with scores; its forward return is the
 * raw excess return over the next `horizon` trading days from that close.
 *
 * Scores: Arrow or CSV with `symbol`, and either `date` (YYYY-MM-DD) or `barEnd` (epoch ms)
 * plus `dayClose` (1 on the day's last bar, as `factorstream score` writes), and `score`.
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as A from 'apache-arrow';
import { parse as parseCsv } from 'csv-parse/sync';
import { formatOfPath } from '../ingest/file-source.js';
import { dayToIso, isoToDay, localDay, weekday } from '../market/time.js';
import { exposuresOf } from '../model/dataset.js';
import { exposureProjection, forwardLabels, readDailyCsv, residualize, type DailyPanel } from '../model/labels.js';
import { factorMetrics, type CrossSection, type FactorMetrics, type MetricOptions } from './metrics.js';
import { renderReport, table5 } from './report.js';

export interface ScoreRow {
  date: string;
  symbol: string;
  score: number;
}

/** End-of-day scores of a scores file. */
export function readScores(path: string): ScoreRow[] {
  const rows: ScoreRow[] = [];
  const take = (symbol: unknown, date: unknown, barEnd: unknown, dayClose: unknown, score: unknown): void => {
    const s = Number(score);
    if (!Number.isFinite(s)) return;
    if (date !== undefined && date !== null && date !== '') rows.push({ date: String(date), symbol: String(symbol), score: s });
    else if (Number(dayClose) === 1) rows.push({ date: dayToIso(localDay(Number(barEnd))), symbol: String(symbol), score: s });
  };
  if (formatOfPath(path) === 'arrow') {
    const t = A.tableFromIPC(readFileSync(path));
    const col = (name: string): A.Vector | null => t.getChild(name);
    const [sym, date, end, close, score] = ['symbol', 'date', 'barEnd', 'dayClose', 'score'].map(col);
    if (sym === null || score === null || (date === null && (end === null || close === null))) {
      throw new Error(`${path}: needs columns symbol, score and date (or barEnd and dayClose)`);
    }
    for (let i = 0; i < t.numRows; i++) take(sym.get(i), date?.get(i), end?.get(i), close?.get(i), score.get(i));
  } else {
    const records = parseCsv(readFileSync(path, 'utf8'), { columns: true, skip_empty_lines: true, trim: true }) as Record<string, string>[];
    for (const r of records) take(r.symbol, r.date, r.barEnd, r.dayClose, r.score);
  }
  return rows;
}

/** End-of-day scores by date, then symbol. */
export function scoresByDate(scores: readonly ScoreRow[]): Map<string, Map<string, number>> {
  const byDate = new Map<string, Map<string, number>>();
  for (const r of scores) {
    let m = byDate.get(r.date);
    if (m === undefined) byDate.set(r.date, (m = new Map()));
    m.set(r.symbol, r.score);
  }
  return byDate;
}

/** The last date of each ISO week (Monday to Sunday) among `dates`. */
export function weekEnds(dates: string[]): string[] {
  const byWeek = new Map<number, string>();
  for (const d of [...new Set(dates)].sort()) {
    const day = isoToDay(d);
    const monday = day - ((weekday(day) + 6) % 7);
    byWeek.set(monday, d);
  }
  return [...byWeek.values()];
}

export interface EvaluateOptions {
  scores: string;
  returns: string;
  /** Daily data with industry and logSize: the factor is also evaluated neutralised to them, date by date. */
  exposures?: string;
  out: string;
  horizon: number;
  title: string;
  metrics: Partial<MetricOptions>;
}

/** Each section's factor residualised on that date's industry dummies and standardised log size. */
function neutralised(sections: CrossSection[], panel: DailyPanel): CrossSection[] {
  const dayIndex = new Map(panel.days.map((d, i) => [d, i]));
  const symIndex = new Map(panel.symbols.map((s, i) => [s, i]));
  return sections.map((c) => {
    const d = dayIndex.get(c.date);
    const columns = c.symbols.map((s) => symIndex.get(s) ?? -1);
    // A date or symbol without exposures: the intercept alone (the factor demeaned).
    const p = d === undefined || columns.includes(-1) ? exposureProjection(new Int32Array(c.symbols.length).fill(-1), new Float64Array(c.symbols.length)) : exposuresOf(panel, d, columns);
    return { ...c, factor: residualize(p, c.factor) };
  });
}

export interface Evaluation extends FactorMetrics {
  /** The same metrics for the factor neutralised to industry and size (with --exposures). */
  neutral?: FactorMetrics;
}

export function evaluate(opts: EvaluateOptions): Evaluation {
  const scores = readScores(opts.scores);
  if (scores.length === 0) throw new Error(`${opts.scores}: no end-of-day scores`);
  const daily = readDailyCsv(opts.returns);
  const labels = forwardLabels(daily, opts.horizon, 'raw');
  const dayIndex = new Map(daily.days.map((d, i) => [d, i]));
  const symIndex = new Map(daily.symbols.map((s, i) => [s, i]));
  const byDate = new Map<string, ScoreRow[]>();
  for (const r of scores) {
    const list = byDate.get(r.date) ?? [];
    list.push(r);
    byDate.set(r.date, list);
  }
  const sections: CrossSection[] = [];
  for (const date of weekEnds([...byDate.keys()].filter((d) => dayIndex.has(d)))) {
    const d = dayIndex.get(date) as number;
    const symbols: string[] = [];
    const factor: number[] = [];
    const forward: number[] = [];
    for (const r of byDate.get(date) ?? []) {
      const k = symIndex.get(r.symbol);
      if (k === undefined) continue;
      const y = labels[d * daily.symbols.length + k];
      if (!Number.isFinite(y)) continue;
      symbols.push(r.symbol);
      factor.push(r.score);
      forward.push(y);
    }
    if (symbols.length >= 2) sections.push({ date, symbols, factor: Float64Array.from(factor), forward: Float64Array.from(forward) });
  }
  if (sections.length < 2) throw new Error(`only ${sections.length} evaluable week(s): need end-of-day scores on at least two week ends with ${opts.horizon}-day forward returns`);
  const metrics = factorMetrics(sections, opts.metrics);
  let neutral: FactorMetrics | undefined;
  if (opts.exposures !== undefined) {
    const panel = opts.exposures === opts.returns ? daily : readDailyCsv(opts.exposures);
    if (panel.industries.length === 0) throw new Error(`${opts.exposures}: no industry column; --exposures needs industry and logSize per symbol and day`);
    neutral = factorMetrics(neutralised(sections, panel), opts.metrics);
  }
  mkdirSync(opts.out, { recursive: true });
  const { series, ...summary } = metrics;
  const neutralSummary = neutral === undefined ? undefined : (({ series: s, ...rest }) => ({ ...rest, series: s }))(neutral);
  writeFileSync(
    join(opts.out, 'metrics.json'),
    JSON.stringify({ title: opts.title, horizonDays: opts.horizon, icirDefinition: 'annualised: mean(IC) / std(IC) x sqrt(periodsPerYear)', ...summary, series, ...(neutralSummary === undefined ? {} : { neutral: neutralSummary }) }, null, 1) + '\n',
  );
  const rows = [{ label: opts.title, metrics }];
  if (neutral !== undefined) rows.push({ label: `${opts.title} (industry + size neutral)`, metrics: neutral });
  writeFileSync(join(opts.out, 'table.md'), table5(rows));
  writeFileSync(join(opts.out, 'report.html'), renderReport(opts.title, metrics, neutral));
  return { ...metrics, neutral };
}
