/**
 * tus 1.0 through @tus/server. A creation must carry a signed slot (the same URL an XMPP server
 * hands out for a PUT), given as the `Upload-Slot` header or the `slot` query parameter of the
 * creation URL. The slot is checked here before @tus/server sees the request; its path and
 * type ride along in the upload's metadata (`hfs-slot`, `hfs-type`) so the upload can be
 * published at the slot's GET URL when its last byte arrives.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from 'koa';
import { EVENTS, type Server } from '@tus/server';
import { Metadata, type Locker, type Upload } from '@tus/utils';
import type { Config } from '../config/index.js';
import { authorizeSlot, decodeSlotPath, newUploadId, type AuthorizedSlot, type SlotPolicy } from '../auth/index.js';
import { AppError, toClientError } from '../errors.js';
import type { IntakeControl, UploadFinalizer } from '../finalize/index.js';
import { admitNewUpload } from './intake.js';
import { metrics } from '../observability/index.js';
import type { PublishedStore, TusFileStore } from '../storage/index.js';
import { corsOriginFor } from './cors.js';
import { errorBody } from './errors.js';
import { allowBody, requestContext } from './request-context.js';
import { JsonErrorTusServer, TUS_CODES, tusRequestScope } from './tus-json-errors.js';
import { byteCountOf, checkTusRequest, tusTargetOf, type TusTarget } from './tus-request.js';
import { guardUploadBody, tusBodyEnder, type GuardDeps } from './upload-guard.js';

export const SLOT_HEADER = 'Upload-Slot';
/** Upload metadata keys carrying the slot; finalization reads them back (see app.ts). */
export const META_SLOT = 'hfs-slot';
export const META_TYPE = 'hfs-type';

export interface TusDeps {
  config: Config;
  guard: GuardDeps;
  locker: Locker;
  policy: SlotPolicy;
  tusStore: TusFileStore;
  published: PublishedStore;
  finalizer: UploadFinalizer & IntakeControl;
  now: () => number;
}

type NodeBacked = { node?: { req: IncomingMessage; res: ServerResponse } };
const nodeReq = (req: unknown): IncomingMessage | undefined => (req as NodeBacked).node?.req;
const nodeRes = (req: unknown): ServerResponse | undefined => (req as NodeBacked).node?.res;

export class TusEndpoint {
  readonly server: Server;
  private readonly slots = new WeakMap<IncomingMessage, AuthorizedSlot>();

  constructor(private readonly deps: TusDeps) {
    const { config } = deps;
    const publicUrl = config.server.publicUrl;
    this.server = new JsonErrorTusServer({
      path: config.server.tusPath.replace(/\/$/, ''),
      datastore: deps.tusStore,
      maxSize: config.server.maxUploadBytes,
      respectForwardedHeaders: config.server.trustProxy,
      ...(publicUrl ? { generateUrl: (_req, { path, id }) => `${publicUrl}${path}/${id}` } : {}),
      namingFunction: () => newUploadId(),
      locker: deps.locker,
      lockDrainTimeout: config.tus.lockDrainMs,
      disableTerminationForFinishedUploads: true,
      allowedOrigins: (origin) => corsOriginFor(origin, config.cors) !== null,
      allowedCredentials: config.cors.allowCredentials,
      allowedHeaders: [SLOT_HEADER],
      exposedHeaders: ['X-Request-Id'],
      onUploadCreate: async (req, upload) => this.onCreate(req, upload),
      onUploadFinish: async (req, upload) => this.onFinish(req, upload),
      onResponseError: (req, err) => this.mapError(req, err),
    });
    this.server.on(EVENTS.POST_CREATE, () => metrics.uploadsCreated.inc({ protocol: 'tus' }));
    this.server.on(EVENTS.POST_TERMINATE, () => metrics.uploadsTerminated.inc());
  }

  /** koa handler for everything under the tus path. */
  async handle(ctx: Context): Promise<void> {
    try {
      await this.handleRequest(ctx);
    } catch (err) {
      // Refused before @tus/server saw the request, so without its CORS headers: a browser would
      // see a network error (which tus-js-client retries) instead of the 4xx.
      const origin = corsOriginFor(ctx.get('Origin') || undefined, this.deps.config.cors);
      if (origin) {
        ctx.set('Access-Control-Allow-Origin', origin);
        ctx.set('Access-Control-Expose-Headers', 'Tus-Resumable, Tus-Version, X-Request-Id');
        if (this.deps.config.cors.allowCredentials) ctx.set('Access-Control-Allow-Credentials', 'true');
      }
      if (ctx.method !== 'GET') ctx.set('Tus-Resumable', '1.0.0');
      throw err;
    }
  }

  private async handleRequest(ctx: Context): Promise<void> {
    if (ctx.method === 'GET') {
      throw new AppError('ERR_NOT_FOUND', { message: 'Finished uploads are downloaded from their slot URL' });
    }
    const target = tusTargetOf(ctx.path, this.deps.config.server.tusPath.replace(/\/$/, ''));
    checkTusRequest(ctx.method, (name) => ctx.get(name));
    if (ctx.method === 'POST') {
      const slot = await this.authorizeCreation(ctx);
      this.slots.set(ctx.req, slot);
    }
    let release = () => {};
    if (ctx.method === 'POST' || ctx.method === 'PATCH') {
      if (this.deps.guard.lifecycle.state !== 'running') throw new AppError('ERR_SERVER_SHUTDOWN', { headers: { 'Retry-After': '10' } });
      if (this.carriesBody(ctx)) release = await this.guardBody(ctx, target);
    }
    try {
      allowBody(ctx.req, ctx.res);
      ctx.respond = false;
      // When the client is gone, @tus/server's response promise may never settle (it waits for
      // 'finish' on a destroyed socket): the request is over when the response closes.
      const closed = new Promise<void>((resolve) => ctx.res.once('close', resolve));
      const handled = tusRequestScope.run(requestContext.get(ctx.req), () => this.server.handle(ctx.req, ctx.res));
      await Promise.race([handled, closed]);
    } finally {
      release();
    }
  }

  /** PATCH, and POST with creation-with-upload, stream a body into the store. */
  private carriesBody(ctx: Context): boolean {
    return ctx.method === 'PATCH' || ctx.get('Content-Type') === 'application/offset+octet-stream';
  }

  private async guardBody(ctx: Context, target: TusTarget): Promise<() => void> {
    const contentLength = byteCountOf(ctx.get('Content-Length')) ?? NaN;
    // Upload-Length as sent may be anything ("-5"): only a valid one sizes the deadlines; @tus/server refuses the rest.
    const declared = byteCountOf(ctx.get('Upload-Length'));
    const fileBytes = target.kind === 'upload' ? ((await this.deps.tusStore.declaredSize(target.id)) ?? declared) : declared;
    metrics.activeUploads.inc();
    // hmac_bytes_received_total{protocol="tus"}: body bytes read from the socket during this
    // request (@tus/server owns the body stream, so count at the socket; what the parser already
    // buffered before we got here is still unread by the store and counted too).
    const socket = ctx.req.socket;
    const bodyStartsAt = socket.bytesRead - ctx.req.readableLength;
    try {
      const release = await guardUploadBody(ctx, this.deps.guard, {
        protocol: 'tus',
        fileBytes,
        requestBytes: Number.isNaN(contentLength) ? (fileBytes ?? this.deps.config.server.maxUploadBytes) : contentLength,
        ender: tusBodyEnder(this.deps.config.tus.lockDrainMs + 1000),
      });
      let released = false;
      return () => {
        if (released) return;
        released = true;
        release();
        metrics.activeUploads.dec();
        metrics.bytesReceived.inc({ protocol: 'tus' }, Math.max(0, socket.bytesRead - bodyStartsAt));
      };
    } catch (err) {
      metrics.activeUploads.dec();
      throw err;
    }
  }

  private async authorizeCreation(ctx: Context): Promise<AuthorizedSlot> {
    const given = ctx.get(SLOT_HEADER) || (ctx.query.slot as string | undefined);
    if (!given || typeof given !== 'string') throw new AppError('ERR_SLOT_MISSING');
    const { rawPath, query } = this.parseSlot(given, new URLSearchParams(ctx.querystring));
    const path = decodeSlotPath(rawPath);

    const lengthHeader = ctx.get('Upload-Length');
    if (lengthHeader !== '' && !/^\d{1,16}$/.test(lengthHeader)) {
      throw new AppError('ERR_BAD_REQUEST', { message: 'Upload-Length is not a whole number' });
    }
    let metadata: Record<string, string | null> = {};
    try {
      const header = ctx.get('Upload-Metadata');
      if (header !== '') metadata = Metadata.parse(header) ?? {};
    } catch {
      throw new AppError('ERR_BAD_REQUEST', { message: 'Upload-Metadata is malformed' });
    }
    const declaredType = metadata.filetype ?? metadata.contentType ?? undefined;
    const decision = authorizeSlot(
      { path, query, size: lengthHeader === '' ? undefined : Number(lengthHeader), contentType: declaredType, nowMs: this.deps.now() },
      this.deps.policy,
    );
    if (!decision.ok) throw new AppError(decision.code);
    if (lengthHeader !== '' && Number(lengthHeader) > this.deps.config.server.maxUploadBytes) throw new AppError('ERR_TOO_LARGE');
    if (await this.deps.published.stat(path)) throw new AppError('ERR_FILE_EXISTS');
    await admitNewUpload(ctx, this.deps.finalizer, 'create', path, lengthHeader === '' ? undefined : Number(lengthHeader));
    return decision.slot;
  }

  /**
   * The slot is the PUT URL (absolute, or a path under the upload prefix) with its query. Its
   * signature parameters may instead sit on the creation URL itself, next to `slot=<path>`.
   */
  private parseSlot(given: string, creationQuery: URLSearchParams): { rawPath: string; query: URLSearchParams } {
    // Split by hand: URL parsing would resolve "..", hiding a traversal attempt behind a 403.
    const m = /^(?:[a-z][a-z0-9+.-]*:\/\/[^/?#]*)?([^?#]*)(?:\?([^#]*))?/i.exec(given.trim());
    const pathname = m?.[1] ?? '';
    const slotQuery = new URLSearchParams(m?.[2] ?? '');
    const { uploadPath, publicUrl } = this.deps.config.server;
    const publicPrefix = publicUrl ? new URL(publicUrl).pathname.replace(/\/$/, '') : '';
    const prefixes = [`${publicPrefix}${uploadPath}`, uploadPath];
    const prefix = prefixes.find((p) => pathname.startsWith(p));
    const rawPath = prefix ? pathname.slice(prefix.length) : pathname.replace(/^\//, '');
    const query = [...slotQuery.keys()].length > 0 ? slotQuery : creationQuery;
    return { rawPath, query };
  }

  private async onCreate(req: unknown, upload: Upload): Promise<{ metadata: Record<string, string | null> }> {
    const node = nodeReq(req);
    const slot = node && this.slots.get(node);
    if (!slot) throw new AppError('ERR_SLOT_MISSING');
    // Upload-Length must equal the signed size: the signature was checked against Upload-Length.
    if (slot.signedSize !== undefined && upload.size !== slot.signedSize) throw new AppError('ERR_SIZE_MISMATCH');
    return { metadata: { ...(upload.metadata ?? {}), [META_SLOT]: slot.path, [META_TYPE]: slot.contentType } };
  }

  private async onFinish(_req: unknown, upload: Upload): Promise<Record<string, never>> {
    const slotPath = upload.metadata?.[META_SLOT];
    const contentType = upload.metadata?.[META_TYPE];
    if (!slotPath || !contentType || upload.size === undefined) {
      throw new Error(`tus upload ${upload.id} finished without slot metadata`);
    }
    metrics.uploadsFinished.inc({ protocol: 'tus' });
    await this.deps.tusStore.markFinished(upload.id);
    const outcome = await this.deps.finalizer.finalize({
      protocol: 'tus',
      uploadId: upload.id,
      slotPath,
      contentType,
      size: upload.size,
      sourceFile: this.deps.tusStore.dataPath(upload.id),
    });
    if (outcome === 'exists') {
      // Another upload (a PUT) won the slot. Removing this one makes a resuming client see 404
      // and fail on the 409 of its next creation, instead of believing it succeeded.
      await this.deps.tusStore.remove(upload.id).catch(() => {});
      throw new AppError('ERR_FILE_EXISTS');
    }
    return {};
  }

  private mapError(req: unknown, thrown: Error | { status_code: number; body: string }): { status_code: number; body: string } {
    const node = nodeReq(req);
    const rc = node ? requestContext.get(node) : undefined;
    if ('status_code' in thrown && typeof thrown.status_code === 'number' && thrown.status_code < 500) {
      const code = TUS_CODES.get(thrown.body) ?? 'ERR_BAD_REQUEST';
      metrics.errorsByCode.inc({ code });
      if (rc) rc.errorCode = code;
      nodeRes(req)?.setHeader('Content-Type', 'application/json');
      return { status_code: thrown.status_code, body: JSON.stringify({ code, message: thrown.body.trim(), requestId: rc?.requestId }) };
    }
    const err = toClientError(thrown);
    if (err.code === 'ERR_INTERNAL') rc?.log.error({ err: thrown }, 'tus request failed');
    metrics.errorsByCode.inc({ code: err.code });
    if (rc) rc.errorCode = err.code;
    const method = (req as { method?: string }).method;
    // tus-js-client drops the upload and restarts from byte 0 on any HEAD answer but 2xx/423.
    const status = method === 'HEAD' && err.status >= 500 ? 423 : err.status;
    nodeRes(req)?.setHeader('Content-Type', 'application/json');
    return { status_code: status, body: JSON.stringify(errorBody(err, rc?.requestId)) };
  }
}
