/**
 * The error-code catalogue. Every rejected event carries one of these codes: it labels
 * the dead-letter `error` header, the `factorstream_invalid_events_total{code}` metric and
 * the README's table (a test keeps the three in step). Codes are stable and never reused;
 * a retired code keeps its number and is marked `retired`.
 */
export const ERROR_CATALOGUE = {
  E_MALFORMED: { id: 1, message: 'the bytes do not parse (invalid JSON, truncated or corrupt Arrow IPC, unreadable CSV row)' },
  E_SCHEMA: { id: 2, message: 'a required field is missing or has the wrong type or format' },
  E_UNKNOWN_CONTENT_TYPE: { id: 3, message: 'the content-type header names no known codec' },
  E_OVERSIZED: { id: 4, message: 'the message is larger than the configured maximum' },
  E_BAD_SYMBOL: { id: 5, message: 'the symbol is not 6 digits with a valid exchange suffix (.SH, .SZ, .BJ) for its code range' },
  E_UNKNOWN_SYMBOL: { id: 6, message: 'the symbol is well formed but outside the configured universe' },
  E_BAD_PRICE: { id: 7, message: 'a price is not a number from 0.01 to 100,000 CNY (a quote may be 0: an empty side)' },
  E_NEGATIVE_VOLUME: { id: 8, message: 'a volume is negative or not finite' },
  E_CUMULATIVE_DECREASE: { id: 9, message: 'a snapshot cumulative volume or amount is below the previous snapshot of the symbol' },
  E_DUPLICATE: { id: 10, message: 'the event repeats one already aggregated (same sequence number, same snapshot, or a second bar for the same minute)' },
  E_OUT_OF_SESSION: { id: 11, message: 'the event time falls outside every trading session of a trading day' },
  E_LATE: { id: 12, message: 'the event belongs to a bar that has already closed' },
  E_BAR_INCONSISTENT: { id: 13, message: 'a bar violates low <= open, close <= high' },
  E_BAR_NOT_ALIGNED: { id: 14, message: 'a 1-minute bar end time is not a 1-minute bar boundary of the session' },
  E_OUT_OF_ORDER: { id: 15, message: 'a snapshot is older than the previous snapshot of the symbol but is not a repeat of it' },
  E_SOURCE_CONFLICT: { id: 16, message: 'the symbol already receives the other kind of feed (ticks vs 1-minute bars) today' },
  E_PRICE_LIMIT: { id: 17, message: "a trade price, a snapshot's last price or a bar's high or low is outside the day's price-limit band (reference data, or the board rule on the previous close)" },
  E_IMPLAUSIBLE_SIZE: { id: 18, message: 'a volume or amount is larger than one event can carry (a trade or 1-minute bar: 1e10 shares or CNY 1e12; a snapshot total: 1e12 shares or CNY 1e14)' },
  E_AMOUNT_MISMATCH: { id: 19, message: "the amount disagrees with the prices: a trade's amount off price x volume by more than 1%, a bar's VWAP (amount / volume) outside its low-high range by more than 1%, or an amount without volume" },
  E_NEGATIVE_AMOUNT: { id: 20, message: 'an amount (CNY) is negative or not finite' },
} as const satisfies Record<string, { id: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/**
 * Conditions: not rejects (the events are aggregated) but states an operator must know of,
 * each with a metric and a log line, and a documented fallback (README *Reference data*).
 */
export const CONDITION_CATALOGUE = {
  W_NO_REFERENCE: {
    message: 'a symbol trades on a day the reference data has no record for it: limits from its last price before the day by the board rule, not ST, not suspended; left out of models that need industry, size, index membership or ST status',
    metric: 'factorstream_reference_missing_total',
  },
} as const;

export type ConditionCode = keyof typeof CONDITION_CATALOGUE;

/** Codes as a dense numeric id space so that hot paths pass numbers, not strings. */
export const ERROR_CODES: readonly ErrorCode[] = (() => {
  const codes: ErrorCode[] = [];
  for (const [code, def] of Object.entries(ERROR_CATALOGUE)) codes[def.id] = code as ErrorCode;
  return codes;
})();

export function errorId(code: ErrorCode): number {
  return ERROR_CATALOGUE[code].id;
}

export function errorCode(id: number): ErrorCode {
  const code = ERROR_CODES[id];
  if (code === undefined) throw new RangeError(`unknown error id ${id}`);
  return code;
}

/** An error carrying a catalogue code, for failures that surface as exceptions (files, config). */
export class FactorstreamError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, detail: string, options?: { cause?: unknown }) {
    super(`${code}: ${detail}`, options);
    this.name = 'FactorstreamError';
    this.code = code;
  }
}

/**
 * A rejected event: where it came from and why. The sink decides what to do with it
 * (dead-letter topic, rejects file, counter); nothing is rejected without reaching one.
 */
export interface Reject {
  code: ErrorCode;
  detail: string;
  /** Which input: a topic or a file path. */
  source: string;
  /** Partition (Kafka) or -1. */
  partition: number;
  /** Offset (Kafka), line or row number (files). */
  offset: number;
  /** Row inside a multi-event message (Arrow), or -1. */
  row: number;
  symbol?: string;
}

export type RejectSink = (reject: Reject) => void;
