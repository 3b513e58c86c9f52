/**
 * Group commit of the SQLite queue journal (SpilloverQueueBackend, persistent): admissions asked
 * for together share one commit and one sync, and no caller is answered before the commit holding
 * its write. A second connection to the file is the witness of the commit; that the answer also
 * waits for the sync is checked on GroupCommit itself (test/unit/queue-group-commit.test.ts).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { openSpilloverQueueBackend, type EnqueueInput, type SpilloverQueueBackend } from '../../src/queue/index.js';

const job = (id: string): EnqueueInput => ({ id, slotPath: `s/${id}`, size: 1, priority: 'high', payload: { n: id }, enqueuedAtMs: 0 });

async function withQueue(memoryLimit: number, fn: (q: SpilloverQueueBackend, committedState: (id: string) => string | undefined) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'queue-group-'));
  const path = join(dir, 'queue.sqlite');
  const q = await openSpilloverQueueBackend({ path, memoryLimit, durable: true });
  const witness = new Database(path, { readonly: true, fileMustExist: true });
  const stateOf = witness.prepare<[string], { state: string }>('SELECT state FROM jobs WHERE id = ?');
  try {
    await fn(q, (id) => stateOf.get(id)?.state);
  } finally {
    witness.close();
    await q.close();
    await rm(dir, { recursive: true, force: true });
  }
}

describe('SpilloverQueueBackend group commit', () => {
  for (const memoryLimit of [1000, 2]) {
    it(`answers each admission only after the commit that holds it, one commit for jobs admitted together (window ${memoryLimit})`, () =>
      withQueue(memoryLimit, async (q, committedState) => {
        const before = q.groupCommits;
        const ids = Array.from({ length: 20 }, (_, i) => `job-${i}`);
        const seenAtAnswer = new Map<string, string | undefined>();
        const answers = ids.map((id) =>
          q.enqueue(job(id)).then((admitted) => {
            assert.equal(admitted, true);
            seenAtAnswer.set(id, committedState(id)); // read by another connection the moment the caller hears back
          }),
        );
        assert.equal(committedState('job-0'), undefined, 'nothing committed synchronously: the group waits for its turn');
        await Promise.all(answers);
        assert.deepEqual([...seenAtAnswer.values()], ids.map(() => 'queued'), 'every caller answered after its row was committed');
        const after = q.groupCommits;
        assert.equal(after.commits - before.commits, 1, 'the 20 admissions shared one commit');
        assert.equal(after.syncs - before.syncs, 1, 'and one sync of the log');
        assert.equal(after.writes - before.writes, 20);
        assert.equal(await q.enqueue(job('job-3')), false, 'a committed id is refused again');
      }));
  }

  it('completions join the next group without being waited for; a read commits them first', () =>
    withQueue(1000, async (q, committedState) => {
      for (let i = 0; i < 10; i++) await q.enqueue(job(`c-${i}`));
      const claimed = [];
      for (let j = await q.claimNext('w', 1, 60_000); j !== null; j = await q.claimNext('w', 1, 60_000)) claimed.push(j.id);
      assert.equal(claimed.length, 10);
      const before = q.groupCommits.commits;
      assert.deepEqual(await Promise.all(claimed.map((id) => q.complete(id, 'w', 2))), claimed.map(() => true));
      assert.equal(await q.complete(claimed[0]!, 'w', 3), false, 'completed once');
      assert.equal((await q.get(claimed[0]!))?.state, 'done', 'a read sees the completion');
      assert.deepEqual(claimed.map(committedState), claimed.map(() => 'done'));
      assert.equal(q.groupCommits.commits - before, 1, 'the 10 completions shared one commit');
    }));

  it('an admission committed but not yet answered is never claimed, nor read from disk twice (window of 1, the rest spilled)', () =>
    withQueue(1, async (q) => {
      for (let i = 0; i < 3; i++) await q.enqueue(job(`old-${i}`));
      const late = Array.from({ length: 5 }, (_, i) => q.enqueue(job(`new-${i}`)));
      await new Promise((r) => setImmediate(r)); // the group is committed; its sync is (most likely) still running
      const claimed: string[] = [];
      const claimAll = async () => {
        for (let j = await q.claimNext('w', 1, 60_000); j !== null; j = await q.claimNext('w', 1, 60_000)) claimed.push(j.id);
      };
      await claimAll();
      assert.deepEqual(await Promise.all(late), [true, true, true, true, true]);
      await claimAll();
      assert.deepEqual([...claimed].sort(), ['new-0', 'new-1', 'new-2', 'new-3', 'new-4', 'old-0', 'old-1', 'old-2']);
    }));

  it('a read of the journal waits for the admissions in flight, so it sees every accepted one', () =>
    withQueue(1000, async (q, committedState) => {
      const pending = q.enqueue(job('early'));
      assert.equal(committedState('early'), undefined);
      assert.equal((await q.counts()).queued.high, 1);
      assert.equal(committedState('early'), 'queued');
      assert.equal(await pending, true);
    }));

  it('admissions in one turn with a duplicate among them: the first wins, the second is refused, both after the commit', () =>
    withQueue(1000, async (q, committedState) => {
      const answers = await Promise.all([q.enqueue(job('dup')), q.enqueue({ ...job('dup'), slotPath: 's/other' }), q.enqueue({ ...job('other'), slotPath: 's/dup' })]);
      assert.deepEqual(answers, [true, false, false], 'the same id, then the same slot path, are refused within one group too');
      assert.equal(committedState('dup'), 'queued');
      assert.equal(committedState('other'), undefined);
      assert.deepEqual((await q.claimNext('w', 1, 60_000))?.id, 'dup');
      assert.equal(await q.claimNext('w', 1, 60_000), null);
    }));
});
