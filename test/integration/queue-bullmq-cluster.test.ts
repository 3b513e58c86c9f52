/**
 * Two instances, each with its own Redis connection, BullMQ backend and dispatcher, share one
 * finalization queue on a real redis-server: every job runs to an end exactly once, retries come
 * back after their backoff, and both instances take work.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Dispatcher, emptyCounts, systemClock, type Job, type JobOutcome, type PriorityTier } from '../../src/queue/index.js';
import { BullmqQueueBackend } from '../../src/queue/backends/bullmq-backend.js';
import { uniquePrefix, useRedis } from '../helpers/redis.js';

const redis = useRedis();

const JOBS = 60;
const TIERS: PriorityTier[] = ['high', 'medium', 'low'];

describe('BullMQ queue shared by two instances', () => {
  it('runs every job to one end across both instances, with retries after backoff', async () => {
    const keyPrefix = uniquePrefix('{queue}');
    const runs: Array<{ instance: string; id: string; attempt: number }> = [];
    const ends = new Map<string, string[]>();
    let finished!: () => void;
    const allFinished = new Promise<void>((resolve) => (finished = resolve));
    const record = (id: string, end: string) => {
      ends.set(id, [...(ends.get(id) ?? []), end]);
      if ([...ends.values()].reduce((n, e) => n + e.length, 0) === JOBS) finished();
    };
    // Each instance's first job waits until the other instance has started one, so both take work.
    const started = new Set<string>();
    const bothStarted = new Map<string, () => void>();
    const otherStarted = (instance: string) => new Promise<void>((resolve) => (started.size === 2 ? resolve() : bothStarted.set(instance, resolve)));

    const instances = await Promise.all(['A', 'B'].map(async (name) => {
      const backend = new BullmqQueueBackend({ connection: redis.clients.open(), keyPrefix, stalledCheckIntervalMs: 1_000 });
      await backend.start();
      const dispatcher = new Dispatcher({
        backend,
        workers: 2,
        jobTimeoutMs: 30_000,
        retry: { baseMs: 20, maxMs: 100, maxRetries: 2 },
        strategy: 'round_robin',
        healthCheckIntervalMs: 60_000,
        pollIntervalMs: 50,
        clock: systemClock,
        random: Math.random,
        handler: async (job: Job): Promise<JobOutcome> => {
          runs.push({ instance: name, id: job.id, attempt: job.attempts });
          if (!started.has(name)) {
            started.add(name);
            if (started.size === 2) for (const wake of bothStarted.values()) wake();
            await otherStarted(name);
          }
          const n = Number(job.id.slice(1));
          if (n === 7) return { kind: 'dead', error: { atMs: Date.now(), code: 'ERR_FINALIZE_HASH', message: 'checksum mismatch' } };
          if (n % 5 === 0 && job.attempts === 0) return { kind: 'retry', reason: 'network', error: { atMs: Date.now(), code: 'ERR_NETWORK', message: 'webhook unreachable' } };
          return { kind: 'done' };
        },
        events: {
          onDone: (job) => record(job.id, 'done'),
          onDead: (job) => record(job.id, 'dead'),
        },
      });
      return { name, backend, dispatcher };
    }));

    const [a, b] = instances as [(typeof instances)[0], (typeof instances)[0]];
    for (let i = 0; i < JOBS; i++) {
      const admitted = await a.backend.enqueue({ id: `j${i}`, slotPath: `s/j${i}.bin`, size: i, priority: TIERS[i % 3]!, payload: { uploadId: `j${i}` }, enqueuedAtMs: Date.now() });
      assert.equal(admitted, true);
    }
    a.dispatcher.start();
    b.dispatcher.start();
    try {
      await allFinished;
    } finally {
      await Promise.all(instances.map((i) => i.dispatcher.stop(5_000)));
    }

    for (let i = 0; i < JOBS; i++) assert.deepEqual(ends.get(`j${i}`), [i === 7 ? 'dead' : 'done'], `j${i}`);
    const retried = runs.filter((r) => r.attempt === 1).map((r) => r.id).sort();
    assert.deepEqual(retried, ['j0', 'j10', 'j15', 'j20', 'j25', 'j30', 'j35', 'j40', 'j45', 'j5', 'j50', 'j55'], 'each retried once after its backoff');
    assert.deepEqual(new Set(runs.map((r) => r.instance)), new Set(['A', 'B']));
    const expected = emptyCounts();
    for (let i = 0; i < JOBS; i++) (i === 7 ? expected.dead : expected.done)[TIERS[i % 3]!] += 1;
    assert.deepEqual(await b.backend.counts(), expected);
    const [dead] = await b.backend.listDead();
    assert.deepEqual([dead?.id, dead?.attempts, dead?.errors.map((e) => e.code)], ['j7', 1, ['ERR_FINALIZE_HASH']]);
    for (const i of instances) await i.backend.close();
  });
});
