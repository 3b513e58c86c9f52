/** /ready's storage section and check (ops/readiness.ts) and the S3 probe's reasons (storage/s3-health.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { storageReadiness } from '../../src/ops/index.js';
import { unreachableReason } from '../../src/storage/s3.js';

type Breaker = { dependency: string; state: 'closed' | 'open' | 'half_open' };

const s3 = (reachable: boolean, reason?: string) => {
  const last = { reachable, ...(reason !== undefined && { reason }), checkedAtMs: Date.UTC(2026, 11, 5) };
  return { last, check: async () => last };
};

describe('storageReadiness', () => {
  it('file backend: no check, the section shows the breaker', () => {
    const r = storageReadiness({ backend: 'file', breakers: () => [{ dependency: 'storage', state: 'closed' }] });
    assert.equal(r.check, null);
    assert.deepEqual(r.section(), { backend: 'file', state: 'ok', breaker: 'closed' });
  });

  it('S3 answering, breaker closed: ok', async () => {
    const r = storageReadiness({ backend: 's3', s3: s3(true), breakers: () => [{ dependency: 'storage', state: 'closed' }] });
    assert.equal(await r.check!.run(), null);
    assert.deepEqual(r.section(), { backend: 's3', state: 'ok', breaker: 'closed', checkedAt: '2026-12-05T00:00:00.000Z' });
  });

  it('S3 not answering: the check fails with the probe reason, whatever the breaker says', async () => {
    for (const state of ['closed', 'open'] as const) {
      const r = storageReadiness({ backend: 's3', s3: s3(false, 'S3 refused the connection'), breakers: (): Breaker[] => [{ dependency: 'storage', state }] });
      assert.equal(await r.check!.run(), 'S3 refused the connection');
      assert.equal(r.section().state, 'unreachable');
      assert.equal(r.section().reason, 'S3 refused the connection');
    }
  });

  it('S3 answering again while the breaker is open or probing: ready, state recovering', async () => {
    for (const state of ['open', 'half_open'] as const) {
      const r = storageReadiness({ backend: 's3', s3: s3(true), breakers: (): Breaker[] => [{ dependency: 'webhook', state: 'open' }, { dependency: 'storage', state }] });
      assert.equal(await r.check!.run(), null);
      assert.equal(r.section().state, 'recovering');
      assert.equal(r.section().breaker, state);
      assert.match(String(r.section().reason), /breaker/);
    }
  });

  it('breakers disabled: shown as such', () => {
    assert.equal(storageReadiness({ backend: 's3', s3: s3(true), breakers: () => [] }).section().breaker, 'disabled');
  });
});

describe('unreachableReason names the cause, never the endpoint', () => {
  const cases: Array<[unknown, string]> = [
    [Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:7480'), { code: 'ECONNREFUSED' }), 'S3 refused the connection'],
    [Object.assign(new Error('aborted'), { name: 'AbortError' }), 'S3 did not answer within 3s'],
    [Object.assign(new Error('x'), { name: 'TimeoutError' }), 'S3 did not answer within 3s'],
    [{ name: 'Forbidden', $metadata: { httpStatusCode: 403 } }, 'S3 refused the credentials (403)'],
    [{ name: 'NotFound', $metadata: { httpStatusCode: 404 } }, 'the bucket does not exist (404)'],
    [{ name: 'ServiceUnavailable', $metadata: { httpStatusCode: 503 } }, 'S3 answered 503'],
    [new Error('something else at http://127.0.0.1:7480'), 'S3 cannot be reached'],
  ];
  for (const [err, reason] of cases) it(reason, () => assert.equal(unreachableReason(err, 3_000), reason));
});
