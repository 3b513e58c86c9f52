/**
 * The finalization queue's log sentences and metrics (docs/queue.md lists them). Messages are
 * fixed sentences operators grep (with the design's numbers in them); details go in fields.
 */
import type { Logger } from '../observability/index.js';
import { metrics } from '../observability/index.js';
import { WORKER_STATUSES, type HealthAssessment, type SpillEvent, type WorkerStatus } from '../queue/index.js';
import type { BreakerTransition } from './circuit-breaker.js';

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
