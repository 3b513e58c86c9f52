/**
 * What a finalization job carries in its queue payload, and the job id of an upload.
 * Stored as JSON in the queue: only plain values.
 */
import type { JsonObject } from '../queue/index.js';
import { fileSourceRef } from '../storage/index.js';
import type { CompletedUpload } from './types.js';

export interface FinalizeJobPayload {
  readonly protocol: 'tus' | 'put';
  readonly uploadId: string;
  readonly contentType: string;
  /**
   * The bytes to publish, as an UploadSource ref (storage/source-resolver.ts reads it); owned by
   * the job (removed once published, or when the dead letter is purged).
   */
  readonly source: string;
  /** Lowercase hex; null when the client declared one we could not read; absent when none. */
  readonly expectedSha256?: string | null;
  /** sha256 of the bytes as this server received them (CompletedUpload.sha256); absent: finalization reads the source. */
  readonly receivedSha256?: string;
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
    source: p.source,
    receivedAtMs: p.receivedAtMs,
    ...(p.expectedSha256 !== undefined && { expectedSha256: p.expectedSha256 }),
    ...(p.receivedSha256 !== undefined && { receivedSha256: p.receivedSha256 }),
  };
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * Throws TypeError on a payload this version did not write. Payloads of the previous version
 * name a local `sourceFile` instead of a `source` ref: read as a `file:` ref, so their journals drain.
 */
export function fromPayload(payload: JsonObject): FinalizeJobPayload {
  const { protocol, uploadId, contentType, source, sourceFile, receivedAtMs, expectedSha256, receivedSha256 } = payload;
  const ref = typeof source === 'string' ? source : typeof sourceFile === 'string' ? fileSourceRef(sourceFile) : null;
  if (
    (protocol !== 'tus' && protocol !== 'put') ||
    typeof uploadId !== 'string' ||
    typeof contentType !== 'string' ||
    ref === null ||
    typeof receivedAtMs !== 'number' ||
    !(expectedSha256 === undefined || expectedSha256 === null || typeof expectedSha256 === 'string') ||
    !(receivedSha256 === undefined || (typeof receivedSha256 === 'string' && SHA256_HEX.test(receivedSha256)))
  ) {
    throw new TypeError('not a finalization job payload');
  }
  return {
    protocol,
    uploadId,
    contentType,
    source: ref,
    receivedAtMs,
    ...(expectedSha256 !== undefined && { expectedSha256 }),
    ...(receivedSha256 !== undefined && { receivedSha256 }),
  };
}
