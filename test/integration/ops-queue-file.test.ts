/** The offline read-only view of a queue journal (QueueFile, src/queue/backends/sqlite/queue-file.ts), written by the server's backend. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { openSpilloverQueueBackend, type QueueBackend } from '../../src/queue/index.js';
import { QueueFile } from '../../src/queue/index.js';

describe('QueueFile', () => {
  let dir: string;
  let path: string;
  let backend: QueueBackend;
  const T0 = 1_000_000;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hfs-ops-qf-'));
    path = join(dir, 'queue.sqlite');
    backend = await openSpilloverQueueBackend({ path, memoryLimit: 2, durable: true });
    const job = (id: string, size: number, at: number) => ({ id, slotPath: `s/${id}`, size, priority: size < 1000 ? ('high' as const) : ('low' as const), payload: { n: 1 }, enqueuedAtMs: at });
    for (const [id, size, at] of [['a', 10, T0], ['b', 5000, T0 + 1], ['c', 20, T0 + 2], ['d', 30, T0 + 3], ['e', 40, T0 + 4]] as const) {
      assert.ok(await backend.enqueue(job(id, size, at)));
    }
    // a: done; c: failed once, waits until T0 + 60 s; d: dead; e: waiting on disk only (memoryLimit 2)
    assert.equal((await backend.claimNext('w1', T0 + 10, 60_000))?.id, 'a');
    assert.ok(await backend.complete('a', 'w1', T0 + 11));
    assert.equal((await backend.claimNext('w1', T0 + 12, 60_000))?.id, 'c');
    assert.ok(await backend.fail('c', 'w1', { atMs: T0 + 13, code: 'ERR_WEBHOOK_FAILED', message: 'webhook answered 500' }, T0 + 60_000));
    assert.equal((await backend.claimNext('w1', T0 + 14, 60_000))?.id, 'd');
    assert.ok(await backend.bury('d', 'w1', { atMs: T0 + 15, code: 'ERR_CHECKSUM_MISMATCH', message: 'no' }));
  });
  after(async () => {
    await backend.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('is null for a missing file and refuses an unknown schema', async () => {
    assert.equal(QueueFile.open(join(dir, 'none.sqlite')), null);
    const other = join(dir, 'other.sqlite');
    const db = new Database(other);
    db.pragma('user_version = 99');
    db.close();
    assert.throws(() => QueueFile.open(other), /schema v99/);
  });

  it('lists jobs in line order, filtered by state and tier, with paging', () => {
    const f = QueueFile.open(path)!;
    try {
      assert.deepEqual(f.listJobs({}).map((j) => j.id), ['b', 'e', 'c'], 'queued, spilled ones included, by availableAt');
      assert.deepEqual(f.listJobs({ states: ['dead'] }).map((j) => j.id), ['d']);
      assert.deepEqual(f.listJobs({ states: ['done', 'dead'] }).map((j) => j.id), ['a', 'd'], 'finished ones by finish time');
      assert.deepEqual(f.listJobs({ priority: 'low' }).map((j) => j.id), ['b']);
      assert.deepEqual(f.listJobs({ limit: 1, offset: 1 }).map((j) => j.id), ['e']);
      assert.throws(() => f.listJobs({ states: ['bogus' as 'dead'] }), RangeError);
      const c = f.get('c')!;
      assert.deepEqual([c.state, c.attempts, c.availableAtMs, c.errors[0]?.code], ['queued', 1, T0 + 60_000, 'ERR_WEBHOOK_FAILED']);
      assert.equal(f.getBySlot('s/d')?.id, 'd');
      assert.equal(f.get('zzz'), null);
      const counts = f.counts();
      assert.deepEqual(counts.queued, { high: 2, medium: 0, low: 1 });
      assert.deepEqual(counts.done, { high: 1, medium: 0, low: 0 });
      assert.deepEqual(counts.dead, { high: 1, medium: 0, low: 0 });
    } finally {
      f.close();
    }
  });

  it('a look changes nothing', async () => {
    const before = await stat(path);
    QueueFile.open(path)!.close();
    const after = await stat(path);
    assert.equal(after.mtimeMs, before.mtimeMs);
    assert.equal(after.size, before.size);
  });
});
