/**
 * The dead-letter API: jobs that failed permanently or ran out of retries, kept with their
 * error history until an operator replays or purges them. Purging also discards the upload's
 * bytes (and, for tus, its record, so a resuming client starts over) and frees the slot.
 */
import type { DeadLetterTarget, Job, JobError, ListDeadOptions, PriorityTier, QueueBackend } from '../queue/index.js';
import { fromPayload, type FinalizeJobPayload } from './job-payload.js';

export interface DeadLetter {
  readonly id: string;
  readonly slotPath: string;
  readonly size: number;
  readonly priority: PriorityTier;
  readonly protocol: string;
  readonly uploadId: string;
  /** Attempts since the last replay. */
  readonly attempts: number;
  /** Every failure, oldest first, across replays. */
  readonly errors: readonly JobError[];
  readonly enqueuedAtMs: number;
  readonly buriedAtMs: number;
}

export interface DeadLetterQueueOptions {
  readonly backend: () => QueueBackend;
  /** Removes an upload's bytes (and tus record); must tolerate what is already gone. */
  readonly discard: (payload: FinalizeJobPayload) => Promise<void>;
  readonly now: () => number;
  /** The set of live jobs changed (replay), or dead letters did: recount and wake the workers. */
  readonly onChange: () => Promise<void>;
}

const PAGE = 100;

export class DeadLetterQueue {
  readonly #o: DeadLetterQueueOptions;

  constructor(options: DeadLetterQueueOptions) {
    this.#o = options;
  }

  /** Oldest burial first. Default limit 100. */
  async list(options: ListDeadOptions = {}): Promise<DeadLetter[]> {
    return (await this.#o.backend().listDead(options)).map(toDeadLetter);
  }

  /** Back into the queue with attempts reset (history kept). Resolves how many moved. */
  async replay(target: DeadLetterTarget): Promise<number> {
    const moved = await this.#o.backend().replayDead(target, this.#o.now());
    if (moved > 0) await this.#o.onChange();
    return moved;
  }

  /** Deletes dead letters and their bytes for good. Resolves how many. */
  async purge(target: DeadLetterTarget): Promise<number> {
    const backend = this.#o.backend();
    let purged = 0;
    if (target !== 'all') {
      const job = await backend.get(target.id);
      if (job?.state === 'dead') purged += await this.#purgeOne(backend, job);
    } else {
      // Each pass removes what it lists, so the next page starts at offset 0 again.
      for (let page = await backend.listDead({ limit: PAGE }); page.length > 0; page = await backend.listDead({ limit: PAGE })) {
        let removed = 0;
        for (const job of page) removed += await this.#purgeOne(backend, job);
        purged += removed;
        if (removed === 0) break; // someone else holds them (replayed meanwhile)
      }
    }
    if (purged > 0) await this.#o.onChange();
    return purged;
  }

  async #purgeOne(backend: QueueBackend, job: Job): Promise<number> {
    const n = await backend.purgeDead({ id: job.id });
    if (n === 1) {
      try {
        await this.#o.discard(fromPayload(job.payload));
      } catch {
        // An unreadable payload names no file to remove; the job is gone either way.
      }
    }
    return n;
  }
}

/** A dead job as operators see it; also used by the offline tools reading the queue file. */
export function toDeadLetter(job: Job): DeadLetter {
  let protocol = 'unknown';
  let uploadId = '';
  try {
    ({ protocol, uploadId } = fromPayload(job.payload));
  } catch {
    // keep the placeholders: the operator still sees id, slot and errors
  }
  return {
    id: job.id,
    slotPath: job.slotPath,
    size: job.size,
    priority: job.priority,
    protocol,
    uploadId,
    attempts: job.attempts,
    errors: job.errors,
    enqueuedAtMs: job.enqueuedAtMs,
    buriedAtMs: job.finishedAtMs ?? 0,
  };
}
