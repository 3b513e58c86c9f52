/**
 * Starting an external program for a test (redis-server, prosody, clamd, radosgw, …) so that it
 * can never hang the suite: a binary that is missing fails at once naming the Debian package
 * (installed by scripts/ensure-system-deps.sh), an exit before ready fails with its output, and
 * every wait has a deadline.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createInterface } from 'node:readline';

export const DEFAULT_READY_TIMEOUT_MS = 30_000;

export interface ServiceOptions {
  /** Program to run (a name on PATH or an absolute path). */
  cmd: string;
  args: string[];
  /** Debian package that ships `cmd`, named in the error when it is missing. */
  pkg: string;
  /** A line of stdout/stderr that says the program is ready. */
  ready: RegExp;
  readyTimeoutMs?: number;
  spawnOptions?: SpawnOptions;
}

export interface RunningService {
  readonly proc: ChildProcess;
  /** Everything it printed so far (stdout and stderr interleaved by line). */
  output(): string;
  /** The first line (seen or future) matching `re`; rejects after `timeoutMs` or when the program exits. */
  waitForOutput(re: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves with the exit code once the program exits. */
  readonly exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it exited. */
  stop(graceMs?: number): Promise<void>;
}

/** The error for a binary that is not installed: names the package and the set-up script. */
export function missingBinaryError(cmd: string, pkg: string): Error {
  return new Error(`${cmd} is not installed: run scripts/ensure-system-deps.sh as root, or apt-get install -y ${pkg}`);
}

/** Rejects with `message` after `ms` unless `promise` settles first. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${message} (no answer within ${ms} ms)`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export async function startService(options: ServiceOptions): Promise<RunningService> {
  const proc = spawn(options.cmd, options.args, { stdio: ['ignore', 'pipe', 'pipe'], ...options.spawnOptions });
  let raw = '';
  const lines: string[] = [];
  const waiters = new Set<{ re: RegExp; resolve: (l: string) => void }>();
  const onLine = (line: string) => {
    raw += `${line}\n`;
    lines.push(line);
    for (const w of [...waiters]) {
      if (w.re.test(line)) {
        waiters.delete(w);
        w.resolve(line);
      }
    }
  };
  if (proc.stdout) createInterface({ input: proc.stdout }).on('line', onLine);
  if (proc.stderr) createInterface({ input: proc.stderr }).on('line', onLine);

  // 'error' (ENOENT, EACCES) comes instead of 'exit': both end the program's life for us.
  const ended = new Promise<{ code: number | null; spawnError?: NodeJS.ErrnoException }>((resolve) => {
    proc.once('error', (err: NodeJS.ErrnoException) => resolve({ code: null, spawnError: err }));
    proc.once('exit', (code) => resolve({ code }));
  });
  const exited = ended.then((e) => e.code);
  const death = ended.then((e) => {
    if (e.spawnError?.code === 'ENOENT') throw missingBinaryError(options.cmd, options.pkg);
    if (e.spawnError) throw new Error(`${options.cmd} could not start: ${e.spawnError.message}`);
    throw new Error(`${options.cmd} exited with ${e.code}:\n${raw.slice(-4000)}`);
  });
  death.catch(() => {}); // only awaited while waiting for output

  const waitForOutput = (re: RegExp, timeoutMs = DEFAULT_READY_TIMEOUT_MS) => {
    const seen = lines.find((l) => re.test(l));
    if (seen !== undefined) return Promise.resolve(seen);
    let waiter!: { re: RegExp; resolve: (l: string) => void };
    const line = new Promise<string>((resolve) => {
      waiter = { re, resolve };
      waiters.add(waiter);
    });
    return withTimeout(Promise.race([line, death]), timeoutMs, `${options.cmd} printed nothing matching ${re}`).finally(() => waiters.delete(waiter));
  };

  let stopping: Promise<void> | undefined;
  const stop = (graceMs = 5_000) =>
    (stopping ??= (async () => {
      if (proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined) {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
    })());

  try {
    await waitForOutput(options.ready, options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS);
  } catch (err) {
    await stop(1_000);
    throw err;
  }
  return { proc, output: () => raw, waitForOutput, exited, stop };
}
