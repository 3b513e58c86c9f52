/**
 * /metrics of a running server against what operators query: every metric of design.md, the
 * tusd-style transfer metrics, and every metric the shipped Grafana dashboard
 * (ops/grafana/*.json) and Prometheus alert rules (ops/prometheus/*.yml) use. Labels stay
 * bounded: no upload ids or paths in any label value.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { randomData, rawRequest, slotDir } from '../helpers/http.js';
import { ADMIN_TOKEN, AUTH, putFile, sampleValue, tusCreate } from '../helpers/ops.js';
import { balanced, dashboardExprs, exposedSampleNames, metricNamesIn, ruleExprs } from '../helpers/promql.js';
import { REPO_ROOT, startServer, type SpawnedServer } from '../helpers/server.js';

/** design.md, "Metrics names to expose". */
const DESIGN_METRICS = [
  'hmac_queue_length',
  'hmac_queue_processing_time_seconds_bucket',
  'hmac_spillover_items_total',
  'hmac_circuit_breaker_state',
  'hmac_worker_health_status',
  'hmac_worker_processed_total',
  'hmac_worker_errors_total',
  'hmac_timeouts_total',
  'hmac_retries_total',
  'hmac_dead_letter_items_total',
];
/** What tusd users look for, under our names. */
const TRANSFER_METRICS = [
  'hmac_http_requests_total',
  'hmac_bytes_received_total',
  'hmac_uploads_created_total',
  'hmac_uploads_finished_total',
  'hmac_uploads_terminated_total',
  'hmac_open_connections',
  'hmac_active_uploads',
  'hmac_admission_wait_seconds_bucket',
  'hmac_admission_waiting',
  'process_cpu_seconds_total',
  'process_resident_memory_bytes',
  'nodejs_eventloop_lag_seconds',
];

describe('metrics exposed for dashboards and alerts', () => {
  let server: SpawnedServer;
  let text = '';
  let exposed: Set<string>;
  const secretPath = `${slotDir()}/label-leak-check.bin`;
  let tusId = '';
  const TUS_BYTES = 70_000;

  before(async () => {
    server = await startServer({ env: { HFS_ADMIN_TOKEN: ADMIN_TOKEN } });
    // Traffic of every kind, so labelled series exist: PUT, tus creation + PATCH, terminate, download, errors.
    assert.equal((await putFile(server, `${slotDir()}/a.txt`, 'hello')).status, 201);
    const body = randomData(TUS_BYTES);
    const created = await tusCreate(server, secretPath, body, { sent: 0 });
    tusId = created.id;
    const patched = await rawRequest(server.baseUrl, created.location, {
      method: 'PATCH',
      headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': 0, 'Content-Type': 'application/offset+octet-stream' },
      body,
    });
    assert.equal(patched.status, 204, patched.text);
    await server.waitForLog((l) => l.msg === 'File published' && l.uploadId === tusId);
    const other = await tusCreate(server, `${slotDir()}/t.bin`, randomData(100), { sent: 10 });
    assert.equal((await rawRequest(server.baseUrl, other.location, { method: 'DELETE', headers: { 'Tus-Resumable': '1.0.0' } })).status, 204);
    assert.equal((await rawRequest(server.baseUrl, `/upload/${secretPath}`)).status, 200);
    assert.equal((await rawRequest(server.baseUrl, '/upload/nope/none.txt')).status, 404);
    assert.equal((await rawRequest(server.baseUrl, '/admin/queue', { headers: AUTH })).status, 200);
    const res = await rawRequest(server.baseUrl, '/metrics');
    assert.equal(res.status, 200);
    text = res.text;
    exposed = exposedSampleNames(text);
  });
  after(async () => server?.dispose());

  it('every metric named in design.md and the tusd-style transfer metrics have samples', () => {
    const missing = [...DESIGN_METRICS, ...TRANSFER_METRICS].filter((m) => !exposed.has(m));
    assert.deepEqual(missing, []);
  });

  it('design.md label sets: priorities, breaker states, worker statuses, timeout types, retry reasons', () => {
    for (const priority of ['high', 'medium', 'low']) assert.notEqual(sampleValue(text, 'hmac_queue_length', { priority }), undefined, priority);
    for (const state of ['open', 'closed', 'half_open']) assert.notEqual(sampleValue(text, 'hmac_circuit_breaker_state', { state }), undefined, state);
    for (const status of ['healthy', 'slow', 'failed']) assert.notEqual(sampleValue(text, 'hmac_worker_health_status', { worker_id: '1', status }), undefined, status);
    for (const type of ['upload', 'download', 'queue']) assert.notEqual(sampleValue(text, 'hmac_timeouts_total', { type }), undefined, type);
    for (const reason of ['timeout', 'network', 'server_error']) assert.notEqual(sampleValue(text, 'hmac_retries_total', { reason }), undefined, reason);
    for (const id of ['1', '2', '3', '4']) assert.equal(sampleValue(text, 'hmac_worker_processed_total', { worker_id: id }) !== undefined, true, id);
  });

  it('every error code has its series before its first error (at 0), so alerts on one have data', () => {
    assert.equal(sampleValue(text, 'hmac_errors_total', { code: 'ERR_INTERNAL' }), 0);
    assert.equal(sampleValue(text, 'hmac_errors_total', { code: 'ERR_INSUFFICIENT_STORAGE' }), 0);
  });

  it('the storage backend reachability gauge has a series on the file backend too (1: the data directory is the store)', () => {
    assert.equal(sampleValue(text, 'hmac_storage_backend_reachable', { backend: 'file' }), 1);
  });

  it('transfer counters follow the traffic', () => {
    assert.equal(sampleValue(text, 'hmac_bytes_received_total', { protocol: 'tus' }), TUS_BYTES + 10, 'PATCH bytes and the creation-with-upload bytes');
    assert.equal(sampleValue(text, 'hmac_bytes_received_total', { protocol: 'put' }), 5);
    assert.equal(sampleValue(text, 'hmac_uploads_created_total', { protocol: 'tus' }), 2);
    assert.equal(sampleValue(text, 'hmac_uploads_finished_total', { protocol: 'tus' }), 1);
    assert.equal(sampleValue(text, 'hmac_uploads_terminated_total'), 1);
    assert.ok((sampleValue(text, 'hmac_http_requests_total', { method: 'PATCH', status: '204' }) ?? 0) >= 1);
    assert.ok((sampleValue(text, 'hmac_errors_total', { code: 'ERR_NOT_FOUND' }) ?? 0) >= 1);
  });

  it('labels stay bounded: no upload id, path or token in any label value', () => {
    const values = [...text.matchAll(/\w+="((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!);
    for (const leak of [tusId, secretPath, secretPath.split('/')[0]!, ADMIN_TOKEN]) {
      assert.equal(values.some((v) => v.includes(leak)), false, leak);
    }
    assert.equal(values.some((v) => v.includes('/')), false, 'no path-like label value');
  });

  it('every metric the Grafana dashboard queries is exposed', async () => {
    const dir = join(REPO_ROOT, 'ops', 'grafana');
    const files = (await readdir(dir)).filter((f) => f.endsWith('.json'));
    assert.ok(files.length > 0);
    for (const file of files) {
      const exprs = dashboardExprs(JSON.parse(await readFile(join(dir, file), 'utf8')));
      assert.ok(exprs.length >= 20, `${file}: ${exprs.length} queries`);
      for (const e of exprs) assert.ok(balanced(e), `${file}: unbalanced: ${e}`);
      const missing = [...new Set(exprs.flatMap(metricNamesIn))].filter((m) => !exposed.has(m));
      assert.deepEqual(missing, [], `${file} queries metrics /metrics does not have`);
    }
  });

  it('every metric the Prometheus alert rules query is exposed, and the issue\'s alerts are there', async () => {
    const dir = join(REPO_ROOT, 'ops', 'prometheus');
    const rules = (await Promise.all((await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).map((f) => readFile(join(dir, f), 'utf8')))).flatMap(ruleExprs);
    const names = rules.map((r) => r.alert);
    for (const wanted of ['HmacCircuitBreakerOpen', 'HmacDeadLettersGrowing', 'HmacEmergencyMode', 'HmacWorkersFailed', 'HmacStallsSpiking']) assert.ok(names.includes(wanted), wanted);
    assert.equal(new Set(names).size, names.length, 'alert names are unique');
    for (const r of rules) {
      assert.ok(r.expr.length > 0 && balanced(r.expr), `${r.alert}: ${r.expr}`);
      const missing = metricNamesIn(r.expr).filter((m) => !exposed.has(m));
      assert.deepEqual(missing, [], `${r.alert} queries metrics /metrics does not have`);
    }
  });
});

it('a download whose client stops reading counts as a download timeout', async () => {
  const server = await startServer({ config: '[server]\nupload_stall_timeout = "1s"\n' });
  try {
    const path = `${slotDir()}/big.bin`;
    assert.equal((await putFile(server, path, randomData(16 * 1024 * 1024))).status, 201);
    await server.waitForLog((l) => l.msg === 'File published');
    const res = await new Promise<IncomingMessage>((resolve, reject) => httpGet(`${server.baseUrl}/upload/${path}`, resolve).once('error', reject));
    assert.equal(res.statusCode, 200);
    res.pause(); // read nothing more: the server's send buffer fills, the socket goes idle
    // Ended by the server's idle timeout: its request log line comes once the response closed.
    await server.waitForLog((l) => l.msg === 'Request finished' && l.method === 'GET' && l.path === `/upload/${path}`);
    res.destroy();
    const text = (await rawRequest(server.baseUrl, '/metrics')).text;
    assert.equal(sampleValue(text, 'hmac_timeouts_total', { type: 'download' }), 1);
  } finally {
    await server.dispose();
  }
});
