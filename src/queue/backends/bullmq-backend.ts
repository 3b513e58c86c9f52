/**
 * QueueBackend on Redis through BullMQ, shared by every instance of a cluster (docs/cluster.md).
 *
 * The dispatcher keeps its policy (worker slots, job timeout, retry delays, breaker postpones);
 * BullMQ does the distributed parts through its manual-processing API: one BullMQ queue per tier,
 * `Worker.getNextJob` claims atomically, the job lock is the lease, BullMQ's stalled-job checker
 * requeues the jobs of a dead instance, its delayed set holds retries and postpones, its failed
 * set is the dead letters. Aging picks among the tier heads with the same `pickNext` as the
 * other backends. A small registry (two keys per job, one Lua step) keeps one job per id and per
 * slot path across all tiers and states.
 *
 * Time is the wall clock, as BullMQ's is: `nowMs` must be a Date.now() reading (the dispatcher's
 * system clock). It ranks aging and is recorded, but availability and lease expiry follow real
 * time, so this backend runs the conformance suite with `clock: 'wall'`.
 */
import { randomBytes } from 'node:crypto';
import { Job as BullJob, Queue, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { emptyCounts } from '../contract/counts.js';
import { QueueClosedError } from '../contract/errors.js';
import { copyError, createJob } from './job.js';
import { DEFAULT_AGING_THRESHOLD_MS, PRIORITY_TIERS, isPriorityTier, pickNext, type AgingOptions, type PriorityTier } from '../contract/priority.js';
import { JOB_STATES } from '../contract/types.js';
import { ADMIT, BULL_TYPES, FORGET, isNotOwnerError, parseJobError, stateOf } from './bullmq-support.js';
import type { DeadLetterTarget, EnqueueInput, Job, JobError, JobLister, JobRetrier, JobState, JsonObject, ListDeadOptions, ListJobsOptions, QueueBackend, QueueBackendOptions, QueueCounts } from '../contract/types.js';

/** What the backend keeps in a BullMQ job's data. */
interface JobData {
  readonly slotPath: string;
  readonly size: number;
  readonly priority: PriorityTier;
  readonly payload: JsonObject;
  readonly enqueuedAtMs: number;
  readonly availableAtMs: number;
  /** Written right after a claim; only meaningful while the job is active. */
  readonly lease?: { readonly token: string; readonly expiresAtMs: number };
}

/** What `complete` stores as the BullMQ return value (written atomically with the move). */
interface DoneRecord {
  readonly finishedAtMs: number;
  readonly attempts: number;
}

type Bull = BullJob<JobData, DoneRecord>;

/** A retry's delay travels to the backoff strategy on the error itself. */
class RetryAt extends Error {
  constructor(readonly jobError: JobError, readonly delayMs: number) {
    super(jobError.message);
    // BullMQ keeps every attempt's `stack` in the job's stacktrace: the error history.
    this.stack = JSON.stringify(copyError(jobError));
  }
}

const BACKOFF_TYPE = 'hfs-retry-at';
/** BullMQ decides neither when to give up nor when a stalled job has stalled too often: the dispatcher does. */
const NEVER = Number.MAX_SAFE_INTEGER;
/** Bound of one Redis page when walking a set (dead letters, done jobs). */
const PAGE = 200;

export interface BullmqEvents {
  /** BullMQ's stalled checker requeued jobs whose lease (lock) had expired, e.g. of a dead instance. */
  onLeasesReleased?(count: number): void;
  onError?(err: unknown, during: string): void;
}

export interface BullmqQueueBackendOptions extends QueueBackendOptions {
  /** Used by the queues as is; the workers duplicate it for their blocking reads. Needs maxRetriesPerRequest: null. */
  readonly connection: Redis;
  /**
   * Namespace of every key, shared by the instances of one cluster. It holds a hash tag so the
   * registry keys of one job stay in one Redis Cluster slot. Default 'hfs:{queue}:'.
   */
  readonly keyPrefix?: string;
  /** How often BullMQ looks for jobs whose lease expired (any one instance per interval). Default 5 s. */
  readonly stalledCheckIntervalMs?: number;
  /** Tells this instance's leases apart from other instances' owners of the same name. Default random. */
  readonly instanceId?: string;
  readonly events?: BullmqEvents;
}

type State = 'created' | 'running' | 'closed';

export class BullmqQueueBackend implements QueueBackend, JobLister, JobRetrier {
  readonly #o: BullmqQueueBackendOptions;
  readonly #prefix: string;
  readonly #aging: AgingOptions;
  readonly #instance: string;
  #state: State = 'created';
  #queues = {} as Record<PriorityTier, Queue<JobData, DoneRecord>>;
  #workers = {} as Record<PriorityTier, Worker<JobData, DoneRecord>>;
  #released = 0;

  constructor(options: BullmqQueueBackendOptions) {
    this.#o = options;
    this.#prefix = options.keyPrefix ?? 'hfs:{queue}:';
    this.#aging = { agingThresholdMs: options.agingThresholdMs === undefined ? DEFAULT_AGING_THRESHOLD_MS : options.agingThresholdMs };
    this.#instance = options.instanceId ?? randomBytes(6).toString('base64url');
  }

  /** Opens one queue and one manual worker per tier and starts BullMQ's stalled-job checker. */
  async start(): Promise<void> {
    if (this.#state !== 'created') throw new Error(`bullmq backend cannot start from ${this.#state}`);
    this.#state = 'running';
    const common = { connection: this.#o.connection, prefix: `${this.#prefix}bullmq` };
    for (const tier of PRIORITY_TIERS) {
      this.#queues[tier] = new Queue<JobData, DoneRecord>(tier, common);
      const worker = new Worker<JobData, DoneRecord>(tier, null, {
        ...common,
        autorun: false,
        maxStalledCount: NEVER,
        stalledInterval: this.#o.stalledCheckIntervalMs ?? 5_000,
        settings: { backoffStrategy: (_attempts, _type, err) => Math.max(0, (err as RetryAt | undefined)?.delayMs ?? 0) },
      });
      worker.on('stalled', () => {
        this.#released += 1;
        this.#o.events?.onLeasesReleased?.(1);
      });
      worker.on('error', (err) => this.#o.events?.onError?.(err, `bullmq worker ${tier}`));
      this.#workers[tier] = worker;
    }
    await Promise.all(PRIORITY_TIERS.map((t) => this.#queues[t].waitUntilReady()));
    await Promise.all(PRIORITY_TIERS.map((t) => this.#workers[t].startStalledCheckTimer()));
  }

  async enqueue(input: EnqueueInput): Promise<boolean> {
    this.#open();
    const job = createJob(input);
    const admitted = Number(await ADMIT.run(this.#o.connection, this.#registryKeys(job.id, job.slotPath), [job.id, `${job.priority}\n${job.slotPath}`]));
    if (admitted === 0 || admitted === -1) return false;
    if (admitted === 2 && (await this.#queues[job.priority].getJob(job.id))) return false;
    const data: JobData = { slotPath: job.slotPath, size: job.size, priority: job.priority, payload: job.payload, enqueuedAtMs: job.enqueuedAtMs, availableAtMs: job.availableAtMs };
    const now = Date.now();
    await this.#queues[job.priority].add('finalize', data, {
      jobId: job.id,
      timestamp: now,
      delay: Math.max(0, job.availableAtMs - now),
      attempts: NEVER,
      backoff: { type: BACKOFF_TYPE },
      removeOnComplete: false,
      removeOnFail: false,
    });
    return true;
  }

  async get(id: string): Promise<Job | null> {
    this.#open();
    const tier = await this.#tierOf(id);
    if (tier === null) return null;
    const job = await this.#queues[tier].getJob(id);
    return job ? this.#toJob(job) : null;
  }

  async getBySlot(slotPath: string): Promise<Job | null> {
    this.#open();
    const id = await this.#o.connection.get(this.#slotKey(slotPath));
    return id === null ? null : this.get(id);
  }

  async claimNext(owner: string, nowMs: number, leaseMs: number): Promise<Job | null> {
    this.#open();
    const token = this.#tokenOf(owner);
    // Another instance may take the head we looked at: look again, without the tiers that came up empty.
    const tried = new Set<PriorityTier>();
    for (;;) {
      const heads = await Promise.all(PRIORITY_TIERS.filter((t) => !tried.has(t)).map((tier) => this.#headOf(tier)));
      const best = pickNext(heads.filter((h) => h !== null), nowMs, this.#aging);
      if (best === null) return null;
      const job = (await this.#workers[best.tier].getNextJob(token, { block: false })) as Bull | undefined;
      if (!job) {
        tried.add(best.tier);
        continue;
      }
      await job.extendLock(token, leaseMs);
      await job.updateData({ ...job.data, lease: { token, expiresAtMs: nowMs + leaseMs } });
      return this.#toJob(job, 'leased');
    }
  }

  /**
   * The job getNextJob would take from `tier`: the oldest waiting one, or when none waits, the
   * first delayed one once it is due (BullMQ promotes it as it claims).
   */
  async #headOf(tier: PriorityTier): Promise<{ tier: PriorityTier; seq: number; availableAtMs: number } | null> {
    const seq = PRIORITY_TIERS.indexOf(tier);
    const [waiting] = await this.#queues[tier].getJobs(['wait'], 0, 0, true);
    if (waiting) return { tier, seq, availableAtMs: waiting.data.availableAtMs };
    const [delayed] = await this.#queues[tier].getJobs(['delayed'], 0, 0, true);
    if (delayed && delayed.data.availableAtMs <= Date.now()) return { tier, seq, availableAtMs: delayed.data.availableAtMs };
    return null;
  }

  async extendLease(id: string, owner: string, nowMs: number, leaseMs: number): Promise<boolean> {
    return this.#asOwner(id, owner, async (job, token) => {
      if ((await job.extendLock(token, leaseMs)) !== 1) return false;
      await job.updateData({ ...job.data, lease: { token, expiresAtMs: nowMs + leaseMs } });
      return true;
    });
  }

  async complete(id: string, owner: string, nowMs: number): Promise<boolean> {
    return this.#asOwner(id, owner, async (job, token) => {
      await job.moveToCompleted({ finishedAtMs: nowMs, attempts: job.attemptsMade }, token, false);
      return true;
    });
  }

  async fail(id: string, owner: string, error: JobError, retryAtMs: number): Promise<boolean> {
    return this.#asOwner(id, owner, async (job, token) => {
      await job.moveToFailed(new RetryAt(error, retryAtMs - Date.now()), token, false);
      await this.#setAvailableAt(job, retryAtMs);
      return true;
    });
  }

  async postpone(id: string, owner: string, availableAtMs: number): Promise<boolean> {
    return this.#asOwner(id, owner, async (job, token) => {
      await job.moveToDelayed(availableAtMs, token);
      await this.#setAvailableAt(job, availableAtMs);
      return true;
    });
  }

  async bury(id: string, owner: string, error: JobError): Promise<boolean> {
    return this.#asOwner(id, owner, async (job, token) => {
      const last = new UnrecoverableError(error.message);
      last.stack = JSON.stringify(copyError(error));
      await job.moveToFailed(last, token, false);
      return true;
    });
  }

  /** BullMQ's stalled checker does the requeueing on its own timer; this reports how many since the last call. */
  async releaseExpiredLeases(_nowMs: number): Promise<number> {
    this.#open();
    const released = this.#released;
    this.#released = 0;
    return released;
  }

  async counts(): Promise<QueueCounts> {
    this.#open();
    const counts = emptyCounts();
    await Promise.all(PRIORITY_TIERS.map(async (tier) => {
      const c = await this.#queues[tier].getJobCounts('wait', 'prioritized', 'delayed', 'active', 'completed', 'failed');
      counts.queued[tier] = (c.wait ?? 0) + (c.prioritized ?? 0) + (c.delayed ?? 0);
      counts.leased[tier] = c.active ?? 0;
      counts.done[tier] = c.completed ?? 0;
      counts.dead[tier] = c.failed ?? 0;
    }));
    return counts;
  }

  async listDead(options: ListDeadOptions = {}): Promise<Job[]> {
    this.#open();
    const limit = options.limit ?? 100;
    const offset = options.offset ?? 0;
    // Each tier's failed set is in burial order (BullMQ's finishedOn, the wall clock); merge the
    // first offset + limit of each.
    const perTier = await Promise.all(PRIORITY_TIERS.map((t) => this.#queues[t].getJobs(['failed'], 0, offset + limit - 1, true)));
    const buried = (perTier.flat() as Bull[]).sort((a, b) => (a.finishedOn ?? 0) - (b.finishedOn ?? 0)).slice(offset, offset + limit);
    return Promise.all(buried.map((j) => this.#toJob(j, 'dead')));
  }

  async replayDead(target: DeadLetterTarget, nowMs: number): Promise<number> {
    this.#open();
    let moved = 0;
    for await (const job of this.#deadTargets(target)) {
      await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      await this.#setAvailableAt(job, nowMs);
      moved += 1;
    }
    return moved;
  }

  /**
   * JobLister: reads the first offset + limit jobs of each requested set of each tier, then orders
   * them as the contract says (line order, or burial/finish order for done and dead only).
   */
  async listJobs(options: ListJobsOptions = {}): Promise<Job[]> {
    this.#open();
    const states = options.states ?? ['queued', 'leased'];
    for (const state of states) if (!JOB_STATES.includes(state)) throw new RangeError(`unknown job state ${String(state)}`);
    const { limit = 100, offset = 0 } = options;
    const tiers = options.priority === undefined ? PRIORITY_TIERS : [options.priority];
    const types = [...new Set(states.flatMap((s) => BULL_TYPES[s]))];
    const found: Array<{ job: Job; admittedAt: number }> = [];
    for (const tier of tiers) {
      for (const bull of (await this.#queues[tier].getJobs(types, 0, offset + limit - 1, true)) as Bull[]) {
        found.push({ job: await this.#toJob(bull), admittedAt: bull.timestamp });
      }
    }
    const finishedOnly = states.every((s) => s === 'done' || s === 'dead');
    found.sort((a, b) =>
      finishedOnly
        ? (a.job.finishedAtMs ?? 0) - (b.job.finishedAtMs ?? 0)
        : a.job.availableAtMs - b.job.availableAtMs || a.admittedAt - b.admittedAt,
    );
    return found.slice(offset, offset + limit).map((f) => f.job);
  }

  /** JobRetrier: a job waiting in BullMQ's delayed set (retry backoff, postpone) is promoted to waiting. */
  async retryNow(id: string, nowMs: number): Promise<boolean> {
    this.#open();
    const tier = await this.#tierOf(id);
    const job = tier === null ? undefined : ((await this.#queues[tier].getJob(id)) as Bull | undefined);
    if (!job) return false;
    const state = await job.getState();
    if (state === 'waiting' || state === 'prioritized') return true; // available already: keeps its place
    if (state !== 'delayed') return false;
    if (job.data.availableAtMs <= nowMs) return true;
    try {
      await job.promote();
    } catch {
      // Not delayed any more: its time came, or a worker took it meanwhile.
      return (await job.getState()) === 'waiting';
    }
    await this.#setAvailableAt(job, nowMs);
    return true;
  }

  async purgeDead(target: DeadLetterTarget): Promise<number> {
    this.#open();
    let purged = 0;
    for await (const job of this.#deadTargets(target)) {
      await this.#forget(job);
      purged += 1;
    }
    return purged;
  }

  async pruneDone(finishedBeforeMs: number): Promise<number> {
    this.#open();
    let pruned = 0;
    for (const tier of PRIORITY_TIERS) {
      // Removing shifts the set, so a page starts where the kept jobs end.
      for (let start = 0; ; ) {
        const page = (await this.#queues[tier].getJobs(['completed'], start, start + PAGE - 1, true)) as Bull[];
        let kept = 0;
        for (const job of page) {
          if ((job.returnvalue?.finishedAtMs ?? Infinity) < finishedBeforeMs) {
            await this.#forget(job);
            pruned += 1;
          } else kept += 1;
        }
        if (page.length < PAGE) break;
        start += kept;
      }
    }
    return pruned;
  }

  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    const wasRunning = this.#state === 'running';
    this.#state = 'closed';
    if (!wasRunning) return;
    await Promise.all(PRIORITY_TIERS.map((t) => this.#workers[t].close(true)));
    await Promise.all(PRIORITY_TIERS.map((t) => this.#queues[t].close()));
  }

  #open(): void {
    if (this.#state === 'closed') throw new QueueClosedError();
    if (this.#state !== 'running') throw new Error('bullmq backend is not started');
  }

  #tokenOf(owner: string): string {
    return `${this.#instance}/${owner}`;
  }

  #idKey(id: string): string {
    return `${this.#prefix}id:${id}`;
  }

  #slotKey(slotPath: string): string {
    return `${this.#prefix}slot:${slotPath}`;
  }

  #registryKeys(id: string, slotPath: string): string[] {
    return [this.#idKey(id), this.#slotKey(slotPath)];
  }

  async #tierOf(id: string): Promise<PriorityTier | null> {
    const record = await this.#o.connection.get(this.#idKey(id));
    const tier = record?.slice(0, record.indexOf('\n'));
    return isPriorityTier(tier) ? tier : null;
  }

  /** Runs `fn` on the job if `owner` holds its lease; BullMQ's lock check makes a lost race a false, not a change. */
  async #asOwner(id: string, owner: string, fn: (job: Bull, token: string) => Promise<boolean>): Promise<boolean> {
    this.#open();
    const tier = await this.#tierOf(id);
    if (tier === null) return false;
    const job = (await BullJob.fromId<JobData, DoneRecord>(this.#workers[tier], id)) as Bull | undefined;
    const token = this.#tokenOf(owner);
    if (!job || job.data.lease?.token !== token) return false;
    try {
      return await fn(job, token);
    } catch (err) {
      if (isNotOwnerError(err)) return false;
      throw err;
    }
  }

  /** The job's place in line for aging: written after the move, so a crash between keeps the older time (ranks it a little early). */
  async #setAvailableAt(job: Bull, availableAtMs: number): Promise<void> {
    const { lease: _lease, ...data } = job.data;
    await job.updateData({ ...data, availableAtMs });
  }

  async *#deadTargets(target: DeadLetterTarget): AsyncGenerator<Bull> {
    if (target !== 'all') {
      const tier = await this.#tierOf(target.id);
      const job = tier === null ? undefined : ((await this.#queues[tier].getJob(target.id)) as Bull | undefined);
      if (job && (await job.getState()) === 'failed') yield job;
      return;
    }
    for (const tier of PRIORITY_TIERS) {
      for (;;) {
        const page = (await this.#queues[tier].getJobs(['failed'], 0, PAGE - 1, true)) as Bull[];
        for (const job of page) yield job; // each leaves the failed set
        if (page.length < PAGE) break;
      }
    }
  }

  /** Registry first: a crash between leaves an orphan BullMQ job, never a slot that no job frees. */
  async #forget(job: Bull): Promise<void> {
    await FORGET.run(this.#o.connection, this.#registryKeys(job.id!, job.data.slotPath), [job.id!]);
    await job.remove();
  }

  async #toJob(job: Bull, known?: JobState): Promise<Job> {
    const state = known ?? stateOf(await job.getState());
    const { data } = job;
    const errors = (job.stacktrace ?? []).flatMap(parseJobError);
    const base = {
      id: job.id!,
      slotPath: data.slotPath,
      size: data.size,
      priority: data.priority,
      payload: structuredClone(data.payload),
      attempts: state === 'done' ? (job.returnvalue?.attempts ?? 0) : job.attemptsMade,
      errors,
      enqueuedAtMs: data.enqueuedAtMs,
      availableAtMs: data.availableAtMs,
      state,
    };
    if (state === 'leased' && data.lease) {
      const own = `${this.#instance}/`;
      const leaseOwner = data.lease.token.startsWith(own) ? data.lease.token.slice(own.length) : data.lease.token;
      return { ...base, leaseOwner, leaseExpiresAtMs: data.lease.expiresAtMs };
    }
    if (state === 'done') return { ...base, finishedAtMs: job.returnvalue?.finishedAtMs ?? job.finishedOn ?? 0 };
    if (state === 'dead') return { ...base, finishedAtMs: errors.at(-1)?.atMs ?? job.finishedOn ?? 0 };
    return base;
  }
}
