/**
 * The cluster queue (BullMQ in Redis + a local SQLite journal) on a real redis-server: the
 * QueueBackend conformance suite while Redis answers, then what happens when it does not:
 * admissions go to the journal, Redis leases settle once it is back, and the journal mover puts
 * every waiting job into Redis exactly once (a crash between its steps included).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { ClusterQueueBackend, JournalMover, RedisHealth } from '../../src/cluster/index.js';
import { QueueUnavailableError, openSpilloverQueueBackend, type EnqueueInput } from '../../src/queue/index.js';
import { BullmqQueueBackend } from '../../src/queue/backends/bullmq-backend.js';
import { describeQueueBackend } from '../conformance/queue-backend.suite.js';
import { startPersistentRedis, type RestartableRedis } from '../helpers/cluster.js';
import { uniquePrefix, useRedis } from '../helpers/redis.js';

const STALLED_CHECK_MS = 200;

describe('ClusterQueueBackend while Redis answers', () => {
  const redis = useRedis();

  describeQueueBackend('ClusterQueueBackend', { durable: false, batchEnqueue: false, clock: 'wall', sharedByInstances: true }, async () => {
    const keyPrefix = uniquePrefix('{queue}');
    const dirs: string[] = [];
    const opened: ClusterQueueBackend[] = [];
    // One instance: its own connection and its own journal.
    const open = async (onLeasesReleased?: () => void) => {
      const shared = new BullmqQueueBackend({ connection: redis.clients.open(), keyPrefix, stalledCheckIntervalMs: STALLED_CHECK_MS, events: { onLeasesReleased } });
      await shared.start();
      const dir = await mkdtemp(join(tmpdir(), 'hfs-journal-'));
      dirs.push(dir);
      const journal = await openSpilloverQueueBackend({ path: join(dir, 'queue.sqlite'), memoryLimit: 100, durable: true });
      const backend = new ClusterQueueBackend({ shared, journal, reachable: () => true, onSharedFailure: () => {}, timeoutMs: 5_000 });
      opened.push(backend);
      return backend;
    };
    return {
      backend: await open(),
      peer: async () => {
        let released!: () => void;
        const leasesReleased = new Promise<void>((resolve) => (released = resolve));
        return { backend: await open(() => released()), leasesReleased: () => leasesReleased };
      },
      cleanup: async () => {
        for (const b of opened) await b.close();
        for (const d of dirs) await rm(d, { recursive: true, force: true });
      },
    };
  });
});

const job = (id: string, extra: Partial<EnqueueInput> = {}): EnqueueInput => ({
  id,
  slotPath: `slots/${id}.bin`,
  size: 100,
  priority: 'high',
  payload: { uploadId: id },
  enqueuedAtMs: Date.now(),
  ...extra,
});

describe('ClusterQueueBackend when Redis goes away and comes back', () => {
  let redis: RestartableRedis;
  let dir: string;
  let probe: Redis;
  let connection: Redis;
  let health: RedisHealth;
  let shared: BullmqQueueBackend;
  let backend: ClusterQueueBackend;
  let mover: JournalMover;
  /** Resolves on the next reachability change to `reachable`. */
  let changed: (reachable: boolean) => Promise<void>;

  before(async () => {
    redis = await startPersistentRedis();
    dir = await mkdtemp(join(tmpdir(), 'hfs-cluster-queue-'));
    const listeners = new Set<(up: boolean) => void>();
    changed = (want) => new Promise((resolve) => {
      if (health.reachable === want) return resolve();
      const l = (up: boolean) => up === want && (listeners.delete(l), resolve());
      listeners.add(l);
    });
    probe = new Redis(redis.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 1_000, retryStrategy: () => 100 });
    probe.on('error', () => {});
    health = new RedisHealth({ probe, intervalMs: 100, connectTimeoutMs: 1_000, onChange: (up) => [...listeners].forEach((l) => l(up)) });
    await health.start();
    connection = new Redis(redis.url, { maxRetriesPerRequest: null, retryStrategy: () => 100 });
    connection.on('error', () => {});
    shared = new BullmqQueueBackend({ connection, keyPrefix: uniquePrefix('{queue}'), stalledCheckIntervalMs: 1_000 });
    await shared.start();
    const journal = await openSpilloverQueueBackend({ path: join(dir, 'queue.sqlite'), memoryLimit: 100, durable: true });
    backend = new ClusterQueueBackend({ shared, journal, reachable: () => health.reachable, onSharedFailure: () => void health.check(), timeoutMs: 1_000 });
    mover = new JournalMover({
      journal,
      shared: { enqueue: (i) => backend.callShared('move', (s) => s.enqueue(i)), get: (id) => backend.callShared('move', (s) => s.get(id)) },
      now: Date.now,
    });
  });
  after(async () => {
    health.stop();
    await backend.close();
    probe.disconnect();
    connection.disconnect();
    await redis.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('admits into Redis while it answers', async () => {
    assert.equal(await backend.enqueue(job('r1')), true);
    assert.equal((await shared.get('r1'))?.state, 'queued');
    assert.equal(await backend.journal.get('r1'), null);
  });

  it('while Redis is gone: admission goes to the journal, journal jobs run, Redis leases settle later, lookups say "unknown"', async () => {
    const leased = await backend.claimNext('w1', Date.now(), 60_000);
    assert.equal(leased?.id, 'r1', 'a Redis job leased before the outage');

    await redis.kill();
    await changed(false);
    assert.equal(await backend.enqueue(job('j1')), true);
    assert.equal(await backend.enqueue(job('j2')), true);
    assert.equal(await backend.enqueue(job('j1')), false, 'one job per id in the journal too');
    assert.equal((await backend.journal.get('j1'))?.state, 'queued');
    assert.equal((await backend.get('j1'))?.state, 'queued', 'journal jobs are known without Redis');
    await assert.rejects(backend.get('r1'), QueueUnavailableError, 'a Redis job cannot be looked up: unknown, not absent');
    const counts = await backend.counts();
    assert.ok(counts.queued.high >= 2, 'counts include the journal (Redis: last seen)');

    assert.equal(await backend.complete('r1', 'w1', Date.now()), true, 'recorded, to be written once Redis is back');
    assert.equal(backend.deferredCount, 1);
    const local = await backend.claimNext('w2', Date.now(), 60_000);
    assert.equal(local?.id, 'j1', 'the journal is claimed while Redis is gone');
    assert.equal(await backend.complete('j1', 'w2', Date.now()), true);

    await redis.restart();
    await changed(true);
    assert.equal(await backend.flushDeferred(), 0);
    assert.equal((await shared.get('r1'))?.state, 'done', 'the outcome reached Redis');

    const pass = await mover.pass();
    assert.deepEqual(pass, { moved: 1, keptLocal: 0, interrupted: false });
    assert.equal((await shared.get('j2'))?.state, 'queued', 'the waiting journal job is in Redis');
    assert.equal(await backend.journal.get('j2'), null, 'and gone from the journal');
    assert.equal((await backend.journal.get('j1'))?.state, 'done', 'a job finished here stays here');
    assert.equal(await backend.enqueue(job('j1')), false, 'still one job per id');
  });

  it('a move interrupted between Redis and the journal repeats nothing', async () => {
    await redis.kill();
    await changed(false);
    assert.equal(await backend.enqueue(job('c1')), true);
    await redis.restart();
    await changed(true);
    // The crash case: Redis got the job, the journal still has it.
    assert.equal(await shared.enqueue(job('c1')), true);
    const pass = await mover.pass();
    assert.equal(pass.moved, 1);
    assert.equal(await backend.journal.get('c1'), null);
    const inRedis = await shared.counts();
    assert.equal(inRedis.queued.high, 2, 'j2 and c1, once each');
  });

  it('a journal job whose slot another Redis job holds stays local (its own workers finish it)', async () => {
    await shared.enqueue(job('holder', { slotPath: 'slots/contended.bin' }));
    await redis.kill();
    await changed(false);
    assert.equal(await backend.enqueue(job('late', { slotPath: 'slots/contended.bin' })), true, 'unknowable while Redis is gone');
    await redis.restart();
    await changed(true);
    const pass = await mover.pass();
    assert.deepEqual(pass, { moved: 0, keptLocal: 1, interrupted: false });
    assert.equal((await backend.journal.get('late'))?.state, 'queued');
    assert.equal((await backend.claimNext('w3', Date.now(), 60_000))?.id, 'late', 'claimable here');
  });
});
