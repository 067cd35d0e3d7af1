/**
 * The documentation lists exactly what the code has: error codes, config keys with their
 * environment variables, features, commands. A code, key or feature added without its
 * README line fails here.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configKeys, loadConfig } from '../src/config.js';
import { ERROR_CATALOGUE, ERROR_CODES, errorCode, errorId } from '../src/errors.js';
import { FEATURE_NAMES } from '../src/features/feature-set.js';
import { metricNames } from '../src/sink/metrics.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { z } from 'zod';
import { ServingMetaSchema } from '../src/model/artifact.js';
import { cli } from './helpers.js';

const readme = readFileSync('README.md', 'utf8');

function tableRows(heading: string): string[][] {
  const start = readme.indexOf(`## ${heading}`);
  const end = readme.indexOf('\n## ', start + 3);
  const section = readme.slice(start, end < 0 ? undefined : end);
  return section
    .split('\n')
    .filter((l) => l.startsWith('| ') && !l.startsWith('| ---'))
    .slice(1)
    .map((l) => l.split('|').slice(1, -1).map((c) => c.trim()));
}

describe('error catalogue', () => {
  it('codes are unique, dense and round-trip', () => {
    const ids = Object.values(ERROR_CATALOGUE).map((d) => d.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const code of Object.keys(ERROR_CATALOGUE) as (keyof typeof ERROR_CATALOGUE)[]) expect(errorCode(errorId(code))).toBe(code);
    expect(ERROR_CODES.filter(Boolean).length).toBe(ids.length);
    expect(() => errorCode(999)).toThrow(RangeError);
  });
  it('the README table lists exactly the live codes, with their messages', () => {
    const rows = tableRows('Error codes');
    expect(rows.map((r) => r[0].replaceAll('`', ''))).toEqual(Object.keys(ERROR_CATALOGUE));
    for (const r of rows) expect(r[1]).toBe(ERROR_CATALOGUE[r[0].replaceAll('`', '') as keyof typeof ERROR_CATALOGUE].message);
  });
});

describe('configuration', () => {
  it('the README documents every key and its environment variable', () => {
    const rows = tableRows('Configuration');
    expect(rows.map((r) => [r[0].replaceAll('`', ''), r[1].replaceAll('`', '')])).toEqual(configKeys().map((k) => [k.path, k.env]));
  });
  it('layers defaults < file < env < flags, and refuses bad values with every problem named', () => {
    const c = loadConfig({ env: { FACTORSTREAM_FEATURES_Z_CLIP: '3', FACTORSTREAM_SIMULATOR_SYMBOLS: '50' }, flags: { simulator: { symbols: 60 } } });
    expect(c.features.zClip).toBe(3);
    expect(c.simulator.symbols).toBe(60);
    expect(c.features.freqs).toEqual(['10m', '30m']);
    expect(Object.isFrozen(c.features)).toBe(true);
    expect(() => loadConfig({ env: { FACTORSTREAM_FEATURES_FREQS: '["7m"]', FACTORSTREAM_FEATURES_ALLOWED_LATENESS_MS: '3600000' } })).toThrow(
      /features.freqs.0[\s\S]*features.allowedLatenessMs/,
    );
    expect(() => loadConfig({ flags: { features: { nonsense: 1 } } })).toThrow(/nonsense/);
  });
});

describe('metrics', () => {
  it('the README metrics table lists exactly the factorstream_ metrics the code registers', () => {
    expect(tableRows('Metrics').map((r) => r[0].replaceAll('`', '')).sort()).toEqual(metricNames());
  });
});

describe('features and commands', () => {
  it('the README feature table follows the feature set order', () => {
    expect(tableRows('Features').map((r) => r[1].replaceAll('`', ''))).toEqual([...FEATURE_NAMES]);
  });
  it('the feature-row schema lists the features in order', () => {
    const schema = JSON.parse(readFileSync('schemas/feature-row.schema.json', 'utf8')) as { properties: Record<string, unknown> };
    expect(Object.keys(schema.properties).slice(2)).toEqual([...FEATURE_NAMES]);
  });
  it('the README opens with the two set-up commands, and they are the package scripts', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> };
    const block = /```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
    expect(block).toMatch(/^npm ci && npm run native && npm start /m);
    expect(block).toMatch(/^npm ci && npm run native && npm test /m);
    expect(pkg.scripts.native).toBe('node scripts/install-tfjs-native.mjs');
    expect(pkg.scripts.start).toMatch(/dist\/cli\.js run/);
    expect(pkg.scripts.test).toMatch(/typecheck.*lint.*vitest run/);
    const ci = readFileSync('.ci/run', 'utf8');
    expect(ci).toMatch(/npm ci/);
    expect(ci).toMatch(/npm run native/);
    expect(ci).toMatch(/npm test/);
  });
});

describe('model folder contract', () => {
  it('schemas/model-meta.schema.json is the schema load checks, and the demo and external model folders satisfy it', () => {
    const { title: _t, description: _d, ...published } = JSON.parse(readFileSync('schemas/model-meta.schema.json', 'utf8')) as Record<string, unknown>;
    expect(published).toEqual(z.toJSONSchema(ServingMetaSchema, { io: 'input' }));
    const validate = new Ajv2020({ strict: false }).compile(published);
    for (const dir of ['models/demo-10m', 'models/demo-30m', 'test/fixtures/external-torch']) {
      expect(validate(JSON.parse(readFileSync(`${dir}/meta.json`, 'utf8'))), `${dir}: ${JSON.stringify(validate.errors)}`).toBe(true);
    }
  });

  it('`factorstream <command> --help` prints that command’s flags and examples, whose flags are its own', () => {
    const source = readFileSync('src/cli.ts', 'utf8');
    const dispatched = [...source.matchAll(/^ {6}case '([a-z]+)':\n {8}return await cmd/gm)].map((m) => m[1]);
    for (const c of dispatched) {
      const r = cli([c, '--help']);
      expect(r.code, `${c}: ${r.stderr}`).toBe(0);
      const [usage, examples = ''] = r.stdout.split('\nExamples:\n');
      expect(usage, c).toMatch(new RegExp(`^Usage: factorstream ${c} \\[flags\\]\n\n  ${c} `));
      // Only this command: no other command's line.
      for (const other of dispatched.filter((o) => o !== c)) expect(usage, `${c} shows ${other}`).not.toMatch(new RegExp(`^  ${other} `, 'm'));
      const lines = examples.split('\n').filter((l) => l.startsWith('  factorstream '));
      expect(lines.length, c).toBeGreaterThan(0);
      for (const l of lines) {
        expect(l, c).toMatch(new RegExp(`^  factorstream ${c} `));
        for (const flag of l.match(/--[a-z-]+/g) ?? []) expect(usage, `${c} example flag ${flag}`).toContain(flag);
      }
    }
    const help = cli(['help', 'serve']);
    expect(help.stdout).toMatch(/^Usage: factorstream serve \[flags\]/);
    expect(cli(['help', 'nonsense']).code).toBe(2);
  });

  it('the README documents the commands the CLI dispatches', () => {
    const cli = readFileSync('src/cli.ts', 'utf8');
    const dispatched = [...cli.matchAll(/^ {6}case '([a-z]+)':\n {8}return await cmd/gm)].map((m) => m[1]);
    expect(dispatched).toEqual(expect.arrayContaining(['run', 'serve', 'replay', 'export', 'doctor']));
    for (const c of dispatched) expect(readme, c).toMatch(new RegExp(`factorstream ${c}\\b`));
  });
});

