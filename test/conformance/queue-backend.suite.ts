/**
 * Conformance suite for QueueBackend: every implementation runs it through its own factory.
 * Factories open backends with default options (aging threshold DEFAULT_AGING_THRESHOLD_MS).
 * All time is explicit nowMs; nothing here sleeps.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import {
  DEFAULT_AGING_THRESHOLD_MS,
  QueueClosedError,
  canEnqueueMany,
  canListJobs,
  canRetryNow,
  emptyCounts,
  type EnqueueInput,
  type JobError,
  type PriorityTier,
  type QueueBackend,
} from '../../src/queue/index.js';

export interface QueueBackendFixture {
  backend: QueueBackend;
  /** Present for durable backends: opens the same storage again after `backend.close()`. */
  reopen?: () => Promise<QueueBackend>;
  /** Removes what the fixture created; backends are closed before it runs. */
  cleanup: () => Promise<void>;
  /**
   * Present for shared backends (capability `sharedByInstances`): another instance on the same
   * storage, and a promise for the moment it has requeued jobs whose lease expired.
   */
  peer?: () => Promise<{ backend: QueueBackend; leasesReleased: () => Promise<void> }>;
}

const T = DEFAULT_AGING_THRESHOLD_MS;
const LEASE = 30_000;

function job(id: string, priority: PriorityTier = 'high', enqueuedAtMs = 0, extra: Partial<EnqueueInput> = {}): EnqueueInput {
  return { id, slotPath: `slots/${id}/file.bin`, size: 1234, priority, payload: { uploadId: id }, enqueuedAtMs, ...extra };
}

function err(atMs: number, code = 'ERR_FINALIZE_HASH'): JobError {
  return { atMs, message: `failed at ${atMs}`, code };
}

/** Claims until nothing is left; bounded so a backend that re-serves leased jobs fails, not hangs. */
async function claimAll(backend: QueueBackend, nowMs: number, max = 1000): Promise<string[]> {
  const ids: string[] = [];
  for (let j = await backend.claimNext('w', nowMs, LEASE); j !== null; j = await backend.claimNext('w', nowMs, LEASE)) {
    ids.push(j.id);
    assert.ok(ids.length <= max, `claimed more than ${max}: ${ids.slice(0, 5).join(',')}…`);
  }
  return ids;
}

/** Enqueues `input` and leaves it leased by `owner`; asserts nothing else was claimable. */
async function lease(backend: QueueBackend, input: EnqueueInput, owner: string, nowMs: number): Promise<void> {
  assert.equal(await backend.enqueue(input), true);
  assert.equal((await backend.claimNext(owner, nowMs, LEASE))?.id, input.id);
}

/** What the backend offers beyond the core contract; only those cases are registered. */
export interface QueueBackendCapabilities {
  /** Survives close + reopen (the fixture provides `reopen`). */
  durable: boolean;
  /** Implements BatchEnqueuer. */
  batchEnqueue: boolean;
  /**
   * 'caller': time is only what the caller passes as nowMs, so cases may move it at will.
   * 'wall': availability and lease expiry follow the real clock (a Redis backend shared by
   * instances); cases that need time to jump are left out, the rest run with real times.
   * Default 'caller'.
   */
  clock?: 'caller' | 'wall';
  /** Several instances share the jobs (the fixture provides `peer`). */
  sharedByInstances?: boolean;
}

export function describeQueueBackend(name: string, capabilities: QueueBackendCapabilities, open: () => Promise<QueueBackendFixture>): void {
  const withBackend = (fn: (f: QueueBackendFixture, t: TestContext) => Promise<void>) => async (t: TestContext) => {
    const fixture = await open();
    try {
      await fn(fixture, t);
    } finally {
      await fixture.backend.close();
      await fixture.cleanup();
    }
  };

  /** Registers a case that moves time by hand: only for backends whose time is the caller's. */
  const itCallerClock = (title: string, fn: (t: TestContext) => Promise<void>) =>
    capabilities.clock !== 'wall' ? it(title, fn) : it.skip(`${title} (needs the caller's clock)`, fn);
  /** Later than any case runs, in either clock. */
  const future = () => (capabilities.clock === 'wall' ? Date.now() : 0) + 1e9;

  describe(`${name} conforms to QueueBackend`, () => {
    it('admits an id once; re-enqueueing is a no-op that returns false', withBackend(async ({ backend }) => {
      assert.equal(await backend.enqueue(job('a', 'medium', 5)), true);
      assert.equal(await backend.enqueue(job('a', 'high', 9, { slotPath: 'other' })), false);
      assert.deepEqual(await backend.get('a'), {
        id: 'a', slotPath: 'slots/a/file.bin', size: 1234, priority: 'medium', payload: { uploadId: 'a' },
        attempts: 0, errors: [], enqueuedAtMs: 5, availableAtMs: 5, state: 'queued',
      });
      const counts = emptyCounts();
      counts.queued.medium = 1;
      assert.deepEqual(await backend.counts(), counts);
    }));

    it('stays a no-op for ids that are done or dead', withBackend(async ({ backend }) => {
      await lease(backend, job('done'), 'w', 0);
      assert.equal(await backend.complete('done', 'w', 10), true);
      await lease(backend, job('dead'), 'w', 0);
      assert.equal(await backend.bury('dead', 'w', err(10)), true);
      assert.equal(await backend.enqueue(job('done')), false);
      assert.equal(await backend.enqueue(job('dead')), false);
      assert.equal((await backend.get('done'))?.state, 'done');
      assert.equal((await backend.get('dead'))?.state, 'dead');
    }));

    it('round-trips JSON payloads and returns snapshots', withBackend(async ({ backend }) => {
      const payload = { uploadId: 'p', nested: { list: [1, 'two', null, { ok: true }] }, ratio: 1.5 };
      await backend.enqueue(job('p', 'high', 0, { payload }));
      const got = await backend.get('p');
      assert.deepEqual(got?.payload, payload);
      (got!.payload as { ratio: number }).ratio = 99;
      (got!.errors as JobError[]).push(err(1));
      const claimed = await backend.claimNext('w', 0, LEASE);
      assert.deepEqual(claimed?.payload, payload);
      assert.deepEqual(claimed?.errors, []);
    }));

    it('rejects invalid input and admits nothing', withBackend(async ({ backend }) => {
      await assert.rejects(backend.enqueue(job('')), TypeError);
      await assert.rejects(backend.enqueue(job('x', 'urgent' as PriorityTier)), TypeError);
      await assert.rejects(backend.enqueue(job('y', 'high', 0, { size: -1 })), RangeError);
      assert.deepEqual(await backend.counts(), emptyCounts());
    }));

    it('answers unknown ids with null, false or 0', withBackend(async ({ backend }) => {
      assert.equal(await backend.get('nope'), null);
      assert.equal(await backend.extendLease('nope', 'w', 0, LEASE), false);
      assert.equal(await backend.complete('nope', 'w', 0), false);
      assert.equal(await backend.fail('nope', 'w', err(0), 0), false);
      assert.equal(await backend.bury('nope', 'w', err(0)), false);
      assert.equal(await backend.replayDead({ id: 'nope' }, 0), 0);
      assert.equal(await backend.purgeDead({ id: 'nope' }), 0);
      assert.equal(await backend.claimNext('w', 0, LEASE), null);
    }));

    itCallerClock('claims by tier, FIFO within a tier, and leases to the claimer', withBackend(async ({ backend }) => {
      // Ids sort differently from insertion order so only FIFO passes; zeta/alpha share a time.
      for (const input of [
        job('low-1', 'low', 0), job('med-1', 'medium', 0), job('zeta', 'high', 1), job('alpha', 'high', 1),
        job('low-2', 'low', 1), job('high-0', 'high', 0), job('med-2', 'medium', 2),
      ]) {
        assert.equal(await backend.enqueue(input), true);
      }
      const first = await backend.claimNext('worker-1', 10, 500);
      assert.equal(first?.id, 'high-0');
      assert.equal(first?.state, 'leased');
      assert.equal(first?.leaseOwner, 'worker-1');
      assert.equal(first?.leaseExpiresAtMs, 510);
      assert.deepEqual(await claimAll(backend, 10), ['zeta', 'alpha', 'med-1', 'med-2', 'low-1', 'low-2']);
    }));

    it('claims by tier, FIFO in admission order within a tier, and leases to the claimer', withBackend(async ({ backend }) => {
      for (const [i, [id, tier]] of ([['low-1', 'low'], ['med-1', 'medium'], ['zeta', 'high'], ['alpha', 'high'], ['low-2', 'low'], ['high-0', 'high'], ['med-2', 'medium']] as const).entries()) {
        assert.equal(await backend.enqueue(job(id, tier, i)), true);
      }
      const first = await backend.claimNext('worker-1', 10, 500);
      assert.deepEqual([first?.id, first?.state, first?.leaseOwner, first?.leaseExpiresAtMs], ['zeta', 'leased', 'worker-1', 510]);
      assert.deepEqual(await claimAll(backend, 10), ['alpha', 'high-0', 'med-1', 'med-2', 'low-1', 'low-2']);
    }));

    it('does not claim a job that is not available yet', withBackend(async ({ backend }) => {
      await backend.enqueue(job('later', 'high', 0, { availableAtMs: future() }));
      await backend.enqueue(job('now', 'low', 0));
      assert.deepEqual(await claimAll(backend, 0), ['now']);
      assert.equal((await backend.get('later'))?.state, 'queued');
    }));

    itCallerClock('does not claim a job before its availableAtMs', withBackend(async ({ backend }) => {
      await backend.enqueue(job('later', 'high', 0, { availableAtMs: 100 }));
      assert.equal(await backend.claimNext('w', 99, LEASE), null);
      assert.equal((await backend.claimNext('w', 100, LEASE))?.id, 'later');
    }));

    const agingCases: { name: string; jobs: EnqueueInput[]; nowMs: number; order: string[]; callerClock?: boolean }[] = [
      { name: 'no promotion before one threshold', jobs: [job('low', 'low', 0), job('med', 'medium', 1)], nowMs: T - 1, order: ['med', 'low'] },
      { name: 'one tier up after one threshold, older wins the tie', jobs: [job('low', 'low', 0), job('med', 'medium', 1)], nowMs: T, order: ['low', 'med'] },
      { name: 'one tier is not two', jobs: [job('low', 'low', 0), job('high', 'high', T)], nowMs: 2 * T - 1, order: ['high', 'low'] },
      { name: 'two tiers up after two thresholds', jobs: [job('low', 'low', 0), job('high', 'high', T)], nowMs: 2 * T, order: ['low', 'high'] },
      { name: 'FIFO kept within an aged tier', jobs: [job('low-a', 'low', 1), job('low-b', 'low', 0), job('high', 'high', 2 * T)], nowMs: 2 * T + 1, order: ['low-b', 'low-a', 'high'], callerClock: true },
      { name: 'waiting counts from availableAtMs', jobs: [job('retry', 'low', 0, { availableAtMs: T }), job('med', 'medium', T)], nowMs: T + 1, order: ['med', 'retry'] },
    ];
    for (const c of agingCases) {
      (c.callerClock ? itCallerClock : it)(`aging: ${c.name}`, withBackend(async ({ backend }) => {
        for (const input of c.jobs) await backend.enqueue(input);
        assert.deepEqual(await claimAll(backend, c.nowMs), c.order);
      }));
    }

    it('never hands one job to two concurrent claimers', withBackend(async ({ backend }) => {
      const tiers: PriorityTier[] = ['high', 'medium', 'low'];
      for (let i = 0; i < 60; i++) await backend.enqueue(job(`j${i}`, tiers[i % 3]!, i % 7));
      for (const round of [0, 1]) {
        const claims = await Promise.all(Array.from({ length: 80 }, (_, w) => backend.claimNext(`w${w}`, 100, LEASE)));
        const won = claims.flatMap((j, w) => (j === null ? [] : [{ id: j.id, owner: `w${w}` }]));
        assert.equal(won.length, 60, `round ${round}`);
        assert.equal(new Set(won.map((c) => c.id)).size, 60, `round ${round}: duplicate claim`);
        for (const c of won) assert.equal((await backend.get(c.id))?.leaseOwner, c.owner);
        assert.equal(await backend.claimNext('late', 100, LEASE), null);
        for (const c of won) assert.equal(await backend.fail(c.id, c.owner, err(100), 100), true);
      }
    }));

    itCallerClock('requeues expired leases in place; the old owner loses the job', withBackend(async ({ backend }) => {
      await backend.enqueue(job('first', 'high', 0));
      await backend.enqueue(job('second', 'high', 1));
      assert.equal((await backend.claimNext('A', 0, 1000))?.id, 'first');
      assert.equal(await backend.extendLease('first', 'B', 500, 1000), false);
      assert.equal(await backend.extendLease('first', 'A', 500, 1000), true);
      assert.equal(await backend.releaseExpiredLeases(1499), 0);
      assert.equal(await backend.releaseExpiredLeases(1500), 1);
      const requeued = await backend.get('first');
      assert.equal(requeued?.state, 'queued');
      assert.equal(requeued?.attempts, 0);
      assert.equal(requeued?.leaseOwner, undefined);
      assert.equal(requeued?.leaseExpiresAtMs, undefined);
      assert.equal(await backend.complete('first', 'A', 1500), false);
      assert.equal((await backend.claimNext('B', 1500, 1000))?.id, 'first', 'keeps its place in line');
      assert.equal(await backend.complete('first', 'B', 1600), true);
      const done = await backend.get('first');
      assert.deepEqual([done?.state, done?.finishedAtMs, done?.leaseOwner, done?.leaseExpiresAtMs], ['done', 1600, undefined, undefined]);
    }));

    it('fail requeues with attempts and history, not claimable before retryAt', withBackend(async ({ backend }) => {
      await lease(backend, job('f'), 'A', 0);
      assert.equal(await backend.fail('f', 'B', err(10), 5000), false);
      assert.equal(await backend.fail('f', 'A', err(10), 5000), true);
      assert.equal(await backend.fail('f', 'A', err(11), 5000), false, 'no longer leased');
      const failed = await backend.get('f');
      assert.equal(failed?.state, 'queued');
      assert.equal(failed?.attempts, 1);
      assert.deepEqual(failed?.errors, [err(10)]);
      assert.equal(failed?.availableAtMs, 5000);
      assert.deepEqual([failed?.leaseOwner, failed?.leaseExpiresAtMs], [undefined, undefined]);
      assert.equal(await backend.claimNext('A', 4999, LEASE), null);
      assert.equal((await backend.claimNext('A', 5000, LEASE))?.attempts, 1);
      assert.equal(await backend.fail('f', 'A', err(5001, 'ERR_NETWORK'), 6000), true);
      assert.deepEqual((await backend.get('f'))?.errors, [err(10), err(5001, 'ERR_NETWORK')]);
      assert.equal((await backend.get('f'))?.attempts, 2);
    }));

    it('buries with full history; lists, replays and purges dead letters', withBackend(async ({ backend }) => {
      await lease(backend, job('x'), 'w', 0);
      await backend.fail('x', 'w', err(1), 0);
      assert.equal((await backend.claimNext('w', 2, LEASE))?.id, 'x');
      assert.equal(await backend.bury('x', 'v', err(50)), false, 'wrong owner');
      assert.equal(await backend.bury('x', 'w', err(50)), true);
      await lease(backend, job('y'), 'w', 0);
      await backend.bury('y', 'w', err(60));
      // Buried last but earliest: dead letters list by burial time. A wall clock cannot bury in the past.
      const zAt = capabilities.clock === 'wall' ? 70 : 40;
      const byBurial = capabilities.clock === 'wall' ? ['x', 'y', 'z'] : ['z', 'x', 'y'];
      await lease(backend, job('z'), 'w', 0);
      await backend.bury('z', 'w', err(zAt));
      await backend.enqueue(job('alive', 'low', 70, { availableAtMs: future() }));

      const x = await backend.get('x');
      assert.equal(x?.state, 'dead');
      assert.equal(x?.attempts, 2);
      assert.deepEqual(x?.errors, [err(1), err(50)]);
      assert.equal(x?.finishedAtMs, 50);
      assert.deepEqual([x?.leaseOwner, x?.leaseExpiresAtMs], [undefined, undefined]);
      assert.equal(await backend.claimNext('w', 100, LEASE), null);
      assert.deepEqual((await backend.listDead()).map((j) => j.id), byBurial);
      assert.deepEqual((await backend.listDead({ limit: 1, offset: 1 })).map((j) => j.id), [byBurial[1]]);
      assert.deepEqual((await backend.listDead())[byBurial.indexOf('x')]?.errors, [err(1), err(50)]);

      assert.equal(await backend.replayDead({ id: 'alive' }, 100), 0);
      assert.equal(await backend.purgeDead({ id: 'alive' }), 0);
      assert.equal(await backend.replayDead({ id: 'x' }, 100), 1);
      assert.equal(await backend.replayDead({ id: 'x' }, 100), 0);
      const replayed = await backend.get('x');
      assert.equal(replayed?.state, 'queued');
      assert.equal(replayed?.attempts, 0);
      assert.deepEqual(replayed?.errors, [err(1), err(50)]);
      assert.equal(replayed?.availableAtMs, 100);
      assert.equal(await backend.claimNext('w', 99, LEASE), null);
      assert.equal((await backend.claimNext('w', 100, LEASE))?.id, 'x');

      assert.equal(await backend.purgeDead({ id: 'y' }), 1);
      assert.equal(await backend.get('y'), null);
      assert.equal(await backend.purgeDead('all'), 1);
      assert.deepEqual(await backend.listDead(), []);
      assert.equal((await backend.get('alive'))?.state, 'queued');
    }));

    it('replays all dead letters at once', withBackend(async ({ backend }) => {
      for (const id of ['d1', 'd2']) {
        await lease(backend, job(id), 'w', 0);
        await backend.bury(id, 'w', err(1));
      }
      assert.equal(await backend.replayDead('all', 5), 2);
      assert.deepEqual(await claimAll(backend, 5), ['d1', 'd2']);
    }));

    it('counts jobs by state and tier', withBackend(async ({ backend }) => {
      await lease(backend, job('l', 'medium'), 'w', 0);
      for (const input of [job('q1', 'high'), job('q2', 'high'), job('q3', 'low', 0, { availableAtMs: future() }), job('c', 'low'), job('d', 'high')]) {
        await backend.enqueue(input);
      }
      assert.deepEqual(await claimAll(backend, 0), ['q1', 'q2', 'd', 'c']);
      await backend.fail('q1', 'w', err(1), 0);
      await backend.fail('q2', 'w', err(1), 0);
      await backend.complete('c', 'w', 1);
      await backend.bury('d', 'w', err(1));
      const expected = emptyCounts();
      expected.queued.high = 2;
      expected.queued.low = 1;
      expected.leased.medium = 1;
      expected.done.low = 1;
      expected.dead.high = 1;
      assert.deepEqual(await backend.counts(), expected);
    }));

    it('prunes only done jobs finished before the cutoff', withBackend(async ({ backend }) => {
      for (const [id, at] of [['a', 100], ['b', 200]] as const) {
        await lease(backend, job(id), 'w', 0);
        await backend.complete(id, 'w', at);
      }
      await lease(backend, job('dead'), 'w', 0);
      await backend.bury('dead', 'w', err(0));
      assert.equal(await backend.pruneDone(200), 1);
      assert.equal(await backend.get('a'), null);
      assert.equal((await backend.get('b'))?.state, 'done');
      assert.equal((await backend.get('dead'))?.state, 'dead');
    }));

    it('closes idempotently; later calls reject', withBackend(async ({ backend }) => {
      await backend.close();
      await backend.close();
      await assert.rejects(backend.enqueue(job('late')), QueueClosedError);
      await assert.rejects(backend.claimNext('w', 0, LEASE), QueueClosedError);
      await assert.rejects(backend.counts(), QueueClosedError);
    }));

    it('holds one job per slot path in every state until purged or pruned', withBackend(async ({ backend }) => {
      assert.equal(await backend.enqueue(job('put-1', 'high', 0, { slotPath: 's/race.bin' })), true);
      assert.equal(await backend.enqueue(job('tus-1', 'high', 0, { slotPath: 's/race.bin' })), false, 'slot taken');
      assert.equal(await backend.get('tus-1'), null, 'the loser left nothing behind');
      const claims = await Promise.all(['a', 'b', 'c'].map((id) => backend.enqueue(job(`c-${id}`, 'low', 0, { slotPath: 's/same.bin' }))));
      assert.equal(claims.filter(Boolean).length, 1, 'concurrent enqueues: exactly one wins');
      // Done and dead jobs keep their slot; purge and prune free it.
      assert.equal((await backend.claimNext('w', 0, LEASE))?.id, 'put-1');
      assert.equal(await backend.complete('put-1', 'w', 10), true);
      assert.equal(await backend.enqueue(job('late', 'high', 20, { slotPath: 's/race.bin' })), false, 'done holds it');
      await backend.claimNext('w', 0, LEASE);
      const winner = (await backend.getBySlot('s/same.bin'))!;
      assert.equal(await backend.bury(winner.id, 'w', err(30)), true);
      assert.equal(await backend.enqueue(job('late-2', 'high', 40, { slotPath: 's/same.bin' })), false, 'dead holds it');
      assert.equal(await backend.purgeDead({ id: winner.id }), 1);
      assert.equal(await backend.enqueue(job('late-2', 'high', 40, { slotPath: 's/same.bin' })), true, 'purged: free');
      assert.equal(await backend.pruneDone(11), 1);
      assert.equal(await backend.enqueue(job('late', 'high', 50, { slotPath: 's/race.bin' })), true, 'pruned: free');
    }));

    it('finds a job by its slot path in any state', withBackend(async ({ backend }) => {
      assert.equal(await backend.getBySlot('nowhere'), null);
      await backend.enqueue(job('q', 'medium', 3, { slotPath: 'a/q.bin' }));
      assert.deepEqual([(await backend.getBySlot('a/q.bin'))?.id, (await backend.getBySlot('a/q.bin'))?.state], ['q', 'queued']);
      await backend.claimNext('w', 3, LEASE);
      assert.equal((await backend.getBySlot('a/q.bin'))?.leaseOwner, 'w');
      await backend.complete('q', 'w', 4);
      assert.equal((await backend.getBySlot('a/q.bin'))?.state, 'done');
    }));

    it('postpone requeues without spending an attempt, available from the given time', withBackend(async ({ backend }) => {
      await lease(backend, job('p', 'high', 0), 'A', 0);
      await backend.enqueue(job('other', 'high', 10));
      assert.equal(await backend.postpone('p', 'B', 100), false, 'wrong owner');
      assert.equal(await backend.postpone('nope', 'A', 100), false);
      assert.equal(await backend.postpone('p', 'A', 100), true);
      assert.equal(await backend.postpone('p', 'A', 100), false, 'no longer leased');
      const p = await backend.get('p');
      assert.deepEqual([p?.state, p?.attempts, p?.errors, p?.availableAtMs, p?.leaseOwner], ['queued', 0, [], 100, undefined]);
      assert.deepEqual(await claimAll(backend, 99), ['other']);
      assert.equal((await backend.claimNext('A', 100, LEASE))?.id, 'p');
    }));

    it('JobLister: lists by state and tier in line order, running jobs as leased (capability)', withBackend(async ({ backend }, t) => {
      if (!canListJobs(backend)) return t.skip('no JobLister');
      await lease(backend, job('run', 'medium', 0), 'w', 30);
      await lease(backend, job('gone', 'high', 0), 'w', 30);
      await backend.bury('gone', 'w', err(40));
      await backend.enqueue(job('q2', 'high', 20));
      await backend.enqueue(job('q1', 'high', 10));
      await backend.enqueue(job('low', 'low', 5));
      assert.deepEqual((await backend.listJobs()).map((j) => [j.id, j.state]), [['run', 'leased'], ['low', 'queued'], ['q1', 'queued'], ['q2', 'queued']]);
      assert.deepEqual((await backend.listJobs({ states: ['queued'] })).map((j) => j.id), ['low', 'q1', 'q2']);
      assert.deepEqual((await backend.listJobs({ states: ['leased'] })).map((j) => [j.id, j.leaseOwner]), [['run', 'w']]);
      assert.deepEqual((await backend.listJobs({ priority: 'high', limit: 1, offset: 1 })).map((j) => j.id), ['q2']);
      assert.deepEqual((await backend.listJobs({ states: ['dead'] })).map((j) => j.id), ['gone']);
      await assert.rejects(backend.listJobs({ states: ['bogus' as never] }), RangeError);
    }));

    it('JobRetrier: a job in backoff becomes available now, nothing else changes (capability)', withBackend(async ({ backend }, t) => {
      if (!canRetryNow(backend)) return t.skip('no JobRetrier');
      const t0 = capabilities.clock === 'wall' ? Date.now() - 10_000 : 0; // a wall-clock backend: times already past
      await lease(backend, job('b', 'high', t0), 'w', t0);
      await backend.fail('b', 'w', err(t0 + 1), future());
      await backend.enqueue(job('other', 'high', t0 + 50));
      assert.equal(await backend.claimNext('w', t0 + 100, LEASE).then((j) => j?.id), 'other');
      assert.equal(await backend.claimNext('w', t0 + 100, LEASE), null, 'b waits for its backoff');
      assert.equal(await backend.retryNow('b', t0 + 100), true);
      const b = await backend.get('b');
      assert.deepEqual([b?.availableAtMs, b?.attempts, b?.errors.length], [t0 + 100, 1, 1]);
      assert.equal((await backend.claimNext('w', t0 + 100, LEASE))?.id, 'b');
      assert.equal(await backend.retryNow('b', t0 + 100), false, 'leased');
      assert.equal(await backend.retryNow('nope', t0 + 100), false);
      await backend.enqueue(job('early', 'low', t0 + 5));
      assert.equal(await backend.retryNow('early', t0 + 100), true);
      assert.equal((await backend.get('early'))?.availableAtMs, t0 + 5, 'already available: keeps its place');
    }));

    if (capabilities.sharedByInstances) it('a dead instance\'s leased job goes back in line and another instance takes it', withBackend(async (f) => {
      assert.ok(f.peer, 'declared sharedByInstances');
      const { backend } = f;
      await backend.enqueue(job('orphan', 'medium', Date.now()));
      assert.equal((await backend.claimNext('w', Date.now(), 300))?.id, 'orphan');
      const other = await f.peer();
      await backend.close(); // the instance is gone; its lease is not given back
      assert.equal(await other.backend.claimNext('w', Date.now(), LEASE), null, 'still leased');
      await other.leasesReleased();
      assert.ok((await other.backend.releaseExpiredLeases(Date.now())) >= 1);
      const taken = await other.backend.claimNext('w', Date.now(), LEASE);
      assert.deepEqual([taken?.id, taken?.attempts, taken?.leaseOwner], ['orphan', 0, 'w']);
      assert.equal(await other.backend.complete('orphan', 'w', Date.now()), true);
    }));

    if (capabilities.batchEnqueue) it('enqueueMany admits new ids in order, all or nothing', withBackend(async ({ backend }) => {
      assert.ok(canEnqueueMany(backend), 'declared batchEnqueue');
      await backend.enqueue(job('old', 'high', 0));
      assert.equal(await backend.enqueueMany([job('b2', 'high', 0), job('old', 'high', 0), job('a1', 'high', 0), job('b2')]), 2);
      await assert.rejects(backend.enqueueMany([job('ok', 'high'), job('', 'high')]), TypeError);
      assert.equal(await backend.get('ok'), null);
      assert.deepEqual(await claimAll(backend, 0), ['old', 'b2', 'a1']);
    }));

    if (capabilities.durable) it('keeps every job across close and reopen; leases come back queued', withBackend(async (f) => {
      assert.ok(f.reopen, 'declared durable');
      const { backend } = f;
      // Leases first: lease() asserts its job is the one claimed.
      await lease(backend, job('leased', 'medium', 0), 'gone-worker', 0);
      await lease(backend, job('failed', 'high', 0), 'w', 0);
      await backend.fail('failed', 'w', err(3), 500);
      await lease(backend, job('dead', 'low', 0), 'w', 0);
      await backend.bury('dead', 'w', err(4));
      await lease(backend, job('done', 'low', 0), 'w', 0);
      await backend.complete('done', 'w', 5);
      await backend.enqueue(job('q-high', 'high', 0, { payload: { uploadId: 'q', tags: ['x'] } }));
      await backend.enqueue(job('q-low', 'low', 1));
      const before = await backend.counts();
      await backend.close();

      const reopened = await f.reopen!();
      try {
        const expected = structuredClone(before);
        expected.leased.medium -= 1;
        expected.queued.medium += 1;
        assert.deepEqual(await reopened.counts(), expected);
        const leased = await reopened.get('leased');
        assert.equal(leased?.state, 'queued');
        assert.equal(leased?.leaseOwner, undefined);
        assert.deepEqual((await reopened.get('q-high'))?.payload, { uploadId: 'q', tags: ['x'] });
        const failed = await reopened.get('failed');
        assert.deepEqual([failed?.attempts, failed?.errors, failed?.availableAtMs], [1, [err(3)], 500]);
        assert.deepEqual((await reopened.listDead()).map((j) => [j.id, j.errors]), [['dead', [err(4)]]]);
        assert.equal((await reopened.get('done'))?.finishedAtMs, 5);
        assert.equal(await reopened.enqueue(job('leased')), false);
        assert.deepEqual(await claimAll(reopened, 10), ['q-high', 'leased', 'q-low']);
        assert.equal((await reopened.claimNext('w', 500, LEASE))?.id, 'failed');
      } finally {
        await reopened.close();
      }
    }));
  });
}
