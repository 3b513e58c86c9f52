/**
 * tus 1.0 through @tus/server. A creation must carry a signed slot (the same URL an XMPP server
 * hands out for a PUT), given as the `Upload-Slot` header or the `slot` query parameter of the
 * creation URL. The slot is checked here before @tus/server sees the request; its path and
 * type go into the upload's record (never into the client's metadata, which HEAD returns exactly
 * as sent) so the upload can be published at the slot's GET URL when its last byte arrives.
 * Served here rather than by @tus/server: GET and DELETE of finished uploads (tus-finished.ts),
 * concatenation (tus-concat.ts); the checksum extension is parsed here and verified by the store.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from 'koa';
import { EVENTS, type Server } from '@tus/server';
import { Metadata, type Upload } from '@tus/utils';
import type { Config } from '../config/index.js';
import { decodeSlotPath, newUploadId, type AuthorizedSlot } from '../auth/index.js';
import { AppError, toClientError } from '../errors.js';
import { expectedSha256FromMetadata, jobIdOf, type IntakeControl } from '../finalize/index.js';
import { socketIdleMsOf, tusBodyEnder, type Intake } from '../intake/index.js';
import { metrics } from '../observability/index.js';
import { TusFileStore, isFinishedRecord, serverStateOf, storageUnavailableError, type DeletablePublishedStore, type PublishedStore, type QuarantineStore, type TakeoverLock, type TakeoverLocker, type TusDoorStore, type TusRequestScope, type TusWriteScope, type UnfinishedUpload, type UnfinishedUploads, type UploadServerState, type StoredUpload } from '../storage/index.js';
import { corsOriginFor } from './cors.js';
import { answerHeadersAtWriteHead, storageFullAnswer, wholeHeader } from './tus-answer-headers.js';
import { answerCors, answerOptions, dropHeader, TUS_EXPOSED_EXTRA, uploadUrlOf } from './tus-http.js';
import { errorBody } from './errors.js';
import { allowBody, requestContext, type RequestContext } from './request-context.js';
import { CHECKSUM_ALGORITHM_HEADER, CHECKSUM_ALGORITHMS_VALUE, parseUploadChecksum } from './tus-checksum.js';
import { UploadCompletion } from './tus-completion.js';
import { SLOT_LENGTH_HEADER, TusConcatenation, parseUploadConcat, type UploadConcat } from './tus-concat.js';
import { FinishedUploads } from './tus-finished.js';
import { TusSlotUploads } from './tus-slot-uploads.js';
import type { PendingPublications } from './downloads.js';
import { adaptTusRequest } from './tus-request-fixes.js';
import { JsonErrorTusServer, TUS_CODES } from './tus-json-errors.js';
import { byteCountOf, checkTusRequest, tusTargetOf, type TusTarget } from './tus-request.js';
import { requestOrigin } from './request-origin.js';

export const SLOT_HEADER = 'Upload-Slot';

export interface TusDeps {
  config: Config;
  intake: Intake;
  locker: TakeoverLocker;
  /** The file store, or S3 (no concatenation there: Upload-Concat is refused, the extension not announced). */
  tusStore: TusDoorStore;
  /** One unfinished upload per slot, and the bytes they hold (issue 9.2). */
  unfinished: UnfinishedUploads;
  /** Published files: GET and DELETE of finished uploads. */
  published: PublishedStore | (PublishedStore & DeletablePublishedStore);
  /** Downloads of files still being finalized wait for them. */
  pending: PendingPublications;
  /** Finalization's intake side: a partial's creation checks that no job holds its slot; a repeated final finds its job's upload. */
  control: Pick<IntakeControl, 'slotTaken' | 'slotUpload'>;
  now: () => number;
  /** The scope the store reads per request (TusFileStore options.scope). */
  scope: TusRequestScope;
  /** The content store, to free a deleted file's content; null when dedup is off. */
  cas: { release(sha256: string): Promise<boolean> } | null;
  /** An upload in quarantine answers 451 on its upload URL (docs/scanning.md). */
  quarantine?: Pick<QuarantineStore, 'get'>;
}

/** What another door needs of the slot index: claim a slot for a creation, register the upload, refresh what it holds. */
export type SlotIndex = Pick<TusSlotUploads, 'claimCreation' | 'created' | 'refreshHeld'>;

/** A creation's authorization: the slot and the record the new upload gets, or the slot's existing unfinished upload. */
export interface Creation {
  slot: AuthorizedSlot;
  record: UploadServerState;
  concat: UploadConcat | undefined;
  metadata: Record<string, string | null> | undefined;
  existing?: UnfinishedUpload;
}

type NodeBacked = { node?: { req: IncomingMessage; res: ServerResponse } };
const nodeReq = (req: unknown): IncomingMessage | undefined => (req as NodeBacked).node?.req;
const nodeRes = (req: unknown): ServerResponse | undefined => (req as NodeBacked).node?.res;

export class TusEndpoint {
  readonly server: Server;
  private readonly creations = new WeakMap<IncomingMessage, Creation>();
  /** Ids chosen before @tus/server creates the upload (a partial is indexed under its slot first). */
  private readonly presetIds = new WeakMap<IncomingMessage, string>();
  private readonly completion: UploadCompletion;
  /** null when the store cannot join uploads (S3). */
  private readonly concatenation: TusConcatenation | null;
  private readonly finished: FinishedUploads;
  /** One unfinished upload per slot, and the locker view for takeovers (tus-slot-uploads.ts). */
  private readonly slotUploads: TusSlotUploads;
  /** The upload a POST created; the headers an error answer must carry (tus-answer-headers.ts). */
  private readonly created = new WeakMap<IncomingMessage, string>();
  private readonly errorHeaders = new WeakMap<ServerResponse, Record<string, string>>();
  /** Completions in progress, by upload id (onFinish). */
  private readonly completing = new Map<string, Promise<void>>();

  constructor(private readonly deps: TusDeps) {
    const { config } = deps;
    this.slotUploads = new TusSlotUploads(deps);
    this.completion = new UploadCompletion({ tusStore: deps.tusStore, intake: deps.intake, skipIntakeChecksum: config.testing.skipIntakeChecksum });
    this.concatenation = !(deps.tusStore instanceof TusFileStore) ? null : new TusConcatenation({
      store: deps.tusStore,
      locker: deps.locker,
      maxParts: config.tus.maxConcatParts,
      maxUploadBytes: config.server.maxUploadBytes,
      now: deps.now,
    });
    this.finished = new FinishedUploads({
      tusStore: deps.tusStore,
      published: deps.published,
      pending: deps.pending,
      locker: deps.locker,
      allowDelete: config.tus.allowDeleteFinished,
      cas: deps.cas,
      lockTimeoutMs: config.tus.lockDrainMs * 2 + 2_000,
      now: deps.now,
    });
    const publicUrl = config.server.publicUrl;
    const server = new JsonErrorTusServer({
      path: config.server.tusPath.replace(/\/$/, ''),
      datastore: deps.tusStore.datastore,
      maxSize: config.server.maxUploadBytes,
      respectForwardedHeaders: config.server.trustProxy,
      // One reading of the request's origin for every Location (ours and @tus/server's): our own
      // TLS listener is https (@tus/server knows only forwarded headers), and of a forwarded list
      // the first element counts (@tus/server would take the whole list as the host).
      generateUrl: (req, { path, id }) =>
        `${publicUrl || requestOrigin((name) => req.headers.get(name) ?? undefined, config.server.tls ? 'https' : 'http', config.server.trustProxy)}${path}/${id}`,
      namingFunction: (req) => this.presetIds.get(nodeReq(req)!) ?? newUploadId(),
      locker: (req) => this.slotUploads.lockerFor(nodeReq(req)),
      lockDrainTimeout: config.tus.lockDrainMs,
      disableTerminationForFinishedUploads: true,
      allowedOrigins: (origin) => corsOriginFor(origin, config.cors) !== null,
      allowedCredentials: config.cors.allowCredentials,
      // Preflights of both doors arrive here (a preflight carries no Upload-Draft-Interop-Version): the RUFH headers too.
      // X-Request-ID: tus-js-client sends it with addRequestId (tusd allows it too).
      allowedHeaders: [SLOT_HEADER, SLOT_LENGTH_HEADER, 'Upload-Checksum', 'Upload-Complete', 'Upload-Incomplete', 'Upload-Draft-Interop-Version', 'X-Request-ID'],
      exposedHeaders: TUS_EXPOSED_EXTRA,
      onUploadCreate: async (req, upload) => this.onCreate(req, upload),
      onUploadFinish: async (req, upload) => this.onFinish(req, upload),
      onResponseError: (req, err) => this.mapError(req, err),
    });
    server.currentRequest = () => this.deps.scope.current()?.request as RequestContext | undefined;
    this.server = server;
    // A parallel upload counts once, as its final upload (createFinal), not once per partial.
    this.server.on(EVENTS.POST_CREATE, (req: unknown, upload: Upload) => {
      const node = nodeReq(req);
      const creation = node && this.creations.get(node);
      if (creation?.concat?.kind !== 'partial') metrics.uploadsCreated.inc({ protocol: 'tus' });
      if (creation) deps.unfinished.add({ id: upload.id, slotPath: creation.record.slotPath, size: upload.size ?? null, offset: upload.offset, partial: creation.concat?.kind === 'partial' });
      if (!node) return;
      this.created.set(node, upload.id);
      deps.intake.uploadCreated(node, upload.id, upload.size ?? null); // its declared bytes stay promised
    });
    this.server.on(EVENTS.POST_TERMINATE, (_req: unknown, _res: unknown, id: string) => this.terminated(id));
  }

  /** An upload was terminated (a client's DELETE, or an admin's `uploads expire`): it holds no room under the caps any more. */
  terminated(id: string): void {
    metrics.uploadsTerminated.inc();
    this.deps.unfinished.remove(id);
  }

  /** koa handler for everything under the tus path. */
  async handle(ctx: Context): Promise<void> {
    try {
      await this.handleRequest(ctx);
    } catch (err) {
      // Refused before @tus/server saw the request, so without its CORS headers: a browser would
      // see a network error (which tus-js-client retries) instead of the 4xx.
      answerCors(ctx, this.deps.config.cors);
      if (ctx.method !== 'GET') ctx.set('Tus-Resumable', '1.0.0');
      throw err;
    }
  }

  private async handleRequest(ctx: Context): Promise<void> {
    adaptTusRequest(ctx.req, this.deps.config.server.trustProxy); // before anything reads the method or headers
    // A malformed upload URL, an unknown method or a missing Tus-Resumable: refused here as JSON (issue 10.6).
    const target = tusTargetOf(ctx.path, this.deps.config.server.tusPath.replace(/\/$/, ''));
    checkTusRequest(ctx.method, (name) => ctx.get(name), target);
    // A deferred length declared past max_upload_size: 413 before any room is counted (a length
    // past the free space too would otherwise be a retryable 507).
    if (ctx.method === 'PATCH' && (byteCountOf(ctx.get('Upload-Length')) ?? 0) > this.deps.config.server.maxUploadBytes) throw new AppError('ERR_TOO_LARGE');
    const id = this.uploadIdOf(ctx);
    if (id !== undefined && ctx.method !== 'OPTIONS' && (await this.deps.quarantine?.get(jobIdOf({ protocol: 'tus', uploadId: id })))) {
      answerCors(ctx, this.deps.config.cors);
      throw new AppError('ERR_QUARANTINED');
    }
    if (ctx.method === 'GET') {
      answerCors(ctx, this.deps.config.cors);
      if (id === undefined) throw new AppError('ERR_NOT_FOUND');
      return this.finished.serve(ctx, id);
    }
    if (ctx.method === 'DELETE' && id !== undefined && (await this.finished.delete(ctx, id))) return answerCors(ctx, this.deps.config.cors);
    if (ctx.method === 'OPTIONS') {
      ctx.res.setHeader(CHECKSUM_ALGORITHM_HEADER, CHECKSUM_ALGORITHMS_VALUE);
      return answerOptions(ctx, this.server, this.deps.config.cors);
    }
    // The request's record reads (TusWriteScope.records). A HEAD on a store that keeps them takes
    // Upload-Concat from the record getUpload read under the upload's lock, when the answer is
    // written: one read, and never one older than the offset it answers with.
    if (ctx.method === 'HEAD' && id !== undefined) await this.completeIfWhole(id);
    const records = new Map<string, string>();
    const concatAtWriteHead = ctx.method === 'HEAD' && id !== undefined && 'readsOncePerRequest' in this.deps.tusStore;
    if (ctx.method === 'HEAD' && id !== undefined && !concatAtWriteHead) await this.announceConcat(ctx, id);
    if (ctx.method === 'POST' || ctx.method === 'PATCH') this.deps.intake.refuseWhenStopping();
    const chunkCheck = this.carriesBody(ctx) ? parseUploadChecksum(ctx.get('Upload-Checksum') || undefined, ctx.get('Content-Length') || undefined) : undefined;
    let unlockSlot = async () => {};
    let newRecord: UploadServerState | undefined;
    let settleCreation = () => {};
    if (ctx.method === 'POST') {
      const creation = await this.authorizeCreation(ctx).catch((err: unknown) => {
        if (err instanceof RepeatedFinal) return err;
        throw err;
      });
      if (creation instanceof RepeatedFinal) return this.answerFinal(ctx, creation.final);
      if (creation.existing) return this.slotUploads.answerExisting(ctx, creation.existing);
      if (creation.concat?.kind === 'final') {
        return this.createFinal(ctx, creation, creation.concat.ids).catch((err: unknown) => {
          if (err instanceof RepeatedFinal) return this.answerFinal(ctx, err.final);
          throw err;
        });
      }
      this.creations.set(ctx.req, creation);
      newRecord = creation.record;
      // One unfinished upload per slot, cluster-wide: a creation that lost the race is a second
      // creation. A slot's partials together are its one upload, so a partial holds the claim
      // for its creation too: a plain upload and parts never share a slot.
      const partial = creation.concat?.kind === 'partial';
      const claim = await this.slotUploads.claimCreation(creation.slot.path);
      if ('existing' in claim) {
        this.creations.delete(ctx.req);
        if (!partial) return this.slotUploads.answerExisting(ctx, claim.existing);
        const url = uploadUrlOf(ctx, this.deps.config.server, claim.existing.id);
        throw new AppError('ERR_UPLOAD_EXISTS', { message: `This slot already has an unfinished upload, not sent in parts: ${url}`, headers: { Location: url, 'Tus-Resumable': '1.0.0' } });
      }
      try {
        if (partial) unlockSlot = await this.admitPartial(ctx, creation);
        else await this.refuseBesideParts(creation.slot.path);
      } catch (err) {
        this.creations.delete(ctx.req);
        claim.settle();
        throw err;
      }
      settleCreation = claim.settle;
    }
    let release = () => {};
    // Non-body requests may wait for an upload's lock (up to the locker's acquire timeout): that
    // wait owns the socket, not the idle timeout (issue 9.5).
    const socket = ctx.req.socket;
    const ownsSocket = !this.carriesBody(ctx);
    if (ownsSocket) socket.setTimeout(0);
    try {
      // Free space for a PATCH's bytes: 507 before the body when they do not fit.
      if (ctx.method === 'PATCH' && id !== undefined) await this.deps.intake.checkAppend(ctx.req, { uploadId: id, requestBytes: wholeHeader(ctx, 'Content-Length'), declaredLength: wholeHeader(ctx, 'Upload-Length') });
      if (this.carriesBody(ctx)) release = await this.guardBody(ctx, target, newRecord?.slotPath);
      const scope: TusWriteScope = { ...(newRecord && { newRecord }), ...(chunkCheck && { chunkCheck }), records, request: requestContext.get(ctx.req) };
      allowBody(ctx.req, ctx.res);
      ctx.respond = false;
      answerHeadersAtWriteHead(ctx.res, () => {
        const text = concatAtWriteHead ? records.get(id) : undefined;
        if (text !== undefined) this.setConcatHeader(ctx, (JSON.parse(text) as StoredUpload).hfs?.concat);
        return this.errorHeaders.get(ctx.res);
      });
      // When the client is gone, @tus/server's response promise may never settle (it waits for
      // 'finish' on a destroyed socket): the request is over when the response closes.
      const closed = new Promise<void>((resolve) => ctx.res.once('close', resolve));
      const handled = this.deps.scope.run(scope, () => this.server.handle(ctx.req, ctx.res));
      await Promise.race([handled, closed]);
    } finally {
      settleCreation();
      release();
      if (ownsSocket && !socket.destroyed) socket.setTimeout(socketIdleMsOf(this.deps.config));
      await unlockSlot();
      // A creation answered 201 without a body left the account as the store has it (declared
      // length, nothing stored): re-reading its record and file would only say so again.
      const createdEmpty = ctx.method === 'POST' && !this.carriesBody(ctx) && ctx.res.statusCode === 201;
      const touched = ctx.method === 'PATCH' ? id : createdEmpty ? undefined : this.created.get(ctx.req);
      if (touched !== undefined) this.deps.intake.settleUpload(touched);
    }
  }

  /** The upload id of a request to `<tus path>/<id>`, undefined for the creation URL (or an undecodable id). */
  uploadIdOf(ctx: Context): string | undefined {
    const rest = ctx.path.slice(this.deps.config.server.tusPath.length);
    if (!ctx.path.startsWith(this.deps.config.server.tusPath) || rest === '' || rest.includes('/')) return undefined;
    try {
      return decodeURIComponent(rest);
    } catch {
      return undefined;
    }
  }

  /** The concatenation extension; only reached once authorizeCreation let an Upload-Concat through. */
  private get concat(): TusConcatenation | null {
    return this.concatenation;
  }

  /** HEAD of a concatenation's upload: the spec's `Upload-Concat` (partial, or final with its parts' URLs). */
  private async announceConcat(ctx: Context, id: string): Promise<void> {
    this.setConcatHeader(ctx, (await this.deps.tusStore.record(id))?.hfs?.concat);
  }

  private setConcatHeader(ctx: Context, concat: UploadServerState['concat']): void {
    if (concat?.kind === 'partial') ctx.res.setHeader('Upload-Concat', 'partial');
    if (concat?.kind === 'final') ctx.res.setHeader('Upload-Concat', `final;${concat.parts.map((p) => uploadUrlOf(ctx, this.deps.config.server, p)).join(' ')}`);
  }

  /** A partial's creation: counted against its slot; `Upload-Concat` is then hidden from @tus/server (which answers it 501). */
  private async admitPartial(ctx: Context, creation: Creation): Promise<() => Promise<void>> {
    const size = Number(ctx.get('Upload-Length'));
    if (ctx.get('Upload-Length') === '') throw new AppError('ERR_BAD_REQUEST', { message: 'A partial upload needs Upload-Length' });
    const id = newUploadId();
    this.presetIds.set(ctx.req, id);
    const gone = new AbortController();
    const onClose = () => gone.abort();
    ctx.req.once('close', onClose);
    try {
      const unlock = await this.concat!.admitPartial(creation.slot, size, id, gone.signal);
      dropHeader(ctx.req, 'upload-concat');
      return unlock;
    } finally {
      ctx.req.off('close', onClose);
    }
  }

  /**
   * The final POST of a concatenation: joined and finalized here, answered 201 with its URL.
   * One final at a time per slot, across the cluster: the slot's final lock (the upload locker,
   * so Redis in cluster mode) is held from the join until the parts are removed. A client
   * retrying a slow final, at this instance or another, would otherwise join the parts again
   * while the first's file is being finalized (a short file, a dead letter), or be refused
   * (409) while they are marked used. The second then finds the parts gone and gets the
   * first's answer (earlierFinal).
   */
  private async createFinal(ctx: Context, creation: Creation, ids: readonly string[]): Promise<void> {
    const gone = new AbortController();
    const onClose = () => gone.abort();
    ctx.req.once('close', onClose);
    try {
      const lock = await this.lockFinal(creation.slot.path, gone.signal);
      try {
        await this.joinFinal(ctx, creation, ids, gone.signal);
      } finally {
        await lock.unlock().catch(() => {}); // a Redis unlock that fails leaves the key to its TTL
      }
    } finally {
      ctx.req.off('close', onClose);
    }
  }

  /**
   * Takes the slot's final lock. A join may outlast the locker's acquire timeout (it copies most
   * of the file), so a waiter asks again while its client waits, up to FINAL_WAIT_MS, then 423
   * (clients retry the POST, and a retry after the join gets its 201). The holder is never asked
   * to stop: a join cut short would only have to be redone.
   */
  private async lockFinal(slotPath: string, signal: AbortSignal): Promise<TakeoverLock> {
    const until = Date.now() + FINAL_WAIT_MS;
    // A digest of the path: a lock id is a Redis key and a channel message (no newline in it).
    const lockId = `final.${createHash('sha256').update(slotPath).digest('base64url')}`;
    for (;;) {
      const lock = this.deps.locker.newLock(lockId);
      try {
        await lock.lock(signal, () => {});
        return lock;
      } catch (err) {
        if (!AppError.is(err, 'ERR_UPLOAD_LOCKED') || signal.aborted || Date.now() >= until) throw err;
      }
    }
  }

  private async joinFinal(ctx: Context, creation: Creation, ids: readonly string[], signal: AbortSignal): Promise<void> {
    const record = await this.concat!.createFinal({
      slot: creation.slot,
      ids,
      metadata: creation.metadata,
      expectedSha256: creation.record.expectedSha256,
      newId: newUploadId(),
      signal,
    }).catch(async (err: unknown) => {
      const earlier = AppError.is(err, 'ERR_CONCAT_PART_INVALID') ? await this.earlierFinal(creation.slot.path, ids, signal) : null;
      if (earlier === null) throw err;
      throw new RepeatedFinal(earlier); // joined by the request this one waited for
    });
    try {
      await this.completion.complete(record.id, record.size!);
    } catch (err) {
      // Refused for good (checksum, slot taken): the parts go with it. Anything else: kept for a retry.
      if (err instanceof AppError && err.status < 500) await this.concat!.removeParts(ids);
      throw err;
    }
    await this.concat!.removeParts(ids);
    for (const part of ids) this.deps.unfinished.remove(part);
    metrics.uploadsCreated.inc({ protocol: 'tus' });
    this.answerFinal(ctx, record);
  }

  private answerFinal(ctx: Context, record: StoredUpload): void {
    answerCors(ctx, this.deps.config.cors);
    ctx.set('Tus-Resumable', '1.0.0');
    ctx.set('Location', uploadUrlOf(ctx, this.deps.config.server, record.id));
    ctx.set('Upload-Offset', String(record.size));
    ctx.status = 201;
    ctx.body = '';
  }

  /**
   * The final upload these parts were joined into, when a client repeats its final creation (the
   * 201 was lost; the parts are gone by then): it gets that final's URL again, as a repeated
   * creation of a slot gets its upload's. null when the slot's file came from anything else.
   * Found through what every instance reads: the published file's record, else the slot's job in
   * the shared queue (the final may have been joined at another instance or before a restart,
   * and still wait for finalization).
   */
  private async earlierFinal(slotPath: string, ids: readonly string[], signal?: AbortSignal): Promise<StoredUpload | null> {
    const queued = async () => {
      const upload = await this.deps.control.slotUpload(slotPath);
      return upload?.protocol === 'tus' ? upload.uploadId : undefined;
    };
    let finalId = (await this.deps.published.record(slotPath))?.uploadId ?? (await queued());
    if (finalId === undefined) {
      await this.deps.pending.awaitPublished(slotPath, signal); // the queue did not answer: a bounded wait for the file
      finalId = (await this.deps.published.record(slotPath))?.uploadId;
    }
    const final = finalId === undefined ? null : await this.deps.tusStore.record(finalId);
    const concat = final && serverStateOf(final)?.concat;
    return concat?.kind === 'final' && concat.parts.length === ids.length && concat.parts.every((id, i) => id === ids[i]) ? final : null;
  }

  /** A final whose slot holds a file already (ERR_FILE_EXISTS): the same final again is answered, not refused. */
  private async refuseFinal(err: unknown, slotPath: string, concat: UploadConcat | undefined, signal: AbortSignal): Promise<never> {
    if (AppError.is(err, 'ERR_FILE_EXISTS') && concat?.kind === 'final') {
      const earlier = await this.earlierFinal(slotPath, concat.ids, signal);
      if (earlier !== null) throw new RepeatedFinal(earlier);
    }
    throw err;
  }

  /** PATCH, and POST with creation-with-upload, stream a body into the store. */
  private carriesBody(ctx: Context): boolean {
    return ctx.method === 'PATCH' || ctx.get('Content-Type') === 'application/offset+octet-stream';
  }

  private async guardBody(ctx: Context, target: TusTarget, creationSlot: string | undefined): Promise<() => void> {
    const contentLength = byteCountOf(ctx.get('Content-Length')) ?? NaN;
    // Upload-Length as sent may be anything ("-5"): only a valid one sizes the deadlines; @tus/server refuses the rest.
    const declared = byteCountOf(ctx.get('Upload-Length'));
    let fileBytes: number | undefined;
    let uploadId = '';
    let slotKey: string;
    if (ctx.method === 'POST' || target.kind !== 'upload') {
      fileBytes = declared;
      slotKey = this.presetIds.get(ctx.req) ?? creationSlot ?? `creation:${ctx.path}`;
    } else {
      uploadId = target.id;
      const facts = await this.deps.tusStore.facts(uploadId);
      fileBytes = facts.size ?? declared;
      // One body per slot; a concatenation's parts stream side by side, each keyed on its own id.
      slotKey = facts.slotPath && !facts.partial ? facts.slotPath : `upload:${uploadId}`;
    }
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
      const written = uploadId || this.created.get(ctx.req); // a creation-with-upload's bytes are held too
      if (written) this.slotUploads.refreshHeld(written);
    };
  }

  /** A slot's live partials are its one upload: any other creation on it (tus or IETF) is a second one. */
  async refuseBesideParts(slotPath: string): Promise<void> {
    if (await this.concat?.hasLiveParts(slotPath)) {
      throw new AppError('ERR_UPLOAD_EXISTS', { message: "This slot's upload is being sent in parts (tus concatenation): send the final POST naming them, or DELETE them to start over" });
    }
  }

  /** The one-unfinished-upload-per-slot index, shared with the IETF Resumable Uploads door. */
  get slots(): SlotIndex {
    return this.slotUploads;
  }

  /** The slot of a creation (also the IETF Resumable Uploads door's careful creation): authorized and gated. */
  async authorizeCreation(ctx: Context): Promise<Creation> {
    const given = ctx.get(SLOT_HEADER) || (ctx.query.slot as string | undefined);
    if (!given || typeof given !== 'string') throw new AppError('ERR_SLOT_MISSING');
    const { rawPath, query } = this.parseSlot(given, new URLSearchParams(ctx.querystring));
    const path = decodeSlotPath(rawPath);
    const concatHeader = ctx.get('Upload-Concat');
    if (concatHeader !== '' && this.concatenation === null) throw new AppError('ERR_CONCAT_UNSUPPORTED');
    const concat = concatHeader === '' ? undefined : parseUploadConcat(concatHeader, this.tusPrefixes());

    const lengthHeader = ctx.get('Upload-Length');
    if (lengthHeader !== '' && !/^\d{1,16}$/.test(lengthHeader)) {
      throw new AppError('ERR_BAD_REQUEST', { message: 'Upload-Length is not a whole number' });
    }
    const slotLength = ctx.get(SLOT_LENGTH_HEADER);
    if (slotLength !== '' && !/^\d{1,16}$/.test(slotLength)) throw new AppError('ERR_BAD_REQUEST', { message: `${SLOT_LENGTH_HEADER} is not a whole number` });
    let metadata: Record<string, string | null> | undefined;
    try {
      const header = ctx.get('Upload-Metadata');
      if (header !== '') metadata = Metadata.parse(header);
    } catch {
      throw new AppError('ERR_BAD_REQUEST', { message: 'Upload-Metadata is malformed' });
    }
    const declaredType = metadata?.filetype ?? metadata?.contentType ?? undefined;
    const expectedSha256 = expectedSha256FromMetadata(metadata ?? {});
    if (expectedSha256 === null) throw new AppError('ERR_CHECKSUM_MALFORMED', { message: 'The sha256 or checksum metadata is not a sha256 digest' });
    // The size the signature binds: the upload's length; for concatenation, the whole file's.
    let size: number | undefined;
    if (concat === undefined) size = lengthHeader === '' ? undefined : Number(lengthHeader);
    else if (slotLength !== '') size = Number(slotLength);
    else if (concat.kind === 'final') {
      // Its parts gone: the same final again, after its 201 was lost? Signed for that final's size.
      size = await this.concat!.signedSizeOf(concat.ids).catch(async (err: unknown) => {
        const earlier = AppError.is(err, 'ERR_CONCAT_PART_INVALID') ? await this.earlierFinal(path, concat.ids) : null;
        if (earlier?.size === undefined) throw err;
        return earlier.size;
      });
    }
    let slot: AuthorizedSlot;
    try {
      slot = await this.deps.intake.authorize({ path, query, sizeBytes: size, contentType: declaredType }).catch((err: unknown) => this.refuseFinal(err, path, concat, AbortSignal.timeout(15_000)));
    } catch (err) {
      if (AppError.is(err, 'ERR_LENGTH_REQUIRED') && concat?.kind === 'partial') {
        throw new AppError('ERR_LENGTH_REQUIRED', { message: `A partial upload under a size-signed slot needs ${SLOT_LENGTH_HEADER} (the whole file's size)` });
      }
      if (AppError.is(err, 'ERR_LENGTH_REQUIRED')) {
        // A tus creation states its length in Upload-Length: deferring it needs a slot that binds no size (v3).
        throw new AppError('ERR_LENGTH_REQUIRED', { message: 'This slot binds the upload size: send Upload-Length (Upload-Defer-Length needs a v3 slot)' });
      }
      throw err;
    }
    // One unfinished upload per slot (issue 9.2): wait for a creation in flight on it, then look it up.
    let existing: UnfinishedUpload | undefined;
    if (concat === undefined) existing = await this.slotUploads.existingFor(path);
    // Partials count as their slot's one upload: the queue's intake gate is passed by the final.
    if (concat?.kind === 'partial') {
      if (await this.deps.control.slotTaken(path)) throw new AppError('ERR_FILE_EXISTS');
      // Its bytes are new all the same: unfinished bytes and free space.
      const partBytes = lengthHeader === '' ? undefined : Number(lengthHeader);
      // A part larger than the whole file may be is the client's mistake (413), whatever room is left.
      if (partBytes !== undefined && partBytes > Math.min(slot.signedSize ?? Infinity, this.deps.intake.maxUploadBytes)) throw new AppError('ERR_CONCAT_TOO_LARGE');
      this.deps.intake.holdUnfinishedRoom(ctx.req, partBytes, requestContext.get(ctx.req)?.log);
      await this.deps.intake.claimSpace(ctx.req, partBytes);
    } else if (!existing) {
      // A final's bytes are its parts', counted when they were created.
      await this.deps.intake
        .gate(ctx.req, 'create', path, size, requestContext.get(ctx.req)?.log, { newBytes: concat?.kind !== 'final' })
        .catch((err: unknown) => this.refuseFinal(err, path, concat, AbortSignal.timeout(15_000)));
    }
    const record: UploadServerState = {
      slotPath: slot.path,
      contentType: slot.contentType,
      scheme: slot.scheme,
      ...(slot.signedSize !== undefined && { signedSize: slot.signedSize }),
      createdAtMs: this.deps.now(),
      ...(expectedSha256 !== undefined && { expectedSha256 }),
      ...(concat?.kind === 'partial' && { concat: { kind: 'partial' } as const }),
    };
    return { slot, record, concat, metadata, ...(existing && { existing }) };
  }

  /** Path prefixes of upload URLs (Upload-Concat names parts by URL). */
  private tusPrefixes(): string[] {
    const { tusPath, publicUrl } = this.deps.config.server;
    const publicPrefix = publicUrl ? new URL(publicUrl).pathname.replace(/\/$/, '') : '';
    return publicPrefix ? [`${publicPrefix}${tusPath}`, tusPath] : [tusPath];
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

  private async onCreate(req: unknown, upload: Upload): Promise<Record<string, never>> {
    const node = nodeReq(req);
    const creation = node && this.creations.get(node);
    if (!creation) throw new AppError('ERR_SLOT_MISSING');
    // Upload-Length must equal the signed size: the signature was checked against Upload-Length
    // (a partial's against Upload-Slot-Length, and its length is bounded by admitPartial).
    const { signedSize } = creation.slot;
    if (creation.concat === undefined && signedSize !== undefined && upload.size !== signedSize) throw new AppError('ERR_SIZE_MISMATCH');
    return {}; // the metadata stays exactly as the client sent it; the server's state is in the record (TusWriteScope)
  }

  /**
   * Completes upload `id` if every byte is stored but it was never marked finished: the process
   * died between a PATCH's last write and its completion (kill -9, power loss). A client's HEAD
   * then reads offset = length and takes the upload as done (tus-js-client calls onSuccess), so
   * the HEAD, and the start-up pass, complete it first; otherwise it would never be published.
   * Resolves false when there was nothing to do; a failure is left for the next HEAD or start.
   */
  async completeIfWhole(id: string): Promise<boolean> {
    const { tusStore, locker } = this.deps;
    const whole = async () => {
      const info = await tusStore.record(id);
      if (info === null || isFinishedRecord(info) || !serverStateOf(info)) return null;
      const upload = await tusStore.getUpload(id);
      return upload.size !== undefined && upload.size > 0 && upload.offset === upload.size ? upload : null;
    };
    if ((await whole().catch(() => null)) === null) return false; // the common case: no lock taken
    const lock = locker.newLock(id);
    try {
      await lock.lock(AbortSignal.timeout(this.deps.config.tus.lockDrainMs * 2 + 2_000), () => {});
    } catch {
      return false; // a request holds it: it completes the upload, or the next HEAD does
    }
    try {
      const upload = await whole();
      if (upload === null) return false;
      await this.onFinish(undefined, upload);
      return true;
    } catch (err) {
      // A checksum mismatch removed it (404 next); anything else: the client must not read
      // offset = length as done while the file is not on its way, so it asks again later.
      if (err instanceof AppError && err.status < 500) return false;
      throw new AppError('ERR_NOT_READY', { cause: err, headers: { 'Retry-After': '5' } });
    } finally {
      await lock.unlock().catch(() => {});
    }
  }

  /**
   * Completes once per upload at a time: @tus/server calls this after it released the lock, so a
   * HEAD's completeIfWhole can meet the PATCH's own completion; the later one awaits the first.
   */
  private async onFinish(_req: unknown, upload: Upload): Promise<Record<string, never>> {
    const running = this.completing.get(upload.id);
    if (running !== undefined) {
      await running;
      return {};
    }
    const run = this.finishOnce(upload);
    this.completing.set(upload.id, run);
    try {
      await run;
    } finally {
      this.completing.delete(upload.id);
    }
    return {};
  }

  private async finishOnce(upload: Upload): Promise<void> {
    if (upload.size === undefined) throw new Error(`tus upload ${upload.id} finished without a length`);
    // @tus/server calls this after it released the upload's lock: what the request read under the lock may be old now.
    this.deps.scope.current()?.records?.clear();
    try {
      await this.completion.complete(upload.id, upload.size);
    } catch (err) {
      await this.slotUploads.forgetIfGone(upload.id); // a checksum mismatch discards the upload
      throw err;
    }
    this.deps.unfinished.remove(upload.id);
    this.deps.intake.uploadFinished(upload.id); // settle() would read record and file only to learn this
  }

  /** Whether a PATCH's body (Upload-Offset + Content-Length, as sent) goes past max_upload_size. */
  private pastMaxUploadSize(req: IncomingMessage): boolean {
    const offset = Number(req.headers['upload-offset']);
    const length = Number(req.headers['content-length']);
    return Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset + length > this.deps.config.server.maxUploadBytes;
  }

  private async mapError(req: unknown, thrown: Error | { status_code: number; body: string }): Promise<{ status_code: number; body: string }> {
    const node = nodeReq(req);
    const rc = node ? requestContext.get(node) : undefined;
    const res = nodeRes(req);
    if ('status_code' in thrown && typeof thrown.status_code === 'number' && thrown.status_code < 500) {
      let code = TUS_CODES.get(thrown.body) ?? 'ERR_BAD_REQUEST';
      // @tus/server says "upload's size exceeded" both past a declared length and past its maxSize
      // for a deferred length: the latter is max_upload_size, ERR_TOO_LARGE as on every door.
      if (code === 'ERR_TUS_ERR_SIZE_EXCEEDED' && node && this.pastMaxUploadSize(node)) code = 'ERR_TOO_LARGE';
      if (rc) rc.errorCode = code;
      metrics.errorsByCode.inc({ code });
      if (res) this.errorHeaders.set(res, { 'Content-Type': 'application/json' });
      return { status_code: thrown.status_code, body: JSON.stringify({ code, message: thrown.body.trim(), requestId: rc?.requestId }) };
    }
    // S3 down or black-holed: 503 with Retry-After (tus-js-client retries), never a 500; the same
    // network codes from a client that went away are not the store's fault.
    const unavailable = node ? storageUnavailableError(thrown, node.destroyed) : null;
    const err = (node && (await storageFullAnswer(this.deps, node, this.created.get(node), thrown))) ?? unavailable ?? toClientError(thrown);
    if (err.code === 'ERR_INTERNAL') rc?.log.error({ err: thrown }, 'tus request failed');
    if (rc) rc.errorCode = err.code;
    metrics.errorsByCode.inc({ code: err.code });
    const method = (req as { method?: string }).method;
    // tus-js-client drops the upload and restarts from byte 0 on any HEAD answer but 2xx/423.
    const status = method === 'HEAD' && err.status >= 500 ? 423 : err.status;
    if (res) this.errorHeaders.set(res, { 'Content-Type': 'application/json', ...err.headers });
    return { status_code: status, body: JSON.stringify(errorBody(err, rc?.requestId)) };
  }
}

/** Thrown by authorizeCreation when a final POST repeats one that joined its parts already. */
class RepeatedFinal extends Error {
  constructor(readonly final: StoredUpload) {
    super('the same final upload again');
  }
}

/** How long a final POST waits for another final of its slot to be joined (createFinal), then 423. */
const FINAL_WAIT_MS = 60_000;
