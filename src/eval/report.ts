/**
 * The evaluation report: a table laid out like the research report's Table 5, and one
 * self-contained HTML page with inline SVG charts (cumulative long excess, yearly long
 * excess, weekly IC). No scripts, no external resources.
 */
import type { FactorMetrics } from './metrics.js';

export const pct = (x: number, digits = 2): string => (Number.isFinite(x) ? `${(x * 100).toFixed(digits)}%` : 'n/a');
export const num = (x: number, digits = 3): string => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');

/** Rows of Table 5: IC, ICIR (annualised), win rate, long, short, long-short (weekly means), autocorrelation, top-decile turnover. */
export function table5(rows: { label: string; metrics: FactorMetrics }[]): string {
  const head = '| factor | IC | Rank IC | ICIR | win | long | short | L-S | autocorr | top10% turnover | weeks |\n|---|---|---|---|---|---|---|---|---|---|---|\n';
  return (
    head +
    rows
      .map(
        ({ label, metrics: m }) =>
          `| ${label} | ${num(m.ic)} | ${num(m.rankIc)} | ${num(m.icir, 2)} | ${pct(m.winRate, 0)} | ${pct(m.longExcess)} | ${pct(m.shortExcess)} | ${pct(m.longShort)} | ${num(m.autocorrelation, 2)} | ${pct(m.turnover, 0)} | ${m.dates} |`,
      )
      .join('\n') +
    '\n'
  );
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string);
}

const W = 720;
const H = 220;
const PAD = 40;

function scaleY(values: number[]): (v: number) => number {
  const lo = Math.min(0, ...values);
  const hi = Math.max(0, ...values);
  const span = hi - lo || 1;
  return (v) => PAD / 2 + (H - PAD) * (1 - (v - lo) / span);
}

function axis(y: (v: number) => number, label: string): string {
  return `<line x1="${PAD}" x2="${W - 10}" y1="${y(0)}" y2="${y(0)}" stroke="#999" stroke-width="1"/><text x="${PAD}" y="14" font-size="12" fill="#333">${escapeHtml(label)}</text>`;
}

export function lineChart(values: number[], label: string): string {
  const y = scaleY(values);
  const x = (i: number): number => PAD + ((W - PAD - 10) * i) / Math.max(1, values.length - 1);
  const points = values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="${escapeHtml(label)}">${axis(y, label)}<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="${points}"/></svg>`;
}

export function barChart(values: number[], labels: string[], label: string): string {
  const y = scaleY(values);
  const step = (W - PAD - 10) / Math.max(1, values.length);
  const bars = values
    .map((v, i) => {
      const top = Math.min(y(v), y(0));
      const h = Math.abs(y(v) - y(0));
      const color = v >= 0 ? '#2ca02c' : '#d62728';
      return `<rect x="${(PAD + i * step + step * 0.1).toFixed(1)}" y="${top.toFixed(1)}" width="${(step * 0.8).toFixed(1)}" height="${h.toFixed(1)}" fill="${color}"><title>${escapeHtml(labels[i])}: ${v.toFixed(4)}</title></rect>`;
    })
    .join('');
  const ticks = labels.length <= 12 ? labels.map((l, i) => `<text x="${(PAD + (i + 0.5) * step).toFixed(1)}" y="${H - 4}" font-size="11" text-anchor="middle" fill="#333">${escapeHtml(l)}</text>`).join('') : '';
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="${escapeHtml(label)}">${axis(y, label)}${bars}${ticks}</svg>`;
}

export function renderReport(title: string, m: FactorMetrics, neutral?: FactorMetrics): string {
  let cum = 1;
  const cumulative = m.series.map((s) => (cum *= 1 + s.longExcess) - 1);
  const line = (f: (x: FactorMetrics) => string): string => (neutral === undefined ? f(m) : `${f(m)}</td><td>${f(neutral)}`);
  const rows: [string, string][] = [
    ['weeks', line((x) => String(x.dates))],
    ['mean cross-section', line((x) => num(x.meanN, 0))],
    ['IC (mean weekly Pearson)', line((x) => num(x.ic))],
    ['Rank IC', line((x) => num(x.rankIc))],
    ['ICIR (annualised)', line((x) => num(x.icir, 2))],
    ['win rate (IC > 0)', line((x) => pct(x.winRate, 0))],
    ['long excess (weekly mean)', line((x) => pct(x.longExcess))],
    ['short excess (weekly mean)', line((x) => pct(x.shortExcess))],
    ['long-short (weekly mean)', line((x) => pct(x.longShort))],
    ['factor autocorrelation', line((x) => num(x.autocorrelation, 2))],
    ['top-decile turnover', line((x) => pct(x.turnover, 0))],
  ];
  const header = neutral === undefined ? '' : '<tr><th></th><th>factor</th><th>industry + size neutral</th></tr>';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}h2{margin-top:1.5em}</style>
</head><body>
<h1>${escapeHtml(title)}</h1>
<p>Weekly evaluation: factor on each week's last trading day, forward excess return over the next week.</p>
<table>${header}${rows.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${v}</td></tr>`).join('')}</table>
<h2>Cumulative long excess</h2>
${lineChart(cumulative, 'cumulative top-decile excess return')}
<h2>Yearly long excess</h2>
${barChart(m.yearlyLongExcess.map((y) => y.longExcess), m.yearlyLongExcess.map((y) => String(y.year)), 'long excess by year')}
<h2>Weekly IC</h2>
${barChart(m.series.map((s) => s.ic), m.series.map((s) => s.date), 'weekly IC')}
</body></html>
`;
}
