
import type { UploadSource } from '../storage/index.js';

/** An upload whose last byte has arrived, handed over for finalization. */
export interface CompletedUpload {
  protocol: 'tus' | 'put';
  /** tus upload id, or the PUT's request id. */
  uploadId: string;
  slotPath: string;
  contentType: string;
  size: number;
  /** The bytes (a local file or an S3 object); consumed when the file is published. */
  source: UploadSource;
  /**
   * Lowercase hex sha256 of all `size` bytes, computed while THIS process received every one of
   * them (a PUT body, tus PATCHes followed from offset 0); absent otherwise (a resume after a
   * restart, a chunk taken back, a running digest evicted): finalization then reads the source.
   */
  sha256?: string;
  /**
   * SHA-256 the client declared (checksum.ts: expectedSha256FromHeaders for PUT,
   * expectedSha256FromMetadata for tus): lowercase hex, null when declared but unreadable,
   * absent when none. For tus, when absent, the finalizer reads the upload's metadata itself.
   */
  expectedSha256?: string | null;
}

/**
 * 'accepted': the upload is durably on its way to publication (published already, or admitted
 * to finalization); the source file now belongs to the finalizer.
 * 'exists': the slot path already holds (or is claimed by) another file; the source is left in place.
 */
export type FinalizeOutcome = 'accepted' | 'exists';

/** Takes over a completed upload; the client's last response waits for this. */
export interface UploadFinalizer {
  finalize(upload: CompletedUpload): Promise<FinalizeOutcome>;
}
