/**
 * The tus front door's side of "one slot, one upload" and of takeovers (issues 9.2, 18):
 * - a per-request view of the locker: locks are taken on behalf of the request's client, and a
 *   release request to a request that streams a body goes to its BodyHolder, which decides by
 *   its own idle clock (transfer/takeover.ts); a holder without a body (a HEAD) keeps
 *   @tus/server's own delayed abort;
 * - the slot's one unfinished upload: creations in flight, the existing upload a second creation
 *   is pointed at (checked against the store), the 200/409 answer, and the bytes it holds.
 */
import type { IncomingMessage } from 'node:http';
import type { Context } from 'koa';
import type { Lock, Locker, RequestRelease } from '@tus/utils';
import type { Config } from '../config/index.js';
import { AppError } from '../errors.js';
import type { Intake } from '../intake/index.js';
import type { ReleaseRequest, SlotClaim, TakeoverLocker, TusDoorStore, UnfinishedUpload, UnfinishedUploads } from '../storage/index.js';
import { answerCors, uploadUrlOf } from './tus-http.js';
import { closeWhileBodyArrives } from './request-context.js';

export interface TusSlotUploadsDeps {
  config: Config;
  intake: Intake;
  locker: TakeoverLocker;
  tusStore: TusDoorStore;
  unfinished: UnfinishedUploads;
}

/** A second creation waits this long for another instance's creation of the slot (its claim's TTL and a margin). */
const SLOT_CLAIM_WAIT_MS = 20_000;
/** How often it asks again meanwhile (a creation takes a few S3 or file calls). */
const CLAIM_RETRY_MS = 25;

export class TusSlotUploads {
  /** Creations in flight per slot path: a concurrent second creation waits for the first's upload. */
  private readonly creating = new Map<string, Promise<void>>();

  constructor(private readonly deps: TusSlotUploadsDeps) {}

  /** The locker @tus/server uses for `req` (its `locker` option as a function of the request). */
  lockerFor(req: IncomingMessage | undefined): Locker {
    const { locker: base, intake } = this.deps;
    const clientAddress = req ? intake.clientOf(req) : 'unknown';
    return {
      newLock(id: string): Lock {
        const inner = base.newLock(id, { clientAddress });
        return {
          lock: (signal: AbortSignal, tusRelease: RequestRelease) =>
            inner.lock(signal, (request: ReleaseRequest) => {
              const holder = req && intake.holderOf(req);
              if (holder && !holder.isOver && request.lockLost) return holder.endNow(); // no draining on a lock another instance may take
              if (holder && !holder.isOver) return void holder.requestRelease(request.requester ?? { clientAddress: 'unknown' });
              return tusRelease();
            }),
          unlock: () => inner.unlock(),
        };
      },
    };
  }

  /** The slot's unfinished upload (not a partial), after any creation in flight on it settled. */
  async existingFor(slotPath: string): Promise<UnfinishedUpload | undefined> {
    for (let pending = this.creating.get(slotPath); pending; pending = this.creating.get(slotPath)) await pending;
    const existing = (await this.deps.unfinished.onSlot(slotPath)).find((u) => !u.partial);
    if (!existing) return undefined;
    // The store is the truth: an upload removed or completed by another path (a checksum
    // mismatch discards it, expiry, finalization) leaves the index here.
    const stored = await this.deps.tusStore.summarize(existing.id);
    if (stored && !stored.finished) return existing;
    this.deps.unfinished.remove(existing.id);
    return undefined;
  }

  /**
   * Holds `slotPath` for the creation about to run: `settle` ends the hold once the request is
   * over. Another creation of the slot that got there first (here, or at another instance in
   * cluster mode, where the claim is atomic in Redis) is returned as `existing` instead, to be
   * answered like any second creation. While another instance's creation holds the claim this
   * waits for its upload, up to `waitMs` (then 409 ERR_UPLOAD_IN_PROGRESS, retryable).
   */
  async claimCreation(slotPath: string, waitMs = SLOT_CLAIM_WAIT_MS): Promise<{ settle: () => void } | { existing: UnfinishedUpload }> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      for (let pending = this.creating.get(slotPath); pending; pending = this.creating.get(slotPath)) await pending;
      const settleHere = this.markCreating(slotPath); // no await since the wait: this process's creations go one at a time
      let claim: SlotClaim;
      try {
        claim = await this.deps.unfinished.claimSlot(slotPath);
      } catch (err) {
        settleHere();
        throw err;
      }
      if (claim.kind === 'claimed') {
        const { release } = claim;
        return { settle: () => (settleHere(), void release()) };
      }
      settleHere();
      if (claim.kind === 'taken') {
        const stored = await this.deps.tusStore.summarize(claim.id);
        if (stored && !stored.finished && (stored.slotPath ?? slotPath) === slotPath) {
          return { existing: { id: claim.id, slotPath, size: stored.size, offset: stored.offset, partial: false } };
        }
        this.deps.unfinished.remove(claim.id); // finished, removed or expired meanwhile: the slot is free
      }
      if (Date.now() > deadline) throw new AppError('ERR_UPLOAD_IN_PROGRESS', { message: 'Another creation of this slot is in progress; retry shortly' });
      await new Promise((resolve) => setTimeout(resolve, CLAIM_RETRY_MS));
    }
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

  /**
   * A second creation on a slot that has an unfinished upload: the same upload (same length, or
   * both deferred) is answered 200 with its URL and stored offset, so a client that lost the
   * first creation's answer (a handoff mid-POST) resumes instead of failing; a different one is
   * refused with 409 naming the existing upload. A body sent with this POST is not stored (the
   * answer's Upload-Offset tells the client where to continue).
   */
  async answerExisting(ctx: Context, existing: UnfinishedUpload): Promise<void> {
    const url = uploadUrlOf(ctx, this.deps.config.server, existing.id);
    const lengthHeader = ctx.get('Upload-Length');
    const sameLength = lengthHeader === '' ? existing.size === null : existing.size === Number(lengthHeader);
    if (!sameLength) {
      throw new AppError('ERR_UPLOAD_EXISTS', { message: `This slot already has an unfinished upload: ${url}`, headers: { Location: url, 'Tus-Resumable': '1.0.0' } });
    }
    const stored = await this.deps.tusStore.summarize(existing.id);
    answerCors(ctx, this.deps.config.cors);
    ctx.status = 200;
    ctx.set({ Location: url, 'Tus-Resumable': '1.0.0', 'Upload-Offset': String(stored?.offset ?? existing.offset), 'Cache-Control': 'no-store' });
    if (existing.size !== null) ctx.set('Upload-Length', String(existing.size));
    closeWhileBodyArrives(ctx.req, ctx.res);
    ctx.body = '';
  }

  /** An upload created by another door (IETF Resumable Uploads) on `slotPath`: the slot's one unfinished upload. */
  created(upload: UnfinishedUpload): void {
    this.deps.unfinished.add(upload);
  }

  /** Bytes held by an unfinished upload after a PATCH (one stat), for limits.max_unfinished_bytes. */
  refreshHeld(id: string): void {
    const { unfinished, tusStore } = this.deps;
    if (!unfinished.tracks(id)) return;
    void tusStore.summarize(id).then(
      (s) => {
        if (!s || s.finished) unfinished.remove(id);
        else if (unfinished.get(id)) unfinished.setOffset(id, s.offset);
        else if (s.slotPath) unfinished.add({ id, slotPath: s.slotPath, size: s.size, offset: s.offset, partial: s.partial === true }); // created at another instance
      },
      () => {},
    );
  }

  /** After a refused completion: an upload the refusal discarded no longer holds bytes. */
  async forgetIfGone(id: string): Promise<void> {
    if (!(await this.deps.tusStore.summarize(id).catch(() => null))) this.deps.unfinished.remove(id);
  }
}
