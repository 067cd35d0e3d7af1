/**
 * The portfolio test's outputs: `metrics.json` (every run's figures and rebalances),
 * `table.md` laid out like the report's Table 7 (yearly excess return per factor variant
 * and stock deviation) and a self-contained `report.html` (excess NAV, yearly bars,
 * turnover, the last rebalance's active industry and exposure deviations).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BacktestConfig, BacktestRun } from './backtest.js';
import { barChart, escapeHtml, lineChart, num, pct } from './report.js';

export interface NamedRun {
  variant: string;
  deviation: number;
  run: BacktestRun;
}

function years(runs: readonly NamedRun[]): string[] {
  return [...new Set(runs.flatMap((r) => Object.keys(r.run.metrics.yearly)))].sort();
}

/** Table 7: one row per variant and deviation, the yearly excess returns, then the whole period's figures. */
export function table7(runs: readonly NamedRun[]): string {
  const ys = years(runs);
  const head = `| factor | deviation | ${ys.join(' | ')} | annualised excess | tracking error | IR | max drawdown | turnover | cost | relaxed weeks |\n|${'---|'.repeat(ys.length + 9)}\n`;
  return (
    head +
    runs
      .map(({ variant, deviation, run: { metrics: m } }) => `| ${variant} | ±${pct(deviation, 0)} | ${ys.map((y) => (m.yearly[y] === undefined ? '' : pct(m.yearly[y]))).join(' | ')} | ${pct(m.annualExcess)} | ${pct(m.trackingError)} | ${num(m.informationRatio, 2)} | ${pct(m.maxDrawdown)} | ${pct(m.meanTurnover, 1)} | ${pct(m.costPaid)} | ${m.relaxedWeeks} of ${m.rebalances} |`)
      .join('\n') +
    '\n'
  );
}

/** The last optimised rebalance's active weights by industry and active exposures. */
function activeTable(run: BacktestRun): string {
  const r = [...run.rebalances].reverse().find((x) => x.kind === 'optimised');
  if (r === undefined) return '<p>No optimised rebalance (no factor premium was known yet).</p>';
  const byIndustry = new Map<number, number>();
  r.weights.forEach((w, i) => byIndustry.set(r.industry[i], (byIndustry.get(r.industry[i]) ?? 0) + w - r.bench[i]));
  const rows = r.exposures.map((e) => `<tr><th>${escapeHtml(e.name)}</th><td>${num(r.weights.reduce((s, w, i) => s + (w - r.bench[i]) * e.values[i], 0), 4)}</td><td>${num(e.lower, 2)} … ${num(e.upper, 2)}</td></tr>`);
  const worst = Math.max(...[...byIndustry.values()].map(Math.abs));
  return `<p>Rebalance of ${escapeHtml(r.date)} (traded ${escapeHtml(r.tradeDate)}): ${r.symbols.length} candidates, ${r.weights.filter((w) => w > 1e-12).length} held; largest active industry weight ${num(worst, 6)}${r.relaxed.length > 0 ? `; relaxed: ${escapeHtml(r.relaxed.join(', '))}` : ''}.</p><table><tr><th>exposure</th><th>active</th><th>bound</th></tr>${rows.join('')}</table>`;
}

export function renderBacktestReport(title: string, runs: readonly NamedRun[], cfg: Omit<BacktestConfig, 'deviation'>): string {
  const sections = runs
    .map(({ variant, deviation, run }) => {
      const m = run.metrics;
      const ys = Object.keys(m.yearly).sort();
      return `<h2>${escapeHtml(variant)}, deviation ±${pct(deviation, 0)}</h2>
<p>Annualised excess ${pct(m.annualExcess)}, tracking error ${pct(m.trackingError)}, IR ${num(m.informationRatio, 2)}, max drawdown of the excess NAV ${pct(m.maxDrawdown)}, mean one-way turnover ${pct(m.meanTurnover, 1)}, cost paid ${pct(m.costPaid)}, ${m.relaxedWeeks} of ${m.rebalances} rebalances relaxed.</p>
${lineChart(run.excessNav.map((x) => x - 1), 'excess NAV - 1')}
${barChart(ys.map((y) => m.yearly[y]), ys, 'excess return by year')}
${barChart(run.rebalances.map((r) => r.turnover), run.rebalances.map((r) => r.date), 'one-way turnover per rebalance')}
${activeTable(run)}`;
    })
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}h2{margin-top:1.5em}</style>
</head><body>
<h1>${escapeHtml(title)}</h1>
<p>Weekly index-enhanced portfolio against ${escapeHtml(cfg.benchmark)}: expected returns from factor premia (mean of the last ${cfg.premiumWindow} periods), stock deviation from the benchmark weight, ${cfg.industryNeutral ? 'industry neutral, ' : ''}${cfg.sizeNeutral ? 'size neutral, ' : ''}factor exposure within ±${cfg.factorBound}, one-way turnover at most ${pct(cfg.turnoverCap, 0)}, trades at the next day's average price, ${(cfg.cost * 1000).toFixed(1)}‰ cost on the value traded.</p>
${sections}
</body></html>
`;
}

/** Writes metrics.json, table.md and report.html to `outDir`. */
export function writeBacktest(outDir: string, title: string, runs: readonly NamedRun[], cfg: Omit<BacktestConfig, 'deviation'>): void {
  const json = {
    title,
    config: cfg,
    runs: runs.map(({ variant, deviation, run }) => ({
      variant,
      deviation,
      metrics: run.metrics,
      rebalances: run.rebalances.map((r) => ({ date: r.date, tradeDate: r.tradeDate, kind: r.kind, candidates: r.symbols.length, held: r.weights.filter((w) => w > 1e-12).length, turnover: r.turnover, cost: r.cost, objective: r.objective, relaxed: r.relaxed, solved: r.solved, seconds: r.seconds })),
      excessNav: run.dates.map((d, i) => [d, run.excessNav[i]]),
    })),
  };
  writeFileSync(join(outDir, 'metrics.json'), JSON.stringify(json, null, 1) + '\n');
  writeFileSync(join(outDir, 'table.md'), `# ${title}\n\n${table7(runs)}`);
  writeFileSync(join(outDir, 'report.html'), renderBacktestReport(title, runs, cfg));
}
