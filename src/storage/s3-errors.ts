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
