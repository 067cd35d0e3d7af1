/**
 * Daily reference data (DESIGN §7): what a data desk publishes per symbol before the open
 * — the exchange's reference price (previous close, adjusted on ex-dividend and ex-rights
 * days), ST status, limit prices where the exchange gives them, suspension, industry,
 * float market value and index memberships with weights. The book holds records by day
 * and symbol; a later record for the same day and symbol replaces the earlier one (a
 * correction, or an update during the day).
 */
import { z } from 'zod';
import { isoToDay } from './time.js';
import { isValidSymbol, priceLimits, type Board, type PriceLimits } from './symbols.js';

const IsoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'a date YYYY-MM-DD');
const Price = z.number().positive().finite();

/** One symbol's reference record for one trading day (schemas/reference.json). */
export const ReferenceRecordSchema = z
  .object({
    /** The trading day the record is valid for. */
    date: IsoDate,
    symbol: z.string().refine(isValidSymbol, 'a symbol like 600000.SH (6 digits, .SH/.SZ/.BJ, a code range of its exchange)'),
    /** The exchange's reference price for the day's limits (previous close, adjusted for dividends and rights). */
    prevClose: Price,
    st: z.boolean().default(false),
    /** Limit prices published by the exchange; they override the board rule (new listings, special cases). */
    upperLimit: Price.optional(),
    lowerLimit: Price.optional(),
    suspended: z.boolean().default(false),
    /** Industry code in the user's classification (any text). */
    industry: z.string().min(1).optional(),
    /** Float market value, CNY (log size is its natural log). */
    floatMarketValue: Price.optional(),
    /** Index memberships: index name -> weight in the index (a fraction; the members' weights add up to 1). */
    indexes: z.record(z.string().min(1), z.number().min(0).max(1)).default({}),
  })
  .strict()
  .refine((r) => r.upperLimit === undefined || r.lowerLimit === undefined || r.lowerLimit < r.upperLimit, 'lowerLimit must be below upperLimit');

export type ReferenceRecord = z.infer<typeof ReferenceRecordSchema>;

/** The day's limit prices: the exchange's where given, else the board rule (ST ±5%) on the reference price. */
export function referenceLimits(r: ReferenceRecord, board: Board): PriceLimits {
  const rule = priceLimits(r.prevClose, board, r.st);
  return { up: r.upperLimit ?? rule.up, down: r.lowerLimit ?? rule.down };
}

/** The log size of a record (natural log of the float market value), NaN when not given. */
export function logSizeOf(r: ReferenceRecord): number {
  return r.floatMarketValue === undefined ? Number.NaN : Math.log(r.floatMarketValue);
}

/** Field by field (records built in code and records parsed from a message may list their keys in another order). */
function sameRecord(a: ReferenceRecord, b: ReferenceRecord): boolean {
  const ia = Object.entries(a.indexes);
  return (
    a.prevClose === b.prevClose &&
    a.st === b.st &&
    a.upperLimit === b.upperLimit &&
    a.lowerLimit === b.lowerLimit &&
    a.suspended === b.suspended &&
    a.industry === b.industry &&
    a.floatMarketValue === b.floatMarketValue &&
    ia.length === Object.keys(b.indexes).length &&
    ia.every(([k, w]) => b.indexes[k] === w)
  );
}

export class ReferenceBook {
  /** day number -> symbol -> record. */
  private readonly byDay = new Map<number, Map<string, ReferenceRecord>>();
  /** Changes so far (a checkpoint increment holds the records only when this moved). */
  version = 0;

  /** Adds or replaces a record; returns whether the book changed. */
  put(r: ReferenceRecord): boolean {
    const day = isoToDay(r.date);
    let records = this.byDay.get(day);
    if (records === undefined) this.byDay.set(day, (records = new Map()));
    const old = records.get(r.symbol);
    if (old !== undefined && sameRecord(old, r)) return false;
    records.set(r.symbol, r);
    this.version++;
    return true;
  }

  get(day: number, symbol: string): ReferenceRecord | undefined {
    return this.byDay.get(day)?.get(symbol);
  }

  /** The records of a day (empty when the book has none). */
  day(day: number): ReadonlyMap<string, ReferenceRecord> {
    return this.byDay.get(day) ?? new Map();
  }

  /** Days with records, ascending. */
  days(): number[] {
    return [...this.byDay.keys()].sort((a, b) => a - b);
  }

  get size(): number {
    let n = 0;
    for (const m of this.byDay.values()) n += m.size;
    return n;
  }

  /** Every record, by day then symbol (a checkpoint's copy). */
  records(): ReferenceRecord[] {
    const out: ReferenceRecord[] = [];
    for (const d of this.days()) out.push(...[...(this.byDay.get(d) as Map<string, ReferenceRecord>).values()].sort((a, b) => (a.symbol < b.symbol ? -1 : 1)));
    return out;
  }

  /** Forgets days before `day` (a long-running daemon keeps the days it may still read). */
  pruneBefore(day: number): void {
    for (const d of this.byDay.keys()) {
      if (d >= day) continue;
      this.byDay.delete(d);
      this.version++;
    }
  }

  /** The members of `index` on `day` with their weights, by symbol. */
  indexWeights(day: number, index: string): Map<string, number> {
    const out = new Map<string, number>();
    for (const [symbol, r] of this.day(day)) {
      const w = r.indexes[index];
      if (w !== undefined && w > 0) out.set(symbol, w);
    }
    return out;
  }
}
