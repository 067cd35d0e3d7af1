/** Shared test helpers: the calendar, fixtures, a reject collector, and the built CLI. */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ErrorCode } from '../src/errors.js';
import { TradingCalendar } from '../src/market/calendar.js';
import type { DecodeContext } from '../src/ingest/decode.js';
import { SymbolTable } from '../src/ingest/events.js';

export const calendar = TradingCalendar.load();

export function fixture(name: string): string {
  return fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
}

export interface Collected {
  code: ErrorCode;
  detail: string;
  origin: number;
  row: number;
  symbol: string | undefined;
}

export function collectingContext(symbols = new SymbolTable()): DecodeContext & { rejects: Collected[] } {
  const rejects: Collected[] = [];
  return {
    symbols,
    calendar,
    rejects,
    reject(code, detail, origin, row, symbol) {
      rejects.push({ code, detail, origin, row, symbol });
    },
  };
}

/** Epoch ms of a Shanghai local time, e.g. sh('2026-11-23T09:25:00'). */
export function sh(local: string): number {
  return Date.parse(`${local}+08:00`);
}

/** Runs the built CLI (node dist/cli.js) as a user does; `env` adds to the environment. */
export function cli(args: string[], env: NodeJS.ProcessEnv = {}): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['dist/cli.js', ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 240_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Java's Utils.murmur2 (Kafka's default partitioner for keyed records), written from its algorithm: the reference for where a key goes. */
export function javaMurmur2(key: string | Buffer): number {
  const data = typeof key === 'string' ? Buffer.from(key) : key;
  const m = 0x5bd1e995;
  let h = (0x9747b28c ^ data.length) | 0;
  const whole = data.length - (data.length % 4);
  for (let i = 0; i < whole; i += 4) {
    let k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  const rest = data.length % 4;
  if (rest === 3) h ^= data[whole + 2] << 16;
  if (rest >= 2) h ^= data[whole + 1] << 8;
  if (rest >= 1) h = Math.imul(h ^ data[whole], m);
  h ^= h >>> 13;
  h = Math.imul(h, m);
  return h ^ (h >>> 15);
}
