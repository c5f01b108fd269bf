import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

export type LogFormat = 'json' | 'pretty' | 'auto';
export type { Logger };

export interface LogOptions {
  level: string;
  format: LogFormat;
}

/** The one root logger of a process; everything else is `root.child({ component, gen })`. */
export function createLogger(opts: LogOptions): Logger {
  const prettyOut = opts.format === 'pretty' || (opts.format === 'auto' && process.stdout.isTTY === true);
  const base = { pid: process.pid };
  if (!prettyOut) return pino({ level: opts.level, base });
  // Synchronous so that lines from the master, workers and backends interleave in order
  // and nothing is lost when the process exits.
  const stream = pretty({
    sync: true,
    colorize: process.stdout.isTTY === true,
    singleLine: true,
    translateTime: 'HH:MM:ss.l',
    ignore: 'hostname,pid,component,gen',
    messageFormat: '{component}{if gen} gen {gen}{end}: {msg}',
  });
  return pino({ level: opts.level, base }, stream);
}
