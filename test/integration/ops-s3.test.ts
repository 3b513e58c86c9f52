/**
 * The operator commands on storage.backend = "s3" (issue 12 item 6), offline (OfflineOps, what
 * the CLI runs on a stopped server) against a real RadosGW: uploads list and expire through the
 * S3 tus store, recover re-admitting a finished upload that never reached the queue (published
 * by the next start, its bytes re-read once: no digest survives a restart), verify re-hashing
 * the published objects (and finding a corrupt one, and one deleted from the bucket by hand, whose
 * claim recover releases), dlq purge removing an incoming object.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { Upload } from '@tus/utils';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { metrics } from '../../src/observability/index.js';
import { OfflineOps } from '../../src/ops/cli/offline.js';
import { LEGACY_SLOT_KEY, LEGACY_TYPE_KEY } from '../../src/storage/index.js';
import type { RadosGw } from '../helpers/rgw.js';
import { startHarness } from './finalize-harness.js';
import { radosGwFixture, rgwClient, s3Config, s3Store } from './finalize-s3-store.js';

const BUCKET = 'hfs-ops';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function rereads(): Promise<number> {
  const { values } = await metrics.finalizeSourceRereads.get();
  return values.filter((v) => v.labels['reason'] === 'hash').reduce((n, v) => n + v.value, 0);
}

describe('ops commands on S3 (offline, RadosGW)', () => {
  const fixture = radosGwFixture(BUCKET);
  let rgw: RadosGw;
  let dir: string;
  let prefix: string;
  before(async () => {
    rgw = fixture.rgw;
    dir = await mkdtemp(join(tmpdir(), 'hfs-ops-s3-'));
    prefix = `o${randomBytes(5).toString('hex')}/`;
    // A first start creates the queue journal the offline commands read.
    const h = await startHarness(s3Store(rgw, BUCKET, prefix), {}, dir);
    await h.dispose();
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const offline = () => new OfflineOps(s3Config(rgw, BUCKET, prefix, dir));

  it('uploads list shows an unfinished upload kept in S3, expire removes it', async () => {
    const ops = offline();
    try {
      const h = await startHarness(s3Store(rgw, BUCKET, prefix), {}, dir);
      const id = `u${randomBytes(6).toString('hex')}`;
      try {
        const tus = h.stores.tusStore;
        await tus.datastore.create(new Upload({ id, offset: 0, size: 100, metadata: { [LEGACY_SLOT_KEY]: 'open/x.bin', [LEGACY_TYPE_KEY]: 'application/octet-stream' } }));
        await tus.datastore.write(Readable.from([randomBytes(10)]), id, 0);
      } finally {
        await h.dispose();
      }
      const listed = (await ops.listUploads()).find((u) => u.id === id);
      assert.equal(listed?.offset, 10);
      assert.equal(listed?.size, 100);
      await ops.terminateUpload(id);
      assert.equal((await ops.listUploads()).find((u) => u.id === id), undefined);
    } finally {
      await ops.close();
    }
  });

  it('recover re-admits a finished upload that never reached the queue; the next start publishes it (one counted re-read); verify checks it', async () => {
    const body = randomBytes(70 * 1024);
    const id = `u${randomBytes(6).toString('hex')}`;
    const slotPath = `rec/${id}.bin`;
    const seed = await startHarness(s3Store(rgw, BUCKET, prefix), {}, dir);
    try {
      const tus = seed.stores.tusStore;
      await tus.datastore.create(new Upload({ id, offset: 0, size: body.length, metadata: { [LEGACY_SLOT_KEY]: slotPath, [LEGACY_TYPE_KEY]: 'text/plain' } }));
      await tus.datastore.write(Readable.from([body]), id, 0);
      await tus.markFinished(id); // a crash here: finished, no job
    } finally {
      await seed.dispose();
    }
    const ops = offline();
    try {
      const plan = await ops.recover({ dryRun: true });
      assert.deepEqual(plan.items.filter((i) => i.target === `uploads/${id}`).map((i) => [i.kind, i.action]), [['unqueued_upload', 'readmit']]);
      const done = await ops.recover({ dryRun: false });
      assert.equal(done.failed, 0);
      assert.ok((await ops.listJobs({})).some((j) => j.id === `tus-${id}`), 'the job is in the queue');
    } finally {
      await ops.close();
    }
    const before = await rereads();
    const h = await startHarness(s3Store(rgw, BUCKET, prefix), {}, dir);
    try {
      await h.waitLog((l) => l.msg === 'File published' && l['uploadId'] === id);
      assert.deepEqual(await h.publishedBytes(slotPath), body);
      assert.equal(await rereads(), before + 1, 'no digest survives a restart: the object is read once to hash it');
      assert.equal(await h.stores.tusStore.source(id), null, 'the upload bytes are released');
      assert.equal((await h.stores.tusStore.summarize(id))?.finished, true, 'the record stays for resuming clients');
    } finally {
      await h.dispose();
    }

    const verifyOps = offline();
    try {
      const clean = await verifyOps.verify();
      assert.ok(clean.checked >= 1);
      assert.deepEqual(clean.problems, []);
      // Corrupt it in place, keeping its record (metadata).
      const client = rgwClient(rgw, BUCKET);
      await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${prefix}files/${slotPath}`, Body: randomBytes(body.length), ContentType: 'text/plain', Metadata: { 'upload-id': id, sha256: sha(body), protocol: 'tus' } }));
      client.destroy();
      const report = await verifyOps.verify();
      assert.deepEqual(report.problems.map((p) => [p.slotPath, p.kind]), [[slotPath, 'corrupt']]);
    } finally {
      await verifyOps.close();
    }
  });

  it('a published object deleted from the bucket by hand: verify reports it missing, recover releases its claim, and a new upload of the slot is published', async () => {
    const slotPath = `gone/${randomBytes(4).toString('hex')}.bin`;
    // A done job holds its slot for an hour (doneRetentionMs, the repeated-PUT guard): pruned soon here.
    const quickPrune = { doneRetentionMs: 200 };
    const h = await startHarness(s3Store(rgw, BUCKET, prefix), quickPrune, dir);
    try {
      const first = randomUUID();
      assert.equal(await h.put(slotPath, randomBytes(3000), { uploadId: first }), 'accepted');
      await h.waitLog((l) => l.msg === 'File published' && l['uploadId'] === first);
      // The job is marked done just after that line: a stop before would requeue it (a publish to finish, not a lost file).
      for (let i = 0; i < 100 && ((await h.service.admin.job(`put-${first}`))?.state ?? 'done') !== 'done'; i++) await new Promise((r) => setTimeout(r, 100));
    } finally {
      await h.dispose();
    }
    const client = rgwClient(rgw, BUCKET);
    await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: `${prefix}files/${slotPath}` }));
    client.destroy();

    const ops = offline();
    try {
      const report = await ops.verify();
      assert.deepEqual(report.problems.filter((p) => p.slotPath === slotPath).map((p) => p.kind), ['missing']);
      const run = await ops.recover({ dryRun: false });
      assert.deepEqual(run.items.filter((i) => i.target === `claims/${slotPath}`).map((i) => [i.kind, i.result]), [['stale_metadata', 'done']]);
      assert.deepEqual((await ops.verify()).problems.filter((p) => p.slotPath === slotPath), []);
    } finally {
      await ops.close();
    }

    const again = await startHarness(s3Store(rgw, BUCKET, prefix), quickPrune, dir);
    try {
      const second = randomUUID();
      const body = randomBytes(2000);
      // Admitted once the first upload's done job is pruned (a refused put would leave its incoming object behind).
      for (let i = 0; i < 100 && (await again.service.admin.jobBySlot(slotPath)) !== null; i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal(await again.put(slotPath, body, { uploadId: second }), 'accepted');
      const line = await again.waitLog((l) => (l['uploadId'] === second || l['jobId'] === `put-${second}`) && (l.msg === 'File published' || (typeof l.msg === 'string' && l.msg.includes('dead letter'))));
      assert.equal(line.msg, 'File published', 'the slot is free again, not held by the old claim (ERR_FILE_EXISTS)');
      assert.deepEqual(await again.publishedBytes(slotPath), body);
    } finally {
      await again.dispose();
    }
  });

  it('dlq list and purge: a dead PUT job is listed, and purging it removes its incoming object', async () => {
    const h = await startHarness(s3Store(rgw, BUCKET, prefix), {}, dir);
    const uploadId = randomUUID();
    try {
      const data = randomBytes(2048);
      await h.put(`dlq/${uploadId}.bin`, data, { uploadId, expectedSha256: '0'.repeat(64) });
      await h.waitLog((l) => typeof l.msg === 'string' && l.msg.includes('dead letter') && l['jobId'] === `put-${uploadId}`);
      assert.equal((await h.keys('incoming/')).length, 1, 'a dead letter keeps its bytes');
    } finally {
      await h.dispose();
    }
    const ops = offline();
    try {
      const dead = await ops.listDeadLetters({});
      assert.ok(dead.some((d) => d.id === `put-${uploadId}`));
      assert.equal(await ops.purgeDeadLetters({ id: `put-${uploadId}` }), 1);
    } finally {
      await ops.close();
    }
    const after = await startHarness(s3Store(rgw, BUCKET, prefix), {}, dir);
    try {
      assert.deepEqual(await after.keys('incoming/'), [], 'purging removed the incoming object');
    } finally {
      await after.dispose();
    }
  });
});
