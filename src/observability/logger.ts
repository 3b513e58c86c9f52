import { pino, type Logger } from 'pino';

export type { Logger };

export interface LoggerOptions {
  level: string;
  format: 'json' | 'pretty';
  /** pretty only: ANSI colours (give true only when the output is a terminal). */
  colorize?: boolean;
}

/**
 * JSON lines by default (one object per line, `msg` is a fixed sentence operators grep);
 * `pretty` renders the same records for a terminal. Secrets are redacted by key name as a last
 * line of defence; the code never logs them on purpose.
 */
export function createLogger(options: LoggerOptions, destination?: NodeJS.WritableStream): Logger {
  const base = {
    level: options.level,
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['secret', '*.secret', 'token', '*.token', 'authorization', '*.authorization'], censor: '[redacted]' },
  };
  if (options.format === 'pretty') {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: options.colorize === true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } });
  }
  return destination ? pino(base, destination as pino.DestinationStream) : pino(base);
}
