/**
 * The finalization queue's log sentences and metrics, all in one place (docs/queue.md lists
 * them). Messages are fixed sentences operators grep (with the design's numbers in them);
 * details go in fields. The FinalizationService decides; this file reports.
 */
import type { Logger } from '../observability/index.js';
import { metrics } from '../observability/index.js';
import {
  PRIORITY_TIERS,
  WORKER_STATUSES,
  type Clock,
  type DeadReason,
  type DispatcherEvents,
  type HealthAssessment,
  type Job,
  type JobError,
  type PriorityTier,
  type SpillEvent,
  type WorkerStatus,
} from '../queue/index.js';
import type { BreakerTransition } from './circuit-breaker.js';
import type { PublishedEvent } from './pipeline.js';

const BREAKER_STATES = ['closed', 'open', 'half_open'] as const;

export function setBreakerGauge(dependency: string, state: string): void {
  for (const s of BREAKER_STATES) metrics.circuitBreakerState.set({ dependency, state: s }, s === state ? 1 : 0);
}

export function setWorkerGauge(workerId: number, status: WorkerStatus): void {
  for (const s of WORKER_STATUSES) metrics.workerHealthStatus.set({ worker_id: String(workerId), status: s }, s === status ? 1 : 0);
}

export function logBreakerTransition(log: Logger, dependency: string, t: BreakerTransition): void {
  setBreakerGauge(dependency, t.to);
  const fields = { dependency, from: t.from, to: t.to, reason: t.reason, consecutiveFailures: t.consecutiveFailures, failureRate: t.failureRate };
  if (t.to === 'open' && t.reason === 'consecutive_failures') log.warn(fields, `Circuit breaker opened after ${t.consecutiveFailures} consecutive failures`);
  else if (t.to === 'open' && t.reason === 'failure_rate') log.warn(fields, `Circuit breaker opened (failure rate ${Math.round((t.failureRate ?? 0) * 100)}%)`);
  else if (t.to === 'open') log.warn(fields, 'Circuit breaker reopened: probe failed');
  else if (t.to === 'half_open') log.info(fields, 'Circuit breaker half-open: probing');
  else log.info(fields, 'Circuit breaker closed');
}

export function logWorkerStatus(log: Logger, workerId: number, status: WorkerStatus, previous: WorkerStatus, a: HealthAssessment): void {
  setWorkerGauge(workerId, status);
  const fields = { workerId, previous, errorRate: a.errorRate, avgMs: a.avgMs === null ? null : Math.round(a.avgMs), reason: a.reason };
  if (status === 'failed') {
    const why = a.reason === 'error_rate' ? `error rate ${Math.round((a.errorRate ?? 0) * 100)}%` : 'stuck';
    log.info(fields, `Worker ${workerId} marked as unhealthy (${why})`);
  } else if (status === 'slow') log.info(fields, `Worker ${workerId} marked as slow`);
  else log.info(fields, `Worker ${workerId} marked as healthy`);
}

/** hmac_spillover_items_total counts every job moved out of memory; the log line marks each episode once. */
export function logSpill(log: Logger, e: SpillEvent): void {
  if (e.kind === 'drained') {
    log.info({ moved: e.moved }, 'Spillover drained: every waiting job is back in memory');
    return;
  }
  metrics.spilloverItems.inc(e.moved);
  if (e.episodeStart) log.info({ moved: e.moved, diskOnly: e.diskOnly }, `Spillover activated: ${e.moved} items moved to disk`);
}

/** hmac_dead_letter_queue_length: add `n` kept dead letters, or set the total. */
export function countDeadLetters(n: number, mode: 'add' | 'set' = 'add'): void {
  if (mode === 'set') metrics.deadLetterQueueLength.set(n);
  else metrics.deadLetterQueueLength.inc(n);
}

/** hmac_queue_length by tier: jobs waiting or running. */
export function setQueueLengths(pending: Readonly<Record<PriorityTier, number>>): void {
  for (const tier of PRIORITY_TIERS) metrics.queueLength.set({ priority: tier }, pending[tier]);
}

export interface DispatcherTelemetryOptions {
  readonly log: Logger;
  readonly clock: Clock;
  readonly jobTimeoutMs: number;
  /** A job left the pending counts (done); dead jobs go to `onDead`. */
  readonly onDone: (job: Job) => void;
  readonly onDead: (job: Job, workerId: number, error: JobError, why: DeadReason) => void;
}

/** The dispatcher's events as metrics and log lines, plus the service's own bookkeeping hooks. */
export function dispatcherTelemetry(o: DispatcherTelemetryOptions): DispatcherEvents {
  const { log } = o;
  return {
    onAttempt: (_job, workerId, ok, durationMs) => {
      metrics.workerProcessed.inc({ worker_id: String(workerId) });
      if (!ok) metrics.workerErrors.inc({ worker_id: String(workerId) });
      metrics.queueProcessingTime.observe(durationMs / 1000);
    },
    onDone: (job, workerId, durationMs) => {
      metrics.queueWaitTime.observe(Math.max(0, o.clock.now() - job.enqueuedAtMs) / 1000);
      o.onDone(job);
      log.debug({ jobId: job.id, workerId, durationMs }, 'Finalization job done');
    },
    onRetry: (job, workerId, error, reason, delayMs) => {
      metrics.retries.inc({ reason });
      log.warn({ jobId: job.id, workerId, attempt: job.attempts + 1, code: error.code, reason: error.message, delayMs }, 'Finalization attempt failed, will retry');
    },
    onDead: (job, workerId, error, why) => o.onDead(job, workerId, error, why),
    onTimeout: (job, workerId) => {
      metrics.timeouts.inc({ type: 'queue' });
      setWorkerGauge(workerId, 'failed');
      log.warn({ jobId: job.id, workerId, timeoutMs: o.jobTimeoutMs }, `Worker ${workerId} stuck past the job timeout: replaced, job requeued`);
    },
    onWorkerStatus: (workerId, status, previous, a) => logWorkerStatus(log, workerId, status, previous, a),
    onError: (err, during) => log.error({ err, during }, 'Finalization queue operation failed'),
  };
}

/** A job that failed for good: kept in the dead letter queue, or discarded when it is turned off. */
export function logDeadLetter(log: Logger, job: Job, workerId: number, error: JobError, why: DeadReason, maxRetries: number, kept: boolean): void {
  if (kept) metrics.deadLetterItems.inc();
  const fields = { jobId: job.id, slotPath: job.slotPath, workerId, code: error.code, reason: error.message, attempts: job.attempts + 1 };
  const failed = why === 'retries_exhausted' ? `Upload failed after ${maxRetries} retries` : 'Upload failed permanently';
  log.error(fields, kept ? `${failed}, moved to dead letter queue` : `${failed}, discarded (dead letter queue disabled)`);
}

export function logPublished(log: Logger, e: PublishedEvent): void {
  if (!e.fresh) return;
  metrics.filesPublished.inc({ protocol: e.payload.protocol });
  if (e.dedupHit) metrics.dedupHits.inc();
  log.info(
    { protocol: e.payload.protocol, uploadId: e.payload.uploadId, jobId: e.job.id, size: e.job.size, sha256: e.sha256, dedup: e.dedupHit },
    'File published',
  );
}

/** The store (S3) was unreachable or answered 5xx: postponed under the storage breaker, no attempt spent. */
export function logStoreUnreachable(log: Logger, job: Job, err: unknown, postponeMs: number): void {
  log.warn({ jobId: job.id, slotPath: job.slotPath, reason: describeFault(err), postponeMs }, 'Finalization postponed: storage unreachable');
}

/** The error's name or code, never its message alone (an SDK message may carry a URL). */
function describeFault(err: unknown): string {
  const e = err as { name?: string; code?: string; $metadata?: { httpStatusCode?: number } } | null;
  const status = e?.$metadata?.httpStatusCode;
  return [e?.code ?? e?.name ?? 'Error', status !== undefined ? `HTTP ${status}` : null].filter(Boolean).join(' ');
}

/** A publish found the disk full: postponed, no attempt spent (docs/storage-space.md). */
export function logPublishPostponed(log: Logger, job: Job, err: unknown, postponeMs: number): void {
  metrics.storageFull.inc({ where: 'publish' });
  log.warn({ jobId: job.id, slotPath: job.slotPath, reason: (err as Error).message, postponeMs }, 'Finalization postponed: storage full');
}
