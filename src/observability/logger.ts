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
 * also inside `previousErrors` and `cause`: those arguments are dropped. Only those paths are
 * walked (a few levels): anything else of the error is left as pino's serializer made it.
 */
function withoutCommandArgs<T>(err: T, depth = 0): T {
  if (depth > 3 || err === null || typeof err !== 'object') return err;
  const e = err as Record<string, unknown>;
  const command = e.command as Record<string, unknown> | undefined;
  const nested = ['previousErrors', 'errors'].filter((k) => Array.isArray(e[k]));
  if (!(command !== null && typeof command === 'object' && 'args' in command) && nested.length === 0 && e.cause === undefined) return err;
  const out: Record<string, unknown> = { ...e };
  if (command !== null && typeof command === 'object' && 'args' in command) out.command = { ...command, args: '[redacted]' };
  for (const k of nested) out[k] = (e[k] as unknown[]).map((x) => withoutCommandArgs(x, depth + 1));
  if (e.cause !== undefined) out.cause = withoutCommandArgs(e.cause, depth + 1);
  return out as T;
}
