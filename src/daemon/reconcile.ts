/**
 * `factorstream reconcile`: the operator's daily check that the daemon published what the
 * offline path computes. It recomputes the scores from the recorded input — files, or the
 * input topics while they are retained — with the offline commands' own code
 * (`features` + `score`, the daemon's configuration: frequencies, lateness, universe,
 * models), reads what was published (the score topic read_committed, as trading systems
 * read it, or the daily Arrow archive), and compares them per model: counts, missing,
 * extra, duplicated, the largest difference of score, z and rank. From the topics it also
 * accounts for every event: rejects by code offline against the dead letters published.
 *
 * Exactness needs the input from where the daemon's state began (its first event, or the
 * start of its checkpoint lineage): a window's rows and the same-slot volume history
 * reach five trading days back, so input that starts later gives different early windows.
 */
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as A from 'apache-arrow';
import { Kafka, logLevel } from 'kafkajs';
import type { Config } from '../config.js';
import type { ErrorCode } from '../errors.js';
import { extractFeatures } from '../features/extract.js';
import { ticksToTable, barsToTable } from '../ingest/arrow-codec.js';
import type { DecodeContext } from '../ingest/decode.js';
import { BarBatch, SymbolTable, TickBatch } from '../ingest/events.js';
import { MessageDecoder } from '../ingest/message-decoder.js';
import { TableWriter } from '../ingest/table-writer.js';
import { readTopics } from '../ingest/topic-reader.js';
import { decodeReferenceMessage, readReference } from '../ingest/reference-codec.js';
import { ReferenceBook } from '../market/reference.js';
import { referenceExposures } from '../model/cross-section.js';
import type { Logger } from '../log.js';
import { kafkaConnection } from '../ingest/kafka-client.js';
import { kafkaLogCreator } from '../ingest/kafka-log.js';
import type { TradingCalendar } from '../market/calendar.js';
import { systemClock } from '../market/clock.js';
import type { Freq } from '../market/sessions.js';
import { dayToIso, localDay, toLocalIso } from '../market/time.js';
import { checkedMeta } from '../model/artifact.js';
import { engineOptionsOf } from '../model/predictor.js';
import { scoreModel } from '../model/score.js';
import { readArchiveFile } from '../sink/archive.js';
import { readUniverse } from './universe.js';

export interface ReconcileOptions {
  config: Readonly<Config>;
  calendar: TradingCalendar;
  log: Logger;
  /** Recorded input files or folders; undefined: the input topics (kafka.ticksTopic, kafka.barsTopic). */
  inputs?: string[];
  /** The daemon's daily Arrow archive; undefined: the score topic (kafka.scoresTopic), read_committed. */
  archive?: string;
  /** Trading days (YYYY-MM-DD) to compare; undefined: every day the offline path scored. */
  days?: string[];
  /** Largest |difference| of score, z and rank that counts as equal. */
  tolerance: number;
  /** Folder for the recomputation (input dump, features, scores). */
  workDir: string;
  /** Reading a topic to its end gives up after this long. */
  timeoutMs: number;
}

interface ScoreRow {
  score: number;
  z: number;
  rank: number;
  coverage: number;
  universe: number;
}

export interface ModelReconciliation {
  model: string;
  version: string;
  freq: Freq;
  offline: number;
  published: number;
  matched: number;
  missing: number;
  extra: number;
  duplicated: number;
  maxScoreDiff: number;
  maxZDiff: number;
  maxRankDiff: number;
  /** Scores whose universe or coverage differs. */
  otherDiffs: number;
  /** A few identities of each kind, for the log. */
  examples: { missing: string[]; extra: string[]; different: string[] };
}

export interface Reconciliation {
  days: string[];
  input: { source: string; events: number };
  published: string;
  models: ModelReconciliation[];
  /** From the topics: events rejected offline and dead-lettered by the daemon, by code. */
  rejects?: { offline: Partial<Record<ErrorCode, number>>; deadLettered: Partial<Record<ErrorCode, number>> };
  ok: boolean;
}

const EXAMPLES = 5;

function kafkaOf(config: Readonly<Config>, log: Logger): Kafka {
  return new Kafka({ clientId: `${config.kafka.clientId}-reconcile`, ...kafkaConnection(config.kafka), logLevel: logLevel.WARN, logCreator: kafkaLogCreator(log, () => systemClock.now()) });
}

/** The input topics as one Arrow file per partition (rows in offset order), and the decode rejects by code. */
async function dumpInputTopics(opts: ReconcileOptions, kafka: Kafka, symbols: SymbolTable, dir: string): Promise<{ files: string[]; events: number; rejected: Map<ErrorCode, number> }> {
  const { config } = opts;
  const decoder = new MessageDecoder(config.daemon.maxMessageBytes);
  const rejected = new Map<ErrorCode, number>();
  const ctx: DecodeContext = { symbols, calendar: opts.calendar, barLabel: config.bars.label, reject: (code) => rejected.set(code, (rejected.get(code) ?? 0) + 1) };
  const parts = new Map<string, { batch: TickBatch | BarBatch; writer: TableWriter }>();
  const CHUNK = 65_536;
  let events = 0;
  const flush = (p: { batch: TickBatch | BarBatch; writer: TableWriter }): void => {
    if (p.batch.length === 0) return;
    // Written back in the feed's own bar convention, as the offline path then reads them.
    p.writer.write(p.batch instanceof TickBatch ? ticksToTable(p.batch, symbols) : barsToTable(p.batch, symbols, 0, p.batch.length, config.bars.label));
    p.batch.clear();
  };
  await readTopics(
    kafka,
    [config.kafka.ticksTopic, config.kafka.barsTopic],
    (m) => {
      const key = `${m.topic}/${m.partition}`;
      let p = parts.get(key);
      if (p === undefined) {
        const bars = m.topic === config.kafka.barsTopic;
        p = { batch: bars ? new BarBatch(CHUNK) : new TickBatch(CHUNK), writer: new TableWriter(join(dir, `${bars ? 'bars' : 'ticks'}-p${String(m.partition).padStart(3, '0')}.arrow`), 'arrow') };
        parts.set(key, p);
      }
      const before = p.batch.length;
      decoder.decode(m, p.batch, p.batch instanceof BarBatch ? 'bars' : 'ticks', ctx);
      events += p.batch.length - before;
      if (p.batch.length >= CHUNK) flush(p);
    },
    { readCommitted: true, timeoutMs: opts.timeoutMs },
  );
  for (const p of parts.values()) {
    flush(p);
    await p.writer.close();
  }
  return { files: [...parts.values()].map((p) => p.writer.path).sort(), events: events + [...rejected.values()].reduce((a, b) => a + b, 0), rejected };
}

function identity(symbol: string, barEnd: number): string {
  return `${symbol}|${barEnd}`;
}

/** An identity as a person reads it: symbol and local bar end. */
function readable(k: string): string {
  const bar = k.indexOf('|');
  return `${k.slice(0, bar)} ${toLocalIso(Number(k.slice(bar + 1)))}`;
}

/** The offline score file's rows of the days kept, by symbol and bar end; `universe` is the number scored at each bar end. */
function offlineRows(table: A.Table, keep: (barEnd: number) => boolean): Map<string, ScoreRow> {
  const col = (name: string): A.Vector => table.getChild(name) as A.Vector;
  const [symbol, barEnd, score, z, rank, coverage] = ['symbol', 'barEnd', 'score', 'z', 'rank', 'coverage'].map(col);
  const scored = new Map<number, number>();
  for (let i = 0; i < table.numRows; i++) {
    const e = Number(barEnd.get(i) as number | bigint);
    scored.set(e, (scored.get(e) ?? 0) + 1);
  }
  const rows = new Map<string, ScoreRow>();
  for (let i = 0; i < table.numRows; i++) {
    const e = Number(barEnd.get(i) as number | bigint);
    if (keep(e)) rows.set(identity(String(symbol.get(i)), e), { score: Number(score.get(i)), z: Number(z.get(i)), rank: Number(rank.get(i)), coverage: Number(coverage.get(i)), universe: scored.get(e) as number });
  }
  return rows;
}

function arrowFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...arrowFiles(p));
    else if (name.endsWith('.arrow')) out.push(p);
  }
  return out.sort();
}

export async function reconcile(opts: ReconcileOptions): Promise<Reconciliation> {
  const { config, log } = opts;
  mkdirSync(opts.workDir, { recursive: true });
  const models = config.daemon.models.map((dir) => ({ dir, meta: checkedMeta(dir) }));
  if (models.length === 0) throw new Error('no models to reconcile: daemon.models is empty');
  const universe = readUniverse(config.daemon.universeFile);
  const fromTopics = opts.inputs === undefined;
  const kafka = fromTopics || opts.archive === undefined ? kafkaOf(config, log) : undefined;

  // 1. The recorded input.
  let inputs = opts.inputs ?? [];
  let decodeRejected = new Map<ErrorCode, number>();
  let source = inputs.join(', ');
  if (fromTopics) {
    const symbols = new SymbolTable(universe ?? []);
    symbols.frozen = universe !== undefined;
    const dump = await dumpInputTopics(opts, kafka as Kafka, symbols, join(opts.workDir, 'input'));
    inputs = dump.files;
    decodeRejected = dump.rejected;
    source = `topics ${config.kafka.ticksTopic}, ${config.kafka.barsTopic} (${dump.events.toLocaleString('en-US')} events)`;
    if (inputs.length === 0) throw new Error(`the input topics ${config.kafka.ticksTopic} and ${config.kafka.barsTopic} hold no events`);
  }

  // The reference data the daemon read: reference.path when given, else the reference topic
  // as it stands (compacted: the newest record per symbol, so reconcile a day before the
  // next day's records are published, or give the day's files).
  let reference: ReferenceBook | undefined;
  if (config.reference.path !== '') reference = readReference(config.reference.path);
  else if (kafka !== undefined) {
    const book = new ReferenceBook();
    reference = book;
    await readTopics(
      kafka,
      [config.kafka.referenceTopic],
      (m) => {
        if (m.value === null) return;
        try {
          for (const r of decodeReferenceMessage(m.value, m.headers['content-type'], `${m.topic}/${m.partition}@${m.offset}`)) book.put(r);
        } catch (err) {
          log.warn({ err: (err as Error).message }, 'reference message rejected (as the daemon rejects it)');
        }
      },
      { readCommitted: true, timeoutMs: opts.timeoutMs },
    );
  }

  // 2. The offline path on it, with the daemon's settings: features, then each model's scores.
  const freqs = [...new Set<Freq>([...config.features.freqs, ...models.map((m) => m.meta.freq)])];
  const featuresDir = join(opts.workDir, 'features');
  mkdirSync(featuresDir, { recursive: true });
  const summary = await extractFeatures({
    inputs,
    outDir: featuresDir,
    freqs,
    format: 'arrow',
    calendar: opts.calendar,
    allowedLatenessMs: config.features.allowedLatenessMs,
    dedupWindow: config.features.dedupWindow,
    features: config.features,
    universe,
    barLabel: config.bars.label,
    reference,
  });
  log.info({ input: source, ticks: summary.ticks, bars: summary.oneMinuteBars, rejected: summary.rejected }, 'offline features recomputed');
  const daySet = opts.days === undefined ? undefined : new Set(opts.days);
  const keep = (barEnd: number): boolean => daySet === undefined || daySet.has(dayToIso(localDay(barEnd)));
  const offline = new Map<string, Map<string, ScoreRow>>();
  const days = new Set<string>();
  for (const m of models) {
    const out = join(opts.workDir, `scores-${m.meta.name}.arrow`);
    await scoreModel(m.dir, featuresDir, out, config.features.minCoverage, { reference, exposures: reference === undefined ? undefined : referenceExposures(reference) }, log, false, engineOptionsOf(config.daemon));
    const rows = offlineRows(A.tableFromIPC(readFileSync(out)), keep);
    for (const k of rows.keys()) days.add(dayToIso(localDay(Number(k.slice(k.indexOf('|') + 1)))));
    offline.set(m.meta.name, rows);
  }

  // 3. What was published.
  const published = new Map<string, Map<string, ScoreRow>>(models.map((m) => [m.meta.name, new Map()]));
  const duplicated = new Map<string, number>(models.map((m) => [m.meta.name, 0]));
  const version = new Map(models.map((m) => [m.meta.name, m.meta.version]));
  const take = (s: { symbol: string; barEnd: number; model: string; modelVersion: string } & ScoreRow): void => {
    const into = published.get(s.model);
    if (into === undefined || version.get(s.model) !== s.modelVersion || !keep(s.barEnd)) return;
    const k = identity(s.symbol, s.barEnd);
    if (into.has(k)) duplicated.set(s.model, (duplicated.get(s.model) ?? 0) + 1);
    into.set(k, { score: s.score, z: s.z, rank: s.rank, coverage: s.coverage, universe: s.universe });
  };
  let publishedFrom: string;
  if (opts.archive !== undefined) {
    publishedFrom = `archive ${opts.archive}`;
    for (const file of arrowFiles(opts.archive)) {
      const { batches, truncated } = readArchiveFile(file);
      // A file a power cut left short: its whole batches count, the closes after them show as missing.
      if (truncated) log.warn({ file, closes: batches.length }, 'archive file cut short: read up to its last whole close');
      const table = new A.Table(batches);
      const col = (name: string): A.Vector => table.getChild(name) as A.Vector;
      const [symbol, barEnd, model, modelVersion, score, z, rank, coverage, universe] = ['symbol', 'barEnd', 'model', 'modelVersion', 'score', 'z', 'rank', 'coverage', 'universe'].map(col);
      for (let i = 0; i < table.numRows; i++) {
        take({ symbol: String(symbol.get(i)), barEnd: Number(barEnd.get(i) as number | bigint), model: String(model.get(i)), modelVersion: String(modelVersion.get(i)), score: Number(score.get(i)), z: Number(z.get(i)), rank: Number(rank.get(i)), coverage: Number(coverage.get(i)), universe: Number(universe.get(i)) });
      }
    }
  } else {
    publishedFrom = `topic ${config.kafka.scoresTopic} (read_committed)`;
    await readTopics(
      kafka as Kafka,
      [config.kafka.scoresTopic],
      (m) => {
        if (m.value !== null) take(JSON.parse(m.value.toString()) as Parameters<typeof take>[0]);
      },
      { readCommitted: true, timeoutMs: opts.timeoutMs },
    );
  }

  // 4. Compare.
  const results: ModelReconciliation[] = [];
  for (const m of models) {
    const off = offline.get(m.meta.name) as Map<string, ScoreRow>;
    const pub = published.get(m.meta.name) as Map<string, ScoreRow>;
    const r: ModelReconciliation = {
      model: m.meta.name,
      version: m.meta.version,
      freq: m.meta.freq,
      offline: off.size,
      published: pub.size,
      matched: 0,
      missing: 0,
      extra: 0,
      duplicated: duplicated.get(m.meta.name) ?? 0,
      maxScoreDiff: 0,
      maxZDiff: 0,
      maxRankDiff: 0,
      otherDiffs: 0,
      examples: { missing: [], extra: [], different: [] },
    };
    for (const [k, o] of off) {
      const p = pub.get(k);
      if (p === undefined) {
        r.missing++;
        if (r.examples.missing.length < EXAMPLES) r.examples.missing.push(readable(k));
        continue;
      }
      const ds = Math.abs(p.score - o.score);
      const dz = Math.abs(p.z - o.z);
      const dr = Math.abs(p.rank - o.rank);
      r.maxScoreDiff = Math.max(r.maxScoreDiff, ds);
      r.maxZDiff = Math.max(r.maxZDiff, dz);
      r.maxRankDiff = Math.max(r.maxRankDiff, dr);
      const other = p.universe !== o.universe || Math.abs(p.coverage - o.coverage) > opts.tolerance;
      if (other) r.otherDiffs++;
      if (ds <= opts.tolerance && dz <= opts.tolerance && dr <= opts.tolerance && !other) r.matched++;
      else if (r.examples.different.length < EXAMPLES) r.examples.different.push(`${readable(k)} score ${p.score} vs ${o.score}, z ${p.z} vs ${o.z}, universe ${p.universe} vs ${o.universe}`);
    }
    for (const k of pub.keys()) {
      if (off.has(k)) continue;
      r.extra++;
      if (r.examples.extra.length < EXAMPLES) r.examples.extra.push(readable(k));
    }
    results.push(r);
  }
  let ok = results.every((r) => r.matched === r.offline && r.extra === 0 && r.duplicated === 0);

  // 5. From the topics, every event accounted for: offline rejects against the dead letters.
  let rejects: Reconciliation['rejects'];
  if (fromTopics) {
    const offlineRejects: Partial<Record<ErrorCode, number>> = {};
    for (const [code, n] of decodeRejected) offlineRejects[code] = n;
    for (const [code, n] of Object.entries(summary.rejected)) offlineRejects[code as ErrorCode] = (offlineRejects[code as ErrorCode] ?? 0) + n;
    const deadLettered: Partial<Record<ErrorCode, number>> = {};
    const inputTopics = new Set([config.kafka.ticksTopic, config.kafka.barsTopic]);
    await readTopics(
      kafka as Kafka,
      [config.kafka.deadLetterTopic],
      (m) => {
        const code = m.headers.error as ErrorCode | undefined;
        if (code === undefined || !inputTopics.has(m.headers['source-topic'] ?? '')) return;
        deadLettered[code] = (deadLettered[code] ?? 0) + Number(m.headers['error-count'] ?? 1);
      },
      { readCommitted: true, timeoutMs: opts.timeoutMs },
    );
    rejects = { offline: offlineRejects, deadLettered };
    const codes = new Set([...Object.keys(offlineRejects), ...Object.keys(deadLettered)] as ErrorCode[]);
    for (const c of codes) if ((offlineRejects[c] ?? 0) !== (deadLettered[c] ?? 0)) ok = false;
  }
  return { days: [...days].sort(), input: { source, events: summary.ticks + summary.oneMinuteBars + Object.values(summary.rejected).reduce((a, b) => a + b, 0) }, published: publishedFrom, models: results, rejects, ok };
}

/** The report as lines for a terminal. */
export function formatReconciliation(r: Reconciliation, tolerance: number): string {
  const lines = [`input: ${r.input.source}; published: ${r.published}; days: ${r.days.join(', ') || '(none)'}`];
  for (const m of r.models) {
    const good = m.matched === m.offline && m.extra === 0 && m.duplicated === 0;
    lines.push(
      `${good ? 'OK      ' : 'MISMATCH'} ${m.model} ${m.version} (${m.freq}): offline ${m.offline}, published ${m.published}, equal ${m.matched}, missing ${m.missing}, extra ${m.extra}, duplicated ${m.duplicated}; max |difference| score ${m.maxScoreDiff.toExponential(2)}, z ${m.maxZDiff.toExponential(2)}, rank ${m.maxRankDiff.toExponential(2)} (tolerance ${tolerance})`,
    );
    for (const [kind, list] of Object.entries(m.examples)) if (list.length > 0) lines.push(`    ${kind}: ${list.join('; ')}`);
  }
  if (r.rejects !== undefined) {
    const codes = [...new Set([...Object.keys(r.rejects.offline), ...Object.keys(r.rejects.deadLettered)])].sort() as ErrorCode[];
    const same = codes.every((c) => (r.rejects?.offline[c] ?? 0) === (r.rejects?.deadLettered[c] ?? 0));
    const list = codes.map((c) => `${c} ${r.rejects?.deadLettered[c] ?? 0}/${r.rejects?.offline[c] ?? 0}`).join(', ') || 'none';
    lines.push(`${same ? 'OK      ' : 'MISMATCH'} rejected events, dead-lettered/offline: ${list}`);
  }
  lines.push(r.ok ? 'reconcile: the published scores equal the offline computation' : 'reconcile: MISMATCH between what was published and the offline computation');
  return lines.join('\n');
}
