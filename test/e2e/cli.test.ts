/**
 * The CLI as a user runs it (node dist/cli.js): simulate -> features, checked by hand
 * against the simulator's own daily data and 1-minute bars, and the embedded default.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as A from 'apache-arrow';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { cli } from '../helpers.js';

function readCsv(path: string): Record<string, string>[] {
  const [header, ...lines] = readFileSync(path, 'utf8').trim().split('\n');
  const cols = header.split(',');
  return lines.map((l) => {
    const v = l.split(',');
    return Object.fromEntries(cols.map((c, i) => [c, v[i]]));
  });
}

const localDate = (ms: number): string => new Date(ms + 8 * 3600_000).toISOString().slice(0, 10);

describe('factorstream simulate -> features', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fs-cli-'));
  const sim = join(dir, 'sim');
  const feat = join(dir, 'feat');

  it('simulate writes ticks, 1-minute bars, daily data, latents and a manifest', () => {
    const r = cli(['simulate', '--symbols', '10', '--days', '2', '--seed', '4', '--start', '2026-11-23', '--out', sim, '--format', 'arrow']);
    expect(r.stderr).toMatch(/2026-11-24 written/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/simulated 10 symbols x 2 trading days \(seed 4\)/);
    expect(readdirSync(join(sim, 'ticks'))).toEqual(['2026-11-23.arrow', '2026-11-24.arrow']);
    expect(readdirSync(join(sim, 'bars-1m'))).toEqual(['2026-11-23.arrow', '2026-11-24.arrow']);
    const manifest = JSON.parse(readFileSync(join(sim, 'manifest.json'), 'utf8')) as { synthetic: boolean; universe: unknown[]; tradingDays: string[] };
    expect(manifest.synthetic).toBe(true);
    expect(manifest.universe.length).toBe(10);
    expect(manifest.tradingDays).toEqual(['2026-11-23', '2026-11-24']);
    expect(readCsv(join(sim, 'daily.csv')).length).toBe(20);
    expect(readCsv(join(sim, 'latent.csv')).length).toBe(20);
  });

  it('features from the ticks give 10- and 30-minute bars that add up to the daily data', () => {
    const r = cli(['features', '--input', join(sim, 'ticks'), '--freq', '10m,30m', '--out', feat, '--format', 'csv']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/10m: 48 closes, 480 rows; 30m: 16 closes, 160 rows; rejected: none/);
    const daily = readCsv(join(sim, 'daily.csv'));
    for (const freq of ['10m', '30m']) {
      const bars = readCsv(join(feat, `bars-${freq}.csv`));
      expect(bars.length).toBe(freq === '10m' ? 480 : 160);
      for (const d of daily) {
        const mine = bars.filter((b) => b.symbol === d.symbol && localDate(Number(b.barEnd)) === d.date);
        const traded = mine.filter((b) => b.missing === '0');
        if (d.suspended === '1') {
          expect(traded.length).toBe(0);
          continue;
        }
        expect(traded.reduce((a, b) => a + Number(b.volume), 0)).toBe(Number(d.volume));
        expect(traded.reduce((a, b) => a + Number(b.amount), 0)).toBeCloseTo(Number(d.amount), 0);
        expect(Number(traded[0].open)).toBe(Number(d.open));
        expect(Number(traded[traded.length - 1].close)).toBe(Number(d.close));
        expect(Math.max(...traded.map((b) => Number(b.high)))).toBe(Number(d.high));
        expect(Math.min(...traded.map((b) => Number(b.low)))).toBe(Number(d.low));
      }
    }
    expect(readFileSync(join(feat, 'rejects.jsonl'), 'utf8')).toBe('');
    const summary = JSON.parse(readFileSync(join(feat, 'summary.json'), 'utf8')) as { featureSet: string; symbols: number };
    expect(summary).toMatchObject({ featureSet: 'baseline-v1', symbols: 10 });
  });

  it('10-minute bars of trade-fed symbols equal the simulator 1-minute bars summed by hand', () => {
    const bars10 = readCsv(join(feat, 'bars-10m.csv'));
    const manifest = JSON.parse(readFileSync(join(sim, 'manifest.json'), 'utf8')) as { universe: { symbol: string; feed: string }[] };
    const tradeFed = new Set(manifest.universe.filter((u) => u.feed === 'trade').map((u) => u.symbol));
    expect(tradeFed.size).toBeGreaterThan(0);
    let checked = 0;
    for (const day of ['2026-11-23', '2026-11-24']) {
      const t = A.tableFromIPC(readFileSync(join(sim, 'bars-1m', `${day}.arrow`)));
      const agg = new Map<string, { v: number; h: number; l: number; c: number; n: number }>();
      for (const row of t) {
        const sym = String(row.symbol);
        if (!tradeFed.has(sym)) continue;
        const end = Number(row.ts);
        const minutes = Math.round((end - Date.parse(`${day}T00:00:00+08:00`)) / 60_000);
        // 10-minute label: the next multiple of 10 minutes of wall clock (bars never straddle lunch)
        const label = Date.parse(`${day}T00:00:00+08:00`) + Math.ceil(minutes / 10) * 600_000;
        const key = `${sym} ${label}`;
        const a = agg.get(key) ?? { v: 0, h: -Infinity, l: Infinity, c: 0, n: 0 };
        a.v += Number(row.volume);
        a.h = Math.max(a.h, Number(row.high));
        a.l = Math.min(a.l, Number(row.low));
        a.c = Number(row.close);
        a.n += Number(row.trades);
        agg.set(key, a);
      }
      for (const [key, a] of agg) {
        const [sym, label] = key.split(' ');
        const b = bars10.find((x) => x.symbol === sym && x.barEnd === label);
        expect(b, key).toBeDefined();
        expect([Number(b?.volume), Number(b?.high), Number(b?.low), Number(b?.close), Number(b?.trades)]).toEqual([a.v, a.h, a.l, a.c, a.n]);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(100);
  });

  it('Arrow and JSONL outputs hold the same rows, and JSONL rows match the published JSON Schemas', () => {
    const arrowOut = join(dir, 'feat-arrow');
    const jsonOut = join(dir, 'feat-json');
    expect(cli(['features', '--input', join(sim, 'ticks'), '--freq', '30m', '--out', arrowOut]).code).toBe(0);
    expect(cli(['features', '--input', join(sim, 'ticks'), '--freq', '30m', '--out', jsonOut, '--format', 'jsonl']).code).toBe(0);
    const t = A.tableFromIPC(readFileSync(join(arrowOut, 'features-30m.arrow')));
    const lines = readFileSync(join(jsonOut, 'features-30m.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(t.numRows).toBe(lines.length);
    const row = t.get(37)?.toJSON() as Record<string, unknown>;
    expect(Number(row.barEnd)).toBe(lines[37].barEnd);
    expect(row.ret ?? undefined).toBe(lines[37].ret);
    const ajv = new Ajv2020({ strict: false });
    const featureSchema = ajv.compile(JSON.parse(readFileSync('schemas/feature-row.schema.json', 'utf8')));
    const barSchema = ajv.compile(JSON.parse(readFileSync('schemas/bar.schema.json', 'utf8')));
    for (const l of lines) expect(featureSchema(l), JSON.stringify(featureSchema.errors)).toBe(true);
    for (const l of readFileSync(join(jsonOut, 'bars-30m.jsonl'), 'utf8').trim().split('\n')) expect(barSchema(JSON.parse(l))).toBe(true);
  });

  it('1-minute bar files give the same 30-minute bars as the ticks for trade-fed symbols', () => {
    const out = join(dir, 'feat-bars');
    const r = cli(['features', '--input', join(sim, 'bars-1m'), '--freq', '30m', '--out', out, '--format', 'csv']);
    expect(r.code).toBe(0);
    const fromBars = readCsv(join(out, 'bars-30m.csv'));
    const fromTicks = readCsv(join(dir, 'feat', 'bars-30m.csv'));
    const manifest = JSON.parse(readFileSync(join(sim, 'manifest.json'), 'utf8')) as { universe: { symbol: string; feed: string }[] };
    const tradeFed = new Set(manifest.universe.filter((u) => u.feed === 'trade').map((u) => u.symbol));
    const pick = (rows: Record<string, string>[]): string[] => rows.filter((x) => tradeFed.has(x.symbol)).map((x) => [x.symbol, x.barEnd, x.open, x.high, x.low, x.close, x.volume, x.trades, x.missing].join(' '));
    expect(pick(fromBars)).toEqual(pick(fromTicks));
  });

  it('bars.label start: a start-labelled 1-minute bar feed (09:30 … 14:59) gives the same bars as the end-labelled one, and session print bars merge', () => {
    const start = join(dir, 'sim-start');
    const env = { FACTORSTREAM_BARS_LABEL: 'start' };
    const s = cli(['simulate', '--symbols', '12', '--days', '1', '--seed', '3', '--out', start, '--format', 'jsonl'], env);
    expect(s.code, s.stderr).toBe(0);
    const day = readdirSync(join(start, 'bars-1m'))[0];
    const labels = readFileSync(join(start, 'bars-1m', day), 'utf8').trim().split('\n').map((l) => new Date((JSON.parse(l) as { ts: number }).ts + 8 * 3600_000).toISOString().slice(11, 16));
    expect(labels[0]).toBe('09:30');
    expect(labels.at(-1)).toBe('14:59');
    expect(labels).not.toContain('15:00');
    // A vendor that sends the opening and closing auctions apart, by their start: 09:25 and 15:00 (and the 11:30:00 prints).
    const rows = readFileSync(join(start, 'bars-1m', day), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { symbol: string; ts: number });
    const sym = rows[0].symbol;
    const at = (hhmm: string): number => Date.parse(`${day.slice(0, 10)}T${hhmm}:00+08:00`);
    const prints = [
      { symbol: sym, ts: at('09:25'), open: 10, high: 10, low: 10, close: 10, volume: 500, amount: 5000 },
      { symbol: sym, ts: at('11:30'), open: 10, high: 10, low: 10, close: 10, volume: 200, amount: 2000 },
      { symbol: sym, ts: at('15:00'), open: 10, high: 10, low: 10, close: 10, volume: 300, amount: 3000 },
    ];
    const withPrints = join(dir, 'bars-start-prints.jsonl');
    writeFileSync(withPrints, [...rows, ...prints].sort((a, b) => a.ts - b.ts).map((r) => JSON.stringify(r)).join('\n') + '\n');
    const end = join(dir, 'sim-end');
    expect(cli(['simulate', '--symbols', '12', '--days', '1', '--seed', '3', '--out', end, '--format', 'jsonl']).code).toBe(0);
    const outStart = join(dir, 'feat-start');
    const outEnd = join(dir, 'feat-end');
    expect(cli(['features', '--input', join(start, 'bars-1m'), '--freq', '30m', '--out', outStart, '--format', 'csv'], env).code).toBe(0);
    expect(cli(['features', '--input', join(end, 'bars-1m'), '--freq', '30m', '--out', outEnd, '--format', 'csv']).code).toBe(0);
    expect(readFileSync(join(outStart, 'bars-30m.csv'), 'utf8')).toBe(readFileSync(join(outEnd, 'bars-30m.csv'), 'utf8'));
    const outPrints = join(dir, 'feat-start-prints');
    const r = cli(['features', '--input', withPrints, '--freq', '30m', '--out', outPrints, '--format', 'csv'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/rejected: none/);
    const volume = (file: string, end: string): number => Number(readCsv(file).find((x) => x.symbol === sym && x.barEnd === String(at(end)))?.volume);
    expect(volume(join(outPrints, 'bars-30m.csv'), '10:00')).toBe(volume(join(outEnd, 'bars-30m.csv'), '10:00') + 500);
    expect(volume(join(outPrints, 'bars-30m.csv'), '11:30')).toBe(volume(join(outEnd, 'bars-30m.csv'), '11:30') + 200);
    expect(volume(join(outPrints, 'bars-30m.csv'), '15:00')).toBe(volume(join(outEnd, 'bars-30m.csv'), '15:00') + 300);
    // Read by their end, start labels are one minute off: 09:30 is the auction bar, 14:59 is not a bar end.
    const wrong = cli(['features', '--input', join(start, 'bars-1m'), '--freq', '30m', '--out', join(dir, 'feat-wrong')]);
    expect(wrong.stdout).not.toMatch(/rejected: none/);
  });

  it('reports bad input with its code and keeps going; usage errors exit 2', () => {
    const bad = cli(['features', '--input', join(dir, 'nothing.txt'), '--out', join(dir, 'x')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/cannot tell the format|ENOENT|no such file/);
    const usage = cli(['features', '--out', join(dir, 'x')]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/needs at least one --input/);
    const unknown = cli(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(cli(['simulate', '--symbols', 'many', '--out', dir]).code).toBe(2);
    expect(existsSync(join(dir, 'x', 'summary.json'))).toBe(false);
  });
});

describe('factorstream run (the embedded default)', () => {
  it('drives the simulated market through the daemon pipeline: every bar close, scores of both demo models, the Arrow archive', () => {
    const archive = mkdtempSync(join(tmpdir(), 'fs-archive-'));
    const r = cli(['run', '--symbols', '30', '--days', '1', '--speed', 'max'], { FACTORSTREAM_LOG_LEVEL: 'info', FACTORSTREAM_DAEMON_HTTP_PORT: '0', FACTORSTREAM_DAEMON_ARCHIVE_DIR: archive });
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.filter((l) => / 10m close: /.test(l)).length).toBe(24);
    expect(lines.filter((l) => / 30m close: /.test(l)).length).toBe(8);
    expect(lines[0]).toMatch(/^2026-01-05 09:40 10m close: \d+\/30 traded/);
    // demo-10m (T=12) scores once half its window is present: from 10:30, 19 closes; demo-30m (T=8) from 11:30, 5 closes.
    const scoreLines = lines.filter((l) => / scores demo-(10|30)m: /.test(l));
    expect(scoreLines.filter((l) => /10m scores demo-10m: 30 scored, 0 skipped/.test(l)).length).toBe(19);
    expect(scoreLines.filter((l) => /30m scores demo-30m: 30 scored, 0 skipped/.test(l)).length).toBe(5);
    expect(lines[lines.length - 1]).toMatch(/^done: 1 simulated day\(s\), [\d,]+ events, 32 bar closes, 720 scores, rejected: none/);
    expect(r.stderr).toMatch(/"msg":"simulated market started"/);
    expect(r.stderr).toMatch(/"msg":"http listening/);
    const day = readdirSync(join(archive, '2026-01-05')).sort();
    expect(day.map((f) => f.replace(/\.\d+\.arrow$/, ''))).toEqual(['demo-10m', 'demo-30m']);
    const rows = day.reduce((n, f) => n + A.tableFromIPC(readFileSync(join(archive, '2026-01-05', f))).numRows, 0);
    expect(rows).toBe(720);
  });
  it('publishes what the offline path computes on the same market: reconcile of its archive against features + score on the simulated ticks', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fs-run-parity-'));
    const archive = join(dir, 'archive');
    const r = cli(['run', '--symbols', '40', '--days', '2', '--speed', 'max'], { FACTORSTREAM_DAEMON_HTTP_PORT: '0', FACTORSTREAM_DAEMON_ARCHIVE_DIR: archive });
    expect(r.code, r.stderr).toBe(0);
    const s = cli(['simulate', '--symbols', '40', '--days', '2', '--out', join(dir, 'sim'), '--format', 'arrow']);
    expect(s.code, s.stderr).toBe(0);
    const rec = cli(['reconcile', '--input', join(dir, 'sim', 'ticks'), '--archive', archive, '--json']);
    expect(rec.code, rec.stdout + rec.stderr).toBe(0);
    const report = JSON.parse(rec.stdout) as { ok: boolean; days: string[]; models: { offline: number; published: number; matched: number }[] };
    expect(report.days).toEqual(['2026-01-05', '2026-01-06']);
    for (const m of report.models) expect(m.matched).toBe(m.offline);
    const scored = Number(/, ([\d,]+) scores,/.exec(r.stdout)?.[1].replaceAll(',', ''));
    expect(report.models.reduce((n, m) => n + m.published, 0)).toBe(scored);
    // A missing archive file is a mismatch: exit 1.
    const day = join(archive, '2026-01-06');
    const gone = readdirSync(day).find((f) => f.startsWith('demo-30m')) as string;
    rmSync(join(day, gone));
    const bad = cli(['reconcile', '--input', join(dir, 'sim', 'ticks'), '--archive', archive]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/MISMATCH demo-30m \S+ \(30m\): offline \d+, published \d+, equal \d+, missing [1-9]/);
    // A file cut short (a power cut before the operating system wrote it out): read up to its last whole close, the rest missing.
    const cutFile = join(day, readdirSync(day).find((f) => f.startsWith('demo-10m')) as string);
    truncateSync(cutFile, statSync(cutFile).size - 100);
    const cut = cli(['reconcile', '--input', join(dir, 'sim', 'ticks'), '--archive', archive]);
    expect(cut.code, cut.stderr).toBe(1);
    expect(cut.stdout).toMatch(/MISMATCH demo-10m \S+ \(10m\): offline \d+, published \d+, equal \d+, missing [1-9]/);
    expect(cut.stderr).toMatch(/"msg":"archive file cut short: read up to its last whole close"/);
  });

  it('takes configuration from the environment', () => {
    const r = cli(['run', '--days', '1', '--speed', 'max'], {
      FACTORSTREAM_SIMULATOR_SYMBOLS: '7',
      FACTORSTREAM_FEATURES_FREQS: '["30m"]',
      FACTORSTREAM_DAEMON_MODELS: '["models/demo-30m"]',
      FACTORSTREAM_DAEMON_HTTP_PORT: '0',
      FACTORSTREAM_DAEMON_ARCHIVE_DIR: '',
    });
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').filter((l) => / 30m close: \d+\/7 traded/.test(l)).length).toBe(8);
    expect(r.stdout).not.toMatch(/ 10m close/);
    const bad = cli(['run', '--days', '1'], { FACTORSTREAM_FEATURES_ZCLIP: 'x', FACTORSTREAM_FEATURES_Z_CLIP: '-1' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/features.zClip/);
  });
});
