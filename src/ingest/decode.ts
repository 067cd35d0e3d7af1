/**
 * What every codec decodes into: shared symbol interning, the calendar for session
 * checks, and the reject callback. Codecs append valid rows to a TickBatch / BarBatch and
 * report each invalid one exactly once.
 */
import { ERROR_CODES, type ErrorCode } from '../errors.js';
import type { TradingCalendar } from '../market/calendar.js';
import type { BarLabel } from '../market/sessions.js';
import type { SymbolTable } from './events.js';

export interface DecodeContext {
  readonly symbols: SymbolTable;
  readonly calendar: TradingCalendar;
  /** How the source labels its 1-minute bars (bars.label; default end). */
  readonly barLabel?: BarLabel;
  /** Called once per rejected event. `row` is the row inside a multi-event message, or -1. */
  reject(code: ErrorCode, detail: string, origin: number, row: number, symbol: string | undefined): void;
}

/** Negative symbol ids: SymbolTable.intern's -1 and -2, and the readers' "no string here". */
export const SYMBOL_MALFORMED = -1;
export const SYMBOL_OUTSIDE_UNIVERSE = -2;
export const SYMBOL_MISSING = -3;

/** The one reject for a symbol that did not resolve to an id; `text` when the reader has it. */
export function rejectSymbol(ctx: DecodeContext, id: number, text: string | undefined, origin: number, row: number): void {
  if (id === SYMBOL_MISSING) ctx.reject('E_SCHEMA', 'symbol is missing, null or not a string', origin, row, undefined);
  else if (id === SYMBOL_MALFORMED) ctx.reject('E_BAD_SYMBOL', text === undefined ? 'bad symbol' : `bad symbol "${text.slice(0, 32)}"`, origin, row, undefined);
  else ctx.reject('E_UNKNOWN_SYMBOL', text === undefined ? 'symbol outside the universe' : `symbol ${text} is outside the universe`, origin, row, text);
}

export function codeOf(negativeId: number): ErrorCode {
  return ERROR_CODES[-negativeId];
}

export const CONTENT_TYPE_JSON = 'application/json';
export const CONTENT_TYPE_ARROW = 'application/vnd.apache.arrow.stream';

export type Codec = 'json' | 'arrow';

/** The codec a content-type header selects (parameters such as `; charset=utf-8` are ignored), or undefined. */
export function codecOf(contentType: string | undefined): Codec | undefined {
  if (contentType === undefined) return undefined;
  const semi = contentType.indexOf(';');
  const base = (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  if (base === CONTENT_TYPE_JSON) return 'json';
  if (base === CONTENT_TYPE_ARROW) return 'arrow';
  return undefined;
}
