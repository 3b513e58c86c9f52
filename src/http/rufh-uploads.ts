/**
 * IETF Resumable Uploads for HTTP (draft-ietf-httpbis-resumable-upload), the third front door.
 * It owns no storage of its own: an upload resource is an ordinary unfinished tus upload (same
 * record, store, lock, expiry, ops listing), created either by
 *   - upgrading a signed slot PUT (put-upload.ts authorizes it exactly like any PUT, then hands
 *     it here): `104 Upload Resumption Supported` with the resource's `Location` goes out on the
 *     socket and the body keeps streaming into the resource; or
 *   - careful creation: a POST to the tus endpoint with the tus creation's slot authorization.
 * The resource URL is the tus upload URL (192 random bits, no signature needed again). Its
 * HEAD/PATCH/DELETE/OPTIONS are recognised by `Upload-Draft-Interop-Version` (router.ts); what
 * differs between interop versions is looked up in rufh-versions.ts.
 */
import type { IncomingMessage } from 'node:http';
import type { Context } from 'koa';
import { Upload, type Locker } from '@tus/utils';
import { newUploadId, type AuthorizedSlot } from '../auth/index.js';
import type { Config } from '../config/index.js';
import { AppError } from '../errors.js';
import type { Intake } from '../intake/index.js';
import { metrics } from '../observability/index.js';
import { jobIdOf } from '../finalize/index.js';
import { isFinishedRecord, type QuarantineStore, type StoredUpload, type TusDoorStore, type TusRequestScope, type UploadServerState } from '../storage/index.js';
import { ByteLimit } from '../transfer/index.js';
import { allowBody, requestContext } from './request-context.js';
import { answerProblem, writeInterim } from './rufh-http.js';
import { InterimDecider, interimRequestOf, type InterimVerdict } from './rufh-interim.js';
import {
  appendTypeOk,
  completeField,
  interimHead,
  interopOf,
  parseSfInteger,
  requestCompletes,
  uploadLimitField,
  type InteropVersion,
  type UploadLimits,
} from './rufh-versions.js';
import type { Creation } from './tus-endpoint.js';
import { UploadCompletion } from './tus-completion.js';
import { uploadUrlOf } from './tus-http.js';

export interface RufhDeps {
  readonly config: Config;
  readonly intake: Intake;
  readonly locker: Locker;
  readonly tusStore: TusDoorStore;
  readonly scope: TusRequestScope;
  /** The tus endpoint's creation authorization (slot in Upload-Slot or ?slot=, signature, gate). */
  readonly authorizeCreation: (ctx: Context) => Promise<Creation>;
  readonly now: () => number;
  /** An upload in quarantine answers 451 on its resource URL (docs/scanning.md). */
  readonly quarantine?: Pick<QuarantineStore, 'get'>;
}

/** A slot PUT authorized by put-upload.ts, as it hands it over. */
export interface UpgradedPut {
  readonly path: string;
  readonly slot: AuthorizedSlot;
  /** The whole file's size when known (Upload-Length, or Content-Length of a complete request). */
  readonly fileBytes: number | undefined;
  readonly expectedSha256: string | undefined;
}

/** How an append ended. */
type AppendEnd = 'body' | 'cut' | 'takeover';

const ALLOW = 'POST, HEAD, PATCH, DELETE, OPTIONS';
const header = (ctx: Context) => (name: string) => ctx.get(name) || undefined;

export class RufhUploads {
  readonly #completion: UploadCompletion;
  readonly #interim: InterimDecider;

  constructor(private readonly deps: RufhDeps) {
    this.#completion = new UploadCompletion({ tusStore: deps.tusStore, intake: deps.intake, skipIntakeChecksum: deps.config.testing.skipIntakeChecksum });
    const { rufh, server } = deps.config;
    this.#interim = new InterimDecider({ policy: rufh.interimResponses, proxies: rufh.proxyAddresses, passing1xx: rufh.proxiesPassing1xx, trustProxy: server.trustProxy });
  }

  /** The interop version of a request that asks for a resumable upload; undefined: a plain request. */
  versionOf(ctx: Context): InteropVersion | undefined {
    if (ctx.get('Tus-Resumable') !== '') return undefined; // tus 1.0 keeps its own door
    return interopOf(header(ctx));
  }

  /** The whole file's size a request declares: `Upload-Length`, else its Content-Length when it completes the upload. */
  fileSizeOf(ctx: Context, version: InteropVersion, contentLength: number | undefined): number | undefined {
    const declared = version.uploadLength ? parseSfInteger(ctx.get('Upload-Length')) : undefined;
    if (declared === null) throw new AppError('ERR_BAD_REQUEST', { message: 'Upload-Length is not a structured-field integer' });
    if (declared !== undefined) return declared;
    return this.completes(ctx, version) ? contentLength : undefined;
  }

  /** Requests to the tus endpoint speaking a supported interop version (and no Tus-Resumable). */
  async handle(ctx: Context, version: InteropVersion, id: string | undefined): Promise<void> {
    metrics.rufhRequests.inc({ interop: String(version.interop), kind: kindOf(ctx.method) });
    try {
      if (ctx.method === 'OPTIONS') return this.options(ctx, version);
      if (id === undefined) {
        if (ctx.method === 'POST') return await this.create(ctx, version);
        throw new AppError('ERR_METHOD_NOT_ALLOWED', { headers: { Allow: 'POST, OPTIONS' } });
      }
      if (await this.deps.quarantine?.get(jobIdOf({ protocol: 'tus', uploadId: id }))) throw new AppError('ERR_QUARANTINED');
      switch (ctx.method) {
        case 'HEAD':
          return await this.head(ctx, version, id);
        case 'PATCH':
          return await this.patch(ctx, version, id);
        case 'DELETE':
          return await this.remove(ctx, version, id);
        default:
          throw new AppError('ERR_METHOD_NOT_ALLOWED', { headers: { Allow: 'HEAD, PATCH, DELETE, OPTIONS' } });
      }
    } catch (err) {
      if (!(err instanceof AppError && answerProblem(ctx, err, requestContext.get(ctx.req)?.requestId))) throw err;
    }
  }

  /**
   * An authorized slot PUT that asked for a resumable upload. A slot whose earlier upgraded PUT
   * left an unfinished resource is sent to resume it (resumeExisting); otherwise the request
   * passes the intake gate like any PUT, a resource is created, the 104 goes out, and the body
   * streams into the resource. Completed: 201 as the PUT would; cut: the bytes stay.
   * Where no 104 may go (rufh-interim.ts) the resource is still made, and the final answer
   * carries its Location; such a client cannot resume a cut body, so its repeated PUT replaces
   * the slot's unfinished resource instead of being sent to it. So does one through a proxy: the
   * proxy would turn the connection closed after the 104 into a 502, which ends the upload.
   */
  async upgradePut(ctx: Context, version: InteropVersion, put: UpgradedPut): Promise<void> {
    metrics.rufhRequests.inc({ interop: String(version.interop), kind: 'upgrade' });
    const interim = this.#interim.decide(interimRequestOf(ctx.req));
    const existing = await this.unfinishedOf(put.path);
    if (existing !== undefined && interim.send && interim.via === 'direct') return this.resumeExisting(ctx, version, existing);
    if (existing !== undefined) await this.discardUnreachable(ctx, existing, put.path, interim);
    await this.deps.intake.gate(ctx.req, 'put', put.path, put.fileBytes);
    const record: UploadServerState = {
      slotPath: put.slot.path,
      contentType: put.slot.contentType,
      scheme: put.slot.scheme,
      ...(put.slot.signedSize !== undefined && { signedSize: put.slot.signedSize }),
      createdAtMs: this.deps.now(),
      ...(put.expectedSha256 !== undefined && { expectedSha256: put.expectedSha256 }),
      rufh: { interop: version.interop, via: 'put' },
    };
    try {
      await this.createAndAppend(ctx, version, record, put.fileBytes, undefined, interim);
    } catch (err) {
      if (!(err instanceof AppError && answerProblem(ctx, err, requestContext.get(ctx.req)?.requestId))) throw err;
    }
  }

  /** Careful creation (POST to the tus endpoint): authorized like a tus creation; data during creation allowed. */
  private async create(ctx: Context, version: InteropVersion): Promise<void> {
    const creation = await this.deps.authorizeCreation(ctx);
    if (creation.concat !== undefined) throw new AppError('ERR_BAD_REQUEST', { message: 'Upload-Concat is tus 1.0 only' });
    // One unfinished upload per slot (issue 9.2): a slot with an unfinished tus upload takes no second one.
    if (creation.existing) throw new AppError('ERR_UPLOAD_EXISTS');
    const size = this.fileSizeOf(ctx, version, contentLengthOf(ctx)) ?? creation.slot.signedSize;
    const record: UploadServerState = { ...creation.record, rufh: { interop: version.interop, via: 'post' } };
    await this.createAndAppend(ctx, version, record, size, creation.metadata ?? undefined);
  }

  /** `interim`: for an upgraded PUT, whether its 104 may be sent; careful creation sends none. */
  private async createAndAppend(ctx: Context, version: InteropVersion, record: UploadServerState, size: number | undefined, metadata: Record<string, string | null> | undefined, interim?: InterimVerdict): Promise<void> {
    const completes = this.completes(ctx, version);
    const { tusStore } = this.deps;
    const limits = this.limitsOf(record, this.deps.now());
    if (size !== undefined && size > limits.maxSizeBytes) throw this.tooLarge(version, limits);
    const release = await this.guard(ctx, size);
    try {
      const id = newUploadId();
      const upload = new Upload({ id, offset: 0, ...(size !== undefined && { size }), ...(metadata && { metadata }), creation_date: new Date(this.deps.now()).toISOString() });
      await this.deps.scope.run({ newRecord: record }, () => tusStore.create(upload));
      this.deps.intake.uploadCreated(ctx.req, id, size ?? null); // the gate's space stays promised to it
      if (record.rufh?.via === 'put') await tusStore.setResumableOf(record.slotPath, id);
      metrics.uploadsCreated.inc({ protocol: 'rufh' });
      const location = uploadUrlOf(ctx, this.deps.config.server, id);
      const log = requestContext.get(ctx.req)?.log;
      log?.info({ uploadId: id, interop: version.interop, via: record.rufh?.via }, 'Resumable upload resource created');
      await this.locked(ctx, id, async (onTakeover) => {
        allowBody(ctx.req, ctx.res);
        if (interim?.send === false) {
          metrics.rufhRequests.inc({ interop: String(version.interop), kind: 'interim_withheld' });
          log?.info({ uploadId: id, interop: version.interop, reason: interim.reason }, 'Upload resumption not offered (no 104 to this client)');
        } else if (interim?.send && writeInterim(ctx.res, interimHead(version, location, limits))) {
          log?.info({ uploadId: id, interop: version.interop, via: interim.via }, 'Upload resumption offered (104)');
        }
        const result = await this.appendBody(ctx, id, 0, size, limits, onTakeover);
        await this.answer(ctx, version, id, result, completes, { status: 201, location });
      });
    } finally {
      release();
    }
  }

  private async head(ctx: Context, version: InteropVersion, id: string): Promise<void> {
    // Taking the lock asks a body still streaming (a silent earlier request) to end: newest wins.
    await this.locked(ctx, id, async () => {
      const { info, offset } = await this.stateOf(id);
      const finished = isFinishedRecord(info);
      ctx.set('Upload-Offset', String(offset));
      ctx.set(...completeField(version, finished));
      if (typeof info.size === 'number' && version.uploadLength) ctx.set('Upload-Length', String(info.size));
      const limit = uploadLimitField(version, this.limitsOf(info.hfs, this.deps.now(), info.creation_date));
      if (limit !== undefined) ctx.set('Upload-Limit', limit);
      ctx.set('Cache-Control', 'no-store');
      ctx.status = 204;
    });
  }

  private async patch(ctx: Context, version: InteropVersion, id: string): Promise<void> {
    const offsetHeader = parseSfInteger(ctx.get('Upload-Offset'));
    if (offsetHeader === undefined || offsetHeader === null) throw new AppError('ERR_BAD_REQUEST', { message: 'An append needs Upload-Offset (a structured-field integer)' });
    if (!appendTypeOk(version, ctx.get('Content-Type') || undefined)) throw new AppError('ERR_UNSUPPORTED_MEDIA_TYPE');
    const completes = this.completes(ctx, version);
    const declared = version.uploadLength ? parseSfInteger(ctx.get('Upload-Length')) : undefined;
    if (declared === null) throw new AppError('ERR_BAD_REQUEST', { message: 'Upload-Length is not a structured-field integer' });
    const contentLength = contentLengthOf(ctx);
    await this.deps.intake.checkAppend(ctx.req, { uploadId: id, requestBytes: contentLength, declaredLength: declared });
    const release = await this.guard(ctx, undefined, contentLength);
    try {
      await this.locked(ctx, id, async (onTakeover) => {
        const { info, offset } = await this.stateOf(id);
        if (isFinishedRecord(info)) throw new AppError('ERR_UPLOAD_COMPLETED');
        if (offset !== offsetHeader) throw new AppError('ERR_UPLOAD_OFFSET_MISMATCH', { headers: { 'Upload-Offset': String(offset) } });
        let size = info.size;
        // The draft: a length that differs from the known one, or from where a completing request ends, is inconsistent.
        if (declared !== undefined && size !== undefined && declared !== size) throw new AppError('ERR_UPLOAD_LENGTH_INCONSISTENT');
        if (completes && contentLength !== undefined && (size ?? declared) !== undefined && offset + contentLength !== (size ?? declared)) throw new AppError('ERR_UPLOAD_LENGTH_INCONSISTENT');
        if (size === undefined && declared !== undefined) {
          await this.deps.tusStore.declareUploadLength(id, declared);
          size = declared;
        }
        const limits = this.limitsOf(info.hfs, this.deps.now(), info.creation_date);
        if (size !== undefined && size > limits.maxSizeBytes) throw this.tooLarge(version, limits);
        if (contentLength !== undefined && offset + contentLength > (size ?? limits.maxSizeBytes)) throw this.tooLarge(version, limits);
        allowBody(ctx.req, ctx.res);
        const result = await this.appendBody(ctx, id, offset, size, limits, onTakeover);
        await this.answer(ctx, version, id, result, completes, { status: 204 });
      });
    } finally {
      release();
      this.deps.intake.settleUpload(id);
    }
  }

  /** Cancels an unfinished upload: its bytes and record go, and its slot is free for a new upload. */
  private async remove(ctx: Context, _version: InteropVersion, id: string): Promise<void> {
    await this.locked(ctx, id, async () => {
      const { info } = await this.stateOf(id);
      if (isFinishedRecord(info)) throw new AppError('ERR_UPLOAD_COMPLETED');
      await this.deps.tusStore.remove(id);
      const slotPath = info.hfs?.slotPath;
      if (slotPath !== undefined && (await this.deps.tusStore.resumableOf(slotPath)) === id) await this.deps.tusStore.setResumableOf(slotPath, undefined);
      metrics.uploadsTerminated.inc();
      requestContext.get(ctx.req)?.log.info({ uploadId: id }, 'Resumable upload cancelled by the client');
      ctx.status = 204;
    });
  }

  private options(ctx: Context, version: InteropVersion): void {
    const { maxUploadBytes } = this.deps.config.server;
    const expirationMs = this.deps.config.tus.expirationMs;
    ctx.set('Allow', ALLOW);
    ctx.set('Accept-Patch', 'application/partial-upload');
    const limit = uploadLimitField(version, { maxSizeBytes: maxUploadBytes, maxAgeS: expirationMs > 0 ? expirationMs / 1000 : undefined });
    if (limit !== undefined) ctx.set('Upload-Limit', limit);
    ctx.status = 204;
  }

  /**
   * A repeated upgraded PUT for a slot whose resource is unfinished: the client is sent to that
   * resource instead of starting over. A body still streaming into it is ended first (newest
   * wins), then the 104 names the same Location and the connection is closed without a final
   * answer, which is what makes URLSession treat the request as interrupted and resume: HEAD on
   * the Location, then PATCH from the stored offset (docs/rufh.md). The unread body is drained.
   */
  private async resumeExisting(ctx: Context, version: InteropVersion, id: string): Promise<void> {
    metrics.rufhRequests.inc({ interop: String(version.interop), kind: 'resume_redirect' });
    await this.locked(ctx, id, async () => {});
    const info = await this.deps.tusStore.record(id);
    const location = uploadUrlOf(ctx, this.deps.config.server, id);
    const limits = this.limitsOf(info?.hfs, this.deps.now(), info?.creation_date);
    requestContext.get(ctx.req)?.log.info({ uploadId: id, interop: version.interop }, 'Upgraded PUT sent to resume the unfinished upload of its slot');
    ctx.respond = false;
    const socket = ctx.req.socket;
    writeInterim(ctx.res, interimHead(version, location, limits));
    socket.end();
    ctx.req.resume();
    setTimeout(() => socket.destroy(), 10_000).unref();
  }

  /**
   * The slot's unfinished resource, for a repeated PUT that cannot be sent to it: no 104 may
   * reach that client (it never learned the resource), or a proxy is in between (Caddy and
   * HAProxy answer 502 for a connection closed after the 104). It starts over; the old bytes go
   * (a body still streaming into them is ended first), and the slot takes the new upload.
   */
  private async discardUnreachable(ctx: Context, id: string, slotPath: string, interim: InterimVerdict): Promise<void> {
    const log = requestContext.get(ctx.req)?.log;
    await this.locked(ctx, id, async () => {
      // Gone meanwhile (expired, cancelled) or not removable: the new upload goes on; the expiry sweep takes what is left.
      await this.deps.tusStore.remove(id).catch((err: unknown) => log?.warn({ err, uploadId: id }, 'Unfinished upload of the slot could not be removed'));
      if ((await this.deps.tusStore.resumableOf(slotPath)) === id) await this.deps.tusStore.setResumableOf(slotPath, undefined);
    });
    const reason = interim.send ? 'proxy' : interim.reason;
    log?.info({ uploadId: id, reason }, 'Unfinished upload of the slot replaced: its client cannot be sent to resume it');
  }

  /** The upload resource created by the slot's upgraded PUT, when it is still unfinished. */
  private async unfinishedOf(slotPath: string): Promise<string | undefined> {
    const id = await this.deps.tusStore.resumableOf(slotPath);
    if (id === undefined) return undefined;
    const info = await this.deps.tusStore.record(id);
    if (info && !isFinishedRecord(info) && !this.expired(info)) return id;
    await this.deps.tusStore.setResumableOf(slotPath, undefined);
    return undefined;
  }

  /** Holds the upload's lock (the tus locker, so a tus request or another RUFH request asks us to let go) around `fn`. */
  private async locked(ctx: Context, id: string, fn: (onTakeover: (end: () => void) => void) => Promise<void>): Promise<void> {
    const lock = this.deps.locker.newLock(id);
    const gone = new AbortController();
    const onClose = () => gone.abort();
    ctx.req.once('close', onClose);
    let takeover: (() => void) | undefined;
    let asked = false;
    try {
      await lock.lock(gone.signal, async () => {
        asked = true;
        takeover?.();
      });
    } finally {
      ctx.req.off('close', onClose);
    }
    try {
      await fn((end) => {
        takeover = end;
        if (asked) end();
      });
    } finally {
      await lock.unlock();
    }
  }

  /**
   * Streams the request body into the resource from `offset`. The body ends gracefully when the
   * client goes away or a newer request takes the upload over, so every byte that reached the
   * store counts; the new offset is read from the store afterwards.
   */
  private async appendBody(ctx: Context, id: string, offset: number, size: number | undefined, limits: UploadLimits, onTakeover: (end: () => void) => void): Promise<{ offset: number; end: AppendEnd }> {
    const req: IncomingMessage = ctx.req;
    const limit = new ByteLimit((size ?? limits.maxSizeBytes) - offset);
    let end: AppendEnd = 'body';
    const stop = (why: AppendEnd) => {
      if (end !== 'body' || req.complete) return;
      end = why;
      req.unpipe(limit);
      limit.end();
    };
    const onClose = () => stop('cut');
    req.once('close', onClose);
    onTakeover(() => {
      stop('takeover');
      req.socket.destroy(); // a silent earlier body: its client is gone or will resume
    });
    req.pipe(limit);
    try {
      await this.deps.tusStore.write(limit, id, offset);
    } catch (err) {
      if (limit.bytes > (size ?? limits.maxSizeBytes) - offset) throw new AppError('ERR_TOO_LARGE', { headers: limitHeaders(limits) });
      // A full store: 507 (never 500), the bytes that reached it kept.
      if (end === 'body' && !req.destroyed) throw (await this.deps.intake.storageFull(err, { protocol: 'tus', uploadId: id, log: requestContext.get(req)?.log })) ?? err;
    } finally {
      req.off('close', onClose);
    }
    const { offset: now } = await this.stateOf(id);
    if (end === 'body' && !req.complete) end = 'cut';
    if (end !== 'body') requestContext.get(req)?.log.info({ uploadId: id, offset: now, reason: end }, 'Resumable upload body ended early; received bytes kept');
    return { offset: now, end };
  }

  /** The final answer of a request that carried a body (nothing to answer when the client is gone). */
  private async answer(ctx: Context, version: InteropVersion, id: string, result: { offset: number; end: AppendEnd }, completes: boolean, how: { status: number; location?: string }): Promise<void> {
    if (result.end !== 'body') {
      ctx.respond = false;
      if (!ctx.res.headersSent) ctx.res.destroy();
      return;
    }
    let complete = false;
    if (completes) {
      let size = await this.deps.tusStore.declaredSize(id);
      if (size === undefined) {
        await this.deps.tusStore.declareUploadLength(id, result.offset);
        size = result.offset;
      }
      if (size !== result.offset) throw new AppError('ERR_UPLOAD_LENGTH_INCONSISTENT');
      const slotPath = (await this.deps.tusStore.record(id))?.hfs?.slotPath;
      try {
        await this.#completion.complete(id, size);
      } finally {
        if (slotPath !== undefined && (await this.deps.tusStore.resumableOf(slotPath)) === id) await this.deps.tusStore.setResumableOf(slotPath, undefined);
      }
      metrics.rufhRequests.inc({ interop: String(version.interop), kind: 'completed' });
      complete = true;
    }
    // The request that completes the upload gets the original request's answer: 201, as a slot PUT.
    ctx.status = complete ? 201 : how.status;
    if (how.location !== undefined) ctx.set('Location', how.location);
    ctx.set('Upload-Offset', String(result.offset));
    ctx.set(...completeField(version, complete));
    ctx.body = ctx.status === 204 ? null : '';
  }

  private completes(ctx: Context, version: InteropVersion): boolean {
    const flag = requestCompletes(version, header(ctx));
    if (flag === null) throw new AppError('ERR_BAD_REQUEST', { message: `${version.completeHeader} is not a structured-field boolean` });
    // Absent: the draft's default for a request that is the whole upload.
    return flag ?? true;
  }

  /** Admission, watchdog and byte accounting of intake; a cut body keeps its bytes here (the append ends gracefully). */
  private guard(ctx: Context, fileBytes: number | undefined, requestBytes = contentLengthOf(ctx)): Promise<() => void> {
    const requestId = requestContext.get(ctx.req)?.requestId ?? ctx.path;
    return this.deps.intake.guardBody(ctx.req, {
      protocol: 'rufh',
      fileBytes,
      requestBytes: requestBytes ?? fileBytes ?? this.deps.intake.maxUploadBytes,
      // Takeovers of a resource are this door's own (its locker's onTakeover): a key per request
      // keeps the slot rule of tus and PUT out of its way.
      slotKey: `rufh:${requestId}`,
      uploadId: ctx.path,
      ender: (req) => req.destroy(),
      log: requestContext.get(ctx.req)?.log,
    });
  }

  private async stateOf(id: string): Promise<{ info: StoredUpload; offset: number }> {
    const info = await this.deps.tusStore.record(id);
    if (!info || !info.hfs || this.expired(info)) throw new AppError('ERR_NOT_FOUND');
    if (isFinishedRecord(info)) return { info, offset: info.size };
    const upload = await this.deps.tusStore.getUpload(id).catch(() => {
      throw new AppError('ERR_NOT_FOUND');
    });
    return { info, offset: upload.offset };
  }

  private expired(info: StoredUpload): boolean {
    const ms = this.deps.config.tus.expirationMs;
    return ms > 0 && !isFinishedRecord(info) && info.creation_date !== undefined && this.deps.now() > Date.parse(info.creation_date) + ms;
  }

  /** max-size: the signed size, else the server's cap; max-age: until the unfinished upload expires. */
  private limitsOf(state: UploadServerState | undefined, now: number, createdAt?: string): UploadLimits {
    const ms = this.deps.config.tus.expirationMs;
    const created = createdAt !== undefined ? Date.parse(createdAt) : now;
    return {
      maxSizeBytes: Math.min(state?.signedSize ?? Infinity, this.deps.intake.maxUploadBytes),
      maxAgeS: ms > 0 ? (created + ms - now) / 1000 : undefined,
    };
  }

  private tooLarge(version: InteropVersion, limits: UploadLimits): AppError {
    return new AppError('ERR_TOO_LARGE', { headers: limitHeaders(limits, version) });
  }
}

function limitHeaders(limits: UploadLimits, version?: InteropVersion): Record<string, string> {
  const limit = uploadLimitField(version, limits);
  return limit === undefined ? {} : { 'Upload-Limit': limit };
}

function contentLengthOf(ctx: Context): number | undefined {
  const v = ctx.get('Content-Length');
  return /^\d{1,16}$/.test(v) ? Number(v) : undefined;
}

function kindOf(method: string): string {
  return { POST: 'create', HEAD: 'head', PATCH: 'append', DELETE: 'delete', OPTIONS: 'options' }[method] ?? 'other';
}
