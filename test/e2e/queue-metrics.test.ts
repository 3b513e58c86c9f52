/**
 * The finalization queue in the spawned server: a GET right after the upload's answer waits for
 * the asynchronous publish instead of answering 404, and /metrics serves the queue metrics of
 * design.md.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { signSlotUrl } from '../../src/index.js';
import { pathOf, randomData, rawRequest, sha256, slotDir } from '../helpers/http.js';
import { startServer, TEST_SECRET, type SpawnedServer } from '../helpers/server.js';

const TUS = { 'Tus-Resumable': '1.0.0' };

describe('finalization queue in the server', () => {
  let server: SpawnedServer;
  before(async () => {
    server = await startServer();
  });
  after(async () => server.dispose());

  it('a GET right after the upload is answered waits for the publish: never 404', async () => {
    const big = randomData(24 * 1024 * 1024); // hashed in a worker thread: publish takes a moment
    const put = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/big.bin`, baseUrl: server.uploadUrl, size: big.length });
    assert.equal((await rawRequest(server.baseUrl, pathOf(put.url), { method: 'PUT', body: big })).status, 201);
    const [get, head] = await Promise.all([rawRequest(server.baseUrl, pathOf(put.getUrl)), rawRequest(server.baseUrl, pathOf(put.getUrl), { method: 'HEAD' })]);
    assert.equal(get.status, 200);
    assert.equal(head.status, 200);
    assert.equal(sha256(get.body), sha256(big));

    const small = randomData(1000);
    const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/small.bin`, baseUrl: server.uploadUrl, size: small.length });
    const created = await rawRequest(server.baseUrl, '/files/', {
      method: 'POST',
      headers: { ...TUS, 'Upload-Length': String(small.length), 'Upload-Slot': slot.url, 'Content-Type': 'application/offset+octet-stream' },
      body: small,
    });
    assert.equal(created.status, 201);
    assert.equal(sha256((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).body), sha256(small));
    assert.equal((await rawRequest(server.baseUrl, `/upload/${slotDir()}/never-uploaded.bin`)).status, 404, 'unknown paths still 404 at once');
  });

  it('serves the queue metrics', async () => {
    await server.waitForLog((l) => l.msg === 'File published');
    const text = (await rawRequest(server.baseUrl, '/metrics')).text;
    for (const name of [
      'hmac_queue_length',
      'hmac_queue_processing_time_seconds',
      'hmac_spillover_items_total',
      'hmac_circuit_breaker_state',
      'hmac_worker_health_status',
      'hmac_worker_processed_total',
      'hmac_worker_errors_total',
      'hmac_timeouts_total',
      'hmac_retries_total',
      'hmac_dead_letter_items_total',
    ]) {
      assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
    }
    assert.match(text, /^hmac_queue_length\{priority="high"\} \d+$/m);
    assert.match(text, /^hmac_circuit_breaker_state\{dependency="storage",state="closed"\} 1$/m);
    assert.match(text, /^hmac_worker_health_status\{worker_id="1",status="healthy"\} 1$/m);
    assert.match(text, /^hmac_worker_processed_total\{worker_id="\d"\} [1-9]\d*$/m);
    assert.match(text, /^hmac_queue_processing_time_seconds_count [1-9]\d*$/m);
    assert.ok(!/slot|upload_id|path=/.test(text.split('\n').filter((l) => l.startsWith('hmac_queue') || l.startsWith('hmac_worker')).join('\n')), 'no ids or paths in labels');
  });
});
