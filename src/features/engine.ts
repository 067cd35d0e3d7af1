/**
 * The feature engine: decoding context, aggregation, cross-sectional normalisation and
 * the per-frequency sequence stores, wired once. The simulator run, the offline
 * extraction and the daemon all drive this same object, so a bar means the same thing
 * everywhere. Rejects from the codecs and from the aggregator reach one sink, with the
 * source they came from.
 */
import type { ErrorCode, Reject } from '../errors.js';
import type { TradingCalendar } from '../market/calendar.js';
import type { ReferenceBook, ReferenceRecord } from '../market/reference.js';
import type { BarLabel, Freq } from '../market/sessions.js';
import { isoToDay } from '../market/time.js';
import type { DecodeContext } from '../ingest/decode.js';
import type { BarBatch, SymbolTable, TickBatch } from '../ingest/events.js';
import { Aggregator, type AggregatorIncrement, type AggregatorState } from './aggregator.js';
import type { ClosedBars } from './closed-bars.js';
import { FEATURE_COUNT, type FeatureParams } from './feature-set.js';
import { RobustZScorer } from './normalize.js';
import { SequenceStore, type SequenceStoreIncrement, type SequenceStoreState } from './sequence-store.js';

export interface FeatureEngineOptions {
  calendar: TradingCalendar;
  symbols: SymbolTable;
  freqs: readonly Freq[];
  allowedLatenessMs?: number;
  dedupWindow?: number;
  features?: Partial<FeatureParams>;
  zClip?: number;
  /** Sequence length per frequency; frequencies without one keep no sequences. */
  sequenceLength?: Partial<Record<Freq, number>>;
  /** See AggregatorOptions.eventTimeWatermark. */
  eventTimeWatermark?: boolean;
  /** How the 1-minute bars decoded through context() are labelled (bars.label, default end). */
  barLabel?: BarLabel;
  /** Daily reference data (limits, ST); kept in the snapshot. */
  reference?: ReferenceBook;
  /** A symbol trades on a day the reference data has no record for (W_NO_REFERENCE), once per symbol and day. */
  onNoReference?(symbol: string, day: number): void;
  onReject(reject: Reject): void;
}

/** What a bar close hands to listeners. Buffers are reused: copy what you keep. */
export interface BarCloseEvent {
  bars: ClosedBars;
  /** Robust z-scored features [n, F] (masked entries 0). */
  normalized: Float32Array;
  /** The frequency's sequence store after this close's row was pushed, if it keeps one. */
  sequences: SequenceStore | undefined;
}

interface FreqBuffers {
  normalized: Float32Array;
  store: SequenceStore | undefined;
}

/** The feature engine in a checkpoint. */
export interface EngineState {
  symbols: readonly string[];
  frozen: boolean;
  aggregator: AggregatorState;
  sequences: Record<string, SequenceStoreState>;
  rejected: [ErrorCode, number][];
  /** Absent before format 3. */
  noReference?: number;
  reference?: ReferenceRecord[];
}

/** What changed since the last saved checkpoint; `reference` only when the book changed. */
export interface EngineIncrement extends Omit<EngineState, 'aggregator' | 'sequences'> {
  aggregator: AggregatorState | AggregatorIncrement;
  sequences: Record<string, SequenceStoreState | SequenceStoreIncrement>;
}

export class FeatureEngine {
  readonly calendar: TradingCalendar;
  readonly symbols: SymbolTable;
  readonly aggregator: Aggregator;
  private readonly zscorer: RobustZScorer;
  private readonly buffers = new Map<Freq, FreqBuffers>();
  private readonly listeners: ((e: BarCloseEvent) => void)[] = [];
  private readonly onRejectSink: (r: Reject) => void;
  private readonly barLabel: BarLabel;
  private source = '';
  private partition = -1;
  /** Rejected events by code. */
  readonly rejected = new Map<ErrorCode, number>();
  readonly reference: ReferenceBook | undefined;
  /** Symbol-days traded without a reference record (W_NO_REFERENCE). */
  noReference = 0;
  /** The reference book's version in the last saved checkpoint (-1: none yet). */
  private savedReferenceVersion = -1;

  constructor(opts: FeatureEngineOptions) {
    this.calendar = opts.calendar;
    this.symbols = opts.symbols;
    this.onRejectSink = opts.onReject;
    this.barLabel = opts.barLabel ?? 'end';
    this.reference = opts.reference;
    this.zscorer = new RobustZScorer(opts.zClip ?? 5);
    for (const freq of opts.freqs) {
      const T = opts.sequenceLength?.[freq];
      this.buffers.set(freq, {
        normalized: new Float32Array(0),
        store: T === undefined ? undefined : new SequenceStore(T, FEATURE_COUNT, Math.max(16, opts.symbols.size)),
      });
    }
    this.aggregator = new Aggregator({
      calendar: opts.calendar,
      symbols: opts.symbols,
      freqs: opts.freqs,
      allowedLatenessMs: opts.allowedLatenessMs,
      dedupWindow: opts.dedupWindow,
      features: opts.features,
      eventTimeWatermark: opts.eventTimeWatermark,
      reference: opts.reference,
      onNoReference: (symbol, day) => {
        this.noReference++;
        opts.onNoReference?.(this.symbols.names[symbol], day);
      },
      onReject: (code, detail, symbol, origin) => this.reject(code, detail, origin, -1, this.symbols.names[symbol]),
      onClose: (bars) => this.closed(bars),
    });
  }

  onBarClose(listener: (e: BarCloseEvent) => void): void {
    this.listeners.push(listener);
  }

  sequences(freq: Freq): SequenceStore | undefined {
    return this.buffers.get(freq)?.store;
  }

  private reject(code: ErrorCode, detail: string, origin: number, row: number, symbol: string | undefined): void {
    this.rejected.set(code, (this.rejected.get(code) ?? 0) + 1);
    this.onRejectSink({ code, detail, source: this.source, partition: this.partition, offset: origin, row, symbol });
  }

  /** A decoding context whose rejects are attributed to `source` (a topic or file) and `partition`. */
  context(source: string, partition = -1): DecodeContext {
    return {
      symbols: this.symbols,
      calendar: this.calendar,
      barLabel: this.barLabel,
      reject: (code, detail, origin, row, symbol) => {
        this.source = source;
        this.partition = partition;
        this.reject(code, detail, origin, row, symbol);
      },
    };
  }

  ingestTicks(batch: TickBatch, from: number, to: number, source: string, partition = -1): void {
    this.source = source;
    this.partition = partition;
    this.aggregator.ingestTicks(batch, from, to);
  }

  ingestBars(batch: BarBatch, from: number, to: number, source: string, partition = -1): void {
    this.source = source;
    this.partition = partition;
    this.aggregator.ingestBars(batch, from, to);
  }

  advanceWatermark(ts: number): void {
    this.aggregator.advanceWatermark(ts);
  }

  /** Adds a reference record (from the reference topic) and applies it at once when its day has started; whether the book changed. */
  putReference(record: ReferenceRecord): boolean {
    if (this.reference === undefined) throw new Error('this engine was built without reference data');
    if (!this.reference.put(record)) return false;
    this.aggregator.applyReference(record);
    return true;
  }

  /** Everything a restart needs to continue as if it had never stopped (see state.ts). */
  snapshot(): EngineState {
    const sequences: Record<string, SequenceStoreState> = {};
    for (const [freq, buf] of this.buffers) if (buf.store !== undefined) sequences[freq] = buf.store.snapshot();
    return { ...this.small(), aggregator: this.aggregator.snapshot(), sequences, reference: this.reference?.records() ?? [] };
  }

  /** What changed since the last saved checkpoint (see EngineIncrement). */
  increment(): EngineIncrement {
    const sequences: Record<string, SequenceStoreState | SequenceStoreIncrement> = {};
    for (const [freq, buf] of this.buffers) if (buf.store !== undefined) sequences[freq] = buf.store.increment();
    const referenceChanged = this.reference !== undefined && this.reference.version !== this.savedReferenceVersion;
    return { ...this.small(), aggregator: this.aggregator.increment(), sequences, ...(referenceChanged ? { reference: this.reference.records() } : {}) };
  }

  /** The state as it is now was checkpointed: the next increment holds what changes from here. */
  saved(): void {
    this.aggregator.saved();
    for (const buf of this.buffers.values()) buf.store?.saved();
    this.savedReferenceVersion = this.reference?.version ?? 0;
  }

  private small(): Omit<EngineState, 'aggregator' | 'sequences' | 'reference'> {
    return { symbols: this.symbols.names, frozen: this.symbols.frozen, rejected: [...this.rejected], noReference: this.noReference };
  }

  /** Restores a snapshot, or applies an increment to the state restored before it. */
  restore(state: EngineState | EngineIncrement): void {
    this.symbols.restore(state.symbols as string[], state.frozen);
    this.aggregator.restore(state.aggregator);
    for (const [freq, buf] of this.buffers) {
      if (buf.store === undefined) continue;
      const saved = state.sequences[freq];
      if (saved === undefined) throw new Error(`checkpoint has no ${freq} sequences`);
      buf.store.restore(saved);
    }
    this.rejected.clear();
    for (const [code, n] of state.rejected) this.rejected.set(code, n);
    this.noReference = state.noReference ?? 0;
    // Records the book does not hold yet (the topic is read again after the restore, and its newer records win).
    if (this.reference !== undefined) for (const r of state.reference ?? []) if (this.reference.get(isoToDay(r.date), r.symbol) === undefined) this.reference.put(r);
    this.savedReferenceVersion = -1;
  }

  flush(): void {
    this.aggregator.flush();
  }

  private closed(bars: ClosedBars): void {
    const buf = this.buffers.get(bars.freq) as FreqBuffers;
    const need = bars.n * FEATURE_COUNT;
    if (buf.normalized.length < need) buf.normalized = new Float32Array(Math.max(need, buf.normalized.length * 2));
    this.zscorer.all(bars.features, bars.featureMask, bars.n, FEATURE_COUNT, buf.normalized);
    buf.store?.push(buf.normalized, bars.featureMask, bars.missing, bars.n);
    const event: BarCloseEvent = { bars, normalized: buf.normalized, sequences: buf.store };
    for (const l of this.listeners) l(event);
  }
}
