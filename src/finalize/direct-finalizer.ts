import type { Logger } from '../observability/index.js';
import { metrics } from '../observability/index.js';
import type { PublishedStore, PublishOutcome } from '../storage/index.js';
import type { CompletedUpload, UploadFinalizer } from './types.js';

/** Publishes in the request that completed the upload. */
export class DirectFinalizer implements UploadFinalizer {
  constructor(private readonly store: PublishedStore, private readonly log: Logger) {}

  async finalize(upload: CompletedUpload): Promise<PublishOutcome> {
    const outcome = await this.store.publishFile(upload.slotPath, upload.sourceFile, {
      contentType: upload.contentType,
      uploadId: upload.uploadId,
    });
    if (outcome === 'published') {
      metrics.filesPublished.inc({ protocol: upload.protocol });
      this.log.info({ protocol: upload.protocol, uploadId: upload.uploadId, size: upload.size }, 'File published');
    }
    return outcome;
  }
}
