/**
 * Exactly once on S3 across kill -9 (issue 12 item 3): a finalizer on storage.backend = "s3"
 * (a child process, finalize-s3-child.ts) is killed with SIGKILL at each step of admission and
 * of the pipeline; a new finalizer on the same queue journal and bucket then finishes the job.
 * Afterwards the file is published once, with its bytes and record, the incoming object is gone,
 * one content entry holds the bytes, and no dead letter was made.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { withTimeout } from '../helpers/service.js';
import { startHarness } from './finalize-harness.js';
import { radosGwFixture, rgwClient, s3Section, s3Store } from './finalize-s3-store.js';

const BUCKET = 'hfs-crash';
const CHILD = fileURLToPath(new URL('./finalize-s3-child.js', import.meta.url));
const STEPS = ['admit-after-insert', 'start', 'verified', 'hashed', 'content-stored', 'record-written', 'linked', 'published'] as const;

describe('finalization on S3: exactly once across kill -9 at every step', () => {
  const fixture = radosGwFixture(BUCKET);

  for (const step of STEPS) {
    for (const digest of step === 'hashed' ? [false, true] : [true]) {
      it(`killed at ${step}${digest ? '' : ' (no received digest)'}: published exactly once after the restart`, async () => {
        const dataDir = await mkdtemp(join(tmpdir(), 'hfs-s3-crash-'));
        const prefix = `c${randomBytes(5).toString('hex')}/`;
        const data = randomBytes(96 * 1024);
        const sha256 = createHash('sha256').update(data).digest('hex');
        const uploadId = randomUUID();
        const slotPath = `${randomBytes(4).toString('hex')}/f.bin`;
        const key = `${prefix}incoming/${uploadId}`;
        const s3 = s3Section(fixture.rgw, BUCKET, prefix);
        const client = rgwClient(fixture.rgw, BUCKET);
        await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: data }));
        client.destroy();
        try {
          const child = spawn(process.execPath, [CHILD], {
            env: { ...process.env, HFS_S3_CHILD: JSON.stringify({ s3, dataDir, crashAt: step, upload: { uploadId, slotPath, key, size: data.length, ...(digest && { sha256 }) } }) },
            stdio: ['ignore', 'ignore', 'pipe'],
          });
          let stderr = '';
          child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
          const exit = await withTimeout(
            new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
            60_000,
            `child killed at ${step}`,
          );
          assert.deepEqual(exit, { code: null, signal: 'SIGKILL' }, `the child dies at ${step}: ${stderr.slice(-2000)}`);

          const h = await startHarness(s3Store(fixture.rgw, BUCKET, prefix), {}, dataDir);
          try {
            await h.waitLog((l) => l.msg === 'Finalization job done' && l['jobId'] === `put-${uploadId}`);
            assert.deepEqual(await h.publishedBytes(slotPath), data);
            const record = await h.stores.published.record(slotPath);
            assert.equal(record?.uploadId, uploadId);
            assert.equal(record?.sha256, sha256);
            assert.deepEqual(await h.keys('incoming/'), [], 'the incoming object is removed');
            assert.deepEqual(await h.keys('cas/'), [`cas/${sha256.slice(0, 2)}/${sha256}`]);
            assert.deepEqual(await h.keys('files/'), [`files/${slotPath}`]);
            assert.equal((await h.service.deadLetters.list()).length, 0);
            assert.equal(await h.put(slotPath, randomBytes(8)), 'exists', 'the slot stays taken');
          } finally {
            await h.dispose();
          }
        } finally {
          await rm(dataDir, { recursive: true, force: true });
        }
      });
    }
  }
});
