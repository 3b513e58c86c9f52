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
    redact: { paths: ['secret', '*.secret', 'token', '*.token', 'authorization', '*.authorization', 'password', '*.password'], censor: '[redacted]' },
    serializers: { err: (err: unknown) => withoutCommandArgs(pino.stdSerializers.err(err as Error)) },
  };
  if (options.format === 'pretty') {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: options.colorize === true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } });
  }
  return destination ? pino(base, destination as pino.DestinationStream) : pino(base);
}

/**
 * An ioredis error carries the command it answered (`command.args`: AUTH's password among them),
 * also inside `previousErrors` and `cause`: the arguments are dropped wherever they are.
 */
function withoutCommandArgs<T>(value: T, depth = 0): T {
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v: unknown) => withoutCommandArgs(v, depth + 1)) as T;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    out[key] = key === 'command' && v !== null && typeof v === 'object' && 'args' in v ? { ...v, args: '[redacted]' } : withoutCommandArgs(v, depth + 1);
  }
  return out as T;
}
