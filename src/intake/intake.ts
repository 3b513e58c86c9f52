/**
 * The one intake contract every upload front door (XEP-0363 PUT, tus 1.0, later tus
 * concatenation and IETF Resumable Uploads) translates into. A front door parses its own
 * headers and keeps its own wire answers; the rules about who may upload what, when, and how
 * fast live here, so a new rule (per-slot or per-IP limits, a rate floor, free space, upload
 * policy) is added once:
 *
 *   authorize(claim)       new upload: slot signature, size cap, slot already published
 *   gate(req, ...)         new upload: slot held by a queued job, finalization intake gate,
 *                          free space (storage-space.ts: the declared length must fit)
 *   checkAppend(req, ...)  append to an unfinished upload: free space for its bytes
 *   refuseWhenStopping()   any upload request while the server shuts down
 *   guardBody(req, ...)    any request carrying body bytes: concurrency, watchdog, lifecycle, bytes
 *   storageFull(err, ...)  a body write ran out of room: the 507 to answer (never a 500)
 *   complete(upload)       the last byte arrived: hand the file to finalization
 *
 * Every refusal is an AppError with a stable code; nothing here reads protocol headers.
 */
import type { IncomingMessage } from 'node:http';
import { authorizeSlot, type AuthorizedSlot, type SlotPolicy } from '../auth/index.js';
import { AppError } from '../errors.js';
import type { CompletedUpload, FinalizeOutcome, IntakeControl, PendingUpload, UploadFinalizer } from '../finalize/index.js';
import { metrics, type Logger } from '../observability/index.js';
import { storableContentType, type DeletablePublishedStore, type PathObstruction, type PublishedStore, type QuarantineStore } from '../storage/index.js';
import type { BodyHolder } from '../transfer/index.js';
import { guardUploadBody, refuseWhenStopping, type GuardDeps, type GuardRequest, type UploadLifecycle } from './body-guard.js';
import { gateNewUpload, holdUnfinishedRoom, type NewUploadLimits } from './gate.js';
import type { StorageSpace } from './storage-space.js';
import { checkUpload, type UploadPolicy } from './upload-policy.js';

/** A new upload as a front door declares it, before a body byte is read. */
export interface UploadClaim {
  /** Decoded slot path (auth decodeSlotPath). */
  readonly path: string;
  /** The slot URL's query: its signature parameters. */
  readonly query: URLSearchParams;
  /** Declared size of the whole file; undefined when deferred or chunked. */
  readonly sizeBytes: number | undefined;
  /** Content type exactly as the client declared it (v2 signs it unnormalised). */
  readonly contentType: string | undefined;
}

export interface IntakeDeps {
  readonly policy: SlotPolicy;
  /** Names and sizes accepted ([uploads], [server] max_upload_size). */
  readonly uploadPolicy: UploadPolicy;
  readonly published: Pick<PublishedStore, 'stat'> & Partial<Pick<DeletablePublishedStore, 'deletedAt'> & PathObstruction>;
  /** Finalization's side of intake: slot held by a job, queue pressure. */
  readonly control: IntakeControl;
  readonly finalizer: UploadFinalizer;
  /** Concurrency, watchdog limits, lifecycle and the fallback logger of the body guard. */
  readonly guard: GuardDeps;
  /** Per-client start rate and the cap on bytes held by unfinished uploads (issue 9.1, 9.2). */
  readonly limits?: NewUploadLimits;
  /** Free space: the reserve and the bytes promised to unfinished uploads. */
  readonly space: StorageSpace;
  readonly now: () => number;
  /** Files the malware scan withheld: their slot answers 451 (docs/scanning.md). */
  readonly quarantine?: Pick<QuarantineStore, 'bySlot'>;
}

export class Intake {
  readonly #d: IntakeDeps;

  constructor(deps: IntakeDeps) {
    this.#d = deps;
  }

  /** Upload bodies in flight, for shutdown and readiness. */
  get lifecycle(): UploadLifecycle {
    return this.#d.guard.lifecycle;
  }

  get maxUploadBytes(): number {
    return this.#d.uploadPolicy.maxBytes;
  }

  /**
   * A new upload's slot: its signature (403 codes of auth), the upload policy (a refused name:
   * ERR_EXTENSION_NOT_ALLOWED; a declared size over the cap: ERR_TOO_LARGE; without a declared
   * size the front door enforces the cap while streaming), a slot held by a quarantined file
   * (ERR_QUARANTINED, 451), a slot already published (ERR_FILE_EXISTS), and a slot whose file
   * was deleted for good (ERR_GONE: a tombstone, never used again).
   */
  async authorize(claim: UploadClaim): Promise<AuthorizedSlot> {
    const { path, query, sizeBytes, contentType } = claim;
    const decision = authorizeSlot({ path, query, size: sizeBytes, contentType, nowMs: this.#d.now() }, this.#d.policy);
    if (!decision.ok) throw new AppError(decision.code, decision.message === undefined ? {} : { message: decision.message });
    // After the signature: an unsigned request learns nothing about the policy.
    const verdict = checkUpload(this.#d.uploadPolicy, path, sizeBytes);
    if (!verdict.ok) throw new AppError(verdict.code, { message: verdict.message });
    if (await this.#d.quarantine?.bySlot(path)) throw new AppError('ERR_QUARANTINED');
    if (await this.#d.published.stat(path)) throw new AppError('ERR_FILE_EXISTS');
    if ((await this.#d.published.deletedAt?.(path)) != null) throw new AppError('ERR_GONE');
    if (await this.#d.published.blocked?.(path)) {
      throw new AppError('ERR_FILE_EXISTS', { message: 'This slot path cannot hold a file: a published file or folder of another slot is in the way' });
    }
    // Checked as signed, kept as it can be stored: a type no store can hold never reaches one.
    return { ...decision.slot, contentType: storableContentType(decision.slot.contentType) };
  }

  /**
   * A new upload (never a request continuing one): ERR_FILE_EXISTS when a queued job holds the
   * slot, the per-client start rate and the unfinished-bytes cap (ERR_RATE_LIMITED 429,
   * ERR_UNFINISHED_FULL 503), then the intake gate (a bounded delay under backpressure,
   * ERR_QUEUE_FULL in emergency), then free space (ERR_INSUFFICIENT_STORAGE when the declared
   * size does not fit; the size stays promised while the request lasts, and for its upload once
   * `uploadCreated` names it). Stops waiting when the request closes.
   */
  async gate(req: IncomingMessage, kind: 'create' | 'put', slotPath: string, sizeBytes: number | undefined, log?: Logger, options: { newBytes?: boolean } = {}): Promise<void> {
    const limits = this.#d.limits;
    const checks = limits ? { ...limits, client: this.#d.guard.clientOf(req), log: log ?? this.#d.guard.log } : undefined;
    await gateNewUpload(req, this.#d.control, kind, slotPath, sizeBytes, checks, options);
    await this.claimSpace(req, sizeBytes);
  }

  /** limits.max_unfinished_bytes for new bytes that pass no queue gate (a concatenation's partials): refused, or reserved while the request lasts. */
  holdUnfinishedRoom(req: IncomingMessage, sizeBytes: number | undefined, log?: Logger): void {
    const unfinished = this.#d.limits?.unfinished;
    if (unfinished) holdUnfinishedRoom(req, sizeBytes, unfinished, log ?? this.#d.guard.log);
  }

  /** The upload a queued job holds the slot for (gate's ERR_FILE_EXISTS): what a repeated PUT is compared with. */
  pendingUpload(slotPath: string): Promise<PendingUpload | null> {
    return this.#d.control.pendingUpload(slotPath);
  }

  /** gate's free-space step alone, for new bytes that pass no queue gate (a concatenation's partials). */
  claimSpace(req: IncomingMessage, sizeBytes: number | undefined): Promise<void> {
    return this.#d.space.claimNew(req, sizeBytes);
  }

  /** The upload a gated creation made: its declared bytes stay promised until it finishes or is removed. */
  uploadCreated(req: IncomingMessage, uploadId: string, sizeBytes: number | null): void {
    this.#d.space.uploadCreated(req, uploadId, sizeBytes);
  }

  /**
   * Before an append's body: ERR_INSUFFICIENT_STORAGE when its bytes do not fit (storage-space.ts).
   * `declaredLength`: the length a deferred upload declares with this request.
   */
  checkAppend(req: IncomingMessage, append: { uploadId: string; requestBytes: number | undefined; declaredLength: number | undefined }): Promise<void> {
    return this.#d.space.checkAppend(req, append);
  }

  /** Every byte of the upload arrived and it is marked finished: nothing is promised to it, and the settle after its request reads nothing. */
  uploadFinished(uploadId: string): void {
    this.#d.space.forget(uploadId);
  }

  /** A request on the upload is over: re-read what it holds (fire and forget). */
  settleUpload(uploadId: string): void {
    void this.#d.space.settle(uploadId);
  }

  /** A body write failed: for a full store, the 507 to answer (logged and counted once); null otherwise. */
  storageFull(err: unknown, upload: { protocol: 'put' | 'tus'; uploadId: string; log?: Logger | undefined }): Promise<AppError | null> {
    return this.#d.space.storageFull(err, upload);
  }

  /** The streaming body of a request, which decides for itself when asked to let go (takeover). */
  holderOf(req: IncomingMessage): BodyHolder | undefined {
    return this.#d.guard.holders.get(req);
  }

  /** The client address of a request, as the per-client limits see it. */
  clientOf(req: IncomingMessage): string {
    return this.#d.guard.clientOf(req);
  }

  /** ERR_SERVER_SHUTDOWN (503 + Retry-After) once the server is draining. */
  refuseWhenStopping(): void {
    refuseWhenStopping(this.#d.guard.lifecycle);
  }

  /** See guardUploadBody: resolves the (idempotent) release to call when the request is over. */
  async guardBody(req: IncomingMessage, request: GuardRequest): Promise<() => void> {
    const release = await guardUploadBody(req, this.#d.guard, request);
    return () => {
      release();
      this.#d.space.requestOver(req); // what it received is stored; a hold no upload took is given back
    };
  }

  /** The last byte arrived: finalization takes the file over ('exists': another upload won the slot). */
  complete(upload: CompletedUpload): Promise<FinalizeOutcome> {
    metrics.uploadsFinished.inc({ protocol: upload.protocol });
    if (upload.protocol === 'tus') this.#d.space.forget(upload.uploadId); // every byte is on disk
    return this.#d.finalizer.finalize(upload);
  }
}
