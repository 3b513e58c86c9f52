/**
 * The composition root: the only module that knows every part. Builds stores, finalizer,
 * intake and the HTTP parts from the config and hands them to each other; routing and the
 * listener's lifecycle live in src/http/ (router.ts, listener.ts).
 */
import { mkdir } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { ownSubdir, stateDirOf, type Config } from './config/index.js';
import { resolveSecret, slotPolicyFromConfig } from './auth/index.js';
import { QuarantineAdmin, finalizationFromConfig, openQuarantineStore } from './finalize/index.js';
import { RufhUploads, TusEndpoint, buildRoutes, readinessChecks, requestContext, startListener, type RunningApp } from './http/index.js';
import { Intake, StorageSpace, UploadLifecycle, uploadPolicyFromConfig, type GuardDeps } from './intake/index.js';
import { metrics, type Logger } from './observability/index.js';
import { acquireDataDirLock, dataDirLockPath, discardTusUpload, opsAdminRoutes, opsReadinessChecks, quarantineAdminRoutes, storageReadiness, queueOpsOf, removeServerLock, writeServerLock, type DataDirLock } from './ops/index.js';
import { MemoryLocker, TusRequestScope, UnfinishedUploads, foreignEntries, isStoreUnreachable } from './storage/index.js';
import { backendStores } from './app-storage.js';
import { BodySlots, ClientLimits, ConcurrencyPermits, clientKeyOf } from './transfer/index.js';

export interface AppOptions {
  log: Logger;
  now?: () => number;
}

export type { RunningApp };

export interface App {
  start(): Promise<RunningApp>;
}

/** How often unfinished uploads are read again while the store did not answer at start. */
const STORE_REREAD_MS = 5_000;

export async function buildApp(config: Config, options: AppOptions): Promise<App> {
  // One server per data directory: locked before anything in it is opened (issue 9.7). In cluster
  // mode the data directory is shared and the lock is this instance's, in its own directory.
  await mkdir(config.storage.dataDir, { recursive: true, mode: config.storage.dirMode });
  const stateDir = stateDirOf(config);
  await mkdir(stateDir, { recursive: true, mode: config.storage.dirMode });
  const dirLock = acquireDataDirLock(dataDirLockPath(stateDir));
  try {
    return await composeApp(config, options, dirLock);
  } catch (err) {
    dirLock.release();
    throw err;
  }
}

async function composeApp(config: Config, options: AppOptions, dirLock: DataDirLock): Promise<App> {
  const { log } = options;
  const stateDir = stateDirOf(config);
  const now = options.now ?? Date.now;
  const dataDir = config.storage.dataDir;

  const secret = await resolveSecret(config.security.secret, dataDir);
  if (secret.origin !== 'config') {
    const { file, generated, loosePermissions } = secret.origin;
    if (generated) log.info({ file }, 'Generated a new signing secret; configure your XMPP server with the secret stored in this file');
    if (loosePermissions) log.warn({ file }, 'The secret file is readable by other users; run chmod 600 on it');
  }
  if (config.testing.skipIntakeChecksum) log.warn('Test switch: declared tus checksums are left to finalization (dead letters)');
  const policy = slotPolicyFromConfig(config, secret.secret);
  const uploadPolicy = uploadPolicyFromConfig(config);
  const { secrets: _secrets, ...shown } = policy; // never log secrets
  log.info({ ...shown, uploads: uploadPolicy }, 'Upload policy');

  // Cluster mode ([redis] url, docs/cluster.md): locks, queue and notifications on Redis, per-instance
  // state in its own directory; null keeps the embedded single-node mode as it is.
  const lockAcquireTimeoutMs = config.tus.lockDrainMs * 2 + 2_000;
  // Loaded only in cluster mode (Redis clients and BullMQ).
  const cluster = config.redis.url === '' ? null : new (await import('./cluster/index.js')).ClusterMode(config, { log, lockAcquireTimeoutMs });

  // The tus endpoint hands the store per-request facts (new upload's record, chunk checksum) through this scope.
  const tusScope = new TusRequestScope();
  // Published files, tus uploads and PUT bodies on the configured backend (app-storage.ts).
  const stores = await backendStores(config, tusScope, {
    onSweepFailed: (err) => log.warn({ err: String(err) }, 'Could not remove what interrupted PUTs left on S3; retried at the next start'),
    onProbe: (probe, changed) => {
      metrics.storageBackendReachable.set({ backend: 's3' }, probe.reachable ? 1 : 0);
      if (!changed) return;
      if (probe.reachable) log.info({ backend: 's3' }, 'S3 answers again');
      else log.warn({ backend: 's3', reason: probe.reason }, 'S3 does not answer: /ready fails until it does');
    },
  });
  const { published, tusStore, incoming } = stores;
  // The file backend is the data directory, without which the server does not run: always 1.
  if (!stores.s3) metrics.storageBackendReachable.set({ backend: 'file' }, 1);
  log.info(stores.s3 ? { backend: 's3', bucket: stores.s3.bucket, keyPrefix: stores.s3.settings.keyPrefix, endpoint: stores.s3.settings.endpoint || 'aws' } : { backend: 'file', dataDir }, 'Storage backend');
  const swept = await stores.init();
  if (swept.uploads > 0) log.info({ uploads: swept.uploads, backend: stores.backend }, 'Removed what PUTs interrupted by a previous stop left');
  if (swept.stagedFiles > 0) log.info({ files: swept.stagedFiles, dir: stores.s3?.scratch.dir }, 'Removed S3 parts a previous run had staged locally');
  const foreign = await foreignEntries(dataDir);
  if (foreign.count > 0) {
    log.warn({ dataDir, count: foreign.count, entries: foreign.sample }, 'The data directory holds entries this server did not make; they are not served (files of the Go HMAC File Server go under files/: docs/go-migration.md)');
  }
  // Finalization queue (docs/queue.md): every completed upload is admitted as a durable job and
  // published by the workers.
  // Files the malware scan withheld (docs/scanning.md): never served; their URLs answer 451.
  // On S3 it is in the bucket (quarantine/ below the key prefix), shared by every instance.
  const { store: quarantine, migrated } = await openQuarantineStore(config, stores.s3?.client ?? null, (err) =>
    log.warn({ err: String(err) }, 'Could not move quarantined files from the data directory into the bucket; retried at the next start'),
  );
  if (migrated > 0) log.info({ entries: migrated }, 'Moved quarantined files from the data directory into the bucket');
  // An unreachable S3 at start is not fatal: the gauge is then set at the first scrape.
  const quarantinedAtStart = await quarantine.list().then(
    (l) => l.length,
    (err: unknown) => (log.warn({ err: String(err) }, 'Could not read the quarantine at start'), Number.NaN),
  );
  if (!Number.isNaN(quarantinedAtStart)) metrics.quarantineFiles.set(quarantinedAtStart);
  const finalizer = finalizationFromConfig(config, {
    published,
    tusStore,
    // The backend's content store and the sources behind job refs (local files, S3 objects).
    content: stores.cas,
    sources: stores.sources,
    log,
    quarantine,
    ...(cluster && { cluster: { openBackend: () => cluster.openBackend(), announcer: cluster.announcer } }),
  });
  cluster?.reportFrom({ workers: () => finalizer.admin.workers(), breakers: () => finalizer.admin.breakers() });
  const lifecycle = new UploadLifecycle();
  const permits = new ConcurrencyPermits({
    capacity: config.server.maxConcurrentUploads,
    agingMs: 30_000,
    timeoutMs: config.workers.queueTimeoutMs,
    onChange: (_active, waiting) => metrics.concurrencyWaiting.set(waiting),
  });
  // Issue 18 / 9.1: one body per slot with takeover of silent holders; per-client caps, keyed by
  // the client address the request log resolved (X-Forwarded-For's last hop with trust_proxy).
  // In cluster mode they count across the cluster in Redis (these local ones answer while it is away).
  const localClients = new ClientLimits({ maxBodies: config.limits.maxBodiesPerClient, creationsPerMinute: config.limits.creationsPerMinutePerClient, ipv6PrefixBits: config.limits.ipv6ClientPrefix });
  const sharedLimits = cluster?.limits(localClients, (bytes) => metrics.unfinishedBytes.set(bytes));
  const clients = sharedLimits?.clients ?? localClients;
  const clientOf = (req: IncomingMessage) => requestContext.get(req)?.clientAddress ?? req.socket.remoteAddress ?? 'unknown';
  const guard: GuardDeps = { config, permits, lifecycle, log, slots: new BodySlots(), clients, holders: new WeakMap(), clientOf };
  // Issue 9.2: one unfinished tus upload per slot, and a cap on the bytes they hold.
  const unfinished = sharedLimits?.unfinished ?? new UnfinishedUploads((bytes) => metrics.unfinishedBytes.set(bytes));
  const loadUnfinished = async () => {
    const listed = await tusStore.listUnfinished();
    unfinished.reset(listed.flatMap((u) => (u.slotPath ? [{ id: u.id, slotPath: u.slotPath, size: u.size, offset: u.offset, partial: u.partial === true }] : [])));
    return listed;
  };
  const limits = { clients, unfinished: { committedBytes: () => unfinished.committedBytes, reserve: (bytes: number) => unfinished.reserve(bytes), maxBytes: config.limits.maxUnfinishedBytes }, now };
  // Waiters get the lock once the holder drained (lock_drain_timeout); past twice that plus a
  // margin the holder is stuck, and the waiter answers 423 (retried by clients).
  const locker = cluster?.locker ?? new MemoryLocker(lockAcquireTimeoutMs);
  // Free space (docs/storage-space.md): the reserve and the bytes promised to unfinished uploads.
  const space = new StorageSpace({
    probe: stores.space,
    reserve: config.storage.minFreeSpace,
    uploads: tusStore,
    log,
    onLevel: (level) => level === 'ok' && finalizer.spaceReturned(),
    clientShare: { of: (req) => clientKeyOf(clientOf(req), config.limits.ipv6ClientPrefix), max: config.limits.maxPromisedBytesPerClient, minBytes: config.server.maxUploadBytes },
  });
  tusStore.watchRemovals((id) => space.forget(id)); // terminated, expired, discarded: nothing promised any more
  const intake = new Intake({ policy, uploadPolicy, published, control: finalizer.intake, finalizer, guard, limits, space, now, quarantine });
  const tus = new TusEndpoint({
    config,
    intake,
    locker,
    tusStore,
    unfinished,
    published,
    pending: finalizer,
    control: finalizer.intake,
    now,
    scope: tusScope,
    cas: stores.cas?.release ? { release: (sha256) => stores.cas!.release!(sha256) } : null,
    quarantine,
  });
  // IETF Resumable Uploads: a third front door over the same intake, tus store, locker and queue.
  const rufh = new RufhUploads({ config, intake, locker, tusStore, scope: tusScope, authorizeCreation: (ctx) => tus.authorizeCreation(ctx), slots: tus.slots, refuseBesideParts: (slotPath) => tus.refuseBesideParts(slotPath), now, quarantine });

  // ops (issue 5): queue, dead-letter, recovery and status-page routes; queue readiness checks.
  const queueOps = queueOpsOf(finalizer);
  const adminRoutes = opsAdminRoutes({
    queue: queueOps,
    finalizer,
    tusStore,
    published,
    dataDir,
    log,
    space: { view: () => space.view(), admissionsWaitingForSpace: () => finalizer.admissionsWaitingForSpace },
    ...(stores.s3 && { incomingObjects: stores.s3.incomingObjects }),
    ...(cluster && { stagingDir: ownSubdir(config, join(dataDir, 'queue', 'staging')), cluster: { instances: () => cluster.instances() } }),
  });
  const quarantineAdmin = new QuarantineAdmin({ quarantine, published, cas: stores.cas, discardTusUpload: (id) => discardTusUpload(tusStore, id), log });
  adminRoutes.push(...quarantineAdminRoutes(quarantineAdmin));
  metrics.exposeLabelSets({ workers: config.workers.count });
  // Cluster mode reports Redis in /ready's `cluster` field: degraded mode keeps taking uploads.
  // /ready's `storage` section; an S3 that does not answer fails it (ops/readiness.ts says why the breaker alone does not).
  const storageReady = storageReadiness({ backend: stores.backend, ...(stores.s3 && { s3: stores.s3.health }), breakers: () => finalizer.admin.breakers() });
  const readiness = readinessChecks(
    dataDir,
    lifecycle,
    [...opsReadinessChecks({ queue: queueOps }), { name: 'storage_space', run: () => space.problem() }, ...(storageReady.check ? [storageReady.check] : [])],
    { cluster: cluster ? () => cluster.readiness() : undefined, storage: storageReady.section },
  );
  const routes = buildRoutes({ config, log, intake, tus, rufh, published, incoming, downloadRedirect: stores.downloadRedirect, pending: finalizer, tusStore, locker, adminRoutes, readiness, quarantine });

  // Finalization recovers first; the unfinished-upload index and the space account are then read
  // from the store. An S3 that does not answer at start is no reason to refuse it (/ready says
  // so): they are read again every few seconds until it answers.
  const readUnfinished = async () => {
    const listed = await loadUnfinished();
    await space.start();
    // Every byte stored, never marked finished: the process died between an upload's last byte
    // and its completion. Completed now, so it is published without waiting for its client's HEAD.
    const whole = listed.filter((u) => u.size !== null && u.size > 0 && u.offset === u.size);
    if (whole.length > 0) {
      void Promise.allSettled(whole.map((u) => tus.completeIfWhole(u.id))).then((done) => {
        const completed = done.filter((d) => d.status === 'fulfilled' && d.value).length;
        const failed = done.filter((d) => d.status === 'rejected').length;
        if (completed > 0) log.info({ completed }, 'Completed uploads that held every byte but were never marked finished (a stop between their last byte and completion)');
        if (failed > 0) log.warn({ failed }, 'Could not complete uploads that hold every byte; their next HEAD tries again');
      });
    }
  };
  let rereadTimer: NodeJS.Timeout | undefined;
  const rereadUntilReachable = () => {
    rereadTimer = setInterval(() => {
      readUnfinished().then(
        () => {
          clearInterval(rereadTimer);
          log.info('Unfinished uploads read from the store, which answers again');
        },
        (err: unknown) => {
          if (!isStoreUnreachable(err)) log.warn({ err }, 'Could not read the unfinished uploads');
        },
      );
    }, STORE_REREAD_MS);
    rereadTimer.unref();
  };
  const background = {
    start: async () => {
      stores.s3?.health.start();
      stores.s3?.scratch.use(); // @tus/s3-store stages its parts in os.tmpdir() (s3-scratch.ts)
      tusStore.primeRecords?.(); // the three read every tus record: once, before any request (docs/performance.md)
      try {
        await finalizer.start();
        await readUnfinished().catch((err: unknown) => {
          if (!isStoreUnreachable(err)) throw err;
          log.warn({ err: String(err) }, 'The store does not answer: unfinished uploads are read once it does');
          rereadUntilReachable();
        });
        const unreadable = (await tusStore.unreadableRecords?.()) ?? [];
        if (unreadable.length > 0) {
          log.warn({ count: unreadable.length, uploads: unreadable.slice(0, 10), expirationMs: config.tus.expirationMs }, 'Some tus upload records cannot be read (not JSON): those uploads answer 404; `recover` removes them now, expiry once their record is older than [tus] expiration');
        }
      } finally {
        tusStore.unprimeRecords?.();
      }
    },
    stop: async (graceMs: number) => {
      clearInterval(rereadTimer);
      stores.s3?.health.stop();
      space.stop();
      await finalizer.stop(graceMs);
    },
  };

  return {
    start: () =>
      startListener({
        config,
        log,
        ...routes,
        lifecycle,
        background: cluster?.around(background) ?? background,
        sweepExpired: async () => {
          const removed = await tusStore.deleteExpired();
          if (removed > 0) await loadUnfinished();
          return removed;
        },
        announce: {
          up: ({ baseUrl, adminUrl }) => {
            cluster?.setBaseUrl(baseUrl);
            return writeServerLock(stateDir, { pid: process.pid, startedAtMs: Date.now(), baseUrl, adminUrl });
          },
          down: async () => {
            await removeServerLock(stateDir);
            dirLock.release();
          },
        },
      }).catch((err: unknown) => {
        dirLock.release(); // a start that failed (port in use) gives the data directory back
        throw err;
      }),
  };
}
