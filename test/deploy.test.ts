/**
 * deploy/ is kept runnable: the Prometheus rules pass `promtool check rules` and their unit
 * tests (`promtool test rules`: each alert fires on its situation and not on the healthy
 * one). Skipped, loudly, without promtool (Debian's prometheus package); CI installs it.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0;
if (!promtool) {
  process.stderr.write('\n*** Prometheus rule tests SKIPPED: no promtool on this machine (apt-get install prometheus) ***\n\n');
  if (process.env.CI === 'true') throw new Error("CI must run the Prometheus rule tests: install Debian's prometheus package");
}

describe.skipIf(!promtool)('Prometheus rules', () => {
  it('pass promtool check rules', () => {
    const r = spawnSync('promtool', ['check', 'rules', 'deploy/prometheus/rules.yml'], { encoding: 'utf8' });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('pass their unit tests (promtool test rules)', () => {
    const r = spawnSync('promtool', ['test', 'rules', 'deploy/prometheus/rules.test.yml'], { encoding: 'utf8' });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/SUCCESS/);
  });
});
