/**
 * Start-up reconciliation between the queue and the files on disk, so that a kill -9 at any
 * point loses no completed upload and leaves nothing behind:
 * - a staged PUT file with no job is an upload whose client never got its 201: removed;
 *   one whose job is done was published (the crash hit between link and cleanup): removed;
 * - a finished tus upload whose data file is still there but that has no job was completed
 *   without being admitted (crash between completion and admission; the client saw it finished
 *   and will not send it again): admitted now, or discarded if another upload took the slot;
 * - with queue_recovery_enabled = false, jobs of the previous run are not processed but kept as
 *   dead letters (ERR_NOT_RECOVERED), so an operator can replay them.
 */
import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { totalInState, type QueueBackend } from '../queue/index.js';
import type { CompletedUpload, FinalizeOutcome } from './types.js';

/** Removes staged files no live job refers to. Resolves how many. */
export async function removeStagingOrphans(backend: QueueBackend, stagingDir: string): Promise<number> {
  let removed = 0;
  for (const name of await readdir(stagingDir)) {
    const job = await backend.get(name);
    if (job !== null && job.state !== 'done') continue;
    await unlink(join(stagingDir, name)).catch(() => {});
    removed += 1;
  }
  return removed;
}

export interface ReadmitResult {
  readonly admitted: number;
  readonly discarded: number;
}

/**
 * Offers every finished tus upload that still has its data file to `admit` (the finalizer's
 * own admission, idempotent for uploads already admitted); 'exists' means another upload holds
 * the slot, and the upload is discarded as the tus endpoint does at completion.
 */
export async function readmitFinishedUploads(
  uploads: AsyncIterable<CompletedUpload>,
  isAdmitted: (upload: CompletedUpload) => Promise<boolean>,
  admit: (upload: CompletedUpload) => Promise<FinalizeOutcome>,
  discard: (upload: CompletedUpload) => Promise<void>,
): Promise<ReadmitResult> {
  let admitted = 0;
  let discarded = 0;
  for await (const upload of uploads) {
    if (await isAdmitted(upload)) continue;
    if ((await admit(upload)) === 'accepted') admitted += 1;
    else {
      await discard(upload).catch(() => {});
      discarded += 1;
    }
  }
  return { admitted, discarded };
}

/** queue_recovery_enabled = false: every job waiting from the previous run becomes a dead letter. */
export async function buryPreviousJobs(backend: QueueBackend, nowMs: number): Promise<number> {
  const owner = 'recovery-disabled';
  const waiting = totalInState(await backend.counts(), 'queued');
  let buried = 0;
  // Claim regardless of backoff times (nowMs = +Infinity is not storable; use a far future).
  const farFuture = Number.MAX_SAFE_INTEGER / 2;
  for (let i = 0; i < waiting; i++) {
    const job = await backend.claimNext(owner, farFuture, 60_000);
    if (job === null) break;
    const ok = await backend.bury(job.id, owner, {
      atMs: nowMs,
      code: 'ERR_NOT_RECOVERED',
      message: 'queue_recovery_enabled is false: not processed after the restart',
    });
    if (ok) buried += 1;
  }
  return buried;
}

