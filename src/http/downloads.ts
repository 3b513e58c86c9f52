/**
 * GET and HEAD of published files under the upload prefix. A path whose upload is still queued
 * or being finalized never answers 404: the request waits (bounded) for the publish, then
 * answers 503 ERR_NOT_READY with Retry-After. A path whose upload went to quarantine answers 451
 * ERR_QUARANTINED (docs/scanning.md).
 */
import type { Context } from 'koa';
import { decodeSlotPath } from '../auth/index.js';
import { AppError } from '../errors.js';
import type { PendingDownload } from '../finalize/index.js';
import { metrics } from '../observability/index.js';
import { canDelete, type PublishedStore, type QuarantineStore } from '../storage/index.js';
import { DOWNLOAD_CSP, servedType } from './content-policy.js';
import { decideRange, etagMatches, ifRangeAllows, preconditionFails } from './range.js';

/**
 * A redirect target for a download (S3 presigned GET, `[storage.s3] presigned_downloads`): the
 * URL to send the client to, given the type and disposition this server would have served.
 */
export type DownloadRedirect = (path: string, served: { contentType: string; disposition?: string | undefined }) => Promise<string>;

/** Uploads admitted but not yet published (the finalization service). */
export interface PendingPublications {
  /** Waits (bounded) for `path` to be published; never rejects. */
  awaitPublished(path: string, signal?: AbortSignal): Promise<PendingDownload>;
  /** Its upload was deleted before it was published: the GETs waiting for `path` answer now (410), not at their timeout. */
  withdrawn(path: string): void;
}

export async function serveDownload(
  ctx: Context,
  rawPath: string,
  store: PublishedStore,
  pending?: PendingPublications,
  quarantine?: Pick<QuarantineStore, 'bySlot'>,
  redirect?: DownloadRedirect,
): Promise<void> {
  const path = decodeSlotPath(rawPath);
  let file = await store.stat(path);
  // Deleted for good (DELETE of its finished tus upload): 410, also while its job is cancelled.
  if (!file && canDelete(store) && (await store.deletedAt(path)) !== null) throw new AppError('ERR_GONE');
  if (!file && (await quarantine?.bySlot(path))) throw new AppError('ERR_QUARANTINED');
  if (!file && pending) {
    const gone = new AbortController();
    const onClose = () => gone.abort();
    ctx.res.once('close', onClose); // the client went away while waiting
    try {
      const outcome = await pending.awaitPublished(path, gone.signal);
      if (outcome.kind === 'not_ready') throw new AppError('ERR_NOT_READY', { headers: { 'Retry-After': String(outcome.retryAfterS) } });
      if (outcome.kind === 'published') file = await store.stat(path);
    } finally {
      ctx.res.off('close', onClose);
    }
  }
  if (!file && canDelete(store) && (await store.deletedAt(path)) !== null) throw new AppError('ERR_GONE'); // deleted while we waited
  if (!file) throw new AppError((await quarantine?.bySlot(path)) ? 'ERR_QUARANTINED' : 'ERR_NOT_FOUND'); // quarantined while we waited

  const lastModified = new Date(file.mtimeMs).toUTCString();
  ctx.set('ETag', file.etag);
  ctx.set('Last-Modified', lastModified);
  ctx.set('Accept-Ranges', 'bytes');
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('Content-Security-Policy', DOWNLOAD_CSP);
  // Shared files are embedded by web chat clients on other origins, cross-origin isolated ones too (COEP require-corp).
  ctx.set('Cross-Origin-Resource-Policy', 'cross-origin');

  if (preconditionFails(ctx.get('If-Match') || undefined, ctx.get('If-Unmodified-Since') || undefined, file.etag, file.mtimeMs)) throw new AppError('ERR_PRECONDITION_FAILED');
  const ifNoneMatch = ctx.get('If-None-Match') || undefined;
  const ifModifiedSince = Date.parse(ctx.get('If-Modified-Since'));
  if (etagMatches(ifNoneMatch, file.etag) || (!ifNoneMatch && !Number.isNaN(ifModifiedSince) && Math.floor(file.mtimeMs / 1000) * 1000 <= ifModifiedSince)) {
    ctx.status = 304;
    return;
  }

  const { contentType, disposition } = servedType(file.contentType, path.slice(path.lastIndexOf('/') + 1));
  ctx.set('Content-Type', contentType); // normalised by the policy; koa's ctx.type would add a charset
  if (disposition) ctx.set('Content-Disposition', disposition);

  // A GET may be sent to the store itself; HEAD and conditional answers stay here (no round trip).
  if (redirect && ctx.method === 'GET' && file.size > 0) {
    ctx.status = 302;
    ctx.set('Location', await redirect(path, { contentType, disposition }));
    ctx.set('Cache-Control', 'no-store'); // the URL expires; the file's validators stay with this server
    ctx.remove('Content-Type');
    ctx.body = '';
    return;
  }
  const range = ifRangeAllows(ctx.get('If-Range') || undefined, file.etag, file.mtimeMs)
    ? decideRange(ctx.get('Range') || undefined, file.size)
    : ({ kind: 'full' } as const);
  if (range.kind === 'unsatisfiable') {
    ctx.remove('Content-Disposition'); // the answer is a JSON error, not the file
    throw new AppError('ERR_RANGE_NOT_SATISFIABLE', { headers: { 'Content-Range': `bytes */${file.size}` } });
  }
  const [start, end] = range.kind === 'partial' ? [range.start, range.end] : [0, file.size - 1];
  ctx.status = range.kind === 'partial' ? 206 : 200;
  if (range.kind === 'partial') ctx.set('Content-Range', `bytes ${start}-${end}/${file.size}`);
  const length = file.size === 0 ? 0 : end - start + 1;
  if (ctx.method === 'HEAD' || length === 0) {
    // koa drops Content-Type with a null body; HEAD must show what GET serves, and an empty
    // file's GET the same headers as its HEAD (an empty buffer keeps the type set above).
    ctx.body = ctx.method === 'HEAD' ? null : Buffer.alloc(0);
    ctx.set('Content-Type', contentType);
    ctx.length = length;
    ctx.status = range.kind === 'partial' ? 206 : 200;
    return;
  }
  ctx.body = store.read(path, { start, end });
  ctx.res.once('finish', () => metrics.bytesSent.inc(length));
  // hmac_timeouts_total{type="download"}: the client stopped reading, the socket sat idle past
  // the listener's idle timeout and the server ends it mid-download.
  const socket = ctx.req.socket;
  const onTimeout = () => metrics.timeouts.inc({ type: 'download' });
  socket.once('timeout', onTimeout);
  ctx.res.once('close', () => socket.off('timeout', onTimeout));
  ctx.length = length;
}
