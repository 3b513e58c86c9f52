/**
 * The stores of the configured backend (`storage.backend`), built for app.ts:
 *   file  published files, tus uploads and PUT temp files under data_dir (hard links, fsync)
 *   s3    the same on one bucket ([storage.s3]), built by app-storage-s3.ts. The data directory
 *         keeps only local state (queue journal, secret, locks). Free space of a bucket cannot be
 *         asked: space checks pass and a reached quota answers 507 when S3 refuses a write.
 */
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { isClusterMode, ownSubdir, type Config } from './config/index.js';
import { contentStoreFromConfig, type S3Stores } from './finalize/index.js';
import {
  FileIncomingStore,
  FilePublishedStore,
  FileSpaceProbe,
  TusFileStore,
  metadataReadsFor,
  uploadSources,
  type ContentStore,
  type IncomingStore,
  type PublishedStore,
  type S3Health,
  type S3Probe,
  type S3Scratch,
  type S3Settings,
  type SpaceProbe,
  type TusDoorStore,
  type TusRequestScope,
  type UploadSources,
} from './storage/index.js';

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
    /** Completed PUT bodies below incoming/ (for recover). */
    readonly incomingObjects: S3Stores['incomingObjects'];
  } | null;
  /** The bytes behind finalization jobs' source refs (local files; on S3 also objects). */
  readonly sources: UploadSources;
  /** `[storage.s3] presigned_downloads`: the presigned GET URL of a published file; undefined when off. */
  readonly downloadRedirect: ((path: string, served: { contentType: string; disposition?: string | undefined }) => Promise<string>) | undefined;
  /**
   * Creates what must exist and removes what interrupted uploads left: PUT bodies (resolved as
   * `uploads`) and, on S3, the parts staged locally (`stagedFiles`).
   */
  init(): Promise<{ uploads: number; stagedFiles: number }>;
}

export interface BackendHooks {
  /** S3 unreachable at start is no reason to refuse it (the leftovers wait for the next start). */
  readonly onSweepFailed: (err: unknown) => void;
  /** Every S3 reachability probe; `changed` when it flipped. */
  readonly onProbe?: (probe: S3Probe, changed: boolean) => void;
}

/** The S3 branch is its own module, imported only then: the AWS SDK takes ~0.2 s and ~25 MiB to load. */
export async function backendStores(config: Config, scope: TusRequestScope, hooks: BackendHooks): Promise<BackendStores> {
  const dataDir = config.storage.dataDir;
  if (config.storage.backend === 's3') return (await import('./app-storage-s3.js')).s3BackendStores(config, scope, hooks);
  const reads = metadataReadsFor(isClusterMode(config));
  const published = new FilePublishedStore(dataDir, config.storage, { incomingDir: ownSubdir(config, join(dataDir, 'incoming')), reads });
  const incoming = new FileIncomingStore(published, { fileMode: config.storage.fileMode });
  return {
    backend: 'file',
    published,
    tusStore: new TusFileStore(join(dataDir, 'tus'), config.tus.expirationMs, { scope: () => scope.current(), fileMode: config.storage.fileMode, dirMode: config.storage.dirMode, reads }),
    incoming,
    cas: contentStoreFromConfig(config),
    space: new FileSpaceProbe(dataDir),
    sources: uploadSources(),
    s3: null,
    downloadRedirect: undefined,
    init: async () => {
      await published.init();
      return { uploads: await incoming.sweep(), stagedFiles: 0 };
    },
  };
}
