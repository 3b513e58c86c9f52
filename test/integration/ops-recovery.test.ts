/** `recover` planning and applying on a real data directory layout (src/ops/recovery.ts). */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { link, mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { CompletedUpload } from '../../src/finalize/index.js';
import type { Job } from '../../src/queue/index.js';
import { recover, type RecoveryContext } from '../../src/ops/recovery.js';

const KEYS = { slotPath: 'hfs-slot', contentType: 'hfs-type' };
const HOUR = 3_600_000;

describe('recover', () => {
  let dir: string;
  let jobs: Map<string, Job>;
  let readmitted: CompletedUpload[];
  const put = async (rel: string, body: string | object = 'x', ageMs = 2 * HOUR) => {
    const p = join(dir, rel);
    await mkdir(dirname(p), { recursive: true });
    await writeFile(p, typeof body === 'string' ? body : JSON.stringify(body));
    const t = (Date.now() - ageMs) / 1000;
    await utimes(p, t, t);
  };
  const tusRecord = (id: string, size: number, offset: number, slot?: string) => ({ id, size, offset, metadata: slot ? { [KEYS.slotPath]: slot, [KEYS.contentType]: 'text/plain' } : {} });
  const job = (id: string, slotPath: string, state: Job['state']): Job => ({ id, slotPath, size: 1, priority: 'high', payload: {}, attempts: 0, errors: [], enqueuedAtMs: 0, availableAtMs: 0, state });
  const ctx = (over: Partial<RecoveryContext> = {}): RecoveryContext => ({
    dataDir: dir,
    minAgeMs: 0,
    nowMs: Date.now(),
    offline: true,
    jobById: async (id) => jobs.get(id) ?? null,
    jobBySlot: async (slot) => [...jobs.values()].find((j) => j.slotPath === slot) ?? null,
    publishedRecord: async (slot) => {
      try {
        const { readFile } = await import('node:fs/promises');
        return JSON.parse(await readFile(join(dir, 'meta', `${slot}.json`), 'utf8'));
      } catch {
        return null;
      }
    },
    publishedExists: async (slot) => existsSync(join(dir, 'files', slot)),
    readmit: async (u) => {
      readmitted.push(u);
      return 'accepted';
    },
    discardUpload: async (id) => {
      await rm(join(dir, 'tus', id), { force: true });
      await rm(join(dir, 'tus', `${id}.json`), { force: true });
    },
    ...over,
  });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hfs-ops-recover-'));
    jobs = new Map();
    readmitted = [];
    // tus
    await put('tus/unqueued', 'abc');
    await put('tus/unqueued.json', tusRecord('unqueued', 3, 3, 'u/one.txt'));
    await put('tus/leftover', 'abc');
    await put('tus/leftover.json', tusRecord('leftover', 3, 3, 'u/two.txt'));
    await put('files/u/two.txt', 'abc');
    await put('meta/u/two.txt.json', { contentType: 'text/plain', uploadId: 'leftover', sha256: 'x', publishedAt: '' });
    await put('tus/taken', 'abc');
    await put('tus/taken.json', tusRecord('taken', 3, 3, 'u/three.txt'));
    jobs.set('put-other', job('put-other', 'u/three.txt', 'queued'));
    await put('tus/queued', 'abc');
    await put('tus/queued.json', tusRecord('queued', 3, 3, 'u/four.txt'));
    jobs.set('tus-queued', job('tus-queued', 'u/four.txt', 'leased'));
    await put('tus/orphan', 'zz');
    await put('tus/stale.json', tusRecord('stale', 10, 0, 'u/five.txt'));
    await put('tus/running', 'a');
    await put('tus/running.json', tusRecord('running', 10, 0, 'u/six.txt'));
    await put('tus/published.json', tusRecord('published', 3, 3, 'u/seven.txt'));
    await put('tus/corrupt', 'abcd');
    await put('tus/corrupt.json', '{"id":"corr');
    // Indexes beside the records, not uploads: never judged as stale or corrupt records.
    await put('tus/concat.0123456789abcdef.json', { slotPath: 'u/nine.txt', parts: [] });
    await put('tus/rufh.0123456789abcdef.json', '{"cut');
    // staging
    await put('queue/staging/put-gone', 'abcd');
    await put('queue/staging/put-live', 'abcd');
    jobs.set('put-live', job('put-live', 'u/eight.txt', 'queued'));
    // meta
    await put('meta/a/b.json', { contentType: 'x' });
    await put('meta/c.json', { contentType: 'x' });
    await put('files/c', 'c');
    await put('meta/q.json', { contentType: 'x' });
    jobs.set('put-q', job('put-q', 'q', 'leased'));
    await put('meta/x.json.0a1b.tmp', '{');
    // offline only
    await put('incoming/z.part', 'zzz');
    await put('cas/ab/abcd', 'content');
    await put('cas/cd/cdef', 'linked');
    await link(join(dir, 'cas/cd/cdef'), join(dir, 'files/linked'));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  const summary = (items: ReadonlyArray<{ kind: string; action: string; target: string }>) => items.map((i) => `${i.kind} ${i.action} ${i.target}`).sort();

  it('a dry run plans every kind and changes nothing', async () => {
    const report = await recover(ctx(), { dryRun: true });
    assert.deepEqual(summary(report.items), [
      'corrupt_record remove tus/corrupt.json',
      'orphan_file remove cas/ab/abcd',
      'orphan_file remove incoming/z.part',
      'orphan_file remove meta/x.json.0a1b.tmp',
      'orphan_file remove queue/staging/put-gone',
      'orphan_file remove tus/orphan',
      'published_leftover remove tus/leftover',
      'slot_taken_upload discard tus/taken',
      'stale_metadata remove meta/a/b.json',
      'stale_metadata remove tus/stale.json',
      'unqueued_upload readmit tus/unqueued',
    ]);
    assert.equal(report.dryRun, true);
    assert.ok(report.items.every((i) => i.result === undefined));
    assert.ok(existsSync(join(dir, 'tus/orphan')) && existsSync(join(dir, 'incoming/z.part')));
    assert.deepEqual(readmitted, []);
  });

  it('applying readmits and removes, and a second run finds nothing', async () => {
    const progress: number[] = [];
    const report = await recover(ctx(), { dryRun: false }, (p) => progress.push(p.done));
    assert.equal(report.failed, 0);
    assert.ok(report.items.every((i) => i.result === 'done'));
    assert.deepEqual(progress, [0, ...report.items.map((_, i) => i + 1)]);
    assert.deepEqual(readmitted.map((u) => [u.uploadId, u.slotPath, u.size, u.source.ref]), [['unqueued', 'u/one.txt', 3, `file:${join(dir, 'tus/unqueued')}`]]);
    for (const gone of ['tus/corrupt', 'tus/corrupt.json', 'tus/orphan', 'tus/stale.json', 'tus/leftover', 'tus/taken', 'tus/taken.json', 'queue/staging/put-gone', 'meta/a/b.json', 'meta/x.json.0a1b.tmp', 'incoming/z.part', 'cas/ab/abcd']) {
      assert.equal(existsSync(join(dir, gone)), false, gone);
    }
    for (const kept of ['tus/concat.0123456789abcdef.json', 'tus/rufh.0123456789abcdef.json', 'tus/leftover.json', 'tus/running', 'tus/published.json', 'tus/queued', 'queue/staging/put-live', 'meta/c.json', 'meta/q.json', 'cas/cd/cdef', 'files/u/two.txt']) {
      assert.equal(existsSync(join(dir, kept)), true, kept);
    }
    jobs.set('tus-unqueued', job('tus-unqueued', 'u/one.txt', 'queued'));
    assert.deepEqual((await recover(ctx(), { dryRun: false })).items, []);
  });

  it('online: skips recent files and leaves incoming/ and cas/ alone', async () => {
    await put('tus/fresh', 'new', 1000);
    await put('queue/staging/put-fresh', 'new', 1000);
    const report = await recover(ctx({ offline: false, minAgeMs: 15 * 60_000 }), { dryRun: true });
    const targets = report.items.map((i) => i.target);
    for (const t of ['tus/fresh', 'queue/staging/put-fresh', 'incoming/z.part', 'cas/ab/abcd']) assert.equal(targets.includes(t), false, t);
    assert.ok(targets.includes('tus/orphan'));
  });

  it('reports an action that fails and goes on with the rest', async () => {
    const report = await recover(ctx({ readmit: async () => Promise.reject(new Error('queue closed')) }), { dryRun: false });
    assert.equal(report.failed, 1);
    assert.equal(report.items.find((i) => i.kind === 'unqueued_upload')?.result, 'queue closed');
    assert.equal(existsSync(join(dir, 'tus/orphan')), false);
  });

  it('a published file lost from files/ whose bytes the content store holds is restored, and its content is not swept as unused', async () => {
    const sha = 'ab'.repeat(32);
    await put(`cas/ab/${sha}`, 'content');
    await put('meta/l/lost.txt.json', { contentType: 'text/plain', uploadId: 'u1', sha256: sha, size: 7, publishedAt: '' });
    await put('meta/l/other-size.txt.json', { contentType: 'text/plain', uploadId: 'u2', sha256: sha, size: 8, publishedAt: '' });
    const planned = summary((await recover(ctx(), { dryRun: true })).items);
    assert.ok(planned.includes('lost_file restore files/l/lost.txt'), planned.join('\n'));
    assert.ok(!planned.includes(`orphan_file remove cas/ab/${sha}`), 'the content a restore needs is not swept');
    assert.ok(!planned.includes('stale_metadata remove meta/l/lost.txt.json'));
    assert.ok(planned.includes('stale_metadata remove meta/l/other-size.txt.json'), 'a record whose size the content does not match is not restored from it');
    const report = await recover(ctx(), { dryRun: false });
    assert.equal(report.items.find((i) => i.kind === 'lost_file')?.result, 'done');
    assert.ok(report.items.every((i) => !('restoreFrom' in i)), 'no local path in the report');
    const { readFile } = await import('node:fs/promises');
    assert.equal(await readFile(join(dir, 'files/l/lost.txt'), 'utf8'), 'content');
    assert.ok(existsSync(join(dir, `cas/ab/${sha}`)));
    assert.ok(existsSync(join(dir, 'meta/l/lost.txt.json')));
  });
});
