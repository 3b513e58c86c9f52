/**
 * The composition root: the only module that knows every part. Builds stores, finalizer and
 * HTTP handlers from the config, and owns the listener's lifecycle.
 */
import { createServer, type Server as HttpServer } from 'node:http';
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
import { statusPage } from './http/status-page.js';
import { metrics, type Logger } from './observability/index.js';
import { opsAdminRoutes, opsReadinessChecks, queueOpsOf, removeServerLock, writeServerLock } from './ops/index.js';
import { FilePublishedStore, MemoryLocker, TusFileStore, UnfinishedUploads } from './storage/index.js';
import { AdmissionController, BodySlots, ClientLimits } from './transfer/index.js';
import { trackResponses } from './http/response-drain.js';

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

  const published = new FilePublishedStore(dataDir);
  await published.init();
  const swept = await published.sweepIncoming();
  if (swept > 0) log.info({ files: swept }, 'Removed temp files of PUTs interrupted by a previous stop');
  const tusStore = new TusFileStore(join(dataDir, 'tus'), config.tus.expirationMs);
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
  // Issue 18 / 9.1: one body per slot with takeover of silent holders; per-client caps.
  const clients = new ClientLimits({ maxBodies: config.limits.maxBodiesPerClient, creationsPerMinute: config.limits.creationsPerMinutePerClient });
  const guard: GuardDeps = { config, admission, lifecycle, log, slots: new BodySlots(), clients, holders: new WeakMap() };
  // Issue 9.2: one unfinished tus upload per slot, and a cap on the bytes they hold.
  const unfinished = new UnfinishedUploads((bytes) => metrics.unfinishedBytes.set(bytes));
  const loadUnfinished = async () =>
    unfinished.reset((await tusStore.listUnfinished()).flatMap((u) => (u.slotPath ? [{ id: u.id, slotPath: u.slotPath, size: u.size, offset: u.offset }] : [])));
  const uploadLimits = {
    clients,
    unfinished: { heldBytes: () => unfinished.heldBytes, maxBytes: config.limits.maxUnfinishedBytes },
    now,
  };
  // Waiters get the lock once the holder drained (lock_drain_timeout); past twice that plus a
  // margin the holder is stuck, and the waiter answers 423 (retried by clients).
  const locker = new MemoryLocker(config.tus.lockDrainMs * 2 + 2_000);
  const tus = new TusEndpoint({ config, guard, locker, unfinished, limits: uploadLimits, policy, tusStore, published, finalizer, now });

  const { tusPath, uploadPath } = config.server;
  const tusRoot = tusPath.replace(/\/$/, '');
  const routeOf = (path: string) =>
    path === tusRoot || path.startsWith(tusPath) ? 'tus' : path.startsWith(uploadPath) ? 'upload' : path === config.metrics.path ? 'metrics' : 'other';

  const koa = new Koa();
  // trust_proxy: the client address is X-Forwarded-For's last hop (the one our proxy appended;
  // earlier entries are the client's own claims), for per-client limits and logs.
  koa.proxy = config.server.trustProxy;
  koa.maxIpsCount = 1;
  koa.silent = true; // errors are logged by errorMiddleware, with request ids
  koa.on('error', (err: unknown) => log.debug({ err }, 'Response stream error'));
  koa.use(requestLog(log, routeOf));
  koa.use(errorMiddleware);

  const uploadCors = corsMiddleware(config.cors, 'GET, HEAD, PUT, OPTIONS');
  koa.use(async (ctx: Context, next) => {
    const path = ctx.path;
    if (path === tusRoot || path.startsWith(tusPath)) return tus.handle(ctx);
    if (path.startsWith(uploadPath)) {
      return uploadCors(ctx, async () => {
        const rawPath = path.slice(uploadPath.length);
        switch (ctx.method) {
          case 'PUT':
            return handlePut(ctx, rawPath, { guard, policy, maxUploadBytes: config.server.maxUploadBytes, store: published, finalizer, now, limits: uploadLimits });
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
      await finalizer.start(); // recovers the queue and reconciles files before any request
      await loadUnfinished();
      if (config.server.uploadStallMs < config.tus.lockDrainMs) {
        // Also a config warning; here with the consequence for takeovers.
        log.warn({ uploadStallMs: config.server.uploadStallMs, lockDrainMs: config.tus.lockDrainMs }, 'upload_stall_timeout is shorter than lock_drain_timeout');
      }
      const handler = koa.callback();
      const server = createServer(
        {
          // Node's defaults would cut long uploads (requestTimeout is 300 s): no overall request
          // deadline here; a dead client is caught by the socket idle timeout below.
          requestTimeout: 0,
          headersTimeout: 60_000,
          keepAliveTimeout: 65_000,
        },
        handler,
      );
      // Idle socket (no byte either way) for this long: destroyed. Only for requests that no
      // watchdog owns: upload bodies, admission waits and lock waits switch it off for their
      // duration (upload-guard.ts, tus-endpoint.ts), so it never fires before their own timers.
      server.setTimeout(config.server.uploadStallMs);
      const responses = trackResponses(server);
      // Answer `Expect: 100-continue` only after the request is authorized (see allowBody).
      server.on('checkContinue', (req, res) => {
        (req as { expectsContinue?: boolean }).expectsContinue = true;
        handler(req, res);
      });
      const sockets = new Set<Socket>();
      server.on('connection', (socket: Socket) => {
        // Probes find peers that vanished without FIN/RST (WiFi -> 4G). Node sets the idle time;
        // the probe interval and count come from the kernel (net.ipv4.tcp_keepalive_intvl/_probes).
        socket.setKeepAlive(true, config.timeouts.keepAliveProbeIntervalMs);
        sockets.add(socket);
        metrics.openConnections.inc();
        socket.once('close', () => {
          sockets.delete(socket);
          metrics.openConnections.dec();
        });
      });
      await listen(server, config.server.listen.host, config.server.listen.port);
      const side: HttpServer[] = [];
      if (admin && config.admin.listen) {
        side.push(await sideListener(config.admin.listen, log, (ctx) => admin(ctx)));
        log.info({ address: addressOf(side.at(-1)!) }, 'Admin API listening');
      }
      if (config.metrics.enabled && config.metrics.listen) {
        side.push(await sideListener(config.metrics.listen, log, async (ctx) => {
          if (ctx.path !== config.metrics.path || ctx.method !== 'GET') throw new AppError('ERR_NOT_FOUND');
          await serveMetrics(ctx);
        }));
        log.info({ address: addressOf(side.at(-1)!) }, 'Metrics listening');
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
          async (n) => {
            if (n === 0) return;
            log.info({ removed: n }, 'Expired unfinished uploads removed');
            await loadUnfinished();
          },
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
          // Every request that completed before the grace period ended gets its answer (a PUT's
          // 201) before its socket closes (issue 9.6); idle keep-alive sockets close at once.
          server.closeIdleConnections();
          const unanswered = await responses.waitAnswered(RESPONSE_DRAIN_MS);
          if (unanswered > 0) log.warn({ requests: unanswered }, 'Shutdown: closing connections with requests still unanswered');
          for (const s of sockets) s.destroy();
          await closed;
          // No upload can complete any more: drain the finalization workers (unfinished jobs stay queued).
          await finalizer.stop(Math.min(graceMs, 10_000));
          await removeServerLock(dataDir);
        },
      };
    },
  };
}

/** How long shutdown waits for answers still being written once no body streams any more. */
const RESPONSE_DRAIN_MS = 10_000;

function listen(server: HttpServer, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: host || undefined, port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
