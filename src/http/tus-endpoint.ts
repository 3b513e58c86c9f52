/**
 * tus 1.0 through @tus/server. A creation must carry a signed slot (the same URL an XMPP server
 * hands out for a PUT), given as the `Upload-Slot` header or the `slot` query parameter of the
 * creation URL. The slot is checked here before @tus/server sees the request; its path and
 * type ride along in the upload's metadata (`hfs-slot`, `hfs-type`) so the upload can be
 * published at the slot's GET URL when its last byte arrives.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from 'koa';
import { Server, EVENTS } from '@tus/server';
import { ERRORS as TUS_ERRORS, Metadata, type Lock, type Locker, type RequestRelease, type Upload } from '@tus/utils';
import type { Config } from '../config/index.js';
import { decodeSlotPath, newUploadId, type AuthorizedSlot } from '../auth/index.js';
import { AppError, toClientError } from '../errors.js';
import { socketIdleMsOf, tusBodyEnder, type Intake } from '../intake/index.js';
import { metrics } from '../observability/index.js';
import type { ReleaseRequest, TakeoverLocker, TusFileStore, UnfinishedUpload, UnfinishedUploads } from '../storage/index.js';
import { corsOriginFor } from './cors.js';
import { errorBody } from './errors.js';
import { allowBody, requestContext } from './request-context.js';

export const SLOT_HEADER = 'Upload-Slot';
/** Upload metadata keys carrying the slot; finalization reads them back (see app.ts). */
export const META_SLOT = 'hfs-slot';
export const META_TYPE = 'hfs-type';

export interface TusDeps {
  config: Config;
  intake: Intake;
  locker: TakeoverLocker;
  tusStore: TusFileStore;
  /** One unfinished upload per slot, and the bytes they hold (issue 9.2). */
  unfinished: UnfinishedUploads;
}

type NodeBacked = { node?: { req: IncomingMessage; res: ServerResponse } };
const nodeReq = (req: unknown): IncomingMessage | undefined => (req as NodeBacked).node?.req;
const nodeRes = (req: unknown): ServerResponse | undefined => (req as NodeBacked).node?.res;

/** tus error bodies become our {code, message}; each tus error keeps its status. */
const TUS_CODES = new Map<string, string>(
  Object.entries(TUS_ERRORS).map(([name, e]) => [(e as { body: string }).body, `ERR_TUS_${name}`]),
);

/** What a creation resolved to: a new upload, or the slot's existing unfinished one. */
type Creation = { slot: AuthorizedSlot; existing?: UnfinishedUpload };

export class TusEndpoint {
  readonly server: Server;
  private readonly slots = new WeakMap<IncomingMessage, AuthorizedSlot>();
  /** Creations in flight per slot path: a concurrent second creation waits for the first's upload. */
  private readonly creating = new Map<string, Promise<void>>();

  constructor(private readonly deps: TusDeps) {
    const { config } = deps;
    const publicUrl = config.server.publicUrl;
    this.server = new Server({
      path: config.server.tusPath.replace(/\/$/, ''),
      datastore: deps.tusStore,
      maxSize: config.server.maxUploadBytes,
      respectForwardedHeaders: config.server.trustProxy,
      ...(publicUrl ? { generateUrl: (_req, { path, id }) => `${publicUrl}${path}/${id}` } : {}),
      namingFunction: () => newUploadId(),
      locker: (req) => this.lockerFor(nodeReq(req)),
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
    this.server.on(EVENTS.POST_CREATE, (_req, upload) => {
      metrics.uploadsCreated.inc({ protocol: 'tus' });
      const slotPath = upload.metadata?.[META_SLOT];
      if (slotPath) deps.unfinished.add({ id: upload.id, slotPath, size: upload.size ?? null, offset: upload.offset });
    });
    this.server.on(EVENTS.POST_TERMINATE, (_req, _res, id) => {
      metrics.uploadsTerminated.inc();
      deps.unfinished.remove(id);
    });
  }

  /**
   * @tus/server asks for a locker per request: locks are taken on behalf of this request's
   * client, and a release request to this request, while it streams a body, goes to its
   * BodyHolder, which decides by its own idle clock (transfer/takeover.ts). A holder without a
   * body (a HEAD) keeps @tus/server's own delayed abort.
   */
  private lockerFor(req: IncomingMessage | undefined): Locker {
    const base = this.deps.locker;
    const intake = this.deps.intake;
    const clientAddress = req ? intake.clientOf(req) : 'unknown';
    return {
      newLock(id: string): Lock {
        const inner = base.newLock(id, { clientAddress });
        return {
          lock: (signal: AbortSignal, tusRelease: RequestRelease) =>
            inner.lock(signal, (request: ReleaseRequest) => {
              const holder = req && intake.holderOf(req);
              if (holder && !holder.isOver) return void holder.requestRelease(request.requester ?? { clientAddress: 'unknown' });
              return tusRelease();
            }),
          unlock: () => inner.unlock(),
        };
      },
    };
  }

  /** koa handler for everything under the tus path. */
  async handle(ctx: Context): Promise<void> {
    if (ctx.method === 'GET') {
      throw new AppError('ERR_NOT_FOUND', { message: 'Finished uploads are downloaded from their slot URL' });
    }
    let slotPath: string | undefined;
    let settleCreation = () => {};
    if (ctx.method === 'POST') {
      this.deps.intake.refuseWhenStopping();
      const creation = await this.authorizeCreation(ctx);
      if (creation.existing) return this.answerExisting(ctx, creation.existing);
      this.slots.set(ctx.req, creation.slot);
      slotPath = creation.slot.path;
      settleCreation = this.markCreating(slotPath);
    }
    let release = () => {};
    // Non-body requests may wait for an upload's lock (up to the locker's acquire timeout): that
    // wait owns the socket, not the idle timeout (issue 9.5).
    const socket = ctx.req.socket;
    if (!this.carriesBody(ctx)) socket.setTimeout(0);
    try {
      if (ctx.method === 'POST' || ctx.method === 'PATCH') {
        this.deps.intake.refuseWhenStopping();
        if (this.carriesBody(ctx)) release = await this.guardBody(ctx, slotPath);
      }
      allowBody(ctx.req, ctx.res);
      ctx.respond = false;
      // When the client is gone, @tus/server's response promise may never settle (it waits for
      // 'finish' on a destroyed socket): the request is over when the response closes.
      const closed = new Promise<void>((resolve) => ctx.res.once('close', resolve));
      await Promise.race([this.server.handle(ctx.req, ctx.res), closed]);
    } finally {
      settleCreation();
      release();
      if (!this.carriesBody(ctx) && !socket.destroyed) socket.setTimeout(socketIdleMsOf(this.deps.config));
    }
  }

  /**
   * A second creation on a slot that has an unfinished upload (issue 9.2): the same upload
   * (same length, or both deferred) is answered 200 with its URL and stored offset, so a client
   * that lost the first creation's answer (a handoff mid-POST) resumes instead of failing; a
   * different one is refused with 409 naming the existing upload. A body sent with this POST is
   * not stored (the answer's Upload-Offset tells the client where to continue).
   */
  private async answerExisting(ctx: Context, existing: UnfinishedUpload): Promise<void> {
    const url = this.uploadUrl(ctx, existing.id);
    const lengthHeader = ctx.get('Upload-Length');
    const sameLength = lengthHeader === '' ? existing.size === null : existing.size === Number(lengthHeader);
    if (!sameLength) {
      throw new AppError('ERR_UPLOAD_EXISTS', { message: `This slot already has an unfinished upload: ${url}`, headers: { Location: url, 'Tus-Resumable': '1.0.0' } });
    }
    const stored = await this.deps.tusStore.summarize(existing.id);
    ctx.status = 200;
    ctx.set({ Location: url, 'Tus-Resumable': '1.0.0', 'Upload-Offset': String(stored?.offset ?? existing.offset), 'Cache-Control': 'no-store' });
    const origin = corsOriginFor(ctx.get('Origin') || undefined, this.deps.config.cors);
    if (origin) ctx.set({ 'Access-Control-Allow-Origin': origin, 'Access-Control-Expose-Headers': 'Location, Upload-Offset, Upload-Length, Tus-Resumable, X-Request-Id' });
    if (existing.size !== null) ctx.set('Upload-Length', String(existing.size));
    if (!ctx.req.readableEnded && ctx.get('Content-Length') !== '0') ctx.set('Connection', 'close');
    ctx.body = '';
  }

  private uploadUrl(ctx: Context, id: string): string {
    const root = this.deps.config.server.tusPath.replace(/\/$/, '');
    const base = this.deps.config.server.publicUrl || `${ctx.protocol}://${ctx.host}`;
    return `${base}${root}/${id}`;
  }

  /** Marks a creation in flight on `slotPath`; returns the function that ends the mark. */
  private markCreating(slotPath: string): () => void {
    let done!: () => void;
    const settled = new Promise<void>((resolve) => (done = resolve));
    this.creating.set(slotPath, settled);
    return () => {
      if (this.creating.get(slotPath) === settled) this.creating.delete(slotPath);
      done();
    };
  }

  /** Bytes held by an unfinished upload after a PATCH (one stat), for limits.max_unfinished_bytes. */
  private refreshHeld(id: string): void {
    if (!this.deps.unfinished.get(id)) return;
    void this.deps.tusStore.summarize(id).then(
      (s) => {
        if (s && !s.finished) this.deps.unfinished.setOffset(id, s.offset);
      },
      () => {},
    );
  }

  /** PATCH, and POST with creation-with-upload, stream a body into the store. */
  private carriesBody(ctx: Context): boolean {
    return ctx.method === 'PATCH' || ctx.get('Content-Type') === 'application/offset+octet-stream';
  }

  private async guardBody(ctx: Context, creationSlot: string | undefined): Promise<() => void> {
    const contentLength = Number(ctx.get('Content-Length') || NaN);
    let fileBytes: number | undefined;
    let uploadId = '';
    let slotKey: string;
    if (ctx.method === 'POST') {
      fileBytes = Number(ctx.get('Upload-Length') || NaN);
      slotKey = creationSlot ?? `creation:${ctx.path}`;
    } else {
      uploadId = decodeURIComponent(ctx.path.slice(ctx.path.lastIndexOf('/') + 1));
      const facts = await this.deps.tusStore.facts(uploadId);
      fileBytes = facts.size ?? Number(ctx.get('Upload-Length') || NaN);
      // One body per slot; concatenation (issue 10) keys each partial upload on its own id.
      slotKey = facts.slotPath ?? `upload:${uploadId}`;
    }
    if (Number.isNaN(fileBytes)) fileBytes = undefined;
    // Bytes are counted at the socket (the guard's default): @tus/server owns the body stream.
    const release = await this.deps.intake.guardBody(ctx.req, {
      protocol: 'tus',
      fileBytes,
      requestBytes: Number.isNaN(contentLength) ? (fileBytes ?? this.deps.intake.maxUploadBytes) : contentLength,
      slotKey,
      uploadId: uploadId || slotKey,
      ender: tusBodyEnder(this.deps.config.tus.lockDrainMs + 1000),
      log: requestContext.get(ctx.req)?.log,
    });
    return () => {
      release();
      if (uploadId) this.refreshHeld(uploadId);
    };
  }

  private async authorizeCreation(ctx: Context): Promise<Creation> {
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
    const sizeBytes = lengthHeader === '' ? undefined : Number(lengthHeader);
    const slot = await this.deps.intake.authorize({ path, query, sizeBytes, contentType: declaredType });
    // One unfinished upload per slot: wait for a creation in flight on it, then look it up.
    for (let pending = this.creating.get(path); pending; pending = this.creating.get(path)) await pending;
    const [existing] = this.deps.unfinished.ofSlot(path);
    if (existing) return { slot, existing };
    await this.deps.intake.gate(ctx.req, 'create', path, sizeBytes, requestContext.get(ctx.req)?.log);
    return { slot };
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
    await this.deps.tusStore.markFinished(upload.id);
    this.deps.unfinished.remove(upload.id);
    const outcome = await this.deps.intake.complete({
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
      nodeRes(req)?.setHeader('Content-Type', 'application/json');
      return { status_code: thrown.status_code, body: JSON.stringify({ code, message: thrown.body.trim(), requestId: rc?.requestId }) };
    }
    const err = toClientError(thrown);
    if (err.code === 'ERR_INTERNAL') rc?.log.error({ err: thrown }, 'tus request failed');
    metrics.errorsByCode.inc({ code: err.code });
    const method = (req as { method?: string }).method;
    // tus-js-client drops the upload and restarts from byte 0 on any HEAD answer but 2xx/423.
    const status = method === 'HEAD' && err.status >= 500 ? 423 : err.status;
    nodeRes(req)?.setHeader('Content-Type', 'application/json');
    return { status_code: status, body: JSON.stringify(errorBody(err, rc?.requestId)) };
  }
}
