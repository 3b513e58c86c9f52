/**
 * Spawns the built server (`node dist/src/cli.js serve`) on a free loopback port with a fresh
 * data dir, reads its JSON log lines, and resolves once it says where it listens.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { withTimeout } from './service.js';
import { SERVER_NODE_FLAGS } from '../../src/node-flags.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const CLI = join(REPO_ROOT, 'dist/src/cli.js');
export const TEST_SECRET = 'integration-test-secret-0123456789';

export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

export interface StartOptions {
  /** TOML text for a config file (HFS_CONFIG). Default: an empty file, i.e. built-in defaults. */
  config?: string;
  /** Extra environment; HFS_LISTEN, HFS_DATA_DIR and HFS_SECRET are set unless given here. */
  env?: Record<string, string | undefined>;
  /** null: no secret configured, so the server generates one. */
  secret?: string | null;
  /** Reuse a data dir (restart scenarios). */
  dataDir?: string;
}

export interface SpawnedServer {
  baseUrl: string;
  tusUrl: string;
  uploadUrl: string;
  dataDir: string;
  secret: string | null;
  proc: ChildProcess;
  logs: LogLine[];
  /** Raw stdout+stderr text, for "is this secret anywhere in the output" checks. */
  output(): string;
  /** Resolves with the first log line (already seen or future) matching `pred`. */
  waitForLog(pred: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Resolves with the exit code once the process exits (sends nothing). */
  exited: Promise<number | null>;
  /** SIGTERM (or the given signal) and wait for exit; returns the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** stop() and remove the data dir (unless it was passed in). */
  dispose(): Promise<void>;
}

export async function startServer(options: StartOptions = {}): Promise<SpawnedServer> {
  const ownDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'hfs-test-')));
  const configFile = join(dataDir, '..', `${dataDir.split('/').pop()}.toml`);
  await writeFile(configFile, options.config ?? '');
  const secret = options.secret === undefined ? TEST_SECRET : options.secret;
  const env: Record<string, string | undefined> = {
    ...process.env,
    HFS_CONFIG: configFile,
    HFS_LISTEN: '127.0.0.1:0',
    HFS_DATA_DIR: dataDir,
    HFS_SECRET: secret ?? undefined,
    ...options.env,
  };
  if (secret === null) delete env.HFS_SECRET;
  const proc = spawn(process.execPath, [...SERVER_NODE_FLAGS, CLI, 'serve'], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: LogLine[] = [];
  let raw = '';
  const waiters: Array<{ pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }> = [];
  const onLine = (text: string) => {
    raw += `${text}\n`;
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      return;
    }
    logs.push(line);
    for (const w of [...waiters]) {
      if (w.pred(line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  };
  createInterface({ input: proc.stdout! }).on('line', onLine);
  createInterface({ input: proc.stderr! }).on('line', (t) => (raw += `${t}\n`));
  const exited = new Promise<number | null>((res) => proc.once('exit', (code) => res(code)));

  // Every wait has a deadline (a test never hangs on a line that will not come).
  const waitForLog = (pred: (l: LogLine) => boolean, timeoutMs = 60_000) => {
    const seen = logs.find(pred);
    if (seen) return Promise.resolve(seen);
    let waiter!: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void };
    const line = new Promise<LogLine>((res) => waiters.push((waiter = { pred, resolve: res })));
    return withTimeout(line, timeoutMs, 'the server logged no matching line').finally(() => {
      const i = waiters.indexOf(waiter);
      if (i >= 0) waiters.splice(i, 1);
    });
  };

  const listening = await withTimeout(
    Promise.race([
      waitForLog((l) => l.msg === 'Server listening'),
      exited.then((code) => {
        throw new Error(`server exited with ${code} before listening:\n${raw}`);
      }),
    ]),
    30_000,
    'the server did not log "Server listening"',
  ).catch(async (err: unknown) => {
    proc.kill('SIGKILL');
    await exited;
    await rm(configFile, { force: true });
    if (ownDir) await rm(dataDir, { recursive: true, force: true });
    throw err;
  });
  const baseUrl = String(listening.address);
  let stopped: Promise<number | null> | undefined;
  const stop = (signal: NodeJS.Signals = 'SIGTERM') => {
    if (!stopped) {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      stopped = exited;
    }
    return stopped;
  };
  return {
    baseUrl,
    tusUrl: String(listening.tusUrl),
    uploadUrl: String(listening.uploadUrl),
    dataDir,
    secret,
    proc,
    logs,
    exited,
    output: () => raw,
    waitForLog,
    stop,
    async dispose() {
      await stop();
      await rm(configFile, { force: true });
      if (ownDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Runs the CLI to completion (not `serve`). */
export function runCli(args: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const proc = spawn(process.execPath, [...SERVER_NODE_FLAGS, CLI, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.once('error', rej);
    proc.once('close', (code) => res({ code, stdout, stderr }));
  });
}
