/**
 * The dispatcher on a fake clock with the in-memory backend: concurrency, retries with backoff,
 * dead letters, postpone, job timeout with worker replacement, health, load balancing, stop.
 * Time only moves when the test advances it; nothing sleeps.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  Dispatcher,
  MemoryQueueBackend,
  type DispatcherOptions,
  type EnqueueInput,
  type Job,
  type JobContext,
  type JobOutcome,
  type PriorityTier,
} from '../../src/queue/index.js';
import { FakeClock, settle } from './finalize-fake-clock.js';

const job = (id: string, priority: PriorityTier = 'high', enqueuedAtMs = 0): EnqueueInput => ({
  id,
  slotPath: `s/${id}`,
  size: 1,
  priority,
  payload: {},
  enqueuedAtMs,
});

interface Harness {
  clock: FakeClock;
  backend: MemoryQueueBackend;
  dispatcher: Dispatcher;
  log: string[];
  runs: { id: string; workerId: number; attempt: number }[];
}

function harness(handler: (job: Job, ctx: JobContext) => Promise<JobOutcome>, overrides: Partial<DispatcherOptions> = {}): Harness {
  const clock = new FakeClock();
  const backend = new MemoryQueueBackend();
  const log: string[] = [];
  const runs: Harness['runs'] = [];
  const dispatcher = new Dispatcher({
    backend,
    handler: (j, ctx) => {
      runs.push({ id: j.id, workerId: ctx.workerId, attempt: j.attempts });
      return handler(j, ctx);
    },
    workers: 2,
    jobTimeoutMs: 10_000,
    retry: { baseMs: 1000, maxMs: 8000, maxRetries: 2 },
    strategy: 'round_robin',
    healthCheckIntervalMs: 5_000,
    pollIntervalMs: 60_000,
    clock,
    random: () => 0.5,
    events: {
      onDone: (j, w) => log.push(`done ${j.id} w${w}`),
      onRetry: (j, w, e, reason, delay) => log.push(`retry ${j.id} ${reason} ${e.code} +${delay}`),
      onDead: (j, _w, e, why) => log.push(`dead ${j.id} ${why} ${e.code}`),
      onPostpone: (j, _w, until) => log.push(`postpone ${j.id} ${until - clock.now()}`),
      onTimeout: (j, w) => log.push(`timeout ${j.id} w${w}`),
      onWorkerStatus: (w, s, prev, a) => log.push(`worker ${w} ${prev}->${s} ${a.reason}`),
      onError: (err, during) => log.push(`error ${during} ${String(err)}`),
    },
    ...overrides,
  });
  return { clock, backend, dispatcher, log, runs };
}

const done = async (): Promise<JobOutcome> => ({ kind: 'done' });
const err = (code: string) => ({ atMs: 0, code, message: code });

describe('Dispatcher', () => {
  it('runs at most `workers` jobs at once, best tier first', async () => {
    const releases: Array<() => void> = [];
    const h = harness((_j) => new Promise<JobOutcome>((r) => releases.push(() => r({ kind: 'done' }))));
    await h.backend.enqueue(job('low', 'low'));
    await h.backend.enqueue(job('med', 'medium'));
    await h.backend.enqueue(job('high', 'high'));
    h.dispatcher.start();
    await settle();
    assert.deepEqual(h.runs.map((r) => r.id), ['high', 'med']);
    releases.shift()!();
    await settle();
    assert.deepEqual(h.runs.map((r) => r.id), ['high', 'med', 'low']);
    releases.splice(0).forEach((r) => r());
    await settle();
    assert.equal(h.log.filter((l) => l.startsWith('done')).length, 3);
    await h.dispatcher.stop(0);
  });

  it('retries with exponential backoff and jitter, then buries with the full history', async () => {
    const h = harness(async () => ({ kind: 'retry', error: err('ERR_WEBHOOK_FAILED'), reason: 'network' }));
    await h.backend.enqueue(job('j'));
    h.dispatcher.start();
    await settle();
    // random() = 0.5: delays are half of min(max, base * 2^(n-1)): 500, 1000, then give up (maxRetries 2).
    assert.deepEqual(h.log, ['retry j network ERR_WEBHOOK_FAILED +500']);
    await h.clock.advance(499);
    assert.equal(h.runs.length, 1, 'not before its backoff');
    await h.clock.advance(1);
    assert.deepEqual(h.runs.map((r) => r.attempt), [0, 1]);
    await h.clock.advance(1000);
    assert.deepEqual(h.log, ['retry j network ERR_WEBHOOK_FAILED +500', 'retry j network ERR_WEBHOOK_FAILED +1000', 'dead j retries_exhausted ERR_WEBHOOK_FAILED']);
    const dead = await h.backend.get('j');
    assert.equal(dead?.state, 'dead');
    assert.equal(dead?.errors.length, 3);
    assert.equal(dead?.attempts, 3);
    await h.dispatcher.stop(0);
  });

  it('buries a permanent failure at once', async () => {
    const h = harness(async () => ({ kind: 'dead', error: err('ERR_CHECKSUM_MISMATCH') }));
    await h.backend.enqueue(job('bad'));
    h.dispatcher.start();
    await settle();
    assert.deepEqual(h.log, ['dead bad permanent ERR_CHECKSUM_MISMATCH']);
    assert.equal((await h.backend.get('bad'))?.attempts, 1);
    await h.dispatcher.stop(0);
  });

  it('a postponed job spends no attempt and comes back at its time', async () => {
    let calls = 0;
    const h = harness(async () => (++calls === 1 ? { kind: 'postpone', untilMs: h.clock.now() + 3000 } : { kind: 'done' }));
    await h.backend.enqueue(job('p'));
    h.dispatcher.start();
    await settle();
    assert.deepEqual(h.log, ['postpone p 3000']);
    assert.equal((await h.backend.get('p'))?.attempts, 0);
    await h.clock.advance(3000);
    assert.deepEqual(h.log, ['postpone p 3000', 'done p w2']);
    assert.deepEqual(h.runs.map((r) => r.attempt), [0, 0]);
    await h.dispatcher.stop(0);
  });

  it('replaces a worker stuck past the job timeout and requeues its job; the late result is ignored', async () => {
    let stuckRelease: (() => void) | undefined;
    let aborted: unknown;
    const h = harness(
      (j, ctx) =>
        j.attempts === 0
          ? new Promise<JobOutcome>((r) => {
              ctx.signal.addEventListener('abort', () => (aborted = ctx.signal.reason));
              stuckRelease = () => r({ kind: 'done' }); // ignores the abort, like a hung syscall
            })
          : done(),
      { workers: 1 },
    );
    await h.backend.enqueue(job('hang'));
    h.dispatcher.start();
    await settle();
    await h.clock.advance(10_000);
    assert.deepEqual(h.log.slice(0, 2), ['timeout hang w1', 'retry hang timeout ERR_JOB_TIMEOUT +500']);
    assert.equal((aborted as { code?: string }).code, 'ERR_JOB_TIMEOUT');
    assert.equal(h.dispatcher.workers()[0]?.replacements, 1);
    await h.clock.advance(500);
    assert.ok(h.log.includes('done hang w1'), h.log.join('\n'));
    stuckRelease!(); // the old attempt finishes now: nothing happens
    await settle();
    assert.equal(h.log.filter((l) => l.startsWith('done')).length, 1);
    assert.equal((await h.backend.get('hang'))?.state, 'done');
    await h.dispatcher.stop(0);
  });

  it('marks a worker failed by error rate and healthy again when it recovers', async () => {
    let failing = true;
    const h = harness(async () => (failing ? { kind: 'dead', error: err('ERR_X') } : { kind: 'done' }), { workers: 1 });
    h.dispatcher.start();
    for (let i = 0; i < 5; i++) await h.backend.enqueue(job(`f${i}`));
    h.dispatcher.poke();
    await settle();
    await h.clock.advance(5_000);
    assert.ok(h.log.includes('worker 1 healthy->failed error_rate'), h.log.join('\n'));
    failing = false;
    for (let i = 0; i < 10; i++) await h.backend.enqueue(job(`ok${i}`));
    h.dispatcher.poke();
    await settle();
    await h.clock.advance(5_000);
    assert.ok(h.log.includes('worker 1 failed->healthy ok'), h.log.join('\n'));
    await h.dispatcher.stop(0);
  });

  it('round_robin spreads sequential jobs over the workers in turn', async () => {
    const h = harness(done, { workers: 3, strategy: 'round_robin' });
    h.dispatcher.start();
    for (let i = 0; i < 6; i++) {
      await h.backend.enqueue(job(`r${i}`));
      h.dispatcher.poke();
      await settle();
    }
    assert.deepEqual(h.runs.map((r) => r.workerId), [1, 2, 3, 1, 2, 3]);
    await h.dispatcher.stop(0);
  });

  it('claims nothing while claimableAt says later', async () => {
    let openAt = 0;
    const h = harness(done, { claimableAt: (now) => Math.max(now, openAt) });
    openAt = h.clock.now() + 2000;
    await h.backend.enqueue(job('g'));
    h.dispatcher.start();
    await settle();
    assert.equal(h.runs.length, 0);
    await h.clock.advance(2000);
    assert.deepEqual(h.log, ['done g w1']);
    await h.dispatcher.stop(0);
  });

  it('stop() gives running jobs their grace, then aborts them and requeues without an attempt', async () => {
    let reason: unknown;
    const h = harness((_j, ctx) => new Promise<JobOutcome>((_r, reject) => ctx.signal.addEventListener('abort', () => reject((reason = ctx.signal.reason)))), {
      workers: 1,
    });
    await h.backend.enqueue(job('long'));
    h.dispatcher.start();
    await settle();
    const stopped = h.dispatcher.stop(1000);
    await h.clock.advance(1000);
    await stopped;
    assert.equal((reason as { code?: string }).code, 'ERR_SERVER_SHUTDOWN');
    const j = await h.backend.get('long');
    assert.deepEqual([j?.state, j?.attempts], ['queued', 0]);
    assert.equal(h.dispatcher.state, 'stopped');
  });
});
