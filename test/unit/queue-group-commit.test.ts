/**
 * GroupCommit (src/queue/backends/sqlite/group-commit.ts) with a stand-in transaction and a sync
 * the test finishes by hand: a caller is answered only after the commit AND the sync covering
 * its write; writes asked for during a sync form the next group; a failed sync answers nobody
 * "written"; a group whose transaction fails is retried write by write.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GroupCommit } from '../../src/queue/backends/sqlite/group-commit.js';

const turn = () => new Promise((r) => setImmediate(r));

function harness() {
  const log: string[] = [];
  const syncs: Array<{ done: () => void; fail: (e: Error) => void }> = [];
  let failNext = false;
  const gc = new GroupCommit(
    <T>(fn: () => T): T => {
      if (failNext) {
        failNext = false;
        throw new Error('group refused');
      }
      const result = fn();
      log.push('commit');
      return result;
    },
    () => new Promise<void>((resolve, reject) => syncs.push({ done: resolve, fail: reject })),
  );
  const answered: string[] = [];
  const submit = (name: string, write: () => string = () => name) =>
    gc.submit({ write, committed: () => log.push(`committed ${name}`), applied: () => log.push(`applied ${name}`) }).then(
      (v) => answered.push(`ok ${v}`),
      (e: Error) => answered.push(`err ${name}: ${e.message}`),
    );
  return { gc, log, syncs, answered, submit, refuseNextGroup: () => (failNext = true) };
}

describe('GroupCommit', () => {
  it('answers a group only after its commit and the sync covering it', async () => {
    const h = harness();
    const all = [h.submit('a'), h.submit('b')];
    await turn();
    assert.deepEqual(h.log, ['commit', 'committed a', 'committed b']);
    assert.equal(h.syncs.length, 1, 'one sync for the group');
    await turn();
    assert.deepEqual(h.answered, [], 'committed is not enough: nobody answered before the sync returned');
    h.syncs[0]!.done();
    await Promise.all(all);
    assert.deepEqual(h.answered, ['ok a', 'ok b']);
    assert.deepEqual(h.log.slice(-2), ['applied a', 'applied b']);
    assert.deepEqual(h.gc.stats, { commits: 1, syncs: 1, writes: 2 });
  });

  it('writes asked for during a sync are committed at once and answered after the next sync', async () => {
    const h = harness();
    const first = h.submit('a');
    await turn();
    const second = [h.submit('b'), h.submit('c')];
    await turn();
    assert.deepEqual(h.log, ['commit', 'committed a', 'commit', 'committed b', 'committed c']);
    assert.equal(h.syncs.length, 1, 'one sync at a time');
    h.syncs[0]!.done();
    await first;
    await turn();
    assert.deepEqual(h.answered, ['ok a'], 'b and c were not covered by the first sync');
    assert.equal(h.syncs.length, 2);
    h.syncs[1]!.done();
    await Promise.all(second);
    assert.deepEqual(h.answered, ['ok a', 'ok b', 'ok c']);
  });

  it('a failed sync answers every caller of its group with the error (their rows are applied: they are in the file)', async () => {
    const h = harness();
    const all = [h.submit('a'), h.submit('b')];
    await turn();
    h.syncs[0]!.fail(new Error('EIO'));
    await Promise.all(all);
    assert.deepEqual(h.answered, ['err a: EIO', 'err b: EIO']);
    assert.ok(h.log.includes('applied a') && h.log.includes('applied b'));
  });

  it('a group whose transaction fails runs write by write: each caller gets its own outcome', async () => {
    const h = harness();
    h.refuseNextGroup();
    const all = [h.submit('a'), h.submit('bad', () => { throw new Error('constraint'); }), h.submit('c')];
    await turn();
    assert.equal(h.syncs.length, 1);
    h.syncs[0]!.done();
    await Promise.all(all);
    assert.deepEqual(h.answered.sort(), ['err bad: constraint', 'ok a', 'ok c']);
    assert.deepEqual(h.gc.stats, { commits: 2, syncs: 1, writes: 2 });
  });

  it('settle() commits what is pending and waits for its sync', async () => {
    const h = harness();
    const a = h.submit('a');
    const settled = h.gc.settle().then(() => h.answered.push('settled'));
    assert.deepEqual(h.log, ['commit', 'committed a'], 'committed synchronously by settle()');
    await turn();
    assert.deepEqual(h.answered, []);
    h.syncs[0]!.done();
    await Promise.all([a, settled]);
    assert.deepEqual(h.answered, ['ok a', 'settled']);
  });
});
