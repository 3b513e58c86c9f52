/**
 * SpilloverQueueBackend: the QueueBackend conformance suite with a window of 2 jobs (almost
 * everything spills) and with an unbounded one, then spill behaviour itself: only queue_size
 * jobs in memory, the rest pulled back in line order, episodes reported once, restore of a
 * large queue, and the scratch (non-persistent) journal.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openSpilloverQueueBackend, tierForSize, type EnqueueInput, type PriorityTier, type SpillEvent } from '../../src/queue/index.js';
import { describeQueueBackend } from '../conformance/queue-backend.suite.js';

for (const memoryLimit of [2, Infinity]) {
  describeQueueBackend(`SpilloverQueueBackend (memory window ${memoryLimit})`, { durable: true, batchEnqueue: true }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'queue-spill-'));
    const path = join(dir, 'queue.sqlite');
    const opened = [await openSpilloverQueueBackend({ path, memoryLimit, durable: true })];
    return {
      backend: opened[0]!,
      reopen: async () => {
        const next = await openSpilloverQueueBackend({ path, memoryLimit, durable: true });
        opened.push(next);
        return next;
      },
      cleanup: async () => {
        for (const b of opened) await b.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  });
}

const job = (id: string, priority: PriorityTier, at: number): EnqueueInput => ({ id, slotPath: `s/${id}`, size: 1, priority, payload: { n: id }, enqueuedAtMs: at });
const LEASE = 60_000;

describe('SpilloverQueueBackend spill behaviour', () => {
  const withDir = (fn: (dir: string) => Promise<void>) => async () => {
    const dir = await mkdtemp(join(tmpdir(), 'queue-spill-'));
    try {
      await fn(dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };

  it('holds at most memoryLimit queued jobs in memory, spills the rest, pulls them back in order', withDir(async (dir) => {
    const events: SpillEvent[] = [];
    const q = await openSpilloverQueueBackend({ path: join(dir, 'q.sqlite'), memoryLimit: 4, durable: true, onSpill: (e) => events.push(e) });
    try {
      // Low-tier jobs fill memory, then better ones arrive: the low tail leaves memory, not the new high ones.
      for (let i = 0; i < 4; i++) await q.enqueue(job(`low-${i}`, 'low', i));
      assert.deepEqual(q.residency, { inMemory: 4, diskOnly: 0 });
      for (let i = 0; i < 6; i++) await q.enqueue(job(`high-${i}`, 'high', 10 + i));
      await q.enqueue(job('med-0', 'medium', 20));
      assert.deepEqual(q.residency, { inMemory: 4, diskOnly: 7 });
      assert.deepEqual(events[0], { kind: 'spilled', moved: 1, diskOnly: 1, episodeStart: true });
      assert.equal(events.filter((e) => e.kind === 'spilled' && e.episodeStart).length, 1, 'one episode');
      const order: string[] = [];
      for (let j = await q.claimNext('w', 100, LEASE); j !== null; j = await q.claimNext('w', 100, LEASE)) {
        order.push(j.id);
        assert.ok(q.residency.inMemory <= 4);
        await q.complete(j.id, 'w', 100);
      }
      assert.deepEqual(order, ['high-0', 'high-1', 'high-2', 'high-3', 'high-4', 'high-5', 'med-0', 'low-0', 'low-1', 'low-2', 'low-3']);
      assert.deepEqual(events.at(-1), { kind: 'drained', moved: events.filter((e) => e.kind === 'spilled').reduce((n, e) => n + (e.kind === 'spilled' ? e.moved : 0), 0) });
      assert.deepEqual(q.residency, { inMemory: 0, diskOnly: 0 });
    } finally {
      await q.close();
    }
  }));

  it('a job that failed goes back behind the disk-only jobs of its tier when it sorts after them', withDir(async (dir) => {
    const q = await openSpilloverQueueBackend({ path: join(dir, 'q.sqlite'), memoryLimit: 2, durable: true });
    try {
      for (let i = 0; i < 5; i++) await q.enqueue(job(`j${i}`, 'high', i));
      const first = (await q.claimNext('w', 10, LEASE))!;
      assert.equal(first.id, 'j0');
      await q.fail('j0', 'w', { atMs: 10, code: 'ERR_X', message: 'x' }, 20);
      const order: string[] = [];
      for (let j = await q.claimNext('w', 30, LEASE); j !== null; j = await q.claimNext('w', 30, LEASE)) order.push(j.id);
      assert.deepEqual(order, ['j1', 'j2', 'j3', 'j4', 'j0']);
      assert.equal((await q.get('j0'))?.attempts, 1);
    } finally {
      await q.close();
    }
  }));

  it('restores 10,000 jobs with a window of 200, reports the spill at once, pulls them back in order', withDir(async (dir) => {
    const path = join(dir, 'q.sqlite');
    const first = await openSpilloverQueueBackend({ path, memoryLimit: 200, durable: true });
    const inputs = Array.from({ length: 10_000 }, (_, i) => job(`u${i}`, tierForSize((i % 3) * 50_000_000), i));
    for (let i = 0; i < inputs.length; i += 1000) await first.enqueueMany(inputs.slice(i, i + 1000));
    for (let i = 0; i < 10; i++) await first.claimNext('gone', 0, LEASE); // in flight at the "crash"
    await first.close();
    const events: SpillEvent[] = [];
    const second = await openSpilloverQueueBackend({ path, memoryLimit: 200, durable: true, onSpill: (e) => events.push(e) });
    try {
      assert.deepEqual(second.recovery, { restoredJobs: 10_000, releasedLeases: 0 });
      assert.deepEqual(second.residency, { inMemory: 200, diskOnly: 9_800 });
      assert.deepEqual(events, [{ kind: 'spilled', moved: 9_800, diskOnly: 9_800, episodeStart: true }]);
      // Drain 1,500 (each completion is an fsync): strict tier order, FIFO within (nowMs is within
      // the aging threshold of every job), never more than 200 in memory, refills from disk on the way.
      const rank = { high: 0, medium: 1, low: 2 } as const;
      let last = { tier: -1, at: -1 };
      for (let n = 0; n < 1_500; n++) {
        const j = (await second.claimNext('w', 10_000, LEASE))!;
        const r = rank[j.priority];
        assert.ok(r > last.tier || (r === last.tier && j.enqueuedAtMs > last.at), `order broken at ${j.id}`);
        last = { tier: r, at: j.enqueuedAtMs };
        assert.ok(second.residency.inMemory <= 200);
        await second.complete(j.id, 'w', 10_000);
      }
      const counts = await second.counts();
      assert.equal(counts.queued.high + counts.queued.medium + counts.queued.low, 8_500);
      assert.equal(counts.done.high, 1_500, 'the first 1,500 were all high-tier (every third job)');
    } finally {
      await second.close();
    }
  }));

  it('a scratch journal (persistent_queue = false) keeps only dead letters across a restart', withDir(async (dir) => {
    const path = join(dir, 'q.sqlite');
    const first = await openSpilloverQueueBackend({ path, memoryLimit: 10, durable: false });
    await first.enqueue(job('queued', 'high', 0));
    await first.enqueue(job('dead', 'high', 1));
    await first.claimNext('w', 5, LEASE);
    await first.claimNext('w', 5, LEASE);
    await first.bury('dead', 'w', { atMs: 5, code: 'ERR_X', message: 'x' });
    await first.close();
    const second = await openSpilloverQueueBackend({ path, memoryLimit: 10, durable: false });
    try {
      assert.equal(second.recovery.restoredJobs, 0);
      assert.equal(await second.get('queued'), null);
      assert.deepEqual((await second.listDead()).map((j) => j.id), ['dead']);
    } finally {
      await second.close();
    }
  }));
});
