/**
 * deploy/ is kept runnable. Every file there is parsed, and what it names must exist in
 * the code: ports (the HTTP port's default), HTTP paths, FACTORSTREAM_* variables (config
 * keys), metric names (registered metrics, recording rules, Node's default metrics), files
 * it copies or mounts. The Prometheus rules pass `promtool check rules` and their unit
 * tests (`promtool test rules`: each alert fires on its situation and not on the healthy
 * one); skipped, loudly, without promtool (Debian's prometheus package); CI installs it.
 * test/e2e/prometheus.test.ts runs the dashboard's and the rules' queries against a real
 * Prometheus scraping the daemon.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { configKeys, loadConfig } from '../src/config.js';
import { HTTP_PATHS } from '../src/sink/http.js';
import { metricNames } from '../src/sink/metrics.js';

const defaults = loadConfig();
const ENV_VARS = new Set(configKeys().map((k) => k.env));
const HTTP_PORT = defaults.daemon.httpPort;

/** Every FACTORSTREAM_* name in a text. */
function envNames(text: string): string[] {
  return [...text.matchAll(/\bFACTORSTREAM_[A-Z0-9_]+\b/g)].map((m) => m[0]);
}

/** Metric names a PromQL expression reads (identifiers before { [ or ( that are not functions). */
function metricsIn(expr: string): string[] {
  return [...expr.matchAll(/\b((?:factorstream|process|nodejs)_[a-z0-9_]+|factorstream:[a-z0-9_:]+|up)\b/g)].map((m) => m[1]);
}

interface RuleFile {
  groups: { name: string; rules: { record?: string; alert?: string; expr: string; annotations?: Record<string, string> }[] }[];
}
const rules = parseYaml(readFileSync('deploy/prometheus/rules.yml', 'utf8')) as RuleFile;
const recorded = new Set(rules.groups.flatMap((g) => g.rules.flatMap((r) => (r.record === undefined ? [] : [r.record]))));
/** Registered factorstream metrics, their histogram series, and prom-client's default process and Node metrics used here. */
const KNOWN = new Set([
  ...metricNames().flatMap((m) => [m, `${m}_bucket`, `${m}_sum`, `${m}_count`]),
  ...recorded,
  'up',
  'process_cpu_seconds_total',
  'process_resident_memory_bytes',
  'nodejs_heap_size_used_bytes',
  'nodejs_eventloop_lag_p99_seconds',
]);

describe('deploy files name only what exists', () => {
  it('Dockerfiles: files copied exist, the exposed port and health check are the daemon\'s, variables are config keys, non-root', () => {
    for (const file of ['deploy/Dockerfile', 'deploy/Dockerfile.gpu']) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) for (const src of m[1].split(/\s+/)) expect(existsSync(src), `${file}: COPY ${src}`).toBe(true);
      expect(text, file).toMatch(new RegExp(`^EXPOSE ${HTTP_PORT}$`, 'm'));
      expect(text, file).toMatch(/^HEALTHCHECK [\s\S]*\/healthz/m);
      expect(text, file).toMatch(/^USER (node|10001)$/m);
      expect(text, file).toMatch(/^ENTRYPOINT \["node", "dist\/cli\.js"\]$/m);
      for (const v of envNames(text)) expect(ENV_VARS.has(v), `${file}: ${v}`).toBe(true);
    }
  });

  it('compose.yaml: build files, mounted files and variables exist; the daemon publishes its HTTP port', () => {
    const compose = parseYaml(readFileSync('deploy/compose.yaml', 'utf8')) as { services: Record<string, { build?: { context: string; dockerfile: string }; environment?: Record<string, unknown>; ports?: string[]; volumes?: string[] }> };
    expect(Object.keys(compose.services).sort()).toEqual(['factorstream', 'grafana', 'kafka', 'prometheus']);
    const fs = compose.services.factorstream;
    expect(existsSync(join('deploy', fs.build?.context ?? '', fs.build?.dockerfile ?? ''))).toBe(true);
    expect(fs.ports).toContain(`${HTTP_PORT}:${HTTP_PORT}`);
    for (const v of Object.keys(fs.environment ?? {})) expect(ENV_VARS.has(v), v).toBe(true);
    expect(JSON.parse(String(fs.environment?.FACTORSTREAM_KAFKA_BROKERS))).toEqual(['kafka:9092']);
    for (const svc of Object.values(compose.services)) {
      for (const vol of svc.volumes ?? []) {
        const src = vol.split(':')[0];
        if (src.startsWith('.')) expect(existsSync(join('deploy', src)), vol).toBe(true);
      }
    }
    const prom = parseYaml(readFileSync('deploy/prometheus/prometheus.yml', 'utf8')) as { scrape_configs: { job_name: string; metrics_path: string; static_configs: { targets: string[] }[] }[] };
    expect(prom.scrape_configs[0]).toMatchObject({ job_name: 'factorstream', metrics_path: '/metrics', static_configs: [{ targets: [`factorstream:${HTTP_PORT}`] }] });
  });

  it('Kubernetes manifests: probes on served paths and the HTTP port, scrape annotations, ConfigMap keys are config variables, one replica replaced not rolled, a PDB', () => {
    const docs = readdirSync('deploy/k8s').flatMap((f) => parseAllDocuments(readFileSync(join('deploy/k8s', f), 'utf8')).map((d) => d.toJS() as Record<string, any>)); // eslint-disable-line @typescript-eslint/no-explicit-any
    const kinds = docs.map((d) => d.kind as string).sort();
    expect(kinds).toEqual(['ConfigMap', 'Deployment', 'PersistentVolumeClaim', 'PodDisruptionBudget', 'PodMonitor', 'Secret', 'Service']);
    const byKind = (k: string): Record<string, any> => docs.find((d) => d.kind === k) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    for (const v of Object.keys(byKind('ConfigMap').data as object)) expect(ENV_VARS.has(v), v).toBe(true);
    const deployment = byKind('Deployment');
    expect(deployment.spec.replicas).toBe(1);
    expect(deployment.spec.strategy.type).toBe('Recreate');
    const pod = deployment.spec.template;
    expect(pod.metadata.annotations).toMatchObject({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(HTTP_PORT), 'prometheus.io/path': '/metrics' });
    const c = pod.spec.containers[0];
    expect(c.ports).toEqual([{ name: 'http', containerPort: HTTP_PORT }]);
    expect(c.livenessProbe.httpGet.path).toBe('/healthz');
    expect(c.readinessProbe.httpGet.path).toBe('/readyz');
    for (const probe of [c.livenessProbe, c.readinessProbe, c.startupProbe]) expect(HTTP_PATHS as readonly string[]).toContain(probe.httpGet.path);
    expect(byKind('ConfigMap').data.FACTORSTREAM_DAEMON_HTTP_PORT).toBe(String(HTTP_PORT));
    expect(byKind('PodMonitor').spec.podMetricsEndpoints[0]).toMatchObject({ port: 'http', path: '/metrics' });
    expect(byKind('PodDisruptionBudget').spec.selector).toEqual(deployment.spec.selector);
    // The Kafka secret is mounted where the ConfigMap's commented settings look for its files.
    const secret = byKind('Secret');
    const volume = (pod.spec.volumes as { name: string; secret?: { secretName: string } }[]).find((v) => v.secret?.secretName === secret.metadata.name);
    expect(volume).toBeDefined();
    const mount = (c.volumeMounts as { name: string; mountPath: string }[]).find((m) => m.name === volume?.name);
    const configmap = readFileSync('deploy/k8s/configmap.yaml', 'utf8');
    for (const key of Object.keys(secret.stringData as object)) expect(configmap).toContain(`${mount?.mountPath}/${key}`);
  });

  it('the Grafana dashboard and the rules read only metrics that exist; every alert has a runbook entry', () => {
    const dashboard = JSON.parse(readFileSync('deploy/grafana/dashboards/factorstream.json', 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
    const exprs = [...dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)), ...rules.groups.flatMap((g) => g.rules.map((r) => r.expr))];
    for (const e of exprs) for (const m of metricsIn(e)) expect(KNOWN.has(m), `${m} in ${e}`).toBe(true);
    const runbook = readFileSync('docs/operations.md', 'utf8');
    for (const r of rules.groups.flatMap((g) => g.rules)) {
      if (r.alert === undefined) continue;
      expect(r.annotations?.runbook).toBe(`docs/operations.md#${r.alert.toLowerCase()}`);
      expect(runbook, r.alert).toMatch(new RegExp(`^### ${r.alert}$`, 'm'));
    }
  });
});

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
