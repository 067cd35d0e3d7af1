/**
 * Structured logs (pino, JSON lines) on stderr, so that stdout stays free for a command's
 * own output (summaries, scores). One logger per process, made at start-up.
 */
import { logLevel as KafkaLogLevel, type LogEntry, type logCreator } from 'kafkajs';
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, name = 'factorstream'): Logger {
  return pino({ name, level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: true }));
}

/** kafkajs logs through pino (warn and above; the rest at debug). */
export function kafkaLogCreator(log: Logger): logCreator {
  const child = log.child({ component: 'kafkajs' });
  return () =>
    ({ level, log: entry }: LogEntry) => {
      const { message, ...rest } = entry;
      if (level <= KafkaLogLevel.ERROR) child.error(rest, message);
      else if (level === KafkaLogLevel.WARN) child.warn(rest, message);
      else child.debug(rest, message);
    };
}
