/**
 * The stores of storage.backend = "s3" for app.ts (app-storage.ts imports this module only then):
 * tus through @tus/s3-store below uploads/, PUT bodies as multipart uploads below incoming/,
 * published files below files/, dedup entries below cas/, all in [storage.s3] bucket.
 */
import { join } from 'node:path';
import { stateDirOf, type Config } from './config/index.js';
import type { BackendHooks, BackendStores } from './app-storage.js';
import { RequestScopedKvStore } from './cluster/request-scoped-kv-store.js';
import { incomingObjectsOf } from './finalize/s3-stores.js';
import { S3Scratch, S3_SCRATCH_DIR, UNKNOWN_CAPACITY, uploadSources, type S3Settings, type TusRequestScope } from './storage/index.js';
import { createS3Client, S3ContentStore, S3DownloadSigner, S3Health, S3IncomingStore, s3ObjectAccess, S3PublishedStore, S3TusDoorStore } from './storage/s3.js';

/** Copies up to this size are one CopyObject (S3 allows 5 GiB); larger ones are copied in parts. */
const SINGLE_COPY_MAX_BYTES = 1024 * 1024 * 1024;

/** The reachability probe's deadline and period: a black-holed S3 shows on /ready within seconds. */
const S3_PROBE_TIMEOUT_MS = 3_000;
const S3_PROBE_INTERVAL_MS = 5_000;

export function s3BackendStores(config: Config, scope: TusRequestScope, hooks: BackendHooks): BackendStores {
  const { onSweepFailed } = hooks;
  const settings: S3Settings = config.storage.s3;
  const client = createS3Client(settings);
  const shared = { client, bucket: settings.bucket, keyPrefix: settings.keyPrefix };
  const copy = { multipartAboveBytes: SINGLE_COPY_MAX_BYTES, partBytes: settings.partBytes };
  const incoming = new S3IncomingStore({ ...shared, partBytes: settings.partBytes });
  const scratch = new S3Scratch(join(stateDirOf(config), S3_SCRATCH_DIR), config.storage.dirMode);
  return {
    backend: 's3',
    published: new S3PublishedStore({ ...shared, ...copy }),
    tusStore: new S3TusDoorStore({
      settings,
      expirationMs: config.tus.expirationMs,
      scope: () => scope.current(),
      scratchDir: scratch.dir,
      // Several instances change `.info` and end uploads: no entry outlives its request.
      ...(config.redis.url !== '' && { cache: new RequestScopedKvStore(() => scope.current()) }),
    }),
    incoming,
    cas: config.finalize.dedup ? new S3ContentStore({ ...shared, ...copy }) : null,
    space: UNKNOWN_CAPACITY,
    sources: uploadSources(s3ObjectAccess(client)),
    s3: {
      client,
      bucket: settings.bucket,
      settings,
      scratch,
      incomingObjects: incomingObjectsOf(client, settings.bucket, settings.keyPrefix),
      health: new S3Health({
        client,
        bucket: settings.bucket,
        probeTimeoutMs: Math.min(S3_PROBE_TIMEOUT_MS, settings.requestTimeoutMs ?? S3_PROBE_TIMEOUT_MS),
        intervalMs: S3_PROBE_INTERVAL_MS,
        ...(hooks.onProbe && { onProbe: hooks.onProbe }),
      }),
    },
    downloadRedirect: config.storage.s3.presignedDownloads
      ? signedUrlOf(new S3DownloadSigner({ ...shared, ttlSeconds: Math.ceil(config.storage.s3.presignedTtlMs / 1000) }))
      : undefined,
    // Cluster mode: other instances' PUTs share incoming/; only day-old leftovers are theirs to lose.
    init: async () => {
      const stagedFiles = await scratch.reset();
      const uploads = await incoming.sweep(config.redis.url === '' ? 0 : 24 * 3600_000).catch((err: unknown) => {
        onSweepFailed(err);
        return 0;
      });
      return { uploads, stagedFiles };
    },
  };
}

const signedUrlOf = (signer: S3DownloadSigner) => (path: string, served: { contentType: string; disposition?: string | undefined }) => signer.url(path, served);
