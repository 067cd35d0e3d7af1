/**
 * Symbols (`600000.SH`, `000001.SZ`, `430047.BJ`), their boards and daily price limits.
 * The board follows from the code range; ST status comes from reference data, not the
 * symbol, and overrides the board's limit with ±5%.
 */
export type Exchange = 'SH' | 'SZ' | 'BJ';
export type Board = 'main' | 'star' | 'chinext' | 'bse';

const SYMBOL_RE = /^(\d{6})\.(SH|SZ|BJ)$/;

/** The board of a well-formed symbol, or undefined when the code is not in a range its exchange uses. */
export function boardOf(symbol: string): Board | undefined {
  const m = SYMBOL_RE.exec(symbol);
  if (m === null) return undefined;
  const code = m[1];
  const p3 = code.slice(0, 3);
  switch (m[2]) {
    case 'SH':
      if (p3 === '600' || p3 === '601' || p3 === '603' || p3 === '605') return 'main';
      if (p3 === '688' || p3 === '689') return 'star';
      return undefined;
    case 'SZ':
      if (p3 === '000' || p3 === '001' || p3 === '002' || p3 === '003') return 'main';
      if (p3 === '300' || p3 === '301') return 'chinext';
      return undefined;
    case 'BJ':
      if (code[0] === '4' || code[0] === '8' || code.startsWith('92')) return 'bse';
      return undefined;
  }
  return undefined;
}

export function isValidSymbol(symbol: string): boolean {
  return boardOf(symbol) !== undefined;
}

/** Daily limit as a fraction of the previous close. */
export function limitFraction(board: Board, isST: boolean): number {
  if (isST) return 0.05;
  switch (board) {
    case 'main':
      return 0.1;
    case 'star':
    case 'chinext':
      return 0.2;
    case 'bse':
      return 0.3;
  }
}

/** Exchange rounding of limit prices: to the fen (0.01 CNY), half away from zero. */
export function roundToFen(price: number): number {
  return Math.round(price * 100 + 1e-9) / 100;
}

export interface PriceLimits {
  up: number;
  down: number;
}

export function priceLimits(prevClose: number, board: Board, isST: boolean): PriceLimits {
  const f = limitFraction(board, isST);
  return { up: roundToFen(prevClose * (1 + f)), down: roundToFen(prevClose * (1 - f)) };
}

/** Flags for a bar against its day's limits: 1 = closed at the upper limit, -1 = at the lower, 0 = neither. */
export function limitState(close: number, limits: PriceLimits): number {
  return limitStateOf(close, limits.up, limits.down);
}

/** 1 = at or above the upper limit, -1 = at or below the lower, 0 = neither. */
export function limitStateOf(close: number, up: number, down: number): number {
  if (close >= up - 1e-9) return 1;
  if (close <= down + 1e-9) return -1;
  return 0;
}

