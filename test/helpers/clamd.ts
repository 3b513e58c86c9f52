/**
 * A real clamd (Debian clamav-daemon) for tests: its own temp dir with a unix socket (and, on
 * request, a TCP listener on 127.0.0.1), `Foreground yes`, and a DatabaseDirectory holding one
 * `.hdb` file written here (this machine cannot download the official database; field-notes.md,
 * "Checked 2026-12-03"). clamd reports a match as `<Name>.UNOFFICIAL FOUND`.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hdbLine } from '../../src/scan/index.js';
import { freePort } from './ops.js';
import { startService, type RunningService } from './service.js';

export const CLAMD_BIN = '/usr/sbin/clamd';

export interface ClamdOptions {
  /** Files clamd must flag, with the signature name it reports (plus ".UNOFFICIAL"). */
  readonly signatures: ReadonlyArray<{ readonly data: Buffer; readonly name: string }>;
  /** clamd's StreamMaxLength (default "64M"). */
  readonly streamMaxLength?: string;
  /** Also listen on a TCP port on 127.0.0.1. */
  readonly tcp?: boolean;
  /** More clamd.conf lines, e.g. "MaxFileSize 1024M" for benchmarks. */
  readonly extraConfig?: readonly string[];
}

export interface Clamd {
  /** The unix socket path (for scan.clamd). */
  readonly socket: string;
  /** "127.0.0.1:<port>" when `tcp` was asked for. */
  readonly tcpAddress: string | null;
  readonly running: boolean;
  /** SIGTERM (clamd removes its socket file) and wait for the exit. */
  stop(): Promise<void>;
  /** Start again with the same config, socket and port; resolves once it listens. */
  start(): Promise<void>;
  /** stop() and remove the temp dir. */
  dispose(): Promise<void>;
}

export async function startClamd(options: ClamdOptions): Promise<Clamd> {
  const dir = await mkdtemp(join(tmpdir(), 'hfs-clamd-'));
  const db = join(dir, 'db');
  await mkdir(db);
  await writeFile(join(db, 'hfs-test.hdb'), options.signatures.map((s) => `${hdbLine(s.data, s.name)}\n`).join(''));
  const socket = join(dir, 'clamd.sock');
  const port = options.tcp ? await freePort() : null;
  const conf = join(dir, 'clamd.conf');
  await writeFile(
    conf,
    [
      'Foreground yes',
      `LocalSocket ${socket}`,
      ...(port !== null ? [`TCPSocket ${port}`, 'TCPAddr 127.0.0.1'] : []),
      `DatabaseDirectory ${db}`,
      `StreamMaxLength ${options.streamMaxLength ?? '64M'}`,
      `PidFile ${join(dir, 'clamd.pid')}`,
      'LogTime no',
      'LogVerbose yes', // prints "Listening daemon" once its sockets accept
      'SelfCheck 0',
      ...(options.extraConfig ?? []),
      '',
    ].join('\n'),
  );
  let service: RunningService | null = null;
  const start = async () => {
    service = await startService({ cmd: CLAMD_BIN, args: ['-c', conf], pkg: 'clamav-daemon', ready: /Listening daemon/ });
  };
  await start();
  const handle: Clamd = {
    socket,
    tcpAddress: port === null ? null : `127.0.0.1:${port}`,
    get running() {
      return service !== null;
    },
    async stop() {
      const s = service;
      service = null;
      await s?.stop();
    },
    start,
    async dispose() {
      await handle.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return handle;
}
