/** The ops view of the SQLite queue file (src/ops/queue-file.ts) next to the backend's own connection. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { openSqliteQueueBackend, type QueueBackend } from '../../src/queue/index.js';
import { QueueFile } from '../../src/ops/queue-file.js';

describe('QueueFile', () => {
  let dir: string;
  let path: string;
  let backend: QueueBackend;
  const T0 = 1_000_000;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hfs-ops-qf-'));
    path = join(dir, 'queue.sqlite');
    backend = await openSqliteQueueBackend({ path });
    const job = (id: string, size: number, at: number) => ({ id, slotPath: `s/${id}`, size, priority: size < 1000 ? ('high' as const) : ('low' as const), payload: { n: 1 }, enqueuedAtMs: at });
    await backend.enqueue(job('a', 10, T0));
    await backend.enqueue(job('b', 5000, T0 + 1));
    await backend.enqueue(job('c', 20, T0 + 2));
    await backend.enqueue(job('d', 30, T0 + 3));
    // a: leased; c: failed once, waits for its backoff until T0 + 60s; d: dead
    assert.equal((await backend.claimNext('w1', T0 + 10, 60_000))?.id, 'a');
    assert.equal((await backend.claimNext('w1', T0 + 10, 60_000))?.id, 'c');
    assert.ok(await backend.fail('c', 'w1', { atMs: T0 + 11, code: 'ERR_WEBHOOK_FAILED', message: 'webhook answered 500' }, T0 + 60_000));
    assert.equal((await backend.claimNext('w1', T0 + 12, 60_000))?.id, 'd');
    assert.ok(await backend.bury('d', 'w1', { atMs: T0 + 13, code: 'ERR_CHECKSUM_MISMATCH', message: 'no' }));
  });
  after(async () => {
    await backend.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('is null for a missing file and refuses an unknown schema', async () => {
    assert.equal(QueueFile.open(join(dir, 'none.sqlite'), { readonly: true }), null);
    const other = join(dir, 'other.sqlite');
    const db = new Database(other);
    db.pragma('user_version = 99');
    db.close();
    assert.throws(() => QueueFile.open(other, { readonly: true }), /schema v99/);
  });

  it('lists live jobs in claim order, filtered by state and tier, with paging', () => {
    const f = QueueFile.open(path, { readonly: true })!;
    try {
      assert.deepEqual(f.listJobs({}).map((j) => `${j.id}:${j.state}`), ['a:leased', 'b:queued', 'c:queued']);
      assert.deepEqual(f.listJobs({ states: ['dead'] }).map((j) => j.id), ['d']);
      assert.deepEqual(f.listJobs({ priority: 'low' }).map((j) => j.id), ['b']);
      assert.deepEqual(f.listJobs({ states: ['queued', 'leased', 'done', 'dead'], limit: 2, offset: 1 }).map((j) => j.id), ['b', 'd']);
      assert.throws(() => f.listJobs({ states: ['bogus' as 'dead'] }), RangeError);
      const c = f.get('c')!;
      assert.equal(c.attempts, 1);
      assert.equal(c.errors[0]?.code, 'ERR_WEBHOOK_FAILED');
      assert.equal(f.getBySlot('s/d')?.id, 'd');
      assert.equal(f.get('zzz'), null);
      const counts = f.counts();
      assert.deepEqual(counts.queued, { high: 1, medium: 0, low: 1 });
      assert.deepEqual(counts.leased, { high: 1, medium: 0, low: 0 });
      assert.deepEqual(counts.dead, { high: 1, medium: 0, low: 0 });
    } finally {
      f.close();
    }
  });

  it('a read-only open leaves leases alone', async () => {
    QueueFile.open(path, { readonly: true })!.close();
    assert.equal((await backend.get('a'))?.state, 'leased');
  });

  it('retryNow makes a job in backoff claimable now, and only queued jobs', async () => {
    const f = QueueFile.open(path, { readonly: false })!;
    try {
      assert.equal(f.retryNow('d', T0 + 20), false, 'dead');
      assert.equal(f.retryNow('a', T0 + 20), false, 'leased');
      assert.equal(f.retryNow('zzz', T0 + 20), false, 'unknown');
      assert.equal(f.retryNow('c', T0 + 20), true);
    } finally {
      f.close();
    }
    // Through the backend's own connection: c (high) is claimable now, before b (low) and long before its backoff.
    assert.equal((await backend.claimNext('w2', T0 + 21, 60_000))?.id, 'c');
    assert.equal((await backend.get('c'))?.attempts, 1, 'attempts kept');
  });
});
