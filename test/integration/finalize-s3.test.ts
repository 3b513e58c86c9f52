/**
 * Finalization on storage.backend = "s3" against a real Ceph RadosGW (issue 12 items 3 and 5,
 * issue 19 item 6): publish by server-side copy with the record as object metadata, dedup through
 * the S3 content store, the re-read counted only when no digest came with the upload, a slot
 * published once; RadosGW stopped mid-run opens the storage breaker, jobs wait (no dead letter)
 * and publish by themselves once it is back; a reached bucket quota postpones like a full disk.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { metrics } from '../../src/observability/index.js';
import { gate, slot, startHarness, type Harness } from './finalize-harness.js';
import { radosGwFixture, s3Store, type S3Parts } from './finalize-s3-store.js';

const BUCKET = 'hfs-finalize';
const QUOTA_BUCKET = 'hfs-finalize-quota';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
async function counter(c: { get(): Promise<{ values: Array<{ value: number; labels: Record<string, unknown> }> }> }, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await c.get();
  return values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((n, v) => n + v.value, 0);
}
const publishedLine = (h: Harness<S3Parts>, uploadId: string) => h.waitLog((l) => l.msg === 'File published' && l['uploadId'] === uploadId);

describe('finalization on S3 (RadosGW)', () => {
  const fixture = radosGwFixture(BUCKET, QUOTA_BUCKET);

  it('publishes by server-side copy with type and sha256 as metadata; a received digest means no re-read; the source goes', async () => {
    const h = await startHarness(s3Store(fixture.rgw, BUCKET));
    try {
      const data = randomBytes(300 * 1024);
      const path = slot('a.bin');
      const rereads = await counter(metrics.finalizeSourceRereads, { reason: 'hash' });
      const uploadId = randomUUID();
      const source = await h.incoming(data);
      assert.equal(await h.service.finalize({ protocol: 'put', uploadId, slotPath: path, contentType: 'image/png', size: data.length, source, sha256: sha(data) }), 'accepted');
      await publishedLine(h, uploadId);
      assert.deepEqual(await h.publishedBytes(path), data);
      const head = await h.stores.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: `${h.prefix}files/${path}` }));
      assert.equal(head.ContentType, 'image/png');
      assert.equal(head.Metadata?.['sha256'], sha(data));
      assert.equal(head.Metadata?.['upload-id'], uploadId);
      assert.equal(await counter(metrics.finalizeSourceRereads, { reason: 'hash' }), rereads, 'no re-read with a received digest');
      assert.deepEqual(await h.keys('incoming/'), [], 'the incoming object is removed once published');
      assert.deepEqual(await h.keys('cas/'), [`cas/${sha(data).slice(0, 2)}/${sha(data)}`]);
      const record = await h.stores.published.record(path);
      assert.equal(record?.sha256, sha(data));
    } finally {
      await h.dispose();
    }
  });

  it('without a received digest reads the object once to hash it (counted), and a declared sha256 that differs is a dead letter', async () => {
    const h = await startHarness(s3Store(fixture.rgw, BUCKET));
    try {
      const data = randomBytes(64 * 1024);
      const before = await counter(metrics.finalizeSourceRereads, { reason: 'hash' });
      const uploadId = randomUUID();
      await h.service.finalize({ protocol: 'put', uploadId, slotPath: slot('b.bin'), contentType: 'text/plain', size: data.length, source: await h.incoming(data) });
      const line = await publishedLine(h, uploadId);
      assert.equal(line['sha256'], sha(data));
      assert.equal(await counter(metrics.finalizeSourceRereads, { reason: 'hash' }), before + 1);

      const bad = randomUUID();
      await h.service.finalize({ protocol: 'put', uploadId: bad, slotPath: slot('c.bin'), contentType: 'text/plain', size: data.length, source: await h.incoming(data), expectedSha256: 'f'.repeat(64) });
      const dead = await h.waitLog((l) => typeof l.msg === 'string' && l.msg.includes('dead letter') && l['jobId'] === `put-${bad}`);
      assert.equal(dead['code'], 'ERR_CHECKSUM_MISMATCH');
    } finally {
      await h.dispose();
    }
  });

  it('dedups identical content into one content entry; a second upload of a published slot is refused', async () => {
    const h = await startHarness(s3Store(fixture.rgw, BUCKET));
    try {
      const data = randomBytes(40 * 1024);
      const hits = await counter(metrics.dedupHits);
      const [one, two] = [randomUUID(), randomUUID()];
      const first = slot('one.bin');
      await h.service.finalize({ protocol: 'put', uploadId: one, slotPath: first, contentType: 'x/y', size: data.length, source: await h.incoming(data), sha256: sha(data) });
      await publishedLine(h, one);
      await h.service.finalize({ protocol: 'put', uploadId: two, slotPath: slot('two.bin'), contentType: 'x/y', size: data.length, source: await h.incoming(data), sha256: sha(data) });
      const line = await publishedLine(h, two);
      assert.equal(line['dedup'], true);
      assert.equal(await counter(metrics.dedupHits), hits + 1);
      assert.equal((await h.keys('cas/')).length, 1);
      assert.equal((await h.keys('files/')).length, 2);
      assert.equal(await h.put(first, randomBytes(10)), 'exists');
      assert.deepEqual(await h.publishedBytes(first), data, 'the first file stays');
    } finally {
      await h.dispose();
    }
  });

  it('RadosGW stopped mid-run: the storage breaker opens, jobs wait without a dead letter, and publish once it is back', async () => {
    const held = gate();
    const h = await startHarness(s3Store(fixture.rgw, BUCKET), { onStep: (step) => (step === 'start' ? held.wait() : undefined) });
    try {
      const uploads = [randomBytes(20 * 1024), randomBytes(30 * 1024), randomBytes(25 * 1024)].map((data) => ({ data, uploadId: randomUUID(), path: slot('w.bin') }));
      for (const u of uploads) await h.service.finalize({ protocol: 'put', uploadId: u.uploadId, slotPath: u.path, contentType: 'x/y', size: u.data.length, source: await h.incoming(u.data) });
      await fixture.rgw.stopGateway();
      const unreachable = await counter(metrics.finalizeStoreUnreachable);
      held.open();
      await h.waitLog((l) => typeof l.msg === 'string' && l.msg.startsWith('Circuit breaker opened') && l['dependency'] === 'storage');
      await h.waitLog((l) => l.msg === 'Finalization postponed: storage unreachable');
      assert.ok((await counter(metrics.finalizeStoreUnreachable)) > unreachable);
      assert.equal((await h.service.deadLetters.list()).length, 0, 'no job became a dead letter');
      await fixture.rgw.startGateway();
      for (const u of uploads) await publishedLine(h, u.uploadId);
      for (const u of uploads) assert.deepEqual(await h.publishedBytes(u.path), u.data);
      await h.waitLog((l) => l.msg === 'Circuit breaker closed' && l['dependency'] === 'storage');
      assert.equal(h.lines.filter((l) => typeof l.msg === 'string' && l.msg.includes('dead letter')).length, 0);
      assert.deepEqual(await h.keys('incoming/'), []);
    } finally {
      await fixture.rgw.startGateway();
      await h.dispose();
    }
  });

  it('a reached bucket quota postpones the publish like a full disk (no attempt spent); it publishes once the quota is raised', async () => {
    const h = await startHarness(s3Store(fixture.rgw, QUOTA_BUCKET));
    try {
      const data = randomBytes(512 * 1024);
      const source = await h.incoming(data); // stored before the quota: the copies into cas/ and files/ exceed it
      await fixture.rgw.admin(['quota', 'set', '--quota-scope=bucket', `--bucket=${QUOTA_BUCKET}`, '--max-size=262144']);
      await fixture.rgw.admin(['quota', 'enable', '--quota-scope=bucket', `--bucket=${QUOTA_BUCKET}`]);
      const full = await counter(metrics.storageFull, { where: 'publish' });
      const uploadId = randomUUID();
      const path = slot('q.bin');
      await h.service.finalize({ protocol: 'put', uploadId, slotPath: path, contentType: 'x/y', size: data.length, source, sha256: sha(data) });
      await h.waitLog((l) => l.msg === 'Finalization postponed: storage full' && l['jobId'] === `put-${uploadId}`);
      assert.ok((await counter(metrics.storageFull, { where: 'publish' })) > full);
      assert.equal(await h.publishedBytes(path), null);
      await fixture.rgw.admin(['quota', 'set', '--quota-scope=bucket', `--bucket=${QUOTA_BUCKET}`, '--max-size=67108864']);
      await publishedLine(h, uploadId);
      assert.deepEqual(await h.publishedBytes(path), data);
      assert.equal((await h.service.deadLetters.list()).length, 0);
    } finally {
      await h.dispose();
    }
  });
});

describe('finalization on S3: never a 404 while finalizing', () => {
  const fixture = radosGwFixture(BUCKET);

  it('a download of a path still being finalized waits and is answered once the file is there', async () => {
    const held = gate();
    const reached = gate();
    const h = await startHarness(s3Store(fixture.rgw, BUCKET), {
      onStep: async (step) => {
        if (step !== 'content-stored') return; // the content is in cas/, the slot not published yet
        reached.open();
        await held.wait();
      },
    });
    try {
      const data = randomBytes(10 * 1024);
      const path = slot('pending.bin');
      const uploadId = randomUUID();
      await h.service.finalize({ protocol: 'put', uploadId, slotPath: path, contentType: 'x/y', size: data.length, source: await h.incoming(data), sha256: sha(data) });
      await reached.wait();
      assert.equal(await h.stores.published.stat(path), null, 'not published yet');
      const pending = h.service.awaitPublished(path);
      held.open();
      assert.deepEqual(await pending, { kind: 'published' });
      assert.deepEqual(await h.publishedBytes(path), data);
    } finally {
      held.open();
      await h.dispose();
    }
  });
});
