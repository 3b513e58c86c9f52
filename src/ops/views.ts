/** Turning queue and store records into the JSON views of types.ts (no internal file paths). */
import { toDeadLetter, type DeadLetter } from '../finalize/index.js';
import { PRIORITY_TIERS, type Job, type PriorityTier, type QueueCounts } from '../queue/index.js';
import { secondsSince, type QuarantineRecord, type UploadSummary } from '../storage/index.js';
import type { DeadLetterView, JobView, QuarantineView, UploadView } from './types.js';

export function jobView(job: Job): JobView {
  return {
    id: job.id,
    slotPath: job.slotPath,
    size: job.size,
    priority: job.priority,
    state: job.state,
    attempts: job.attempts,
    enqueuedAtMs: job.enqueuedAtMs,
    availableAtMs: job.availableAtMs,
    finishedAtMs: job.finishedAtMs ?? null,
    lastError: job.errors.at(-1) ?? null,
  };
}

export function uploadView(u: UploadSummary, nowMs: number): UploadView {
  return { ...u, ageSeconds: secondsSince(u.createdAt, nowMs) };
}

export function deadLetterView(d: DeadLetter): DeadLetterView {
  return { ...d, errors: [...d.errors] };
}

export function pendingByTier(counts: QueueCounts): Record<PriorityTier, number> {
  const out = { high: 0, medium: 0, low: 0 };
  for (const t of PRIORITY_TIERS) out[t] = counts.queued[t] + counts.leased[t];
  return out;
}

export function totalOf(byTier: Readonly<Record<PriorityTier, number>>): number {
  return byTier.high + byTier.medium + byTier.low;
}

/** A dead job read from the queue file, as DeadLetterQueue.list shows it. */
export function deadLetterOfJob(job: Job): DeadLetterView {
  return deadLetterView(toDeadLetter(job));
}

/** A quarantine record as the admin API and CLI show it (it holds no file paths). */
export function quarantineView(r: QuarantineRecord): QuarantineView {
  return { ...r };
}
