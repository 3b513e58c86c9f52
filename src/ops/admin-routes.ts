/**
 * Admin API routes for the finalization queue and the recovery tools (the upload routes live in
 * http/admin-api.ts). Mounted by app.ts next to them, behind the same bearer token:
 *
 *   GET    /queue                       status: counts by state and tier, pressure, workers, breakers
 *   GET    /queue/jobs                  ?state=queued,leased&priority=high&limit=100&offset=0
 *   GET    /queue/jobs/:id              one job
 *   POST   /queue/jobs/:id/retry        dead: replay; waiting for backoff: run now
 *   GET    /workers                     worker health
 *   GET    /breakers                    circuit breaker states
 *   GET    /dead-letters                ?limit=100&offset=0 (oldest first), with the total
 *   POST   /dead-letters/replay         replay all
 *   POST   /dead-letters/:id/replay     replay one (404 unknown)
 *   POST   /dead-letters/purge          purge all (bytes too)
 *   DELETE /dead-letters/:id            purge one (404 unknown)
 *   POST   /recover                     ?dry_run=1; NDJSON progress then the report (ndjson.ts)
 *   POST   /verify                      NDJSON progress then the report
 *   GET    /status/data                 what the status page shows
 *   GET    /cluster                     cluster mode: every instance (workers, breakers, journal)
 *   GET    /space                       what holds the data directory's space (space-report.ts)
 */
import type { Context } from 'koa';
import { AppError } from '../errors.js';
import type { FinalizationService } from '../finalize/index.js';
import type { SpaceView } from '../intake/index.js';
import type { AdminRoute } from '../http/index.js';
import { metrics, type Logger } from '../observability/index.js';
import { JOB_STATES, PRIORITY_TIERS, isPriorityTier } from '../queue/index.js';
import { FilePublishedStore, hasClaims, type PublishedStore, type TusUploadStore } from '../storage/index.js';
import { streamRun } from './ndjson.js';
import { spaceReport } from './space-report.js';
import { discardTusUpload } from './tus-uploads.js';
import type { QueueOps } from './queue-ops.js';
import { recover, type RecoveryContext } from './recovery.js';
import type { ClusterStatusView, DeadLetterView, QueueStatusView } from './types.js';
import { verifyPublished } from './verify.js';
import { deadLetterView, jobView, pendingByTier, totalOf } from './views.js';

export interface OpsRouteDeps {
  readonly queue: QueueOps;
  readonly finalizer: Pick<FinalizationService, 'finalize'>;
  readonly tusStore: TusUploadStore;
  readonly published: PublishedStore;
  readonly dataDir: string;
  readonly log: Logger;
  /** The intake's free-space view and the uploads waiting for room to be admitted (GET /space). */
  readonly space?: { view(): Promise<SpaceView>; admissionsWaitingForSpace(): number };
  /** S3: completed PUT bodies below incoming/ for recover to judge. */
  readonly incomingObjects?: RecoveryContext['incomingObjects'];
  /** Online recover leaves files touched this recently alone (they may be in flight). Default 15 min. */
  readonly recoverMinAgeMs?: number;
  /** Staged PUT bodies recover may judge (cluster mode: this instance's own folder). */
  readonly stagingDir?: string;
  /** Cluster mode: every instance's heartbeat. */
  readonly cluster?: { instances(): Promise<ClusterStatusView> };
  readonly now?: () => number;
}

const MAX_LIMIT = 1000;

export function opsAdminRoutes(deps: OpsRouteDeps): AdminRoute[] {
  const { queue, log } = deps;
  const now = deps.now ?? Date.now;
  const status = () => queueStatus(queue, deps.cluster);
  return [
    { method: 'GET', path: '/queue', handle: status },
    {
      method: 'GET',
      path: '/queue/jobs',
      handle: async (_p, ctx) => {
        const states = listParam(ctx, 'state', JOB_STATES);
        const priority = ctx.query.priority;
        if (priority !== undefined && (typeof priority !== 'string' || !isPriorityTier(priority))) throw badRequest(`priority must be one of ${PRIORITY_TIERS.join(', ')}`);
        const jobs = await queue.listJobs({
          ...(states && { states }),
          ...(priority !== undefined && { priority }),
          limit: intParam(ctx, 'limit', 100, 1, MAX_LIMIT),
          offset: intParam(ctx, 'offset', 0, 0, Number.MAX_SAFE_INTEGER),
        });
        return { jobs: jobs.map(jobView) };
      },
    },
    {
      method: 'GET',
      path: '/queue/jobs/:id',
      handle: async ({ id }) => {
        const job = await queue.job(id!);
        if (job === null) throw new AppError('ERR_NOT_FOUND', { message: `No job ${id}` });
        return jobView(job);
      },
    },
    { method: 'POST', path: '/queue/jobs/:id/retry', handle: async ({ id }) => queue.retryJob(id!) },
    { method: 'GET', path: '/workers', handle: async () => ({ workers: queue.workers() }) },
    ...(deps.cluster ? [{ method: 'GET', path: '/cluster', handle: async () => deps.cluster!.instances() } satisfies AdminRoute] : []),
    { method: 'GET', path: '/breakers', handle: async () => ({ breakers: queue.breakers() }) },
    {
      method: 'GET',
      path: '/dead-letters',
      handle: async (_p, ctx) => {
        const limit = intParam(ctx, 'limit', 100, 1, MAX_LIMIT);
        const offset = intParam(ctx, 'offset', 0, 0, Number.MAX_SAFE_INTEGER);
        const [items, counts] = await Promise.all([queue.listDeadLetters({ limit, offset }), queue.counts()]);
        return { total: totalOf(counts.dead), deadLetters: items.map(deadLetterView) };
      },
    },
    { method: 'POST', path: '/dead-letters/replay', handle: async () => ({ replayed: await queue.replayDeadLetters('all') }) },
    {
      method: 'POST',
      path: '/dead-letters/:id/replay',
      handle: async ({ id }) => {
        const n = await queue.replayDeadLetters({ id: id! });
        if (n === 0) throw new AppError('ERR_NOT_FOUND', { message: `No dead letter ${id}` });
        return { replayed: n };
      },
    },
    { method: 'POST', path: '/dead-letters/purge', handle: async () => ({ purged: await queue.purgeDeadLetters('all') }) },
    {
      method: 'DELETE',
      path: '/dead-letters/:id',
      handle: async ({ id }) => {
        const n = await queue.purgeDeadLetters({ id: id! });
        if (n === 0) throw new AppError('ERR_NOT_FOUND', { message: `No dead letter ${id}` });
        return { purged: n };
      },
    },
    {
      method: 'POST',
      path: '/recover',
      handle: async (_p, ctx) => {
        const dryRun = boolParam(ctx, 'dry_run');
        return streamRun(
          ctx,
          (progress) =>
            recover(
              {
                dataDir: deps.dataDir,
                minAgeMs: deps.recoverMinAgeMs ?? 15 * 60_000,
                nowMs: now(),
                offline: false,
                ...(deps.stagingDir !== undefined && { stagingDir: deps.stagingDir }),
                jobById: (id) => queue.job(id),
                jobBySlot: (slot) => queue.jobBySlot(slot),
                publishedRecord: (slot) => deps.published.record(slot),
                publishedExists: async (slot) => (await deps.published.stat(slot)) !== null,
                readmit: (upload) => deps.finalizer.finalize(upload),
                discardUpload: (id) => discardTusUpload(deps.tusStore, id),
                ...(!(deps.published instanceof FilePublishedStore) && { tusStore: deps.tusStore }),
                ...(deps.incomingObjects && { incomingObjects: deps.incomingObjects }),
                ...(hasClaims(deps.published) && { claims: deps.published }),
              },
              { dryRun },
              progress,
            ).then((report) => {
              if (!dryRun && report.items.length > 0) log.info({ items: report.items.length, failed: report.failed }, 'Recovery run completed');
              return report;
            }),
          (err) => log.error({ err }, 'Recovery run failed'),
        );
      },
    },
    {
      method: 'POST',
      path: '/verify',
      handle: async (_p, ctx) =>
        streamRun(
          ctx,
          (progress, signal) =>
            verifyPublished({
              published: deps.published,
              ...(deps.published instanceof FilePublishedStore && { dataDir: deps.dataDir }),
              slotBusy: async (slot) => isLive(await queue.jobBySlot(slot)),
              progress,
              signal,
            }),
          (err) => log.error({ err }, 'Verify run failed'),
        ),
    },
    {
      method: 'GET',
      path: '/space',
      handle: async () => {
        const space = deps.space;
        return spaceReport({
          dataDir: deps.dataDir,
          nowMs: now(),
          filesystem: async () => {
            if (space === undefined) return null;
            const v = await space.view();
            if (v.totalBytes === null || v.freeBytes === null || v.reserveBytes === null || v.headroomBytes === null) return null;
            const { totalBytes, freeBytes, reserveBytes, promisedBytes, headroomBytes } = v;
            return { totalBytes, freeBytes, reserveBytes, promisedBytes, headroomBytes, emergency: v.level === 'low' };
          },
          unfinished: () => deps.tusStore.listUnfinished(),
          deadLetterCount: async () => totalOf((await queue.counts()).dead),
          deadLetters: (page) => queue.listDeadLetters(page),
          admissionsWaitingForSpace: space?.admissionsWaitingForSpace() ?? null,
        });
      },
    },
    {
      method: 'GET',
      path: '/status/data',
      handle: async () => {
        const [q, uploads, streaming] = await Promise.all([status(), deps.tusStore.listUnfinished(), gaugeValue(metrics.activeUploads)]);
        const total = q.deadLetters;
        const recent: DeadLetterView[] = (await queue.listDeadLetters({ limit: 10, offset: Math.max(0, total - 10) })).map(deadLetterView).reverse();
        return { generatedAtMs: now(), queue: q, uploads: { streaming, incomplete: uploads.length }, recentDeadLetters: recent };
      },
    },
  ];
}

/** A job that may still publish its slot (dead letters too: a replay finishes their publish). */
const isLive = (job: { state: string } | null): boolean => job !== null && job.state !== 'done';

export async function queueStatus(queue: QueueOps, cluster?: OpsRouteDeps['cluster']): Promise<QueueStatusView> {
  const counts = await queue.counts();
  const pressure = queue.pressure();
  return {
    counts,
    pending: pendingByTier(counts),
    deadLetters: totalOf(counts.dead),
    pressure: { level: pressure.level, fill: Math.round(pressure.fill * 1000) / 1000 },
    workers: queue.workers().map((w) => ({ ...w })),
    breakers: queue.breakers().map((b) => ({ ...b })),
    ...(cluster && { cluster: await cluster.instances() }),
  };
}

async function gaugeValue(gauge: { get(): Promise<{ values: Array<{ value: number }> }> }): Promise<number> {
  return (await gauge.get()).values.reduce((n, v) => n + v.value, 0);
}

const badRequest = (message: string) => new AppError('ERR_BAD_REQUEST', { message });

function single(ctx: Context, name: string): string | undefined {
  const v = ctx.query[name];
  if (Array.isArray(v)) throw badRequest(`${name} given more than once`);
  return v;
}

function intParam(ctx: Context, name: string, def: number, min: number, max: number): number {
  const v = single(ctx, name);
  if (v === undefined) return def;
  if (!/^\d{1,16}$/.test(v) || Number(v) < min || Number(v) > max) throw badRequest(`${name} must be a whole number from ${min} to ${max}`);
  return Number(v);
}

function boolParam(ctx: Context, name: string): boolean {
  const v = single(ctx, name);
  if (v === undefined) return false;
  if (['1', 'true', 'yes', ''].includes(v)) return true;
  if (['0', 'false', 'no'].includes(v)) return false;
  throw badRequest(`${name} must be true or false`);
}

function listParam<T extends string>(ctx: Context, name: string, allowed: readonly T[]): T[] | undefined {
  const v = single(ctx, name);
  if (v === undefined) return undefined;
  const parts = v.split(',').filter((s) => s !== '');
  // An empty list (`?state=`, `?state=,`) names nothing: a client's mistake, not "every state".
  if (parts.length === 0) throw badRequest(`${name} must name at least one of ${allowed.join(', ')}`);
  for (const p of parts) if (!allowed.includes(p as T)) throw badRequest(`${name} must be among ${allowed.join(', ')}`);
  return parts as T[];
}
