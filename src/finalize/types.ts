import type { PublishOutcome } from '../storage/index.js';

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
}

/** Turns a completed upload into a published file. */
export interface UploadFinalizer {
  /** 'exists' when the slot path already holds a file; the source is then left in place. */
  finalize(upload: CompletedUpload): Promise<PublishOutcome>;
}
