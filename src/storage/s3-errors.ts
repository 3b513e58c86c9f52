/**
 * What an S3 error means, read from the error's name and HTTP status alone: no SDK import, so
 * code that only tells errors apart (the file quarantine, the source resolver) does not load the
 * AWS SDK on the file backend.
 */

/** True for the SDK's "there is no such object / upload" answers (RGW says NoSuchKey where AWS says NoSuchUpload). */
export function isS3NotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NotFound' || e?.name === 'NoSuchKey' || e?.name === 'NoSuchUpload' || e?.$metadata?.httpStatusCode === 404;
}

/** True when a conditional write lost: the key exists already. */
export function isS3PreconditionFailed(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'PreconditionFailed' || e?.$metadata?.httpStatusCode === 412;
}

/** A short cause naming no address or key (/ready, and a start that fails on S3). */
export function unreachableReason(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; code?: string; $metadata?: { httpStatusCode?: number }; cause?: { code?: string } };
  const status = e?.$metadata?.httpStatusCode;
  const code = e?.code ?? e?.cause?.code;
  if (e?.name === 'AbortError' || e?.name === 'TimeoutError' || code === 'ETIMEDOUT') return `S3 did not answer within ${Math.round(timeoutMs / 100) / 10}s`;
  if (code === 'ECONNREFUSED') return 'S3 refused the connection';
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'S3 closed the connection';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'the S3 host name does not resolve';
  if (status === 403) return 'S3 refused the credentials (403)';
  if (status === 404) return 'the bucket does not exist (404)';
  if (typeof status === 'number') return `S3 answered ${status}`;
  return 'S3 cannot be reached';
}
