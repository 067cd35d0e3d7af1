/**
 * The daemon's one HTTP port: / (the status page) and /status.json, /metrics (Prometheus
 * text), /healthz (the process is alive and its loop turns), /readyz (ready to be relied
 * on: see ReadinessCheck). Node's http module is enough for a few read-only routes.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Metrics } from './metrics.js';
import { STATUS_PAGE } from './status-page.js';

/** The paths the daemon's HTTP port serves (deploy/ probes and scrape configs are checked against them). */
export const HTTP_PATHS = ['/', '/status.json', '/metrics', '/healthz', '/readyz'] as const;

export interface Readiness {
  ready: boolean;
  checks: Record<string, boolean | number | string>;
}

export interface HttpServerOptions {
  host: string;
  port: number;
  metrics: Metrics;
  readiness(): Readiness;
  health?(): Readiness;
  /** What the status page at / shows (served as /status.json). */
  status?(): unknown;
  /** Extra routes (path -> handler returning [status, content-type, body]). */
  routes?: Record<string, () => Promise<[number, string, string]> | [number, string, string]>;
}

export class HttpServer {
  private readonly server: Server;
  private readonly opts: HttpServerOptions;

  private readonly routes: NonNullable<HttpServerOptions['routes']>;

  constructor(opts: HttpServerOptions) {
    this.opts = opts;
    const status = opts.status;
    this.routes = {
      ...opts.routes,
      ...(status === undefined ? {} : { '/': () => [200, 'text/html; charset=utf-8', STATUS_PAGE], '/status.json': () => [200, 'application/json', `${JSON.stringify(status())}\n`] }),
    };
    this.server = createServer((req, res) => {
      void this.handle(req.url ?? '/', req.method ?? 'GET').then(
        ([status, type, body]) => {
          res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
          res.end(req.method === 'HEAD' ? undefined : body);
        },
        (err: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(err instanceof Error ? err.message : String(err));
        },
      );
    });
  }

  private async handle(url: string, method: string): Promise<[number, string, string]> {
    if (method !== 'GET' && method !== 'HEAD') return [405, 'text/plain', 'method not allowed\n'];
    const path = url.split('?')[0];
    switch (path) {
      case '/metrics':
        return [200, this.opts.metrics.registry.contentType, await this.opts.metrics.text()];
      case '/healthz': {
        const h = this.opts.health?.() ?? { ready: true, checks: {} };
        return [h.ready ? 200 : 503, 'application/json', `${JSON.stringify({ status: h.ready ? 'ok' : 'failing', ...h.checks })}\n`];
      }
      case '/readyz': {
        const r = this.opts.readiness();
        this.opts.metrics.ready.set(r.ready ? 1 : 0);
        return [r.ready ? 200 : 503, 'application/json', `${JSON.stringify({ ready: r.ready, ...r.checks })}\n`];
      }
      default: {
        const route = this.routes[path];
        if (route !== undefined) return route();
        return [404, 'text/plain', `not found: try ${['/metrics', '/healthz', '/readyz', ...Object.keys(this.routes)].join(', ')}\n`];
      }
    }
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port, this.opts.host, () => resolve());
    });
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
