
/** An upload whose last byte has arrived, handed over for finalization. */
export interface CompletedUpload {
  protocol: 'tus' | 'put';
  /** tus upload id, or the PUT's request id. */
  uploadId: string;
  slotPath: string;
  contentType: string;
  size: number;
  /** Local file holding the bytes; consumed when the file is published. */
  sourceFile: string;
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
