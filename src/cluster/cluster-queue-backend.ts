/**
 * The finalization queue of cluster mode: the shared queue in Redis (BullMQ) plus this
 * instance's local journal (the durable SQLite queue of the single-node mode), behind one
 * QueueBackend.
 *
 * While Redis answers, jobs are admitted into Redis and every instance's workers claim from it.
 * When it does not (unreachable, or a call slower than `timeoutMs`), admission goes to the
 * journal: the upload's client still gets its answer, and this instance's workers keep
 * finalizing journal jobs. When Redis is back, journal-mover.ts moves what is left into Redis.
 * The journal is always claimed first: its jobs can run only here.
 *
 * One job per id and per slot spans both: an id or slot the journal holds is refused in Redis.
 * Outcomes of jobs leased from Redis that cannot be written while it is unreachable (complete,
 * fail, postpone, bury) are kept and written once it is back (`flushDeferred`); if the lease
 * expired meanwhile, BullMQ's stalled checker has put the job back and it runs again, which the
 * pipeline makes harmless (a re-run finds its file published).
 * Reads that need Redis and cannot reach it reject with QueueUnavailableError; counts fall back
 * to the last Redis counts seen.
 */
import {
  QueueClosedError,
  QueueUnavailableError,
  canListJobs,
  canRetryNow,
  emptyCounts,
  PRIORITY_TIERS,
  JOB_STATES,
  type DeadLetterTarget,
  type EnqueueInput,
  type Job,
  type JobError,
  type JobLister,
  type JobRetrier,
  type ListDeadOptions,
  type ListJobsOptions,
  type QueueBackend,
  type QueueCounts,
  type QueueRecovery,
  type SpilloverQueueBackend,
} from '../queue/index.js';

export interface ClusterQueueBackendOptions {
  /** The queue shared by every instance (BullmqQueueBackend, started). */
  readonly shared: QueueBackend;
  /** This instance's durable journal. */
  readonly journal: SpilloverQueueBackend;
  /** Health's view: false skips every Redis call. */
  readonly reachable: () => boolean;
  /** A Redis call failed or timed out: have reachability checked now. */
  readonly onSharedFailure: (err: unknown, during: string) => void;
  /** A Redis call slower than this counts as unreachable ([redis] command_timeout). */
  readonly timeoutMs: number;
}

type Origin = 'journal' | 'shared';
type Settle = () => Promise<boolean>;

export class ClusterQueueBackend implements QueueBackend, JobLister, JobRetrier {
  readonly #o: ClusterQueueBackendOptions;
  /** Where each lease taken through this backend came from, by leaseKey(id, owner). */
  readonly #leasedFrom = new Map<string, Origin>();
  /** Outcomes of Redis leases not yet written (Redis unreachable when they came). */
  readonly #deferred = new Map<string, { readonly during: string; readonly settle: Settle }>();
  #lastSharedCounts: QueueCounts = emptyCounts();
  #closed = false;

  constructor(options: ClusterQueueBackendOptions) {
    this.#o = options;
  }

  get journal(): SpilloverQueueBackend {
    return this.#o.journal;
  }

  get shared(): QueueBackend {
    return this.#o.shared;
  }

  /** What opening the journal found (jobs admitted while Redis was unreachable, before a restart). */
  get recovery(): QueueRecovery {
    return this.#o.journal.recovery;
  }

  /** Outcomes waiting for Redis. */
  get deferredCount(): number {
    return this.#deferred.size;
  }

  async enqueue(input: EnqueueInput): Promise<boolean> {
    this.#open();
    const { journal } = this.#o;
    // One job per id and slot across both: what the journal holds (not moved yet, or finalized
    // here while Redis was unreachable) is not admitted to Redis again.
    const valid = typeof input.id === 'string' && typeof input.slotPath === 'string'; // else the backends' TypeError below
    if (valid && ((await journal.get(input.id)) !== null || (await journal.getBySlot(input.slotPath)) !== null)) {
      return journal.enqueue(input); // false, or the TypeError of invalid input
    }
    if (this.#o.reachable()) {
      try {
        return await this.#shared('enqueue', () => this.#o.shared.enqueue(input));
      } catch (err) {
        if (!(err instanceof QueueUnavailableError)) throw err;
      }
    }
    return journal.enqueue(input);
  }

  async get(id: string): Promise<Job | null> {
    this.#open();
    return this.#lookup(await this.#o.journal.get(id), () => this.#o.shared.get(id));
  }

  async getBySlot(slotPath: string): Promise<Job | null> {
    this.#open();
    return this.#lookup(await this.#o.journal.getBySlot(slotPath), () => this.#o.shared.getBySlot(slotPath));
  }

  async claimNext(owner: string, nowMs: number, leaseMs: number): Promise<Job | null> {
    this.#open();
    const local = await this.#o.journal.claimNext(owner, nowMs, leaseMs);
    if (local !== null) {
      this.#leasedFrom.set(leaseKey(local.id, owner), 'journal');
      return local;
    }
    if (!this.#o.reachable()) return null;
    try {
      const job = await this.#shared(
        'claim',
        () => this.#o.shared.claimNext(owner, nowMs, leaseMs),
        // A claim that answers after its timeout leased a job nobody runs: hand it straight back.
        (late) => void (late && this.#o.shared.postpone(late.id, owner, late.availableAtMs).catch(() => {})),
      );
      if (job !== null) this.#leasedFrom.set(leaseKey(job.id, owner), 'shared');
      return job;
    } catch (err) {
      if (err instanceof QueueUnavailableError) return null;
      throw err;
    }
  }

  async extendLease(id: string, owner: string, nowMs: number, leaseMs: number): Promise<boolean> {
    this.#open();
    if (this.#leasedFrom.get(leaseKey(id, owner)) !== 'shared') return this.#o.journal.extendLease(id, owner, nowMs, leaseMs);
    try {
      return await this.#shared('extend lease', () => this.#o.shared.extendLease(id, owner, nowMs, leaseMs));
    } catch (err) {
      if (err instanceof QueueUnavailableError) return false;
      throw err;
    }
  }

  complete(id: string, owner: string, nowMs: number): Promise<boolean> {
    return this.#settle(id, owner, 'complete', (b) => b.complete(id, owner, nowMs));
  }

  fail(id: string, owner: string, error: JobError, retryAtMs: number): Promise<boolean> {
    return this.#settle(id, owner, 'fail', (b) => b.fail(id, owner, error, retryAtMs));
  }

  postpone(id: string, owner: string, availableAtMs: number): Promise<boolean> {
    return this.#settle(id, owner, 'postpone', (b) => b.postpone(id, owner, availableAtMs));
  }

  bury(id: string, owner: string, error: JobError): Promise<boolean> {
    return this.#settle(id, owner, 'bury', (b) => b.bury(id, owner, error));
  }

  /** One Redis call with this backend's bound and failure reporting (the journal mover's calls). */
  callShared<T>(during: string, fn: (shared: QueueBackend) => Promise<T>): Promise<T> {
    return this.#shared(during, () => fn(this.#o.shared));
  }

  /** Writes the outcomes kept while Redis was unreachable; resolves how many are still waiting. */
  async flushDeferred(): Promise<number> {
    for (const [key, { during, settle }] of [...this.#deferred]) {
      if (!this.#o.reachable()) break;
      try {
        await this.#shared(during, settle);
        this.#deferred.delete(key); // written, or the lease was gone (false): either way done
      } catch (err) {
        if (!(err instanceof QueueUnavailableError)) this.#deferred.delete(key);
        else break;
      }
    }
    return this.#deferred.size;
  }

  async releaseExpiredLeases(nowMs: number): Promise<number> {
    this.#open();
    const local = await this.#o.journal.releaseExpiredLeases(nowMs);
    return local + (await this.#optionalShared('release expired leases', () => this.#o.shared.releaseExpiredLeases(nowMs), 0));
  }

  async counts(): Promise<QueueCounts> {
    this.#open();
    const local = await this.#o.journal.counts();
    const shared = await this.#optionalShared('counts', () => this.#o.shared.counts(), null);
    if (shared !== null) this.#lastSharedCounts = shared;
    const out = emptyCounts();
    for (const state of JOB_STATES) {
      for (const tier of PRIORITY_TIERS) out[state][tier] = local[state][tier] + this.#lastSharedCounts[state][tier];
    }
    return out;
  }

  /** Both lists merged in burial order; only the journal's while Redis is unreachable. */
  async listDead(options: ListDeadOptions = {}): Promise<Job[]> {
    this.#open();
    const limit = options.limit ?? 100;
    const offset = options.offset ?? 0;
    const first = { limit: offset + limit, offset: 0 };
    const local = await this.#o.journal.listDead(first);
    const shared = await this.#optionalShared('list dead letters', () => this.#o.shared.listDead(first), []);
    return [...local, ...shared].sort((a, b) => (a.finishedAtMs ?? 0) - (b.finishedAtMs ?? 0)).slice(offset, offset + limit);
  }

  async replayDead(target: DeadLetterTarget, nowMs: number): Promise<number> {
    this.#open();
    const local = await this.#o.journal.replayDead(target, nowMs);
    if (local > 0 && target !== 'all') return local;
    return local + (await this.#requiredWhenOne(target, 'replay dead letters', () => this.#o.shared.replayDead(target, nowMs)));
  }

  async purgeDead(target: DeadLetterTarget): Promise<number> {
    this.#open();
    const local = await this.#o.journal.purgeDead(target);
    if (local > 0 && target !== 'all') return local;
    return local + (await this.#requiredWhenOne(target, 'purge dead letters', () => this.#o.shared.purgeDead(target)));
  }

  async pruneDone(finishedBeforeMs: number): Promise<number> {
    this.#open();
    const local = await this.#o.journal.pruneDone(finishedBeforeMs);
    return local + (await this.#optionalShared('prune done jobs', () => this.#o.shared.pruneDone(finishedBeforeMs), 0));
  }

  /** JobLister: the journal's and Redis's jobs merged in the contract's order; the journal's alone while Redis is unreachable. */
  async listJobs(options: ListJobsOptions = {}): Promise<Job[]> {
    this.#open();
    const { limit = 100, offset = 0 } = options;
    const first = { ...options, limit: offset + limit, offset: 0 };
    const local = await this.#o.journal.listJobs(first);
    const shared = this.#o.shared;
    const remote = canListJobs(shared) ? await this.#optionalShared('list jobs', () => shared.listJobs(first), []) : [];
    const states = options.states ?? ['queued', 'leased'];
    const finishedOnly = states.every((s) => s === 'done' || s === 'dead');
    return [...local, ...remote]
      .sort((a, b) => (finishedOnly ? (a.finishedAtMs ?? 0) - (b.finishedAtMs ?? 0) : a.availableAtMs - b.availableAtMs || a.enqueuedAtMs - b.enqueuedAtMs))
      .slice(offset, offset + limit);
  }

  /** JobRetrier: jobs of the journal, and of Redis when its backend can. */
  async retryNow(id: string, nowMs: number): Promise<boolean> {
    this.#open();
    if (await this.#o.journal.retryNow(id, nowMs)) return true;
    const shared = this.#o.shared;
    if (!canRetryNow(shared)) return false;
    return this.#optionalShared('retry now', () => shared.retryNow(id, nowMs), false);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#o.journal.close();
    // Closing BullMQ waits for Redis; an unreachable one is cut off by the client's disconnect later.
    await Promise.race([this.#o.shared.close().catch(() => {}), new Promise((resolve) => setTimeout(resolve, this.#o.timeoutMs).unref())]);
  }

  async #lookup(local: Job | null, fromShared: () => Promise<Job | null>): Promise<Job | null> {
    // A live journal job is the one; a finished one may have been moved to Redis and lives on there.
    if (local !== null && local.state !== 'done') return local;
    try {
      return (await this.#shared('lookup', fromShared)) ?? local;
    } catch (err) {
      if (err instanceof QueueUnavailableError && local !== null) return local;
      throw err;
    }
  }

  async #settle(id: string, owner: string, during: string, op: (backend: QueueBackend) => Promise<boolean>): Promise<boolean> {
    this.#open();
    const key = leaseKey(id, owner);
    const origin = this.#leasedFrom.get(key);
    this.#leasedFrom.delete(key); // settled, or not this owner's lease any more
    if (origin !== 'shared') return op(this.#o.journal);
    const settle = () => op(this.#o.shared);
    try {
      return await this.#shared(during, settle);
    } catch (err) {
      if (!(err instanceof QueueUnavailableError)) throw err;
      this.#deferred.set(key, { during, settle });
      return true; // recorded here, written to Redis when it answers again
    }
  }

  /** For one target the answer must come from Redis (a 0 would say "no such dead letter"); 'all' does with the journal's part. */
  #requiredWhenOne(target: DeadLetterTarget, during: string, fn: () => Promise<number>): Promise<number> {
    return target === 'all' ? this.#optionalShared(during, fn, 0) : this.#shared(during, fn);
  }

  async #optionalShared<T>(during: string, fn: () => Promise<T>, fallback: T): Promise<T> {
    if (!this.#o.reachable()) return fallback;
    try {
      return await this.#shared(during, fn);
    } catch (err) {
      if (err instanceof QueueUnavailableError) return fallback;
      throw err;
    }
  }

  /**
   * One Redis call, bounded by timeoutMs. Invalid input (TypeError, RangeError) and a closed
   * backend pass through; any other failure reports to health and becomes QueueUnavailableError.
   * `late` receives the answer of a call that timed out but finished afterwards.
   */
  async #shared<T>(during: string, fn: () => Promise<T>, late?: (value: T) => void): Promise<T> {
    if (!this.#o.reachable()) throw new QueueUnavailableError();
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    const call = fn();
    try {
      return await Promise.race([
        call,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            timedOut = true;
            reject(new QueueUnavailableError());
          }, this.#o.timeoutMs);
        }),
      ]);
    } catch (err) {
      if (err instanceof TypeError || err instanceof RangeError || err instanceof QueueClosedError) throw err;
      if (timedOut) call.then((v) => late?.(v), () => {});
      this.#o.onSharedFailure(err, during);
      throw err instanceof QueueUnavailableError ? err : new QueueUnavailableError({ cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  #open(): void {
    if (this.#closed) throw new QueueClosedError();
  }
}

function leaseKey(id: string, owner: string): string {
  return `${owner}\n${id}`;
}
