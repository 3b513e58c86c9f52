/**
 * The one error type that crosses module boundaries. `code` is stable once released and is what
 * clients, logs and metrics key on; `message` is safe to show a client. Internal details travel in
 * `cause` and only ever reach the log.
 */
export const ERRORS = {
  ERR_BAD_PATH: { status: 400, message: 'The upload path is malformed' },
  ERR_BAD_REQUEST: { status: 400, message: 'The request is malformed' },
  ERR_SIGNATURE_MISSING: { status: 403, message: 'The upload URL carries no signature' },
  ERR_SIGNATURE_INVALID: { status: 403, message: 'The upload signature does not match' },
  ERR_SIGNATURE_EXPIRED: { status: 403, message: 'The upload URL has expired' },
  ERR_SIZE_MISMATCH: { status: 403, message: 'The upload size differs from the signed size' },
  ERR_TYPE_MISMATCH: { status: 403, message: 'The content type differs from the signed type' },
  ERR_SLOT_MISSING: { status: 403, message: 'Upload creation needs a signed slot (Upload-Slot header or slot query parameter)' },
  ERR_UNAUTHORIZED: { status: 401, message: 'A valid admin token is required' },
  ERR_NOT_FOUND: { status: 404, message: 'Not found' },
  // The metrics on the main listener answer scrapers on this host only (http/metrics-access.ts).
  ERR_METRICS_LOCAL_ONLY: { status: 403, message: 'Metrics are served to local scrapers only; see [metrics] listen and public' },
  ERR_UPLOAD_FINISHED: { status: 409, message: 'The upload is finished and can no longer be terminated' },
  ERR_METHOD_NOT_ALLOWED: { status: 405, message: 'Method not allowed' },
  ERR_FILE_EXISTS: { status: 409, message: 'A file already exists at this path' },
  ERR_LENGTH_REQUIRED: { status: 411, message: 'Content-Length is required to check the signed size' },
  ERR_TOO_LARGE: { status: 413, message: 'The upload exceeds the maximum allowed size' },
  ERR_EXTENSION_NOT_ALLOWED: { status: 415, message: 'Files of this type are not accepted by this server' },
  ERR_PRECONDITION_FAILED: { status: 412, message: 'The file does not match the request\'s If-Match or If-Unmodified-Since' },
  ERR_EXPECTATION_FAILED: { status: 417, message: 'The only expectation this server meets is 100-continue' },
  ERR_RANGE_NOT_SATISFIABLE: { status: 416, message: 'The requested range is not satisfiable' },
  ERR_UPLOAD_INCOMPLETE: { status: 400, message: 'The request body ended before the declared length' },
  // 423, not 5xx: tus-js-client retries 423, but restarts from byte 0 after a 5xx on HEAD.
  ERR_UPLOAD_LOCKED: { status: 423, message: 'The upload is busy with another request, retry shortly' },
  ERR_SERVER_SHUTDOWN: { status: 503, message: 'The server is shutting down, retry shortly' },
  ERR_SERVER_BUSY: { status: 503, message: 'Too many uploads are in progress, retry shortly' },
  // Reasons an upload request was ended by the server; the client resumes from the kept bytes.
  ERR_UPLOAD_STALLED: { status: 408, message: 'No upload data arrived for too long' },
  // No longer sent (issue 18.8: a deadline never ends a moving body; see ERR_UPLOAD_TOO_SLOW); kept, codes are never reused.
  ERR_REQUEST_DEADLINE: { status: 503, message: 'The upload request ran past its deadline; resume from the stored offset' },
  ERR_UPLOAD_TOO_SLOW: { status: 408, message: 'The upload stayed below the minimum rate for too long' },
  // 409: another request owns this slot or upload (issue 9.1, 18.3); a silent one is taken over instead.
  ERR_UPLOAD_IN_PROGRESS: { status: 409, message: 'Another request is uploading to this slot; retry once it has finished' },
  ERR_UPLOAD_TAKEN_OVER: { status: 409, message: 'A newer request for this upload took over' },
  // One unfinished tus upload per slot (issue 9.2): a second, different creation names the first.
  ERR_UPLOAD_EXISTS: { status: 409, message: 'This slot already has an unfinished upload; resume it' },
  ERR_RATE_LIMITED: { status: 429, message: 'Too many uploads from this client, retry later' },
  // A client's unfinished uploads may hold a share of the disk ([limits] max_promised_bytes_per_client).
  ERR_CLIENT_STORAGE_SHARE: { status: 429, message: "This client's unfinished uploads already hold its share of the storage; finish or delete them, or retry later" },
  ERR_UNFINISHED_FULL: { status: 503, message: 'Too much data is held by unfinished uploads, retry later' },
  ERR_NOT_READY: { status: 503, message: 'The file is still being processed, retry shortly' },
  // Storage pressure (docs/storage-space.md): the upload does not fit, or the store ran full
  // mid-body (received bytes are kept for tus). 507 is a 5xx on purpose: clients retry it.
  ERR_INSUFFICIENT_STORAGE: { status: 507, message: 'Not enough storage space for this upload, retry later' },
  ERR_INTERNAL: { status: 500, message: 'Internal server error' },
  // Finalization queue. ERR_QUEUE_FULL refuses a new upload in emergency mode (with Retry-After);
  // the others name why a finalization attempt failed: they reach job histories, logs and
  // dead letters, never a client.
  ERR_QUEUE_FULL: { status: 503, message: 'The server is busy finishing other uploads, retry later' },
  ERR_JOB_TIMEOUT: { status: 500, message: 'Finalization did not finish in time' },
  ERR_CHECKSUM_MISMATCH: { status: 422, message: 'The uploaded bytes do not match the declared checksum' },
  ERR_SOURCE_MISSING: { status: 500, message: 'The uploaded file to finalize is missing' },
  ERR_STORED_SIZE_MISMATCH: { status: 500, message: 'The stored file size differs from the upload size' },
  ERR_STORAGE_UNAVAILABLE: { status: 503, message: 'Storage is unavailable, retry later' },
  ERR_WEBHOOK_FAILED: { status: 502, message: 'The notification webhook did not accept the event' },
  // Malware scanning (docs/scanning.md). 451: the file exists but is withheld; clients must not retry.
  ERR_SCAN_FAILED: { status: 503, message: 'The malware scanner gave no verdict, retry later' },
  ERR_QUARANTINED: { status: 451, message: 'The file is withheld: it was flagged by the malware scan or is held for review' },
  // Admin API (operations).
  ERR_JOB_NOT_RETRYABLE: { status: 409, message: 'The job is not waiting for a retry' },
  // tus protocol edges (issue 10.6): answered as JSON like every other error.
  ERR_TUS_RESUMABLE_REQUIRED: { status: 412, message: 'This server speaks tus 1.0.0: send Tus-Resumable: 1.0.0' },
  // 409 like an offset conflict: tus-js-client then asks HEAD for the offset and sees the upload complete.
  ERR_UPLOAD_COMPLETE: { status: 409, message: 'Every byte of this upload has arrived; nothing more can be appended' },
  // Refused by the HTTP parser, before any request exists (src/http/client-errors.ts).
  ERR_HEADERS_TOO_LARGE: { status: 431, message: 'The request headers are too large' },
  ERR_HEADERS_TIMEOUT: { status: 408, message: 'The request headers did not arrive in time' },
  // tus extensions and finished uploads (docs/tus.md).
  // 460 is the tus checksum extension's own status: the chunk was discarded, the offset kept.
  ERR_CHUNK_CHECKSUM_MISMATCH: { status: 460, message: 'The chunk does not match its Upload-Checksum; it was discarded, resend it from the same offset' },
  ERR_CHECKSUM_UNSUPPORTED: { status: 400, message: 'The checksum algorithm is not supported (see Tus-Checksum-Algorithm)' },
  ERR_CHECKSUM_MALFORMED: { status: 400, message: 'The declared checksum is malformed' },
  // A whole-file checksum (PUT digest headers, tus sha256/checksum metadata) answered to the client; nothing was published.
  ERR_UPLOAD_CHECKSUM_MISMATCH: { status: 422, message: 'The file does not match its declared checksum; nothing was published, upload it again' },
  ERR_UPLOAD_NOT_FINISHED: { status: 409, message: 'The upload is not finished; its file can be downloaded once every byte arrived' },
  ERR_GONE: { status: 410, message: 'The file was deleted; its slot cannot be used again' },
  ERR_DELETE_FINISHED_DISABLED: { status: 403, message: 'Finished uploads cannot be deleted on this server' },
  ERR_CONCAT_MALFORMED: { status: 400, message: 'Upload-Concat is malformed' },
  ERR_CONCAT_PART_INVALID: { status: 400, message: 'A part of the concatenation is unknown, unfinished or not a partial upload' },
  ERR_CONCAT_PART_FOREIGN: { status: 403, message: 'A part of the concatenation was created under another slot' },
  ERR_CONCAT_PART_USED: { status: 409, message: 'A part of the concatenation was already used' },
  ERR_CONCAT_LENGTH_MISMATCH: { status: 400, message: 'The parts together differ from the signed size' },
  ERR_CONCAT_TOO_MANY_PARTS: { status: 400, message: 'The slot has as many partial uploads as allowed (max_concat_parts)' },
  ERR_CONCAT_UNSUPPORTED: { status: 400, message: 'Concatenation (Upload-Concat) is not offered with this storage backend' },
  ERR_CONCAT_TOO_LARGE: { status: 413, message: 'The partial uploads of this slot together would exceed its size' },
  // IETF Resumable Uploads (docs/rufh.md): answered as application/problem+json with the draft's problem types.
  ERR_UPLOAD_OFFSET_MISMATCH: { status: 409, message: 'Upload-Offset differs from the offset of the upload resource (see Upload-Offset)' },
  ERR_UPLOAD_COMPLETED: { status: 400, message: 'The upload resource is already complete' },
  ERR_UPLOAD_LENGTH_INCONSISTENT: { status: 400, message: 'The upload length is inconsistent with the upload resource' },
  ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'An append needs Content-Type: application/partial-upload' },
  // Cluster mode: Redis does not answer (degraded mode); uploads go on, this lookup cannot.
  ERR_QUEUE_UNAVAILABLE: { status: 503, message: 'The shared queue is unreachable, retry shortly' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Extra response headers, e.g. Retry-After. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: ErrorCode, options?: { message?: string; cause?: unknown; headers?: Record<string, string> }) {
    super(options?.message ?? ERRORS[code].message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.headers = options?.headers ?? {};
  }

  static is(err: unknown, code?: ErrorCode): err is AppError {
    return err instanceof AppError && (code === undefined || err.code === code);
  }
}

/** Client-facing view of any error: AppErrors keep their code; everything else is ERR_INTERNAL. */
export function toClientError(err: unknown): AppError {
  return err instanceof AppError ? err : new AppError('ERR_INTERNAL', { cause: err });
}
