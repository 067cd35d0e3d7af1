/**
 * simulate -> features -> train -> score -> evaluate, as a user runs it from the README,
 * on a small synthetic market (wasm backend here; the native one where installed).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as A from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../src/model/artifact.js';
import { selectBackend } from '../../src/model/backend.js';

function cli(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['dist/cli.js', ...args], { encoding: 'utf8', timeout: 300_000, env: { ...process.env, FACTORSTREAM_LOG_LEVEL: 'info' } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe('model pipeline', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fs-model-'));
  const model = join(dir, 'models', 'gru-attn-30m');

  it('trains, scores and evaluates from the command line', async () => {
    expect(cli(['simulate', '--symbols', '40', '--days', '25', '--seed', '9', '--trades-per-day', '120', '--snapshot-share', '0', '--out', join(dir, 'sim')]).code).toBe(0);
    expect(cli(['features', '--input', join(dir, 'sim', 'ticks'), '--freq', '30m', '--out', join(dir, 'feat')]).code).toBe(0);
    const train = cli(['train', '--features', join(dir, 'feat'), '--daily', join(dir, 'sim', 'daily.csv'), '--freq', '30m', '--out', model, '--epochs', '2', '--hidden', '8', '--head', 'residual', '--pooling', 'mean']);
    expect(train.stderr).toMatch(/"msg":"tfjs backend selected"/);
    expect(train.stderr).toMatch(/"epoch":1/);
    expect(train.code).toBe(0);
    expect(train.stdout).toMatch(/trained gru-attn-30m \(gru\/residual\/mean, 30m, T=40\)/);
    const meta = JSON.parse(readFileSync(join(model, 'meta.json'), 'utf8')) as Record<string, unknown>;
    expect(meta).toMatchObject({ featureSet: 'baseline-v1', freq: '30m', T: 40, label: { kind: 'raw', horizonDays: 5 } });
    expect(((meta.backend as { name: string }).name)).toMatch(/tensorflow|wasm|cpu/);

    // train writes the ONNX graph beside the weights, and scoring uses it by default.
    expect(meta.onnx).toMatchObject({ file: 'model.onnx', input: 'features', output: 'score', source: 'export', opset: 17 });
    expect(existsSync(join(model, 'model.onnx'))).toBe(true);
    const scores = join(dir, 'scores.arrow');
    const score = cli(['score', '--model', model, '--features', join(dir, 'feat'), '--out', scores]);
    expect(score.code, score.stderr).toBe(0);
    expect(score.stdout).toMatch(/ on onnx\/cpu -> /);
    const t = A.tableFromIPC(readFileSync(scores));
    // The tfjs engine on the same folder: the same scores to 1e-4, row for row.
    const tfjsScores = join(dir, 'scores-tfjs.arrow');
    const scoreTfjs = cli(['score', '--model', model, '--features', join(dir, 'feat'), '--out', tfjsScores, '--engine', 'tfjs']);
    expect(scoreTfjs.code, scoreTfjs.stderr).toBe(0);
    expect(scoreTfjs.stdout).toMatch(/ on tfjs\/(tensorflow|wasm|cpu) -> /);
    const a = (t.getChild('score') as A.Vector).toArray() as Float64Array;
    const b = (A.tableFromIPC(readFileSync(tfjsScores)).getChild('score') as A.Vector).toArray() as Float64Array;
    expect(b.length).toBe(a.length);
    expect(Math.max(...a.map((v, i) => Math.abs(v - b[i])))).toBeLessThanOrEqual(1e-4);
    // export rewrites the graphs and checks the engines against each other ...
    const exported = cli(['export', '--model', model]);
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).toMatch(/wrote .*model\.onnx \(\d+ kB\)\nwrote .*model\.prefix\.onnx \(\d+ kB\)\nwrote .*model\.step\.onnx \(\d+ kB\)\nonnx and tfjs engines on 256 random sequences: max \|difference\| \d\.\d\de-\d+ \(tolerance 0\.0001\)/);
    // ... and one recurrent step from the prefix against the whole window, on each engine.
    for (const engine of ['onnx', 'tfjs']) expect(exported.stdout).toMatch(new RegExp(`${engine}: prefix \\+ step against the whole window on 256 random sequences: max \\|difference\\| \\d\\.\\d\\de[-+]\\d+ \\(tolerance 0\\.000001\\)`));
    expect(cli(['export', '--model', model, '--format', 'pmml']).code).toBe(2);
    expect(t.schema.fields.map((f) => f.name)).toEqual(['symbol', 'barEnd', 'score', 'z', 'rank', 'coverage', 'dayClose']);
    const ranks = (t.getChild('rank') as A.Vector).toArray() as Float64Array;
    expect(Math.min(...ranks)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...ranks)).toBeLessThanOrEqual(1);

    const evaluated = cli(['evaluate', '--scores', scores, '--returns', join(dir, 'sim', 'daily.csv'), '--out', join(dir, 'eval'), '--title', '30m residual']);
    expect(evaluated.code).toBe(0);
    const metrics = JSON.parse(readFileSync(join(dir, 'eval', 'metrics.json'), 'utf8')) as { dates: number; ic: number; series: unknown[] };
    expect(metrics.dates).toBeGreaterThanOrEqual(2);
    expect(Number.isFinite(metrics.ic)).toBe(true);
    expect(readFileSync(join(dir, 'eval', 'table.md'), 'utf8')).toMatch(/^\| factor \| IC \| Rank IC \| ICIR \| win \| long \| short \| L-S \| autocorr \| top10% turnover \| weeks \|\n/);
    // the same evaluation straight from the model and the features gives the same figures
    const direct = cli(['evaluate', '--model', model, '--features', join(dir, 'feat'), '--returns', join(dir, 'sim', 'daily.csv'), '--out', join(dir, 'eval2'), '--title', '30m residual']);
    expect(direct.code).toBe(0);
    const metrics2 = JSON.parse(readFileSync(join(dir, 'eval2', 'metrics.json'), 'utf8')) as { dates: number; ic: number };
    expect(metrics2.dates).toBe(metrics.dates);
    expect(metrics2.ic).toBeCloseTo(metrics.ic, 6);
    expect(cli(['evaluate', '--returns', 'x.csv', '--out', join(dir, 'eval3')]).code).toBe(2);
    const html = readFileSync(join(dir, 'eval', 'report.html'), 'utf8');
    expect(html.match(/<svg /g)?.length).toBe(3);
    expect(html).not.toMatch(/<script|(src|href)=["']?https?:/);

    // --exposures: the factor also evaluated neutralised to industry and size.
    const neutral = cli(['evaluate', '--scores', scores, '--returns', join(dir, 'sim', 'daily.csv'), '--exposures', join(dir, 'sim', 'daily.csv'), '--out', join(dir, 'eval4'), '--title', '30m residual']);
    expect(neutral.code, neutral.stderr).toBe(0);
    expect(neutral.stdout).toMatch(/industry \+ size neutral: IC -?\d\.\d{4}/);
    const m4 = JSON.parse(readFileSync(join(dir, 'eval4', 'metrics.json'), 'utf8')) as { ic: number; neutral: { ic: number; dates: number } };
    expect(m4.ic).toBeCloseTo(metrics.ic, 10);
    expect(m4.neutral.dates).toBe(metrics.dates);
    expect(m4.neutral.ic).not.toBeCloseTo(metrics.ic, 6);
    expect(readFileSync(join(dir, 'eval4', 'table.md'), 'utf8').trim().split('\n')).toHaveLength(4);
  }, 300_000);

  it('trains a seed ensemble over rolling windows and scores each date with the window trained before it', () => {
    const rolling = join(dir, 'models', 'rolling');
    const r = cli(['train', '--features', join(dir, 'feat'), '--daily', join(dir, 'sim', 'daily.csv'), '--freq', '30m', '--out', rolling, '--epochs', '1', '--hidden', '8', '--seeds', '2', '--window', '8', '--step', '4']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/ensemble of 2 seeds.*: \d+ rolling windows, validation IC/);
    const meta = JSON.parse(readFileSync(join(rolling, 'meta.json'), 'utf8')) as { rolling: { dir: string; trainTo: string; scoreFrom: string; scoreTo: string }[] };
    expect(meta.rolling.length).toBeGreaterThanOrEqual(2);
    const w1 = meta.rolling[0];
    for (let i = 0; i + 1 < meta.rolling.length; i++) {
      const [a, b] = [meta.rolling[i], meta.rolling[i + 1]];
      expect(a.scoreFrom > a.trainTo).toBe(true);
      expect(a.scoreTo < b.scoreFrom).toBe(true);
      expect(b.trainTo > a.trainTo).toBe(true);
    }
    expect(meta.rolling[meta.rolling.length - 1].scoreTo).toBe('9999-12-31');
    for (const w of meta.rolling) {
      const inner = JSON.parse(readFileSync(join(rolling, w.dir, 'meta.json'), 'utf8')) as { ensemble: { members: { dir: string; scale: number }[] } };
      expect(inner.ensemble.members).toHaveLength(2);
      for (const m of inner.ensemble.members) {
        expect(existsSync(join(rolling, w.dir, m.dir, 'weights.bin'))).toBe(true);
        expect(m.scale).toBeGreaterThan(0);
      }
    }
    const out = join(dir, 'rolling-scores.csv');
    expect(cli(['score', '--model', rolling, '--features', join(dir, 'feat'), '--out', out]).code).toBe(0);
    const dates = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => new Date(Number(l.split(',')[1]) + 8 * 3_600_000).toISOString().slice(0, 10));
    expect(dates.length).toBeGreaterThan(0);
    // Nothing before the first window's out-of-sample start.
    expect(dates.every((d) => d >= w1.scoreFrom)).toBe(true);
  }, 300_000);

  it('refuses to load a model trained on another feature set', async () => {
    await selectBackend();
    expect(existsSync(join(model, 'meta.json'))).toBe(true);
    const meta = JSON.parse(readFileSync(join(model, 'meta.json'), 'utf8')) as { features: string[] };
    await expect(loadModel(model)).resolves.toBeDefined();
    writeFileSync(join(model, 'meta.json'), JSON.stringify({ ...meta, featureSet: 'other-v2', features: ['a', 'b'] }));
    await expect(loadModel(model)).rejects.toThrow(/trained on feature set other-v2 \(a, b\); this build computes baseline-v1/);
  });
});
