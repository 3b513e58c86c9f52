/**
 * The finalization job payload: a source ref (+ the received sha256) round-trips, and a payload of
 * the previous version (a local `sourceFile`) still reads, as a `file:` ref, so old journals drain.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fromPayload, toPayload, type FinalizeJobPayload } from '../../src/finalize/job-payload.js';
import { fileSourceResolver, sourceResolver } from '../../src/storage/index.js';

const SHA = 'a'.repeat(64);

describe('finalization job payload', () => {
  it('round-trips a source ref, the declared and the received sha256', () => {
    const p: FinalizeJobPayload = { protocol: 'tus', uploadId: 'u1', contentType: 'text/plain', source: 's3:bkt/pre/uploads/u1', receivedAtMs: 5, expectedSha256: null, receivedSha256: SHA };
    assert.deepEqual(fromPayload(JSON.parse(JSON.stringify(toPayload(p)))), p);
  });

  it('reads a previous version payload (sourceFile) as a file: ref', () => {
    const old = { protocol: 'put', uploadId: 'r1', contentType: 'x/y', sourceFile: '/data/queue/staging/put-r1', receivedAtMs: 7 };
    assert.deepEqual(fromPayload(old), { protocol: 'put', uploadId: 'r1', contentType: 'x/y', source: 'file:/data/queue/staging/put-r1', receivedAtMs: 7 });
  });

  it('refuses a payload without a source, or with a received sha256 that is no lowercase hex digest', () => {
    assert.throws(() => fromPayload({ protocol: 'put', uploadId: 'r1', contentType: 'x/y', receivedAtMs: 7 }), TypeError);
    assert.throws(() => fromPayload({ protocol: 'put', uploadId: 'r1', contentType: 'x/y', source: 'file:/x', receivedAtMs: 7, receivedSha256: 'A'.repeat(64) }), TypeError);
  });
});

describe('source resolver', () => {
  it('resolves a file: ref to that path with the given size', () => {
    const s = fileSourceResolver('file:/tmp/x', 12);
    assert.equal(s.ref, 'file:/tmp/x');
    assert.equal(s.size, 12);
  });

  it('refuses an s3: ref when no S3 client was given, naming only the scheme', () => {
    assert.throws(() => sourceResolver()('s3:bkt/secret/key', 1), /source ref s3:$/);
  });
});
