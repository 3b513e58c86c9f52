/**
 * Completed tus uploads whose finalization job could not be written because the disk was full
 * (SQLITE_FULL in the queue journal, ENOSPC on the finished record). The decision
 * (docs/storage-space.md): a retry loop, not a second journal, because the first journal is
 * already on disk for them: every byte and the upload record are stored, and a restart admits
 * finished uploads without a job (recovery.ts). While the server runs, this list retries each
 * one (growing delays, and at once when space comes back) until its job is written; a download
 * of its slot meanwhile answers 503 with Retry-After, never 404, and a new upload of the slot is
 * refused. Admission is idempotent (the job id is derived from the upload id), so however many
 * tries and restarts race, one job publishes the file once.
 *
 * PUT bodies never wait here: their client has no answer yet, so the PUT retries briefly in its
 * request and answers 507 if space does not come back (nothing kept, the client sends again).
 */
import { AppError } from '../errors.js';
import { metrics, type Logger } from '../observability/index.js';
import type { Clock, TimerHandle } from '../queue/index.js';
import { STORAGE_RETRY_AFTER_S, storageFullCause } from '../storage/index.js';
import type { CompletedUpload, FinalizeOutcome } from './types.js';

export interface AdmissionWaitlistOptions {
  /** One admission attempt; rejects with a storage-full error while there is no room. */
  readonly admit: (upload: CompletedUpload) => Promise<FinalizeOutcome>;
  /** Another upload took the slot meanwhile: drop this one's bytes, as completion would have. */
  readonly discard: (upload: CompletedUpload) => Promise<void>;
  readonly clock: Clock;
  readonly log: Logger;
  /** First retry delay; doubles after each pass that left uploads waiting, up to maxDelayMs. Defaults 1 s and 30 s. */
  readonly firstDelayMs?: number;
  readonly maxDelayMs?: number;
}

export class AdmissionWaitlist {
  readonly #o: AdmissionWaitlistOptions;
  readonly #bySlot = new Map<string, CompletedUpload>();
  /** Delay before the next pass after one that left uploads waiting. */
  #backoffMs: number;
  #timer: TimerHandle | undefined;
  #passing = false;
  #again = false;
  #stopped = false;

  constructor(options: AdmissionWaitlistOptions) {
    this.#o = options;
    this.#backoffMs = options.firstDelayMs ?? 1_000;
  }

  get size(): number {
    return this.#bySlot.size;
  }

  has(slotPath: string): boolean {
    return this.#bySlot.has(slotPath);
  }

  get(slotPath: string): CompletedUpload | undefined {
    return this.#bySlot.get(slotPath);
  }

  /** Keeps `upload` until its job is written. `cause`: the failure that put it here (logged). */
  add(upload: CompletedUpload, cause: unknown): void {
    if (this.#stopped) return;
    this.#bySlot.set(upload.slotPath, upload);
    metrics.admissionsWaiting.set(this.#bySlot.size);
    metrics.storageFull.inc({ where: 'admission' });
    this.#o.log.warn(
      { uploadId: upload.uploadId, slotPath: upload.slotPath, size: upload.size, reason: describe(cause) },
      'Finalization job not written: storage full; the upload is kept and admitted once space is back',
    );
    if (this.#timer === undefined && !this.#passing) this.#schedule(this.#backoffMs);
  }

  /** Space came back: try every waiting upload now. */
  poke(): void {
    if (this.#bySlot.size === 0 || this.#stopped) return;
    if (this.#passing) this.#again = true;
    else this.#schedule(0);
  }

  stop(): void {
    this.#stopped = true;
    this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(delayMs: number): void {
    this.#o.clock.clearTimeout(this.#timer);
    this.#timer = this.#o.clock.setTimeout(() => void this.#pass(), delayMs);
  }

  /** Tries each waiting upload once, then schedules the next pass (growing delays while space stays short). */
  async #pass(): Promise<void> {
    this.#timer = undefined;
    if (this.#stopped) return;
    this.#passing = true;
    try {
      await this.#tryAll();
    } finally {
      this.#passing = false;
    }
    if (this.#stopped) return;
    if (this.#bySlot.size === 0) {
      this.#backoffMs = this.#o.firstDelayMs ?? 1_000;
      return;
    }
    if (this.#again) {
      this.#again = false;
      this.#schedule(0);
      return;
    }
    const delay = this.#backoffMs;
    this.#backoffMs = Math.min(this.#backoffMs * 2, this.#o.maxDelayMs ?? 30_000);
    this.#schedule(delay);
  }

  async #tryAll(): Promise<void> {
    for (const upload of [...this.#bySlot.values()]) {
      if (this.#stopped) return;
      try {
        const outcome = await this.#o.admit(upload);
        if (outcome === 'exists') await this.#o.discard(upload).catch(() => {});
        this.#bySlot.delete(upload.slotPath);
        this.#o.log.info({ uploadId: upload.uploadId, slotPath: upload.slotPath, outcome }, 'Finalization job written after space came back');
      } catch (err) {
        if (storageFullCause(err) !== null) return; // still full: the rest would fail alike
        if (AppError.is(err, 'ERR_SERVER_SHUTDOWN')) return;
        this.#o.log.warn({ err, uploadId: upload.uploadId }, 'Admission retry failed; trying again later');
      } finally {
        metrics.admissionsWaiting.set(this.#bySlot.size);
      }
    }
  }
}

function describe(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return e?.code ? `${e.code}: ${e.message ?? ''}` : String(e?.message ?? err);
}

/** A PUT whose job cannot be written for lack of space retries this long in its request, then answers 507. */
const PUT_ADMISSION_RETRY_MS = [250, 500, 1_000, 2_000] as const;

/**
 * A PUT's admission the full disk refused (`first`): tried again after 250 ms, 500 ms, 1 s and
 * 2 s; then ERR_INSUFFICIENT_STORAGE (507, Retry-After), logged once. Its client was told
 * nothing yet, so nothing is kept that could not be made durable.
 */
export async function admitBriefly(
  admit: () => Promise<FinalizeOutcome>,
  upload: CompletedUpload,
  first: unknown,
  o: { readonly clock: Clock; readonly log: Logger },
): Promise<FinalizeOutcome> {
  let last = first;
  for (const delayMs of PUT_ADMISSION_RETRY_MS) {
    await new Promise<void>((resolve) => o.clock.setTimeout(resolve, delayMs));
    try {
      return await admit();
    } catch (err) {
      if (storageFullCause(err) === null) throw err;
      last = err;
    }
  }
  metrics.storageFull.inc({ where: 'admission' });
  o.log.warn(
    { uploadId: upload.uploadId, slotPath: upload.slotPath, size: upload.size, reason: describe(last) },
    'PUT refused: storage full, its finalization job could not be written; nothing kept',
  );
  throw new AppError('ERR_INSUFFICIENT_STORAGE', { cause: last, headers: { 'Retry-After': String(STORAGE_RETRY_AFTER_S) } });
}
