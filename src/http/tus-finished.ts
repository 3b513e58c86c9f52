/**
 * GET and DELETE on a tus upload's URL once the upload is finished. @tus/server's own GET is
 * never exposed (field-notes.md: crash bugs); a finished upload is served exactly like its slot
 * GET URL, by the download handler. DELETE of a finished upload (the URL is its capability)
 * removes the published file for good: the slot keeps a tombstone (its GET answers 410, a PUT
 * or tus creation on it 410), the content-store entry goes when nothing else links it, and a
 * finalization job still queued or running is cancelled (it ends as done, publishing nothing).
 */
import type { Context } from 'koa';
import type { Locker } from '@tus/utils';
import { encodeSlotPath } from '../auth/index.js';
import { AppError } from '../errors.js';
import { metrics } from '../observability/index.js';
import { canDelete, isFinishedRecord, serverStateOf, type DeletablePublishedStore, type PublishedStore, type TusDoorStore } from '../storage/index.js';
import { serveDownload, type PendingPublications } from './downloads.js';
import { requestContext } from './request-context.js';

export interface FinishedUploadDeps {
  readonly tusStore: TusDoorStore;
  /** Deleting a finished upload's file for good needs a DeletablePublishedStore (the file store). */
  readonly published: PublishedStore | (PublishedStore & DeletablePublishedStore);
  readonly pending: PendingPublications;
  readonly locker: Locker;
  /** [tus] allow_delete_finished */
  readonly allowDelete: boolean;
  /** null when dedup is off. */
  readonly cas: { release(sha256: string): Promise<boolean> } | null;
  readonly lockTimeoutMs: number;
  readonly now: () => number;
}

export class FinishedUploads {
  constructor(private readonly deps: FinishedUploadDeps) {}

  /** GET/HEAD of the upload URL: 404 unknown, 409 unfinished, else the published file (Range, validators, waits while finalizing). */
  async serve(ctx: Context, id: string): Promise<void> {
    const info = await this.deps.tusStore.record(id);
    const state = info && serverStateOf(info);
    if (!info || !state) throw new AppError('ERR_NOT_FOUND');
    if (state.concat?.kind === 'partial') throw new AppError('ERR_NOT_FOUND', { message: 'A partial upload is downloaded through its final upload' });
    if (!isFinishedRecord(info)) throw new AppError('ERR_UPLOAD_NOT_FINISHED');
    await serveDownload(ctx, encodeSlotPath(state.slotPath), this.deps.published, this.deps.pending);
  }

  /**
   * DELETE of a finished upload; resolves false for an unfinished one (tus termination handles
   * it). Holds the upload's lock throughout.
   */
  async delete(ctx: Context, id: string): Promise<boolean> {
    const { tusStore } = this.deps;
    const info = await tusStore.record(id);
    if (!info || !isFinishedRecord(info)) return false;
    const state = serverStateOf(info);
    const partial = state?.concat?.kind === 'partial' ? state.concat : null;
    if (partial?.consumedBy !== undefined) throw new AppError('ERR_CONCAT_PART_USED', { message: 'The partial upload is part of a final upload' });
    // A finished partial was never published: removed like an unfinished upload, whatever allow_delete_finished says.
    if (!partial && (!this.deps.allowDelete || !canDelete(this.deps.published))) throw new AppError('ERR_DELETE_FINISHED_DISABLED');
    const lock = this.deps.locker.newLock(id);
    await lock.lock(AbortSignal.timeout(this.deps.lockTimeoutMs), async () => {});
    try {
      if (state && !partial) await this.#deletePublished(ctx, id, state.slotPath);
      await tusStore.remove(id).catch(() => {}); // gone already: a repeated DELETE
    } finally {
      await lock.unlock();
    }
    metrics.uploadsTerminated.inc();
    ctx.set('Tus-Resumable', '1.0.0');
    ctx.status = 204;
    return true;
  }

  async #deletePublished(ctx: Context, id: string, slotPath: string): Promise<void> {
    const { published } = this.deps;
    if (!canDelete(published)) throw new AppError('ERR_DELETE_FINISHED_DISABLED');
    const outcome = await published.deleteForGood(slotPath, id, this.deps.now());
    if (outcome.kind === 'foreign') throw new AppError('ERR_FILE_EXISTS', { message: "The slot holds another upload's file" });
    this.deps.pending.withdrawn(slotPath); // a GET waiting for its publication answers 410 now
    const freed = outcome.sha256 !== undefined && this.deps.cas !== null ? await this.deps.cas.release(outcome.sha256) : false;
    requestContext.get(ctx.req)?.log.info({ uploadId: id, slotPath, contentFreed: freed }, 'Finished upload deleted');
  }
}
