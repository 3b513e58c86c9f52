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
 * differs between interop versions is looked up in rufh-versions.ts. This file is the door (routes
 * and answers); a resource's state and limits are read in rufh-resources.ts, and a body is moved
 * into it under the upload's lock in rufh-append.ts.
 */
import type { Context } from 'koa';
import { Upload, type Locker } from '@tus/utils';
import { newUploadId, type AuthorizedSlot } from '../auth/index.js';
import type { Config } from '../config/index.js';
import { AppError } from '../errors.js';
import type { Intake } from '../intake/index.js';
import { metrics } from '../observability/index.js';
import { jobIdOf } from '../finalize/index.js';
import { isFinishedRecord, type QuarantineStore, type TusDoorStore, type TusRequestScope, type UploadServerState } from '../storage/index.js';
import { allowBody, requestContext } from './request-context.js';
import { contentLengthOf, RufhAppend, tooLarge, type AppendEnd } from './rufh-append.js';
import { answerProblem, readBodyPrefix, writeInterim } from './rufh-http.js';
import { InterimDecider, interimRequestOf, type InterimVerdict } from './rufh-interim.js';
import { RufhResources } from './rufh-resources.js';
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
import type { Creation, SlotIndex } from './tus-endpoint.js';
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
  /** One unfinished upload per slot (issue 9.2), the tus door's index: a resource is a tus upload. */
  readonly slots: SlotIndex;
  /** Throws 409 when the slot's upload is being sent as tus partials (they are its one upload). */
  readonly refuseBesideParts: (slotPath: string) => Promise<void>;
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

const ALLOW = 'POST, HEAD, PATCH, DELETE, OPTIONS';
/** How much of a repeated upgraded PUT's body is compared with the stored bytes before it is sent to resume them. */
const SAME_FILE_PREFIX = 64 * 1024;
const header = (ctx: Context) => (name: string) => ctx.get(name) || undefined;

export class RufhUploads {
  readonly #completion: UploadCompletion;
  readonly #interim: InterimDecider;
  readonly #resources: RufhResources;
  readonly #append: RufhAppend;

  constructor(private readonly deps: RufhDeps) {
    this.#completion = new UploadCompletion({ tusStore: deps.tusStore, intake: deps.intake, skipIntakeChecksum: deps.config.testing.skipIntakeChecksum });
    this.#resources = new RufhResources({ tusStore: deps.tusStore, intake: deps.intake, expirationMs: deps.config.tus.expirationMs, now: deps.now });
    this.#append = new RufhAppend({ locker: deps.locker, tusStore: deps.tusStore, intake: deps.intake, resources: this.#resources });
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
    const completes = this.completes(ctx, version);
    // A request that is the whole upload declares its length twice: they must agree (the draft's inconsistent length).
    if (declared !== undefined && completes && contentLength !== undefined && declared !== contentLength) throw new AppError('ERR_UPLOAD_LENGTH_INCONSISTENT');
    if (declared !== undefined) return declared;
    return completes ? contentLength : undefined;
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
      if (!(err instanceof AppError && answerProblem(ctx, err, requestContext.get(ctx.req)?.requestId, version))) throw err;
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
    const existing = await this.#resources.unfinishedOf(put.path);
    if (existing !== undefined && interim.send && interim.via === 'direct' && (await this.sameFile(ctx, existing, put))) return this.resumeExisting(ctx, version, existing);
    await this.deps.refuseBesideParts(put.path);
    if (existing !== undefined) await this.discardUnresumable(ctx, existing, put.path, interim.send && interim.via === 'direct' ? 'other-file' : interim.send ? 'proxy' : interim.reason);
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
      if (!(err instanceof AppError && answerProblem(ctx, err, requestContext.get(ctx.req)?.requestId, version))) throw err;
    }
  }

  /** Careful creation (POST to the tus endpoint): authorized like a tus creation; data during creation allowed. */
  private async create(ctx: Context, version: InteropVersion): Promise<void> {
    this.requireCompleteField(ctx, version, 'A creation');
    const creation = await this.deps.authorizeCreation(ctx);
    if (creation.concat !== undefined) throw new AppError('ERR_BAD_REQUEST', { message: 'Upload-Concat is tus 1.0 only' });
    // One unfinished upload per slot (issue 9.2): a slot with an unfinished tus upload takes no
    // second one. The 409 names it (Location), so a client whose 201 was lost can resume or cancel it.
    if (creation.existing) throw this.uploadExists(ctx, creation.existing.id);
    const size = this.fileSizeOf(ctx, version, contentLengthOf(ctx)) ?? creation.slot.signedSize;
    const record: UploadServerState = { ...creation.record, rufh: { interop: version.interop, via: 'post' } };
    // Two creations of one slot at once (here, or at two instances): the one that lost the claim is a second creation.
    const claim = await this.deps.slots.claimCreation(creation.slot.path);
    if ('existing' in claim) throw this.uploadExists(ctx, claim.existing.id);
    try {
      await this.deps.refuseBesideParts(creation.slot.path);
      await this.createAndAppend(ctx, version, record, size, creation.metadata ?? undefined);
    } finally {
      claim.settle();
    }
  }

  private uploadExists(ctx: Context, id: string): AppError {
    const location = uploadUrlOf(ctx, this.deps.config.server, id);
    return new AppError('ERR_UPLOAD_EXISTS', { message: `This slot already has an unfinished upload: ${location}`, headers: { Location: location } });
  }

  /** `interim`: for an upgraded PUT, whether its 104 may be sent; careful creation sends none. */
  private async createAndAppend(ctx: Context, version: InteropVersion, record: UploadServerState, size: number | undefined, metadata: Record<string, string | null> | undefined, interim?: InterimVerdict): Promise<void> {
    const completes = this.completes(ctx, version);
    const { tusStore } = this.deps;
    const limits = this.#resources.limitsOf(record);
    if (size !== undefined && size > limits.maxSizeBytes) throw tooLarge(limits, version);
    const release = await this.#append.guard(ctx, size);
    const id = newUploadId();
    try {
      const upload = new Upload({ id, offset: 0, ...(size !== undefined && { size }), ...(metadata && { metadata }), creation_date: new Date(this.deps.now()).toISOString() });
      await this.deps.scope.run({ newRecord: record }, () => tusStore.create(upload));
      this.deps.intake.uploadCreated(ctx.req, id, size ?? null); // the gate's space stays promised to it
      this.deps.slots.created({ id, slotPath: record.slotPath, size: size ?? null, offset: 0, partial: false });
      if (record.rufh?.via === 'put') await this.#resources.link(record.slotPath, id);
      metrics.uploadsCreated.inc({ protocol: 'rufh' });
      const location = uploadUrlOf(ctx, this.deps.config.server, id);
      const log = requestContext.get(ctx.req)?.log;
      log?.info({ uploadId: id, interop: version.interop, via: record.rufh?.via }, 'Resumable upload resource created');
      await this.#append.locked(ctx, id, async (onTakeover) => {
        allowBody(ctx.req, ctx.res);
        if (interim?.send === false) {
          metrics.rufhRequests.inc({ interop: String(version.interop), kind: 'interim_withheld' });
          log?.info({ uploadId: id, interop: version.interop, reason: interim.reason }, 'Upload resumption not offered (no 104 to this client)');
        } else if (interim?.send && writeInterim(ctx.res, interimHead(version, location, limits))) {
          log?.info({ uploadId: id, interop: version.interop, via: interim.via }, 'Upload resumption offered (104)');
        }
        const result = await this.#append.appendBody(ctx, id, 0, size, limits, onTakeover);
        await this.answer(ctx, version, id, result, completes, { status: 201, location, limits });
      });
    } finally {
      release();
      this.deps.slots.refreshHeld(id); // the bytes it holds now, or gone from the index once complete
    }
  }

  private async head(ctx: Context, version: InteropVersion, id: string): Promise<void> {
    // Taking the lock asks a body still streaming (a silent earlier request) to end: newest wins.
    await this.#append.locked(ctx, id, async () => {
      const { info, offset } = await this.#resources.stateOf(id);
      const finished = isFinishedRecord(info);
      ctx.set('Upload-Offset', String(offset));
      ctx.set(...completeField(version, finished));
      if (typeof info.size === 'number' && version.uploadLength) ctx.set('Upload-Length', String(info.size));
      const limit = uploadLimitField(version, this.#resources.limitsOf(info.hfs, info.creation_date));
      if (limit !== undefined) ctx.set('Upload-Limit', limit);
      ctx.set('Cache-Control', 'no-store');
      ctx.status = 204;
    });
  }

  private async patch(ctx: Context, version: InteropVersion, id: string): Promise<void> {
    const offsetHeader = parseSfInteger(ctx.get('Upload-Offset'));
    if (offsetHeader === undefined || offsetHeader === null) throw new AppError('ERR_BAD_REQUEST', { message: 'An append needs Upload-Offset (a structured-field integer)' });
    if (!appendTypeOk(version, ctx.get('Content-Type') || undefined)) throw new AppError('ERR_UNSUPPORTED_MEDIA_TYPE');
    this.requireCompleteField(ctx, version, 'An append');
    const completes = this.completes(ctx, version);
    const declared = version.uploadLength ? parseSfInteger(ctx.get('Upload-Length')) : undefined;
    if (declared === null) throw new AppError('ERR_BAD_REQUEST', { message: 'Upload-Length is not a structured-field integer' });
    const contentLength = contentLengthOf(ctx);
    // A length past max_upload_size: 413 before any room is counted (past the free space too, it
    // would otherwise be a retryable 507). The upload's own signed size is checked under its lock.
    if (declared !== undefined && declared > this.deps.intake.maxUploadBytes) throw tooLarge(this.#resources.limitsOf(undefined), version);
    await this.deps.intake.checkAppend(ctx.req, { uploadId: id, requestBytes: contentLength, declaredLength: declared });
    const release = await this.#append.guard(ctx, undefined, contentLength);
    try {
      await this.#append.locked(ctx, id, async (onTakeover) => {
        const { info, offset } = await this.#resources.stateOf(id);
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
        const limits = this.#resources.limitsOf(info.hfs, info.creation_date);
        if (size !== undefined && size > limits.maxSizeBytes) throw tooLarge(limits, version);
        if (contentLength !== undefined && offset + contentLength > (size ?? limits.maxSizeBytes)) throw tooLarge(limits, version);
        allowBody(ctx.req, ctx.res);
        const result = await this.#append.appendBody(ctx, id, offset, size, limits, onTakeover);
        await this.answer(ctx, version, id, result, completes, { status: 204 });
      });
    } finally {
      release();
      this.deps.intake.settleUpload(id);
      this.deps.slots.refreshHeld(id);
    }
  }

  /** Cancels an unfinished upload: its bytes and record go, and its slot is free for a new upload. */
  private async remove(ctx: Context, _version: InteropVersion, id: string): Promise<void> {
    await this.#append.locked(ctx, id, async () => {
      const { info } = await this.#resources.stateOf(id);
      if (isFinishedRecord(info)) throw new AppError('ERR_UPLOAD_COMPLETED');
      await this.deps.tusStore.remove(id);
      const slotPath = info.hfs?.slotPath;
      if (slotPath !== undefined) await this.#resources.unlink(slotPath, id);
      metrics.uploadsTerminated.inc();
      this.deps.slots.refreshHeld(id); // the slot takes a new upload
      requestContext.get(ctx.req)?.log.info({ uploadId: id }, 'Resumable upload cancelled by the client');
      ctx.status = 204;
    });
  }

  private options(ctx: Context, version: InteropVersion): void {
    ctx.set('Allow', ALLOW);
    ctx.set('Accept-Patch', 'application/partial-upload');
    this.announceLimits(ctx, version);
    ctx.status = 204;
  }

  /** The server's limits for a new upload (`Upload-Limit`), for OPTIONS on the tus endpoint and on a slot URL (an upgraded PUT's target). */
  announceLimits(ctx: Context, version: InteropVersion): void {
    const { maxUploadBytes } = this.deps.config.server;
    const expirationMs = this.deps.config.tus.expirationMs;
    const limit = uploadLimitField(version, { maxSizeBytes: maxUploadBytes, maxAgeS: expirationMs > 0 ? expirationMs / 1000 : undefined });
    if (limit !== undefined) ctx.set('Upload-Limit', limit);
  }

  /**
   * Whether a repeated upgraded PUT carries the file its slot's unfinished resource holds the
   * start of, so that sending the client there to resume (resumeExisting) cannot splice two
   * files (a phone app that re-encodes a photo between attempts). The declared lengths must
   * agree, and the first bytes of the new body (up to SAME_FILE_PREFIX of what is stored) must
   * equal the stored ones; a store that cannot read them back (S3) counts as another file. A body
   * still streaming into the resource is ended first (newest wins). Bytes read from the request
   * are put back for the new upload when it is another file.
   */
  private async sameFile(ctx: Context, id: string, put: UpgradedPut): Promise<boolean> {
    let stored: Buffer | null = null;
    let sizeAgrees = true;
    await this.#append.locked(ctx, id, async () => {
      const { info, offset } = await this.#resources.stateOf(id).catch(() => ({ info: null, offset: 0 }));
      if (info === null) return;
      sizeAgrees = typeof info.size !== 'number' || put.fileBytes === undefined || info.size === put.fileBytes;
      if (sizeAgrees) stored = await this.deps.tusStore.storedPrefix(id, Math.min(offset, SAME_FILE_PREFIX));
    });
    if (!sizeAgrees || stored === null) return false;
    const expected: Buffer = stored;
    if (expected.length === 0) return true;
    allowBody(ctx.req, ctx.res);
    const received = await readBodyPrefix(ctx.req, expected.length, this.deps.config.server.uploadStallMs);
    if (received.length === expected.length && received.equals(expected)) return true;
    if (received.length > 0) ctx.req.unshift(received);
    return false;
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
    await this.#append.locked(ctx, id, async () => {});
    const info = await this.deps.tusStore.record(id);
    const location = uploadUrlOf(ctx, this.deps.config.server, id);
    const limits = this.#resources.limitsOf(info?.hfs, info?.creation_date);
    requestContext.get(ctx.req)?.log.info({ uploadId: id, interop: version.interop }, 'Upgraded PUT sent to resume the unfinished upload of its slot');
    ctx.respond = false;
    const socket = ctx.req.socket;
    writeInterim(ctx.res, interimHead(version, location, limits));
    socket.end();
    ctx.req.resume();
    setTimeout(() => socket.destroy(), 10_000).unref();
  }

  /**
   * The slot's unfinished resource, for a repeated PUT that is not sent to it: it carries another
   * file (sameFile), no 104 may reach that client (it never learned the resource), or a proxy is
   * in between (Caddy and HAProxy answer 502 for a connection closed after the 104). It starts
   * over; the old bytes go (a body still streaming into them is ended first), and the slot takes
   * the new upload.
   */
  private async discardUnresumable(ctx: Context, id: string, slotPath: string, reason: string): Promise<void> {
    const log = requestContext.get(ctx.req)?.log;
    await this.#append.locked(ctx, id, async () => {
      // Gone meanwhile (expired, cancelled) or not removable: the new upload goes on; the expiry sweep takes what is left.
      await this.deps.tusStore.remove(id).catch((err: unknown) => log?.warn({ err, uploadId: id }, 'Unfinished upload of the slot could not be removed'));
      await this.#resources.unlink(slotPath, id);
    });
    this.deps.slots.refreshHeld(id);
    log?.info({ uploadId: id, reason }, reason === 'other-file' ? 'Unfinished upload of the slot replaced: the repeated PUT carries another file' : 'Unfinished upload of the slot replaced: its client cannot be sent to resume it');
  }

  /** The final answer of a request that carried a body (nothing to answer when the client is gone). */
  private async answer(ctx: Context, version: InteropVersion, id: string, result: { offset: number; end: AppendEnd }, completes: boolean, how: { status: number; location?: string; limits?: UploadLimits }): Promise<void> {
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
        if (slotPath !== undefined) await this.#resources.unlink(slotPath, id);
      }
      metrics.rufhRequests.inc({ interop: String(version.interop), kind: 'completed' });
      complete = true;
    }
    // The request that completes the upload gets the original request's answer: 201, as a slot PUT.
    ctx.status = complete ? 201 : how.status;
    if (how.location !== undefined) ctx.set('Location', how.location);
    ctx.set('Upload-Offset', String(result.offset));
    ctx.set(...completeField(version, complete));
    // The draft (-09 on): a creation left incomplete names the resource and its limits.
    const limit = !complete && how.limits !== undefined ? uploadLimitField(version, how.limits) : undefined;
    if (limit !== undefined) ctx.set('Upload-Limit', limit);
    ctx.body = ctx.status === 204 ? null : '';
  }

  /**
   * Upload-Complete says whether a creation or append ends the upload; guessing "yes" would turn
   * a short body into an inconsistent length after its bytes were stored, and a creation refused
   * that way would still hold its slot. Interop 3's Upload-Incomplete is absent when complete.
   */
  private requireCompleteField(ctx: Context, version: InteropVersion, what: string): void {
    if (!version.completeInverted && requestCompletes(version, header(ctx)) === undefined) {
      throw new AppError('ERR_BAD_REQUEST', { message: `${what} needs ${version.completeHeader}` });
    }
  }

  private completes(ctx: Context, version: InteropVersion): boolean {
    const flag = requestCompletes(version, header(ctx));
    if (flag === null) throw new AppError('ERR_BAD_REQUEST', { message: `${version.completeHeader} is not a structured-field boolean` });
    // Absent: the draft's default for a request that is the whole upload.
    return flag ?? true;
  }

}

function kindOf(method: string): string {
  return { POST: 'create', HEAD: 'head', PATCH: 'append', DELETE: 'delete', OPTIONS: 'options' }[method] ?? 'other';
}
