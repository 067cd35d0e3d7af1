/**
 * What the status page (/status.json, `/`) shows of the served models: per model its last
 * scored close, the top and bottom of its cross-section, its live IC and its bar close to
 * publish latency over the last 100 published closes; and the last hour's series for its
 * charts (each close's latency, events ingested sampled every few seconds).
 */
import type { Freq } from '../market/sessions.js';
import type { ScoredCrossSection } from '../model/scorer.js';
import type { ScoreRecord } from '../sink/scores.js';
import type { ServedModel } from './models.js';

export interface ModelStatus {
  model: string;
  version: string;
  freq: Freq;
  engine: string;
  backend: string;
  role: 'live' | 'shadow';
  barEnd: number | null;
  scored: number;
  skipped: number;
  inferenceSeconds: number | null;
  /** Bar close to publish over the last 100 published closes (seconds). */
  latencyP50: number | null;
  latencyP99: number | null;
  liveIc: Record<string, { ic: number; mean: number; day: number }>;
  top: { symbol: string; score: number; z: number }[];
  bottom: { symbol: string; score: number; z: number }[];
}

/** The pipeline as the status page shows it. */
export interface PipelineStatus {
  now: number;
  watermark: number | null;
  eventsIngested: number;
  lastBarEnd: Partial<Record<Freq, number>>;
  models: ModelStatus[];
  /** The last hour, [wall ms, value] points: events ingested so far (sampled), and each published close's latency (seconds) by model. */
  recent?: { events: [number, number][]; latency: Record<string, [number, number][]> };
}

const RECENT = 100;
const HOUR_MS = 3_600_000;

/** [time, value] points of the last hour, oldest first. */
export class HourSeries {
  private readonly points: [number, number][] = [];

  /** Adds a point, unless the last one is less than `spacingMs` old. */
  add(at: number, value: number, spacingMs = 0): void {
    const last = this.points[this.points.length - 1];
    if (last !== undefined && at - last[0] < spacingMs) return;
    this.points.push([at, value]);
    while (this.points.length > 0 && this.points[0][0] < at - HOUR_MS) this.points.shift();
  }

  /** A copy of the points within the hour before `now`. */
  since(now: number): [number, number][] {
    return this.points.filter((p) => p[0] >= now - HOUR_MS).map(([t, v]) => [t, v]);
  }
}

function initialStatus(m: ServedModel): ModelStatus {
  return {
    model: m.meta.name,
    version: m.meta.version,
    freq: m.meta.freq,
    engine: m.scorer.engine,
    backend: m.scorer.backend,
    role: m.role,
    barEnd: null,
    scored: 0,
    skipped: 0,
    inferenceSeconds: null,
    latencyP50: null,
    latencyP99: null,
    liveIc: {},
    top: [],
    bottom: [],
  };
}

export class ModelStatusBoard {
  private readonly byName = new Map<string, ModelStatus>();
  private readonly latencies = new Map<string, number[]>();
  private readonly latencyHour = new Map<string, HourSeries>();

  constructor(models: readonly ServedModel[]) {
    for (const m of models) this.byName.set(m.meta.name, initialStatus(m));
  }

  /** `next` replaces `current`; the live IC history carries on when the name stays. */
  replaced(current: ServedModel, next: ServedModel): void {
    const st = this.byName.get(current.meta.name);
    this.byName.delete(current.meta.name);
    this.byName.set(next.meta.name, { ...initialStatus(next), ...(st === undefined || next.meta.name !== current.meta.name ? {} : { liveIc: st.liveIc }) });
  }

  liveIc(model: string, horizon: string, value: { ic: number; mean: number; day: number }): void {
    const st = this.byName.get(model);
    if (st !== undefined) st.liveIc[horizon] = value;
  }

  /** A close scored: `order` is the cross-section's ascending score order. */
  scored(model: string, cs: ScoredCrossSection, records: readonly ScoreRecord[], order: Int32Array): void {
    const st = this.byName.get(model);
    if (st === undefined) return;
    const brief = (i: number): { symbol: string; score: number; z: number } => ({ symbol: records[i].symbol, score: records[i].score, z: records[i].z });
    Object.assign(st, {
      barEnd: cs.job.barEnd,
      scored: cs.job.n,
      skipped: cs.job.universe - cs.job.n,
      inferenceSeconds: cs.inference.seconds,
      top: Array.from(order.slice(-5).reverse(), brief),
      bottom: Array.from(order.slice(0, 5), brief),
    });
  }

  /** A close published `at` (wall ms) after `latency` seconds. */
  published(model: string, latency: number, at: number): void {
    let hour = this.latencyHour.get(model);
    if (hour === undefined) this.latencyHour.set(model, (hour = new HourSeries()));
    hour.add(at, latency);
    const recent = this.latencies.get(model) ?? [];
    recent.push(latency);
    if (recent.length > RECENT) recent.shift();
    this.latencies.set(model, recent);
    const st = this.byName.get(model);
    if (st === undefined) return;
    const sorted = [...recent].sort((a, b) => a - b);
    st.latencyP50 = sorted[Math.floor(0.5 * (sorted.length - 1))];
    st.latencyP99 = sorted[Math.ceil(0.99 * (sorted.length - 1))];
  }

  /** Copies, for the status page. */
  all(): ModelStatus[] {
    return [...this.byName.values()].map((m) => structuredClone(m));
  }

  /** Each model's published latencies within the hour before `now`. */
  latencyLastHour(now: number): Record<string, [number, number][]> {
    return Object.fromEntries([...this.latencyHour].filter(([model]) => this.byName.has(model)).map(([model, h]) => [model, h.since(now)]));
  }
}
