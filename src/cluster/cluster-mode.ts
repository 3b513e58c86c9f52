/**
 * Cluster mode (`[redis] url`, docs/cluster.md): builds this instance's cluster parts from the
 * config and runs them through Redis outages.
 *
 *   locker       ClusterLocker: in-process lock + Redis lock (takeover across instances)
 *   queue        ClusterQueueBackend: BullMQ in Redis + the local journal (degraded mode)
 *   announcer    PublishFeed: "published" notifications for downloads waiting at other instances
 *   instances    InstanceRegistry: heartbeats with workers and breakers for the admin API
 *   limits       [limits] per client and unfinished bytes counted in Redis (local while it is away)
 *
 * Modes: 'clustered' while Redis answers and the journal is drained into it; 'degraded' from the
 * moment Redis stops answering until it answers again and the journal's jobs moved (journal-
 * mover.ts). Each transition writes one log line and sets hmac_cluster_degraded.
 * Constructors do no I/O; start() connects (and returns even when Redis is unreachable).
 */
import { hostname } from 'node:os';
import { mkdir } from 'node:fs/promises';
import type { Redis } from 'ioredis';
import { parseRedisUrl, redactRedisUrl, stateDirOf, type Config, type RedisTarget } from '../config/index.js';
import { metrics, type Logger } from '../observability/index.js';
import { logSpill, queueDatabasePath } from '../finalize/index.js';
import { DEFAULT_AGING_THRESHOLD_MS, openSpilloverQueueBackend, type QueueBackend } from '../queue/index.js';
import { BullmqQueueBackend } from '../queue/backends/bullmq-backend.js';
import { MemoryLocker, RedisLocker } from '../storage/index.js';
import type { ClientLimits } from '../transfer/index.js';
import { ClusterClientLimits } from './cluster-client-limits.js';
import { ClusterLocker } from './cluster-locker.js';
import { ClusterQueueBackend } from './cluster-queue-backend.js';
import { InstanceRegistry, type InstanceView } from './instance-registry.js';
import { JournalMover } from './journal-mover.js';
import { PublishFeed } from './publish-feed.js';
import { RedisHealth } from './redis-health.js';
import { SharedCounts } from './shared-counts.js';
import { SharedUnfinishedUploads } from './shared-unfinished.js';
import { closeClient, createClient, type ClientRole } from './redis-clients.js';

export type ClusterModeName = 'starting' | 'clustered' | 'degraded';

/** start() waits this long at most for locks and queue to be on a Redis that answered. */
const STARTUP_WAIT_MS = 15_000;

/** What the heartbeat reports besides the mode and journal: the finalizer's workers and breakers. */
export interface InstanceStatusSource {
  workers(): InstanceView['workers'];
  breakers(): InstanceView['breakers'];
}

export interface ClusterModeOptions {
  readonly log: Logger;
  /** Waiters get the lock once the holder drained; past this they answer 423. */
  readonly lockAcquireTimeoutMs: number;
}

/** /ready's view of cluster mode. */
export interface ClusterReadiness {
  readonly mode: ClusterModeName;
  readonly instanceId: string;
  readonly redisReachable: boolean;
  /** Jobs in the local journal waiting to move into Redis. */
  readonly journalWaiting: number;
}

export class ClusterMode {
  readonly instanceId: string;
  readonly stateDir: string;
  readonly locker: ClusterLocker;
  readonly #config: Config;
  readonly #o: ClusterModeOptions;
  readonly #target: RedisTarget;
  readonly #prefix: string;
  readonly #localLocks: MemoryLocker;
  readonly #clients: Redis[] = [];
  #commands: Redis | undefined;
  #health: RedisHealth | undefined;
  #sharedLocker: RedisLocker | null = null;
  #feed: PublishFeed | undefined;
  #bull: BullmqQueueBackend | undefined;
  #bullReady = false;
  #backend: ClusterQueueBackend | undefined;
  #mover: JournalMover | undefined;
  #registry: InstanceRegistry | undefined;
  #status: InstanceStatusSource = { workers: () => [], breakers: () => [] };
  #mode: ClusterModeName = 'starting';
  #journalWaiting = 0;
  #restoring: Promise<void> | null = null;
  #tick: NodeJS.Timeout | undefined;
  #baseUrl: string | null = null;
  readonly #startedAtMs = Date.now();
  #credentialsWarned = false;
  readonly #announceListeners: Array<(slotPath: string) => void> = [];
  #limits: { clients: ClusterClientLimits; unfinished: SharedUnfinishedUploads } | undefined;

  constructor(config: Config, options: ClusterModeOptions) {
    this.#config = config;
    this.#o = options;
    this.#target = parseRedisUrl(config.redis.url);
    this.#prefix = config.redis.keyPrefix;
    this.instanceId = config.cluster.instanceId;
    this.stateDir = stateDirOf(config);
    this.#localLocks = new MemoryLocker(options.lockAcquireTimeoutMs);
    this.locker = new ClusterLocker({
      local: this.#localLocks,
      shared: () => (this.#health?.reachable ? this.#sharedLocker : null),
      onSharedFailure: (err, during) => this.#sharedFailure(err, `lock ${during}`),
      localOnlyFrom: () => (this.#health?.lastReachableAt ?? this.#startedAtMs) + config.redis.lockTtlMs + config.redis.healthCheckIntervalMs,
    });
  }

  get mode(): ClusterModeName {
    return this.#mode;
  }

  /** The heartbeat's source of workers and breakers (the finalizer, built after this). */
  reportFrom(source: InstanceStatusSource): void {
    this.#status = source;
  }

  /**
   * [limits] on the cluster's numbers (docs/cluster.md): per-client bodies and starts, and the
   * unfinished uploads (bytes held, one per slot). `local` answers while Redis does not.
   */
  limits(local: ClientLimits, onHeldChange: (heldBytes: number) => void): { clients: ClusterClientLimits; unfinished: SharedUnfinishedUploads } {
    if (this.#limits) return this.#limits;
    const { limits, queue_resilience: q } = this.#config;
    const counts = new SharedCounts({
      redis: () => (this.#health?.reachable ? (this.#commands ?? null) : null),
      keyPrefix: this.#prefix,
      leaseMs: this.#config.redis.lockTtlMs,
      log: this.#o.log,
      onSharedFailure: (err, during) => this.#sharedFailure(err, during),
    });
    this.#limits = {
      clients: new ClusterClientLimits({ maxBodies: limits.maxBodiesPerClient, creationsPerMinute: limits.creationsPerMinutePerClient, counts, local }),
      unfinished: new SharedUnfinishedUploads({ counts, refreshMs: Math.min(q.healthCheckIntervalMs, 2_000), onChange: onHeldChange }),
    };
    return this.#limits;
  }

  /** The address the heartbeat shows for this instance (the server lock's base URL). */
  setBaseUrl(baseUrl: string | null): void {
    this.#baseUrl = baseUrl;
  }

  /** Connects; when Redis answers, waits until locks, notifications and the queue are on it. */
  async start(): Promise<void> {
    const { log } = this.#o;
    await mkdir(this.stateDir, { recursive: true });
    const commands = (this.#commands = this.#client('commands'));
    this.#health = new RedisHealth({
      probe: this.#client('probe'),
      intervalMs: this.#config.redis.healthCheckIntervalMs,
      connectTimeoutMs: this.#config.redis.commandTimeoutMs,
      onChange: (up) => this.#onReachability(up),
    });
    this.#feed = new PublishFeed({ redis: commands, channel: `${this.#prefix}published`, onError: (err, during) => this.#sharedFailure(err, during) });
    this.#feed.onAnnounce((slotPath) => {
      for (const listener of this.#announceListeners) listener(slotPath);
    });
    this.#bull = new BullmqQueueBackend({
      connection: this.#client('queue'),
      keyPrefix: `${this.#prefix}{queue}:`,
      instanceId: this.instanceId,
      agingThresholdMs: this.#config.queue_resilience.priorityAgingEnabled ? DEFAULT_AGING_THRESHOLD_MS : null,
      events: { onError: (err, during) => log.debug({ err, during }, 'Redis queue call failed') },
    });
    this.#registry = new InstanceRegistry({
      redis: commands,
      keyPrefix: this.#prefix,
      intervalMs: this.#config.cluster.heartbeatIntervalMs,
      snapshot: () => this.#snapshot(),
      onError: (err, during) => this.#sharedFailure(err, during),
    });
    log.info({ instanceId: this.instanceId, redis: redactRedisUrl(this.#config.redis.url), stateDir: this.stateDir }, 'Cluster mode: connecting to Redis');
    await this.#health.start(); // its first answer starts the restore (or reports degraded)
    // Redis answered: wait (bounded: it may go away meanwhile) until locks and queue are on it.
    const restoring = this.#restoring;
    if (restoring !== null) await Promise.race([restoring, new Promise((resolve) => setTimeout(resolve, STARTUP_WAIT_MS).unref())]);
  }

  /** Opens the local journal and the cluster queue (call after start()). */
  async openBackend(): Promise<QueueBackend> {
    const { workers } = this.#config;
    const journal = await openSpilloverQueueBackend({
      path: queueDatabasePath(this.stateDir),
      memoryLimit: workers.queueSize,
      durable: true,
      agingThresholdMs: this.#config.queue_resilience.priorityAgingEnabled ? DEFAULT_AGING_THRESHOLD_MS : null,
      onSpill: (event) => logSpill(this.#o.log, event),
      modes: { fileMode: this.#config.storage.fileMode, dirMode: this.#config.storage.dirMode },
    });
    const backend = (this.#backend = new ClusterQueueBackend({
      shared: this.#bull!,
      journal,
      reachable: () => this.#bullReady && (this.#health?.reachable ?? false),
      onSharedFailure: (err, during) => this.#sharedFailure(err, `queue ${during}`),
      timeoutMs: this.#config.redis.commandTimeoutMs,
    }));
    this.#mover = new JournalMover({
      journal,
      shared: {
        enqueue: (input) => backend.callShared('move journal job', (shared) => shared.enqueue(input)),
        get: (id) => backend.callShared('move journal job', (shared) => shared.get(id)),
      },
      now: Date.now,
    });
    if (this.#health?.reachable) void this.#restore(); // jobs a previous run left in the journal
    this.#tick = setInterval(() => this.#onTick(), this.#config.cluster.heartbeatIntervalMs).unref();
    return backend;
  }

  /**
   * The listener's background part in cluster mode: connect, then the finalizer (it opens the
   * cluster queue), then the heartbeat; stopping in reverse.
   */
  around(finalizer: { start(): Promise<void>; stop(graceMs: number): Promise<void> }): { start(): Promise<void>; stop(graceMs: number): Promise<void> } {
    return {
      start: async () => {
        await this.start();
        await finalizer.start();
        this.#registry?.start();
        this.#limits?.unfinished.start();
      },
      stop: async (graceMs) => {
        await finalizer.stop(graceMs);
        await this.stop();
      },
    };
  }

  /** The announcer the finalizer uses: publish notifications across instances. */
  readonly announcer = {
    announce: (slotPath: string) => this.#feed?.announce(slotPath),
    onAnnounce: (listener: (slotPath: string) => void) => void this.#announceListeners.push(listener),
  };

  readiness(): ClusterReadiness {
    return { mode: this.#mode, instanceId: this.instanceId, redisReachable: this.#health?.reachable ?? false, journalWaiting: this.#journalWaiting };
  }

  /** Every live instance (heartbeats); only this one, from its own view, while Redis is unreachable. */
  async instances(): Promise<{ readonly reachable: boolean; readonly instances: InstanceView[] }> {
    if (this.#health?.reachable && this.#registry) {
      try {
        return { reachable: true, instances: await this.#registry.list() };
      } catch (err) {
        this.#sharedFailure(err, 'list instances');
      }
    }
    return { reachable: false, instances: [{ ...(await this.#snapshot()), seenAtMs: Date.now() }] };
  }

  /** After the finalizer stopped (its backend, the cluster queue, is closed by it). */
  async stop(): Promise<void> {
    clearInterval(this.#tick);
    this.#limits?.clients.stop();
    this.#limits?.unfinished.stop();
    await this.#registry?.stop();
    this.#health?.stop();
    await this.#feed?.close();
    await this.#sharedLocker?.close().catch(() => {});
    for (const client of this.#clients) await closeClient(client);
  }

  #onReachability(reachable: boolean): void {
    if (reachable) {
      this.locker.endLocalOnly(); // locks are taken through Redis again, which does not see these
      void this.#restore();
      return;
    }
    if (this.#mode === 'degraded') return;
    this.#mode = 'degraded';
    metrics.clusterDegraded.set(1);
    this.#o.log.warn({ instanceId: this.instanceId }, 'Cluster mode degraded: Redis unreachable');
  }

  /** Redis answers: locks, notifications and queue on it, outcomes written, the journal moved; then 'clustered'. */
  #restore(): Promise<void> {
    this.#restoring ??= this.#restoreOnce().finally(() => {
      this.#restoring = null;
    });
    return this.#restoring;
  }

  async #restoreOnce(): Promise<void> {
    const { log } = this.#o;
    try {
      await this.#connectShared();
      if (this.#backend === undefined || this.#mover === undefined) {
        // start(): the queue opens later (openBackend), which restores again.
        if (this.#health?.reachable && this.#mode === 'starting') this.#enterClustered(0);
        return;
      }
      await this.#backend.flushDeferred();
      const pass = await this.#mover.pass();
      metrics.clusterJournalMoved.inc(pass.moved);
      await this.#countJournal();
      if (pass.interrupted || !this.#health?.reachable) return; // still degraded; the next answer tries again
      this.#enterClustered(pass.moved);
    } catch (err) {
      // Redis went away again meanwhile (the degraded line is health's), or something else broke.
      if (this.#health?.reachable) log.warn({ err }, 'Cluster mode: moving back onto Redis failed; trying again');
    }
  }

  /** One line per transition: on (at start), restored (after degraded); later moves only when there were any. */
  #enterClustered(moved: number): void {
    const from = this.#mode;
    if (from === 'clustered') {
      if (moved > 0) this.#o.log.info({ moved }, `Cluster journal: ${moved} jobs moved to Redis`);
      return;
    }
    this.#mode = 'clustered';
    metrics.clusterDegraded.set(0);
    if (from === 'degraded') this.#o.log.info({ instanceId: this.instanceId, moved }, `Cluster mode restored: ${moved} jobs moved to Redis`);
    else this.#o.log.info({ instanceId: this.instanceId, moved }, 'Cluster mode on: Redis reachable');
  }

  /** The Redis locker, the notification channel and the queue; each connects once Redis answers. */
  async #connectShared(): Promise<void> {
    if (this.#sharedLocker === null) {
      const locker = new RedisLocker({
        redis: this.#commands!,
        keyPrefix: this.#prefix,
        acquireTimeoutMs: this.#o.lockAcquireTimeoutMs,
        lockTtlMs: this.#config.redis.lockTtlMs,
        events: {
          onLockLost: (id, reason) => this.#o.log.warn({ uploadId: id, reason }, 'Upload lock lost: its request was asked to stop'),
          onError: (err, during) => this.#sharedFailure(err, `lock ${during}`),
        },
      });
      try {
        await locker.start();
        this.#sharedLocker = locker;
      } catch (err) {
        await locker.close().catch(() => {});
        throw err;
      }
    }
    await this.#feed!.start();
    if (!this.#bullReady) {
      await this.#bull!.start();
      this.#bullReady = true;
    }
  }

  /** Jobs that reached the journal on a slow Redis call, outcomes still unwritten, or a restore that failed: try again. */
  #onTick(): void {
    void this.#countJournal();
    if (!this.#health?.reachable) return;
    if (this.#mode !== 'clustered' || this.#journalWaiting > 0 || (this.#backend?.deferredCount ?? 0) > 0) void this.#restore();
  }

  async #countJournal(): Promise<void> {
    const waiting = (await this.#mover?.waiting().catch(() => null)) ?? 0;
    this.#journalWaiting = Math.max(0, waiting);
    metrics.clusterJournalWaiting.set(this.#journalWaiting);
  }

  async #snapshot(): Promise<Omit<InstanceView, 'seenAtMs'>> {
    const counts = await this.#backend?.journal.counts().catch(() => null);
    const sum = (r: Record<string, number> | undefined) => (r ? Object.values(r).reduce((a, b) => a + b, 0) : 0);
    return {
      id: this.instanceId,
      mode: this.#mode === 'clustered' ? 'clustered' : 'degraded',
      host: hostname(),
      pid: process.pid,
      baseUrl: this.#baseUrl,
      startedAtMs: this.#startedAtMs,
      workers: this.#status.workers(),
      breakers: this.#status.breakers(),
      journal: { queued: sum(counts?.queued), leased: sum(counts?.leased), dead: sum(counts?.dead) },
    };
  }

  /**
   * Redis answers but refuses this instance (a wrong password or user in [redis] url): without a
   * warning the cluster would run degraded, limits per instance, with only debug lines saying why.
   * Once per start; never the password (err.command.args is redacted in every log line).
   */
  #refusedCredentials(err: unknown): void {
    const reply = /^(WRONGPASS|NOAUTH|NOPERM)\b/.exec(String((err as Error | undefined)?.message ?? ''));
    if (reply === null || this.#credentialsWarned) return;
    this.#credentialsWarned = true;
    this.#o.log.warn({ redis: redactRedisUrl(this.#config.redis.url), reply: reply[1] }, 'Redis refuses this instance: check the user name and password in [redis] url; cluster mode stays degraded until it accepts them');
  }

  #sharedFailure(err: unknown, during: string): void {
    this.#o.log.debug({ err, during }, 'Redis call failed');
    void this.#health?.check();
  }

  #client(role: ClientRole): Redis {
    const client = createClient(this.#target, role, {
      commandTimeoutMs: this.#config.redis.commandTimeoutMs,
      name: `${this.#prefix}${this.instanceId}:${role}`,
      onError: (err) => {
        this.#o.log.debug({ err, role }, 'Redis connection error');
        this.#refusedCredentials(err);
      },
    });
    this.#clients.push(client);
    return client;
  }
}
