/**
 * What the admin API and the status page need from the running finalization queue, and the
 * adapter that gets it from the FinalizationService.
 */
import { AppError } from '../errors.js';
import type { DeadLetter, FinalizationService, Pressure } from '../finalize/index.js';
import type { DeadLetterTarget, Job, ListDeadOptions, QueueCounts, WorkerView } from '../queue/index.js';
import type { BreakerView, ListJobsQuery, RetryView } from './types.js';

/** The running queue as operators see it. Rejects with ERR_SERVER_SHUTDOWN once stopped. */
export interface QueueOps {
  counts(): Promise<QueueCounts>;
  pressure(): Pressure;
  workers(): readonly WorkerView[];
  breakers(): readonly BreakerView[];
  job(id: string): Promise<Job | null>;
  jobBySlot(slotPath: string): Promise<Job | null>;
  /** Default: queued and running jobs in line order. */
  listJobs(query: ListJobsQuery): Promise<Job[]>;
  /** Rejects with ERR_NOT_FOUND (unknown id) or ERR_JOB_NOT_RETRYABLE (running, done). */
  retryJob(id: string): Promise<RetryView>;
  listDeadLetters(options: ListDeadOptions): Promise<DeadLetter[]>;
  replayDeadLetters(target: DeadLetterTarget): Promise<number>;
  purgeDeadLetters(target: DeadLetterTarget): Promise<number>;
}

export function queueOpsOf(finalizer: FinalizationService, now: () => number = Date.now): QueueOps {
  const service = finalizer.admin;
  return {
    counts: () => service.counts(),
    pressure: () => finalizer.intake.pressure(),
    workers: () => service.workers(),
    breakers: () => service.breakers(),
    job: (id) => service.job(id),
    jobBySlot: (slotPath) => service.jobBySlot(slotPath),
    listJobs: (query) => service.listJobs(query),
    async retryJob(id) {
      const job = await service.job(id);
      if (job === null) throw new AppError('ERR_NOT_FOUND', { message: `No job ${id}` });
      switch (job.state) {
        case 'dead': {
          const moved = await service.replayDeadLetters({ id });
          return { id, action: moved === 1 ? 'replayed' : 'none', state: moved === 1 ? 'queued' : job.state };
        }
        case 'queued': {
          if (job.availableAtMs <= now()) return { id, action: 'none', state: 'queued' };
          const done = await service.retryJob(id);
          // The dispatcher is woken at once: the job may be running already.
          return { id, action: done ? 'made_available' : 'none', state: (await service.job(id))?.state ?? 'queued' };
        }
        case 'leased':
          throw new AppError('ERR_JOB_NOT_RETRYABLE', { message: `Job ${id} is running now` });
        case 'done':
          throw new AppError('ERR_JOB_NOT_RETRYABLE', { message: `Job ${id} is done` });
      }
    },
    listDeadLetters: (o) => service.listDeadLetters(o),
    replayDeadLetters: (t) => service.replayDeadLetters(t),
    purgeDeadLetters: (t) => service.purgeDeadLetters(t),
  };
}
