/**
 * The SQLite queue on a full file system (a 2 MiB tmpfs; needs root, fails at once otherwise):
 * a job the disk cannot take is refused with SQLITE_FULL, never reported written while it is
 * not (the 201-then-404 of issue 19); a postponement the journal cannot write is kept in memory.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openSpilloverQueueBackend, type EnqueueInput, type SpilloverQueueBackend } from '../../src/queue/index.js';
import { mountSmallDisk, type SmallDisk } from '../helpers/tmpfs.js';

const job = (id: string, nowMs = 1_000): EnqueueInput => ({ id, slotPath: `slot/${id}`, size: 10, priority: 'high', payload: { pad: 'p'.repeat(2000) }, enqueuedAtMs: nowMs });

describe('SQLite queue journal on a full disk', () => {
  let disk: SmallDisk;
  let queue: SpilloverQueueBackend;
  const rows = async () => (await queue.listJobs({ states: ['queued', 'leased', 'done', 'dead'] })).map((j) => j.id).sort();

  before(async () => {
    disk = await mountSmallDisk(2 * 2 ** 20);
    queue = await openSpilloverQueueBackend({ path: join(disk.dir, 'queue.sqlite'), memoryLimit: 100, durable: true });
    assert.equal(await queue.enqueue(job('before')), true);
  });
  after(async () => {
    await queue?.close();
    await disk?.unmount();
  });

  it('a commit the disk refuses rejects with SQLITE_FULL and writes nothing', async () => {
    await disk.leaveFree(0);
    for (const id of ['full-1', 'full-2']) {
      await assert.rejects(queue.enqueue(job(id)), (err: unknown) => (err as { code?: string }).code === 'SQLITE_FULL');
    }
    assert.equal(await queue.get('full-1'), null, 'not in memory either');
    assert.deepEqual(await rows(), ['before']);
    await disk.unfill();
    assert.equal(await queue.enqueue(job('full-1')), true, 'written once space is back');
    assert.deepEqual(await rows(), ['before', 'full-1']);
  });

  it('a group of admissions the disk refuses: every caller is rejected, none is answered as written', async () => {
    await disk.leaveFree(0);
    const answers = await Promise.allSettled(['group-1', 'group-2', 'group-3'].map((id) => queue.enqueue(job(id))));
    assert.deepEqual(answers.map((a) => a.status === 'rejected' && (a.reason as { code?: string }).code), ['SQLITE_FULL', 'SQLITE_FULL', 'SQLITE_FULL']);
    await disk.unfill();
    assert.deepEqual((await rows()).filter((id) => id.startsWith('group-')), []);
  });

  it('a postponement on a full disk is kept in memory: the job stays written and waits', async () => {
    const claimed = await queue.claimNext('w1', 2_000, 60_000);
    assert.ok(claimed !== null);
    await disk.leaveFree(0);
    assert.equal(await queue.postpone(claimed.id, 'w1', 50_000), true);
    assert.equal(await queue.claimNext('w1', 3_000, 60_000).then((j) => j?.id === claimed.id), false, 'not claimable before its time');
    await disk.unfill();
    assert.equal((await queue.claimNext('w1', 50_000, 60_000))?.id !== undefined, true);
  });
});
