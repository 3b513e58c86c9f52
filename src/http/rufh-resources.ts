/**
 * What an IETF resumable upload resource is right now, read from the tus store it lives in: its
 * record and offset (an unknown or expired one is 404), its limits (Upload-Limit), and the link
 * from a slot to the unfinished resource its upgraded PUT created.
 */
import { AppError } from '../errors.js';
import type { Intake } from '../intake/index.js';
import { isFinishedRecord, type StoredUpload, type TusDoorStore, type UploadServerState } from '../storage/index.js';
import type { UploadLimits } from './rufh-versions.js';

export interface RufhResourcesDeps {
  readonly tusStore: TusDoorStore;
  readonly intake: Pick<Intake, 'maxUploadBytes'>;
  /** [tus] expiration; 0: unfinished uploads never expire. */
  readonly expirationMs: number;
  readonly now: () => number;
}

export class RufhResources {
  constructor(private readonly deps: RufhResourcesDeps) {}

  /** The resource's record and offset; ERR_NOT_FOUND for an unknown, foreign or expired one. */
  async stateOf(id: string): Promise<{ info: StoredUpload; offset: number }> {
    const info = await this.deps.tusStore.record(id);
    if (!info || !info.hfs || this.expired(info)) throw new AppError('ERR_NOT_FOUND');
    if (isFinishedRecord(info)) return { info, offset: info.size };
    const upload = await this.deps.tusStore.getUpload(id).catch(() => {
      throw new AppError('ERR_NOT_FOUND');
    });
    return { info, offset: upload.offset };
  }

  expired(info: StoredUpload): boolean {
    const ms = this.deps.expirationMs;
    return ms > 0 && !isFinishedRecord(info) && info.creation_date !== undefined && this.deps.now() > Date.parse(info.creation_date) + ms;
  }

  /** max-size: the signed size, else the server's cap; max-age: until the unfinished upload expires (from now when not created yet). */
  limitsOf(state: UploadServerState | undefined, createdAt?: string): UploadLimits {
    const ms = this.deps.expirationMs;
    const now = this.deps.now();
    const created = createdAt !== undefined ? Date.parse(createdAt) : now;
    return {
      maxSizeBytes: Math.min(state?.signedSize ?? Infinity, this.deps.intake.maxUploadBytes),
      maxAgeS: ms > 0 ? (created + ms - now) / 1000 : undefined,
    };
  }

  /** The resource created by the slot's upgraded PUT, when it is still unfinished (a stale link is forgotten). */
  async unfinishedOf(slotPath: string): Promise<string | undefined> {
    const id = await this.deps.tusStore.resumableOf(slotPath);
    if (id === undefined) return undefined;
    const info = await this.deps.tusStore.record(id);
    if (info && !isFinishedRecord(info) && !this.expired(info)) return id;
    await this.deps.tusStore.setResumableOf(slotPath, undefined);
    return undefined;
  }

  /** Links the slot to its upgraded PUT's resource, so a repeated PUT is sent to resume it. */
  link(slotPath: string, id: string): Promise<void> {
    return this.deps.tusStore.setResumableOf(slotPath, id);
  }

  /** Forgets the slot's link when it still names `id` (completed, cancelled or replaced). */
  async unlink(slotPath: string, id: string): Promise<void> {
    if ((await this.deps.tusStore.resumableOf(slotPath)) === id) await this.deps.tusStore.setResumableOf(slotPath, undefined);
  }
}
