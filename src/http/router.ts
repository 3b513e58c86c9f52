/**
 * Routing of the main listener, in this order: the tus mount; the server's own paths (the admin
 * API unless it has its own listener, /ready, /health, /metrics); the browser upload page; PUT
 * and downloads under the upload prefix. Every route's work lives in its own file; this one
 * only dispatches.
 */
import type { Locker } from '@tus/utils';
import Koa, { type Context } from 'koa';
import type { Config } from '../config/index.js';
import { AppError } from '../errors.js';
import type { Intake } from '../intake/index.js';
import { metrics, type Logger } from '../observability/index.js';
import type { IncomingStore, PublishedStore, QuarantineStore, TusUploadStore } from '../storage/index.js';
import { adminApi, type AdminRoute } from './admin-api.js';
import { corsMiddleware, RUFH_EXPOSED } from './cors.js';
import { serveDownload, type DownloadRedirect, type PendingPublications } from './downloads.js';
import { errorMiddleware } from './errors.js';
import { handlePut } from './put-upload.js';
import { requestLog } from './request-log.js';
import { requestTarget } from './request-target.js';
import type { RufhUploads } from './rufh-uploads.js';
import type { ReadinessReport } from './side-services.js';
import { mayReadMetrics } from './metrics-access.js';
import { statusPage } from './status-page.js';
import type { TusEndpoint } from './tus-endpoint.js';
import { uploadPage } from './upload-page.js';

export interface RouterParts {
  readonly config: Config;
  readonly log: Logger;
  readonly intake: Intake;
  readonly tus: TusEndpoint;
  /** IETF Resumable Uploads: requests with a supported Upload-Draft-Interop-Version (rufh-uploads.ts). */
  readonly rufh?: RufhUploads | undefined;
  readonly published: PublishedStore;
  /** Where PUT bodies stream (temp files, or S3 multipart uploads). */
  readonly incoming: IncomingStore;
  /** Uploads admitted but not yet published: a GET of one waits (bounded) for it. */
  readonly pending: PendingPublications;
  readonly tusStore: TusUploadStore;
  readonly locker: Locker;
  /** Admin routes of other parts (ops: queue, dead letters, recovery); served when [admin] token is set. */
  readonly adminRoutes: AdminRoute[];
  readonly readiness: () => Promise<ReadinessReport>;
  /** `[storage.s3] presigned_downloads`: GETs of published files are redirected there. */
  readonly downloadRedirect?: DownloadRedirect | undefined;
  /** Files the malware scan withheld: a download of one answers 451 (docs/scanning.md). */
  readonly quarantine?: Pick<QuarantineStore, 'bySlot'>;
}

/** The main listener's koa app, and the admin API handler (null without a token) for a side listener. */
export interface Routes {
  readonly koa: Koa;
  readonly admin: ((ctx: Context) => Promise<void>) | null;
}

/** GET of the Prometheus registry (main or side listener). */
export async function serveMetrics(ctx: Context): Promise<void> {
  ctx.type = metrics.registry.contentType;
  ctx.body = await metrics.registry.metrics();
}

export function buildRoutes(parts: RouterParts): Routes {
  const { config, log, tus, intake, published, pending } = parts;
  const { tusPath, uploadPath } = config.server;
  const tusRoot = tusPath.replace(/\/$/, '');
  const isTus = (path: string) => path === tusRoot || path.startsWith(tusPath);
  const metricsHere = (path: string) => config.metrics.enabled && !config.metrics.listen && path === config.metrics.path;
  const adminHere = (path: string) => config.admin.token !== '' && !config.admin.listen && (path === '/admin' || path.startsWith('/admin/'));
  // The server's own paths are answered before the upload prefix: with upload_path = "/" (Go
  // served slots at the root) they are not slot paths, and /health stays a health check.
  const isServerPath = (path: string) => path === '/health' || path === '/ready' || metricsHere(path) || adminHere(path);
  const routeOf = (path: string) =>
    isTus(path) ? 'tus' : path === config.metrics.path ? 'metrics' : isServerPath(path) ? 'other' : path.startsWith(uploadPath) ? 'upload' : 'other';

  const koa = new Koa();
  // trust_proxy: the client address is X-Forwarded-For's last hop (the one our proxy appended;
  // earlier entries are the client's own claims), for per-client limits and logs.
  koa.proxy = config.server.trustProxy;
  koa.maxIpsCount = 1;
  koa.silent = true; // errors are logged by errorMiddleware, with request ids
  koa.on('error', (err: unknown) => log.debug({ err }, 'Response stream error'));
  koa.use(requestLog(log, routeOf));
  koa.use(errorMiddleware);
  koa.use(requestTarget);

  // The RUFH door's own answers; its preflights carry no interop header and reach @tus/server, which allows its headers too.
  const rufhCors = corsMiddleware(config.cors, 'POST, HEAD, PATCH, DELETE, OPTIONS', RUFH_EXPOSED);
  koa.use(async (ctx: Context, next) => {
    if (!isTus(ctx.path)) return next();
    const version = parts.rufh?.versionOf(ctx);
    if (version) return rufhCors(ctx, () => parts.rufh!.handle(ctx, version, tus.uploadIdOf(ctx)));
    return tus.handle(ctx);
  });
  // Admin API and metrics: on the main listener unless they have their own address.
  const adminPrefix = config.admin.listen ? '' : '/admin';
  const admin = config.admin.token
    ? adminApi({
        token: config.admin.token,
        prefix: adminPrefix,
        tusStore: parts.tusStore,
        locker: parts.locker,
        onTerminated: (id) => {
          tus.terminated(id);
          intake.settleUpload(id);
        },
        routes: parts.adminRoutes,
        publicPages: statusPage(adminPrefix),
      })
    : null;
  koa.use(async (ctx: Context, next) => {
    const path = ctx.path;
    if (!isServerPath(path)) return next();
    if (admin && adminHere(path)) return admin(ctx);
    const readable = ctx.method === 'GET' || ctx.method === 'HEAD';
    if (path === '/ready' && readable) {
      const report = await parts.readiness();
      ctx.set('Cache-Control', 'no-store');
      ctx.status = report.ready ? 200 : 503;
      ctx.body = report;
      return;
    }
    if (path === '/health' && readable) {
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { status: 'ok' };
      return;
    }
    if (metricsHere(path) && ctx.method === 'GET') {
      if (!mayReadMetrics(ctx.req.socket.remoteAddress, ctx.req.headers, config.metrics.public)) throw new AppError('ERR_METRICS_LOCAL_ONLY');
      return serveMetrics(ctx);
    }
    // A known route asked with another method: 405 naming the ones it takes.
    throw new AppError('ERR_METHOD_NOT_ALLOWED', { headers: { Allow: metricsHere(path) ? 'GET' : 'GET, HEAD' } });
  });
  // The browser upload page (web/), when enabled: GET/HEAD of its own few paths only.
  if (config.upload_page.enabled) koa.use(uploadPage({ page: config.upload_page, server: config.server, concatenation: config.storage.backend === 'file' }));

  const uploadCors = corsMiddleware(config.cors, 'GET, HEAD, PUT, OPTIONS');
  koa.use(async (ctx: Context, next) => {
    const path = ctx.path;
    if (!path.startsWith(uploadPath)) return next();
    return uploadCors(ctx, async () => {
      const rawPath = path.slice(uploadPath.length);
      switch (ctx.method) {
        case 'PUT':
          return handlePut(ctx, rawPath, { intake, incoming: parts.incoming, published, rufh: parts.rufh });
        case 'GET':
        case 'HEAD':
          return serveDownload(ctx, rawPath, published, pending, parts.quarantine, parts.downloadRedirect);
        case 'OPTIONS': {
          ctx.set('Allow', 'GET, HEAD, PUT, OPTIONS');
          const version = parts.rufh?.versionOf(ctx);
          if (version) parts.rufh!.announceLimits(ctx, version); // the draft: an upgraded PUT's target says its limits
          ctx.status = 204;
          return;
        }
        default:
          throw new AppError('ERR_METHOD_NOT_ALLOWED', { headers: { Allow: 'GET, HEAD, PUT, OPTIONS' } });
      }
    });
  });
  koa.use(async () => {
    throw new AppError('ERR_NOT_FOUND');
  });
  return { koa, admin };
}
