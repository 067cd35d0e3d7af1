/**
 * Structured logs (pino, JSON lines) on stderr, so that stdout stays free for a command's
 * own output (summaries, scores). One logger per process, made at start-up.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, name = 'factorstream'): Logger {
  return pino({ name, level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: true }));
}
