import type { Logger } from '../observability/index.js';
import { metrics } from '../observability/index.js';
import type { PublishedStore } from '../storage/index.js';
import type { CompletedUpload, FinalizeOutcome, UploadFinalizer } from './types.js';

/** Publishes in the request that completed the upload. */
export class DirectFinalizer implements UploadFinalizer {
  constructor(private readonly store: PublishedStore, private readonly log: Logger) {}

  async finalize(upload: CompletedUpload): Promise<FinalizeOutcome> {
    const outcome = await this.store.publishFile(upload.slotPath, upload.sourceFile, {
      contentType: upload.contentType,
      uploadId: upload.uploadId,
    });
    if (outcome === 'exists') return 'exists';
    metrics.filesPublished.inc({ protocol: upload.protocol });
    this.log.info({ protocol: upload.protocol, uploadId: upload.uploadId, size: upload.size }, 'File published');
    return 'accepted';
  }
}
