/**
 * The composition root: the only module that knows every part. Builds stores, finalizer and
 * HTTP handlers from the config, and owns the listener's lifecycle.
 */
import { mkdir } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import Koa, { type Context } from 'koa';
import type { Config } from './config/index.js';
import { resolveSecret, type SlotPolicy } from './auth/index.js';
import { AppError } from './errors.js';
import { finalizationFromConfig } from './finalize/index.js';
import { META_SLOT, META_TYPE, TusEndpoint, UploadLifecycle, adminApi, corsMiddleware, errorMiddleware, handlePut, requestLog, serveDownload, type GuardDeps } from './http/index.js';
import { readinessChecks, sideListener, addressOf } from './http/side-services.js';
import { uploadPage } from './http/upload-page.js';
import { limitConnections } from './http/connection-limit.js';
import { requestTarget } from './http/request-target.js';
import { answerClientErrors } from './http/client-errors.js';
import { statusPage } from './http/status-page.js';
import { metrics, type Logger } from './observability/index.js';
import { acquireDataDirLock, dataDirLockPath, opsAdminRoutes, opsReadinessChecks, queueOpsOf, removeServerLock, writeServerLock, type DataDirLock } from './ops/index.js';
import { FilePublishedStore, MemoryLocker, TusFileStore } from './storage/index.js';
import { AdmissionController } from './transfer/index.js';

export interface AppOptions {
  log: Logger;
  now?: () => number;
}

export interface RunningApp {
  /** e.g. http://127.0.0.1:8080 */
  baseUrl: string;
  tusUrl: string;
  uploadUrl: string;
  /** Refuses new uploads, lets running ones go on for up to `graceMs`, then ends them (bytes kept) and closes. */
  stop(graceMs?: number): Promise<void>;
}

export interface App {
  start(): Promise<RunningApp>;
}

export async function buildApp(config: Config, options: AppOptions): Promise<App> {
  // One server per data directory: locked before anything in it is opened (issue 9.7).
  await mkdir(config.storage.dataDir, { recursive: true, mode: config.storage.dirMode });
  const dirLock = acquireDataDirLock(dataDirLockPath(config.storage.dataDir));
  try {
    return await composeApp(config, options, dirLock);
  } catch (err) {
    dirLock.release();
    throw err;
  }
}

async function composeApp(config: Config, options: AppOptions, dirLock: DataDirLock): Promise<App> {
  const { log } = options;
  const now = options.now ?? Date.now;
  const dataDir = config.storage.dataDir;

  const secret = await resolveSecret(config.security.secret, dataDir);
  if (secret.origin !== 'config') {
    const { file, generated, loosePermissions } = secret.origin;
    if (generated) log.info({ file }, 'Generated a new signing secret; configure your XMPP server with the secret stored in this file');
    if (loosePermissions) log.warn({ file }, 'The secret file is readable by other users; run chmod 600 on it');
  }
  const policy: SlotPolicy = { secrets: [secret.secret, ...config.security.previousSecrets], schemes: config.security.schemes };

  const published = new FilePublishedStore(dataDir, config.storage);
  await published.init();
  const swept = await published.sweepIncoming();
  if (swept > 0) log.info({ files: swept }, 'Removed temp files of PUTs interrupted by a previous stop');
  const tusStore = new TusFileStore(join(dataDir, 'tus'), config.tus.expirationMs, config.storage.fileMode);
  // Finalization queue (docs/queue.md): every completed upload is admitted as a durable job and
  // published by the workers. The tus keys must match tus-endpoint.ts (META_SLOT, META_TYPE).
  const finalizer = finalizationFromConfig(config, { published, tusStore, tusSlotKeys: { slotPath: META_SLOT, contentType: META_TYPE }, log });
  const lifecycle = new UploadLifecycle();
  const admission = new AdmissionController({
    capacity: config.server.maxConcurrentUploads,
    agingMs: 30_000,
    timeoutMs: config.workers.queueTimeoutMs,
    onChange: (_active, waiting) => metrics.admissionWaiting.set(waiting),
  });
  const guard: GuardDeps = { config, admission, lifecycle, log };
  // Waiters get the lock once the holder drained (lock_drain_timeout); past twice that plus a
  // margin the holder is stuck, and the waiter answers 423 (retried by clients).
  const locker = new MemoryLocker(config.tus.lockDrainMs * 2 + 2_000);
  const tus = new TusEndpoint({ config, guard, locker, policy, tusStore, published, finalizer, now });

  const { tusPath, uploadPath } = config.server;
  const tusRoot = tusPath.replace(/\/$/, '');
  const routeOf = (path: string) =>
    path === tusRoot || path.startsWith(tusPath) ? 'tus' : path.startsWith(uploadPath) ? 'upload' : path === config.metrics.path ? 'metrics' : 'other';

  const koa = new Koa();
  koa.silent = true; // errors are logged by errorMiddleware, with request ids
  koa.on('error', (err: unknown) => log.debug({ err }, 'Response stream error'));
  koa.use(requestLog(log, routeOf));
  koa.use(errorMiddleware);
  koa.use(requestTarget);

  const uploadCors = corsMiddleware(config.cors, 'GET, HEAD, PUT, OPTIONS');
  koa.use(async (ctx: Context, next) => {
    const path = ctx.path;
    if (path === tusRoot || path.startsWith(tusPath)) return tus.handle(ctx);
    if (path.startsWith(uploadPath)) {
      return uploadCors(ctx, async () => {
        const rawPath = path.slice(uploadPath.length);
        switch (ctx.method) {
          case 'PUT':
            return handlePut(ctx, rawPath, { guard, policy, maxUploadBytes: config.server.maxUploadBytes, store: published, finalizer, now });
          case 'GET':
          case 'HEAD':
            return serveDownload(ctx, rawPath, published, finalizer);
          case 'OPTIONS':
            ctx.set('Allow', 'GET, HEAD, PUT, OPTIONS');
            ctx.status = 204;
            return;
          default:
            throw new AppError('ERR_METHOD_NOT_ALLOWED', { headers: { Allow: 'GET, HEAD, PUT, OPTIONS' } });
        }
      });
    }
    return next();
  });
  // The browser upload page (web/), when enabled: GET/HEAD of its own few paths only.
  if (config.upload_page.enabled) koa.use(uploadPage({ page: config.upload_page, server: config.server }));
  // Admin API and metrics: on the main listener unless they have their own address.
  // ops (issue 5): queue, dead-letter, recovery and status-page routes; queue readiness checks.
  const queueOps = queueOpsOf(finalizer);
  const adminPrefix = config.admin.listen ? '' : '/admin';
  const opsRoutes = opsAdminRoutes({ queue: queueOps, finalizer, tusStore, published, dataDir, slotKeys: { slotPath: META_SLOT, contentType: META_TYPE }, log });
  metrics.exposeLabelSets({ workers: config.workers.count });
  const admin = config.admin.token
    ? adminApi({ token: config.admin.token, prefix: adminPrefix, tusStore, locker, routes: opsRoutes, publicPages: statusPage(adminPrefix) })
    : null;
  const serveMetrics = async (ctx: Context) => {
    ctx.type = metrics.registry.contentType;
    ctx.body = await metrics.registry.metrics();
  };
  const readiness = readinessChecks(dataDir, lifecycle, opsReadinessChecks({ queue: queueOps, redisUrl: config.redis.url }));
  koa.use(async (ctx: Context, next) => {
    if (admin && !config.admin.listen && (ctx.path === '/admin' || ctx.path.startsWith('/admin/'))) return admin(ctx);
    if (ctx.path === '/ready' && (ctx.method === 'GET' || ctx.method === 'HEAD')) {
      const report = await readiness();
      ctx.set('Cache-Control', 'no-store');
      ctx.status = report.ready ? 200 : 503;
      ctx.body = report;
      return;
    }
    return next();
  });
  koa.use(async (ctx: Context) => {
    if (ctx.path === '/health' && (ctx.method === 'GET' || ctx.method === 'HEAD')) {
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { status: 'ok' };
      return;
    }
    if (config.metrics.enabled && !config.metrics.listen && ctx.path === config.metrics.path && ctx.method === 'GET') return serveMetrics(ctx);
    throw new AppError('ERR_NOT_FOUND');
  });

  return {
    async start(): Promise<RunningApp> {
      const handler = koa.callback();
      // The port is bound before the queue is opened, so a start that cannot listen leaves the
      // queue untouched; requests wait until recovery is done (issue 9.7).
      let recovered = false;
      let settleRecovery!: (err?: unknown) => void;
      const recovery = new Promise<void>((resolve, reject) => (settleRecovery = (err) => (err === undefined ? resolve() : reject(err))));
      recovery.catch(() => {}); // the waiting requests see a failure; nothing else must
      const gated = (req: IncomingMessage, res: ServerResponse) =>
        recovered ? handler(req, res) : void recovery.then(() => handler(req, res), () => res.destroy());
      const server = createServer(
        {
          // Node's defaults would cut long uploads (requestTimeout is 300 s): no overall request
          // deadline here; a dead client is caught by the socket idle timeout below.
          requestTimeout: 0,
          headersTimeout: 60_000,
          keepAliveTimeout: 65_000,
          requireHostHeader: false, // answered by requestTarget, as JSON with a log line
        },
        gated,
      );
      server.setTimeout(config.server.uploadStallMs); // idle socket (no byte either way) for this long: destroyed
      // Answer `Expect: 100-continue` only after the request is authorized (see allowBody).
      server.on('checkContinue', (req, res) => {
        (req as { expectsContinue?: boolean }).expectsContinue = true;
        gated(req, res);
      });
      const sockets = new Set<Socket>();
      answerClientErrors(server, log);
      const connectionLimit = limitConnections(server, config.server.connectionPoolSize, log, () => sockets.size);
      server.on('connection', (socket: Socket) => {
        // Probes find peers that vanished without FIN/RST (WiFi -> 4G). Node sets the idle time;
        // the probe interval and count come from the kernel (net.ipv4.tcp_keepalive_intvl/_probes).
        socket.setKeepAlive(true, config.timeouts.keepAliveProbeIntervalMs);
        sockets.add(socket);
        metrics.openConnections.inc();
        socket.once('close', () => {
          sockets.delete(socket);
          metrics.openConnections.dec();
          connectionLimit.onClose();
        });
      });
      const side: HttpServer[] = [];
      try {
        await listen(server, config.server.listen.host, config.server.listen.port);
        if (admin && config.admin.listen) {
          side.push(await sideListener(config.admin.listen, log, (ctx) => recovery.then(() => admin(ctx))));
          log.info({ address: addressOf(side.at(-1)!) }, 'Admin API listening');
        }
        if (config.metrics.enabled && config.metrics.listen) {
          side.push(await sideListener(config.metrics.listen, log, async (ctx) => {
            if (ctx.path !== config.metrics.path || ctx.method !== 'GET') throw new AppError('ERR_NOT_FOUND');
            await serveMetrics(ctx);
          }));
          log.info({ address: addressOf(side.at(-1)!) }, 'Metrics listening');
        }
        await finalizer.start(); // recovers the queue and reconciles files before any request is handled
        recovered = true;
        settleRecovery();
      } catch (err) {
        settleRecovery(err ?? new Error('start failed'));
        for (const x of [server, ...side]) x.close();
        for (const s of sockets) s.destroy();
        dirLock.release();
        throw err;
      }
      const address = server.address() as AddressInfo;
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      const baseUrl = config.server.publicUrl || `http://${host}:${address.port}`;
      // ops: server lock file, so offline commands refuse this data dir and online ones find the admin API.
      const localUrl = `http://${address.address === '0.0.0.0' ? '127.0.0.1' : address.address === '::' ? '[::1]' : host}:${address.port}`;
      const adminUrl = !admin ? null : config.admin.listen ? addressOf(side[0]!) : `${localUrl}/admin`;
      await writeServerLock(dataDir, { pid: process.pid, startedAtMs: Date.now(), baseUrl: localUrl, adminUrl });
      const sweep = () =>
        tusStore.deleteExpired().then(
          (n) => n > 0 && log.info({ removed: n }, 'Expired unfinished uploads removed'),
          (err: unknown) => log.warn({ err }, 'Expired upload cleanup failed'),
        );
      const expiry = config.tus.expirationMs > 0 ? setInterval(sweep, Math.min(config.tus.expirationMs, 3_600_000)).unref() : undefined;
      return {
        baseUrl,
        tusUrl: `${baseUrl}${tusPath}`,
        uploadUrl: `${baseUrl}${uploadPath}`,
        async stop(graceMs = 0) {
          clearInterval(expiry);
          // New uploads are refused (503) from here; running ones may finish within graceMs.
          // The listener stays open meanwhile, so late clients get a 503 + Retry-After rather
          // than a refused connection, and HEAD/GET keep working.
          lifecycle.state = 'draining';
          const left = await lifecycle.waitIdle(graceMs);
          if (left > 0) {
            log.warn({ uploads: left }, 'Shutdown grace period over: ending running uploads, received bytes kept');
            lifecycle.endAll('shutdown');
            await lifecycle.waitIdle(config.tus.lockDrainMs + 2_000);
          }
          lifecycle.state = 'stopped';
          for (const x of side) x.close();
          const closed = new Promise<void>((resolve) => server.close(() => resolve()));
          for (const s of sockets) s.destroy();
          await closed;
          // No upload can complete any more: drain the finalization workers (unfinished jobs stay queued).
          await finalizer.stop(Math.min(graceMs, 10_000));
          await removeServerLock(dataDir);
          dirLock.release();
        },
      };
    },
  };
}

function listen(server: HttpServer, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: host || undefined, port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
