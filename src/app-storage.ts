/**
 * The stores of the configured backend (`storage.backend`), built for app.ts:
 *   file  published files, tus uploads and PUT temp files under data_dir (hard links, fsync)
 *   s3    the same on one bucket ([storage.s3]): tus through @tus/s3-store below uploads/, PUT
 *         bodies as multipart uploads below incoming/, published files below files/, dedup
 *         entries below cas/. The data directory keeps only local state (queue journal, secret,
 *         locks). Free space of a bucket cannot be asked: space checks pass and a reached quota
 *         answers 507 when S3 refuses a write.
 */
import { join } from 'node:path';
import { isClusterMode, ownSubdir, stateDirOf, type Config } from './config/index.js';
import { contentStoreFromConfig } from './finalize/index.js';
import {
  FileIncomingStore,
  FilePublishedStore,
  FileSpaceProbe,
  S3ContentStore,
  S3DownloadSigner,
  S3Health,
  S3IncomingStore,
  S3PublishedStore,
  S3Scratch,
  S3TusDoorStore,
  S3_SCRATCH_DIR,
  TusFileStore,
  UNKNOWN_CAPACITY,
  createS3Client,
  metadataReadsFor,
  type ContentStore,
  type IncomingStore,
  type PublishedStore,
  type S3Probe,
  type S3Settings,
  type SpaceProbe,
  type TusDoorStore,
  type TusRequestScope,
} from './storage/index.js';
import type { S3Client } from '@aws-sdk/client-s3';
import { RequestScopedKvStore } from './cluster/request-scoped-kv-store.js';

export interface BackendStores {
  readonly backend: 'file' | 's3';
  readonly published: PublishedStore;
  readonly tusStore: TusDoorStore;
  readonly incoming: IncomingStore;
  /** Dedup's content store; null when [finalize] dedup is off. */
  readonly cas: (ContentStore & { release?(sha256: string): Promise<boolean> }) | null;
  readonly space: SpaceProbe;
  /** The S3 client (full keys), bucket and reachability probe; null for the file backend. */
  readonly s3: {
    readonly client: S3Client;
    readonly bucket: string;
    readonly settings: S3Settings;
    readonly health: S3Health;
    /** Local files of uploads in flight (s3-scratch.ts): emptied by init(), made the TMPDIR by the server. */
    readonly scratch: S3Scratch;
  } | null;
  /** `[storage.s3] presigned_downloads`: the presigned GET URL of a published file; undefined when off. */
  readonly downloadRedirect: ((path: string, served: { contentType: string; disposition?: string | undefined }) => Promise<string>) | undefined;
  /**
   * Creates what must exist and removes what interrupted uploads left: PUT bodies (resolved as
   * `uploads`) and, on S3, the parts staged locally (`stagedFiles`).
   */
  init(): Promise<{ uploads: number; stagedFiles: number }>;
}

/** Copies up to this size are one CopyObject (S3 allows 5 GiB); larger ones are copied in parts. */
const SINGLE_COPY_MAX_BYTES = 1024 * 1024 * 1024;

/** The reachability probe's deadline and period: a black-holed S3 shows on /ready within seconds. */
const S3_PROBE_TIMEOUT_MS = 3_000;
const S3_PROBE_INTERVAL_MS = 5_000;

export interface BackendHooks {
  /** S3 unreachable at start is no reason to refuse it (the leftovers wait for the next start). */
  readonly onSweepFailed: (err: unknown) => void;
  /** Every S3 reachability probe; `changed` when it flipped. */
  readonly onProbe?: (probe: S3Probe, changed: boolean) => void;
}

export function backendStores(config: Config, scope: TusRequestScope, hooks: BackendHooks): BackendStores {
  const { onSweepFailed } = hooks;
  const dataDir = config.storage.dataDir;
  if (config.storage.backend === 's3') {
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
      s3: {
        client,
        bucket: settings.bucket,
        settings,
        scratch,
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
  const reads = metadataReadsFor(isClusterMode(config));
  const published = new FilePublishedStore(dataDir, config.storage, { incomingDir: ownSubdir(config, join(dataDir, 'incoming')), reads });
  const incoming = new FileIncomingStore(published, { fileMode: config.storage.fileMode });
  return {
    backend: 'file',
    published,
    tusStore: new TusFileStore(join(dataDir, 'tus'), config.tus.expirationMs, { scope: () => scope.current(), fileMode: config.storage.fileMode, reads }),
    incoming,
    cas: contentStoreFromConfig(config),
    space: new FileSpaceProbe(dataDir),
    s3: null,
    downloadRedirect: undefined,
    init: async () => {
      await published.init();
      return { uploads: await incoming.sweep(), stagedFiles: 0 };
    },
  };
}

const signedUrlOf = (signer: S3DownloadSigner) => (path: string, served: { contentType: string; disposition?: string | undefined }) => signer.url(path, served);
