/** Readiness, and small extra listeners for the admin API and metrics on their own addresses. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Koa, { type Context } from 'koa';
import type { Logger } from '../observability/index.js';
import { errorMiddleware } from './errors.js';
import { requestLog } from './request-log.js';
import type { UploadLifecycle } from '../intake/index.js';
import { requestTarget } from './request-target.js';
import { answerClientErrors, answerConnect } from './client-errors.js';

export interface ReadinessCheck {
  name: string;
  /** null when fine, else the reason (safe to show: no paths, no internals). */
  run(): Promise<string | null>;
}

export interface ReadinessReport {
  ready: boolean;
  checks: Array<{ name: string; ok: boolean; reason?: string }>;
  /** Cluster mode: this instance's mode ('clustered' | 'degraded'), shown, never failing readiness. */
  cluster?: unknown;
  /** The storage backend: reachable or not, its breaker (ops/readiness.ts); its check decides. */
  storage?: unknown;
}

/** Sections shown next to the checks, read after they ran. */
export interface ReadinessSections {
  readonly cluster?: (() => unknown) | undefined;
  readonly storage?: (() => unknown) | undefined;
}

/**
 * /ready: the data dir takes writes and the server is not shutting down; more checks can be
 * added. `cluster` adds cluster mode's state to the report (degraded mode keeps taking uploads,
 * so it does not make the instance unready).
 */
export function readinessChecks(dataDir: string, lifecycle: UploadLifecycle, extra: ReadinessCheck[] = [], sections: ReadinessSections = {}): () => Promise<ReadinessReport> {
  const { cluster, storage } = sections;
  const checks: ReadinessCheck[] = [
    {
      name: 'data_dir_writable',
      run: async () => {
        const probe = join(dataDir, `.ready-${process.pid}`);
        try {
          await writeFile(probe, 'ok');
          await unlink(probe);
          return null;
        } catch {
          return 'the data directory does not accept writes';
        }
      },
    },
    { name: 'accepting_uploads', run: async () => (lifecycle.state === 'running' ? null : 'shutting down') },
    ...extra,
  ];
  return async () => {
    const results = await Promise.all(
      checks.map(async (c) => {
        const reason = await c.run().catch(() => 'check failed');
        return reason === null ? { name: c.name, ok: true } : { name: c.name, ok: false, reason };
      }),
    );
    return { ready: results.every((r) => r.ok), checks: results, ...(cluster && { cluster: cluster() }), ...(storage && { storage: storage() }) };
  };
}

export function addressOf(server: Server): string {
  const a = server.address() as AddressInfo;
  return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
}

/** A listener with the same request log and error mapping as the main one, serving one handler. */
export function sideListener(listen: { host: string; port: number }, log: Logger, handle: (ctx: Context) => Promise<void>): Promise<Server> {
  const koa = new Koa();
  koa.silent = true;
  koa.use(requestLog(log, () => 'side'));
  koa.use(errorMiddleware);
  koa.use(requestTarget);
  koa.use(handle);
  const server = createServer({ requireHostHeader: false }, koa.callback()); // requestTarget answers it
  server.on('checkExpectation', koa.callback()); // requestTarget answers 417 as JSON
  answerClientErrors(server, log);
  answerConnect(server, koa.callback());
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: listen.host || undefined, port: listen.port }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
