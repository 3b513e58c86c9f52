/**
 * The S3 client of the S3 backend, from `[storage.s3]`. Credentials left empty in the config
 * come from the SDK's standard chain (environment, shared profile, instance role).
 */
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';

// On Node 20 the SDK prints a nine-line NodeVersionSupportWarning to stderr at the first client
// (its releases after January 2027 need Node 22; the versions in package-lock.json run on 20).
// The server logs JSON lines and supports Node >= 20.19, so that block is noise in its logs;
// docs/storage-s3.md says it. An operator who wants it back sets the variable to "false".
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export interface S3Settings {
  readonly bucket: string;
  readonly region: string;
  /** '' for AWS itself. */
  readonly endpoint: string;
  readonly forcePathStyle: boolean;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** '' or ending in '/'. */
  readonly keyPrefix: string;
  readonly partBytes: number;
  /** A connection not made within this fails; default 5 s. */
  readonly connectTimeoutMs?: number;
  /** A request that sends and receives nothing for this long fails (socket idle time); default 60 s. */
  readonly requestTimeoutMs?: number;
}

export const DEFAULT_S3_CONNECT_TIMEOUT_MS = 5_000;
export const DEFAULT_S3_REQUEST_TIMEOUT_MS = 60_000;

export function s3ClientConfig(s: S3Settings): S3ClientConfig {
  return {
    region: s.region,
    ...(s.endpoint !== '' && {
      endpoint: s.endpoint,
      // Current SDKs frame stream bodies as aws-chunked with trailing checksums; S3-compatible
      // servers that do not know it store the framing as data or refuse the body (RGW: 411
      // MissingContentLength). Checksums only where an operation requires them.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    }),
    forcePathStyle: s.forcePathStyle,
    // Without these the SDK waits on a black-holed S3 for ever (its requestTimeout only warns):
    // socketTimeout is idle time, so a large part that keeps moving is never cut.
    requestHandler: {
      connectionTimeout: s.connectTimeoutMs ?? DEFAULT_S3_CONNECT_TIMEOUT_MS,
      socketTimeout: s.requestTimeoutMs ?? DEFAULT_S3_REQUEST_TIMEOUT_MS,
    },
    ...(s.accessKeyId !== '' && { credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey } }),
  };
}

export function createS3Client(s: S3Settings): S3Client {
  return new S3Client(s3ClientConfig(s));
}

/** The key layout below `keyPrefix`. */
export const S3_LAYOUT = {
  /** tus uploads in progress and their records (@tus/s3-store: <id>, <id>.info, <id>.part). */
  uploads: 'uploads/',
  /** Published files at their slot path. */
  files: 'files/',
  /** Who publishes a slot path (the conditional write that makes publishing exclusive). */
  claims: 'claims/',
  /** Content-addressed entries for dedup: cas/<2 hex>/<sha256>. */
  cas: 'cas/',
} as const;

export { isS3NotFound, isS3PreconditionFailed } from './s3-errors.js';
