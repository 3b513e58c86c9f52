/**
 * What a finalization job carries in its queue payload, and the job id of an upload.
 * Stored as JSON in the queue: only plain values.
 */
import type { JsonObject } from '../queue/index.js';
import type { CompletedUpload } from './types.js';

export interface FinalizeJobPayload {
  readonly protocol: 'tus' | 'put';
  readonly uploadId: string;
  readonly contentType: string;
  /** The bytes to publish; owned by the job (removed once published, or when the dead letter is purged). */
  readonly sourceFile: string;
  /** Lowercase hex; null when the client declared one we could not read; absent when none. */
  readonly expectedSha256?: string | null;
  /** When the last byte arrived. */
  readonly receivedAtMs: number;
}

/** Stable per upload, so a repeated admission of the same upload is recognised. */
export function jobIdOf(upload: Pick<CompletedUpload, 'protocol' | 'uploadId'>): string {
  return `${upload.protocol}-${upload.uploadId}`;
}

export function toPayload(p: FinalizeJobPayload): JsonObject {
  return {
    protocol: p.protocol,
    uploadId: p.uploadId,
    contentType: p.contentType,
    sourceFile: p.sourceFile,
    receivedAtMs: p.receivedAtMs,
    ...(p.expectedSha256 !== undefined && { expectedSha256: p.expectedSha256 }),
  };
}

/** Throws TypeError on a payload this version did not write. */
export function fromPayload(payload: JsonObject): FinalizeJobPayload {
  const { protocol, uploadId, contentType, sourceFile, receivedAtMs, expectedSha256 } = payload;
  if (
    (protocol !== 'tus' && protocol !== 'put') ||
    typeof uploadId !== 'string' ||
    typeof contentType !== 'string' ||
    typeof sourceFile !== 'string' ||
    typeof receivedAtMs !== 'number' ||
    !(expectedSha256 === undefined || expectedSha256 === null || typeof expectedSha256 === 'string')
  ) {
    throw new TypeError('not a finalization job payload');
  }
  return { protocol, uploadId, contentType, sourceFile, receivedAtMs, ...(expectedSha256 !== undefined && { expectedSha256 }) };
}
