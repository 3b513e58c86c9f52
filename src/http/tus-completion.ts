/**
 * What happens when a tus upload's last byte arrived (the last PATCH, a creation with the whole
 * body, or a concatenation's final upload): the whole-file checksum the client declared is
 * checked before anything is published, completion is recorded, and the upload is handed to
 * the durable finalization queue, with the sha256 the store computed while the bytes arrived when
 * it covers them all (finalization then never reads them to hash them). Partials of a concatenation stop at "recorded": they are
 * published only as part of their final upload.
 */
import { AppError } from '../errors.js';
import type { Intake } from '../intake/index.js';
import { isFinishedRecord, serverStateOf, storageFullCause, type TusDoorStore } from '../storage/index.js';
import { finishedUploadMatches } from './tus-checksum.js';

export interface CompletionDeps {
  readonly tusStore: TusDoorStore;
  /** Hands the finished file to finalization (Intake.complete). */
  readonly intake: Pick<Intake, 'complete'>;
  /** Test-only ([testing] skip_intake_checksum): leave the declared sha256 to finalization. */
  readonly skipIntakeChecksum?: boolean;
}

export class UploadCompletion {
  constructor(private readonly deps: CompletionDeps) {}

  /**
   * Completes upload `id` of `size` bytes. Rejects with ERR_UPLOAD_CHECKSUM_MISMATCH (422) when
   * its bytes differ from the declared sha256: the upload is removed then (its URL answers 404,
   * so a resuming client starts a new upload, and the slot stays free for a correct retry).
   * Rejects with ERR_FILE_EXISTS when another upload won the slot meanwhile (removed too).
   */
  async complete(id: string, size: number): Promise<void> {
    const { tusStore, intake } = this.deps;
    const info = await tusStore.record(id);
    const state = info && serverStateOf(info);
    if (!state) throw new Error(`tus upload ${id} finished without slot state`);
    // Completed before (a repeated last request): already handed over. An empty upload's record
    // reads finished from its creation on, so it goes on: admission is idempotent per upload.
    if (isFinishedRecord(info) && size > 0) return;
    const sha256 = tusStore.runningSha256(id, size);
    if (state.expectedSha256 !== undefined && !this.deps.skipIntakeChecksum && !(await finishedUploadMatches(tusStore, id, size, state.expectedSha256, sha256))) {
      await tusStore.remove(id).catch(() => {});
      throw new AppError('ERR_UPLOAD_CHECKSUM_MISMATCH');
    }
    // A disk too full for the record: finalization writes it again before admitting the upload.
    await tusStore.markFinished(id).catch((err: unknown) => {
      if (storageFullCause(err) === null || state.concat?.kind === 'partial') throw err;
    });
    if (state.concat?.kind === 'partial') return;
    const outcome = await intake.complete({
      protocol: 'tus',
      uploadId: id,
      slotPath: state.slotPath,
      contentType: state.contentType,
      size,
      source: tusStore.bytesOf(id, size),
      ...(sha256 !== undefined && { sha256 }),
      ...(state.expectedSha256 !== undefined && { expectedSha256: state.expectedSha256 }),
    });
    if (outcome === 'exists') {
      // Another upload (a PUT) won the slot. Removing this one makes a resuming client see 404
      // and fail on the 409 of its next creation, instead of believing it succeeded.
      await tusStore.remove(id).catch(() => {});
      throw new AppError('ERR_FILE_EXISTS');
    }
  }
}
