/**
 * Moves the jobs this instance admitted into its local journal while Redis was unreachable into
 * the shared queue, once Redis answers again. One job at a time:
 *   1. lease it in the journal (so no local worker starts it meanwhile),
 *   2. admit it to Redis (idempotent by id: a repeat after a crash admits nothing twice),
 *   3. only after Redis acknowledged it, remove it from the journal (bury + purge: the row is gone).
 * A crash between 2 and 3 leaves the job in both; the next pass finds it in Redis by id and only
 * removes it here. A job whose slot another Redis job holds stays in the journal and is
 * finalized by this instance's workers (the pipeline never overwrites a published file).
 * 0 jobs lost: a journal job leaves the journal only once Redis holds it.
 */
import { QueueUnavailableError, type Job, type QueueBackend, type SpilloverQueueBackend } from '../queue/index.js';

const MOVER = 'cluster-journal-mover';
/** Claims every queued job whatever its retry time (the journal keeps availableAtMs as data). */
const FAR_FUTURE = Number.MAX_SAFE_INTEGER / 2;
const MOVED: { readonly code: string; readonly message: string } = { code: 'ERR_MOVED_TO_SHARED_QUEUE', message: 'moved to the shared queue in Redis' };

export interface MovePass {
  /** Jobs now in Redis and gone from the journal. */
  readonly moved: number;
  /** Jobs left in the journal because another Redis job holds their slot (finalized here). */
  readonly keptLocal: number;
  /** True when the pass stopped because Redis became unreachable again. */
  readonly interrupted: boolean;
}

export interface JournalMoverOptions {
  readonly journal: SpilloverQueueBackend;
  /** The shared queue; its calls reject with QueueUnavailableError when Redis does not answer. */
  readonly shared: Pick<QueueBackend, 'enqueue' | 'get'>;
  readonly now: () => number;
}

export class JournalMover {
  readonly #o: JournalMoverOptions;
  /** Jobs that cannot go to Redis (slot held there by another job): the local workers run them. */
  readonly #keptLocal = new Set<string>();
  #running: Promise<MovePass> | null = null;

  constructor(options: JournalMoverOptions) {
    this.#o = options;
  }

  /** Queued jobs waiting in the journal that a pass would try to move. */
  async waiting(): Promise<number> {
    const counts = await this.#o.journal.counts();
    return counts.queued.high + counts.queued.medium + counts.queued.low - this.#keptLocal.size;
  }

  /** One pass over the journal; concurrent calls share the pass in flight. */
  pass(): Promise<MovePass> {
    this.#running ??= this.#pass().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  async #pass(): Promise<MovePass> {
    const { journal } = this.#o;
    await this.#purgeMoved(); // rows a crash left between bury and purge
    let moved = 0;
    const skipped: Job[] = [];
    try {
      for (let job = await journal.claimNext(MOVER, FAR_FUTURE, 60_000); job !== null; job = await journal.claimNext(MOVER, FAR_FUTURE, 60_000)) {
        if (this.#keptLocal.has(job.id)) {
          skipped.push(job);
          continue;
        }
        let inShared: boolean;
        try {
          inShared = await this.#moveOne(job);
        } catch (err) {
          await journal.postpone(job.id, MOVER, job.availableAtMs);
          if (err instanceof QueueUnavailableError) return { moved, keptLocal: this.#keptLocal.size, interrupted: true };
          throw err;
        }
        if (inShared) {
          await journal.bury(job.id, MOVER, { atMs: this.#o.now(), ...MOVED });
          await journal.purgeDead({ id: job.id });
          moved += 1;
        } else {
          this.#keptLocal.add(job.id);
          skipped.push(job);
        }
      }
    } finally {
      // Skipped jobs go back to the line at their own time, for the local workers.
      for (const job of skipped) await journal.postpone(job.id, MOVER, job.availableAtMs);
    }
    return { moved, keptLocal: this.#keptLocal.size, interrupted: false };
  }

  /** True when Redis now holds this job (admitted now, or by an earlier pass). */
  async #moveOne(job: Job): Promise<boolean> {
    const { shared } = this.#o;
    const admitted = await shared.enqueue({
      id: job.id,
      slotPath: job.slotPath,
      size: job.size,
      priority: job.priority,
      payload: job.payload,
      enqueuedAtMs: job.enqueuedAtMs,
      availableAtMs: job.availableAtMs,
    });
    if (admitted) return true;
    return (await shared.get(job.id)) !== null;
  }

  async #purgeMoved(): Promise<void> {
    const { journal } = this.#o;
    for (const dead of await journal.listDead({ limit: 1000 })) {
      if (dead.errors.at(-1)?.code === MOVED.code) await journal.purgeDead({ id: dead.id });
    }
  }
}
