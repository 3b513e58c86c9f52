/** A finished tus upload of a slot as finalization takes it (start-up admission and `recover` build the same one). */
import type { FinishedUpload, UploadServerState } from '../storage/index.js';
import type { CompletedUpload } from './types.js';

export function completedTusUpload(u: FinishedUpload, state: UploadServerState): CompletedUpload {
  const { slotPath, contentType, expectedSha256 } = state;
  return {
    protocol: 'tus',
    uploadId: u.id,
    slotPath,
    contentType,
    size: u.size,
    source: u.source,
    ...(expectedSha256 !== undefined && { expectedSha256 }),
  };
}
