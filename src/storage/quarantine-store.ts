/**
 * Files the scanner flagged (or that were too large to scan, with scan.oversize = "quarantine"):
 * kept out of the published tree, never served, until an operator releases (publishes) or
 * deletes them. One entry per finalization job; its id is the job id ("tus-<upload id>",
 * "put-<request id>"). The entry also holds its slot path: nothing else is published there.
 */
import type { UploadSource } from './upload-source.js';

export type QuarantineReason = 'infected' | 'oversize';

export interface QuarantineRecord {
  /** The finalization job id. */
  readonly id: string;
  readonly slotPath: string;
  readonly size: number;
  readonly sha256: string;
  readonly contentType: string;
  readonly protocol: 'tus' | 'put';
  readonly uploadId: string;
  /** When the upload's last byte arrived, ms since the epoch. */
  readonly receivedAtMs: number;
  readonly quarantinedAtMs: number;
  readonly reason: QuarantineReason;
  /** The scanner's signature name ("Eicar-Test-Signature"); null when the file was not scanned. */
  readonly signature: string | null;
}

export interface QuarantineStore {
  /**
   * Moves `source`'s bytes in under `record.id`, record first. 'moved': the source is gone (a
   * local file renamed in); 'copied': the bytes were copied (server-side on S3, streamed from
   * elsewhere) and the caller removes the source. Idempotent: a repeat after a crash finishes
   * the move. Rejects with an ENOENT error when neither the source nor the quarantined bytes exist.
   */
  admit(record: QuarantineRecord, source: UploadSource): Promise<'moved' | 'copied'>;
  /** null for an unknown (or malformed) id. */
  get(id: string): Promise<QuarantineRecord | null>;
  /** The entry holding `slotPath`, or null. */
  bySlot(slotPath: string): Promise<QuarantineRecord | null>;
  /** Every entry, oldest first. */
  list(): Promise<QuarantineRecord[]>;
  /**
   * The entry's bytes as a source of the store's own backend (a local file that release
   * hard-links into the published tree; an S3 object it copies server-side). Reading it errors
   * on the stream when the bytes are gone.
   */
  content(record: QuarantineRecord): UploadSource;
  /** Removes the entry and its bytes; false when there was none. */
  remove(id: string): Promise<boolean>;
}
