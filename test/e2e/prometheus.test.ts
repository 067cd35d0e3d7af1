/**
 * The dashboard and the alert rules against a real Prometheus (Debian's package) scraping a
 * real daemon: the embedded default runs three simulated days with its HTTP port; Prometheus
 * scrapes it every second and evaluates deploy/prometheus/rules.yml. Every dashboard
 * panel's query must evaluate without error and return data, every rule expression must
 * evaluate without error, and every rule must report healthy. Skipped, loudly, without
 * prometheus; CI installs it and must run this.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';

const PROMETHEUS = spawnSync('prometheus', ['--version'], { encoding: 'utf8' }).status === 0;
if (!PROMETHEUS) {
  process.stderr.write('\n*** Prometheus scrape test SKIPPED: no prometheus on this machine (apt-get install prometheus) ***\n\n');
  if (process.env.CI === 'true') throw new Error("CI must run the Prometheus scrape test: install Debian's prometheus package");
}

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

interface QueryResult {
  status: string;
  error?: string;
  data?: { result: unknown[] };
}

const dashboard = JSON.parse(readFileSync('deploy/grafana/dashboards/factorstream.json', 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
const rules = parseYaml(readFileSync('deploy/prometheus/rules.yml', 'utf8')) as { groups: { rules: { record?: string; alert?: string; expr: string }[] }[] };
/** Grafana's interval variable, as Grafana would fill it for a 1 s scrape interval. */
const grafana = (expr: string): string => expr.replaceAll('$__rate_interval', '15s');

describe.skipIf(!PROMETHEUS)('dashboard and rules against a real Prometheus', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fs-prometheus-'));
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const c of children) c.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });

  it('every panel query returns data, every rule evaluates, while the daemon runs', async () => {
    const daemonPort = await freePort();
    const promPort = await freePort();
    writeFileSync(
      join(dir, 'prometheus.yml'),
      [
        'global: { scrape_interval: 1s, evaluation_interval: 1s }',
        `rule_files: ['${resolve('deploy/prometheus/rules.yml')}']`,
        'scrape_configs:',
        '  - job_name: factorstream',
        `    static_configs: [{ targets: ['127.0.0.1:${daemonPort}'] }]`,
        '',
      ].join('\n'),
    );
    const prom = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${promPort}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(prom);
    let promLog = '';
    prom.stderr?.on('data', (b: Buffer) => (promLog += b.toString()));
    const daemon = spawn(process.execPath, ['dist/cli.js', 'run', '--days', '4', '--speed', '600x'], {
      // A daily portfolio on the simulator's index, for the target-weight panel.
      env: { ...process.env, FACTORSTREAM_DAEMON_HTTP_PORT: String(daemonPort), FACTORSTREAM_DAEMON_ARCHIVE_DIR: '', FACTORSTREAM_LOG_LEVEL: 'warn', FACTORSTREAM_PORTFOLIO_MODEL: 'demo-10m', FACTORSTREAM_PORTFOLIO_BENCHMARK: 'SIM-MID', FACTORSTREAM_PORTFOLIO_REBALANCE: 'daily' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(daemon);
    let stdout = '';
    daemon.stdout?.on('data', (b: Buffer) => (stdout += b.toString()));

    const query = async (expr: string): Promise<QueryResult> => {
      try {
        const r = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(expr)}`);
        return (await r.json()) as QueryResult;
      } catch (err) {
        return { status: 'unreachable', error: (err as Error).message };
      }
    };
    const panels = dashboard.panels.flatMap((p) => p.targets.map((t) => ({ title: p.title, expr: grafana(t.expr) })));
    const ruleExprs = rules.groups.flatMap((g) => g.rules.map((r) => ({ name: r.record ?? r.alert ?? '', expr: r.expr })));
    let missing: string[] = [];
    const deadline = Date.now() + 150_000;
    // Until the second simulated day has closed (live IC exists) and every panel has data.
    while (Date.now() < deadline) {
      missing = [];
      if ((stdout.match(/ 15:00 10m close/g)?.length ?? 0) < 2) missing.push('the second day close');
      for (const p of panels) {
        const r = await query(p.expr);
        if (r.status !== 'success' || (r.data?.result.length ?? 0) === 0) missing.push(`${p.title}: ${p.expr} (${r.status}${r.error === undefined ? '' : `: ${r.error}`})`);
      }
      if (missing.length === 0) break;
      await new Promise((r) => setTimeout(r, 2_000));
    }
    expect(missing, promLog.slice(-2000)).toEqual([]);
    for (const r of ruleExprs) {
      const res = await query(r.expr);
      expect(res.status, `${r.name}: ${res.error ?? ''}`).toBe('success');
    }
    const loaded = (await (await fetch(`http://127.0.0.1:${promPort}/api/v1/rules`)).json()) as { data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] } };
    const evaluated = loaded.data.groups.flatMap((g) => g.rules);
    expect(evaluated.map((r) => r.name).sort()).toEqual(ruleExprs.map((r) => r.name).sort());
    for (const r of evaluated) expect(r.health, `${r.name}: ${r.lastError ?? ''}`).toBe('ok');
    const targets = (await (await fetch(`http://127.0.0.1:${promPort}/api/v1/targets`)).json()) as { data: { activeTargets: { health: string; scrapeUrl: string }[] } };
    expect(targets.data.activeTargets).toEqual([expect.objectContaining({ health: 'up', scrapeUrl: `http://127.0.0.1:${daemonPort}/metrics` })]);
  }, 240_000);
});
