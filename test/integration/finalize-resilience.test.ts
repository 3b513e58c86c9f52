/**
 * Finalization under failing dependencies, on real files, SQLite and a real webhook receiver:
 * retries into the dead-letter queue, a webhook that fails then recovers (the breaker opens,
 * jobs wait without spending attempts, then drain with nothing dead-lettered), a failing
 * storage publish, and a worker stuck past the job timeout.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { signWebhook } from '../../src/finalize/index.js';
import { metrics } from '../../src/observability/index.js';
import { slot, fileStore, startHarness, waitCount } from './finalize-harness.js';

interface Delivery {
  headers: IncomingMessage['headers'];
  body: string;
}

/** A webhook receiver whose answer the test switches; counts requests and keeps accepted deliveries. */
async function receiver(): Promise<{ url: string; status: number; requests: number; accepted: Delivery[]; close(): Promise<void> }> {
  const state = { status: 503, requests: 0, accepted: [] as Delivery[] };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      state.requests += 1;
      if (state.status === 200) state.accepted.push({ headers: req.headers, body });
      res.statusCode = state.status;
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return Object.assign(state, {
    url,
    close: () => new Promise<void>((r) => server.close(() => r())),
  });
}

const SECRET = 'webhook-secret-for-tests';
const published = (l: { msg: string }) => l.msg === 'File published';

/** One worker, quick retries, a storage breaker that opens after 2 failures and stays open `coolDownMs`. */
const startBreakerHarness = (coolDownMs: number) =>
  startHarness(fileStore, { circuitBreaker: { failureThreshold: 2, coolDownMs, minimumSamples: 1000 }, retry: { baseMs: 5, maxMs: 10, maxRetries: 3 }, workers: 1 });

/** Wraps the store the service publishes through: a publish fails with the code `fail` names for its path (null: it goes through). Counts the calls. */
function failPublishes(h: Awaited<ReturnType<typeof startBreakerHarness>>, fail: (path: string) => string | null): { calls: number } {
  const counter = { calls: 0 };
  const store = h.published;
  const original = store.publishLinked.bind(store);
  store.publishLinked = async (...args) => {
    counter.calls += 1;
    const code = fail(args[0]);
    if (code !== null) throw Object.assign(new Error(code), { code });
    return original(...args);
  };
  return counter;
}
const jobDone = (l: { msg: string }) => l.msg === 'Finalization job done';

describe('finalization resilience', () => {
  it('retries with backoff, then dead-letters with the whole error history; the file stays published', async () => {
    const hook = await receiver(); // answers 503 throughout
    const h = await startHarness(fileStore, { webhook: { url: hook.url, secret: SECRET, timeoutMs: 2000 }, circuitBreaker: null, retry: { baseMs: 5, maxMs: 20, maxRetries: 2 } });
    try {
      const retriesBefore = (await metrics.retries.get()).values.find((v) => v.labels.reason === 'server_error')?.value ?? 0;
      const s = slot('hooked.bin');
      await h.put(s, Buffer.from('data'));
      const line = await h.waitLog((l) => l.msg === 'Upload failed after 2 retries, moved to dead letter queue');
      assert.equal(line.code, 'ERR_WEBHOOK_FAILED');
      const [dead] = await h.service.admin.listDeadLetters();
      assert.deepEqual(dead?.errors.map((e) => e.code), ['ERR_WEBHOOK_FAILED', 'ERR_WEBHOOK_FAILED', 'ERR_WEBHOOK_FAILED']);
      assert.equal(hook.requests, 3);
      assert.equal((await metrics.retries.get()).values.find((v) => v.labels.reason === 'server_error')?.value, retriesBefore + 2);
      assert.ok(await h.published.stat(s), 'publish came before the webhook and stands');
      // The receiver is fixed: a replay delivers the event (once) and completes the job.
      hook.status = 200;
      assert.equal(await h.service.admin.replayDeadLetters('all'), 1);
      await h.waitLog(jobDone);
      assert.equal(hook.accepted.length, 1);
      assert.deepEqual(await h.service.admin.listDeadLetters(), []);
      assert.equal(h.lines.filter(published).length, 1, 'published once, not again on replay');
    } finally {
      await h.dispose();
      await hook.close();
    }
  });

  it('a webhook that fails then recovers: the breaker opens, jobs wait without spending attempts, then all drain', async () => {
    const hook = await receiver();
    const h = await startHarness(fileStore, {
      webhook: { url: hook.url, secret: SECRET, timeoutMs: 2000 },
      circuitBreaker: { failureThreshold: 3, coolDownMs: 150, minimumSamples: 1000 },
      retry: { baseMs: 5, maxMs: 10, maxRetries: 3 },
      workers: 2,
    });
    try {
      const slots = Array.from({ length: 12 }, (_, i) => slot(`w${i}.bin`));
      for (const s of slots) await h.put(s, Buffer.from(s));
      await h.waitLog((l) => l.msg === 'Circuit breaker opened after 3 consecutive failures' && l.dependency === 'webhook');
      // The puts may outlast the 150 ms cool-down: by now the breaker may be half-open, waiting
      // for a job to probe with; closed it cannot be while the receiver fails.
      const gauge = (await metrics.circuitBreakerState.get()).values.filter((v) => v.labels.dependency === 'webhook');
      const stateNow = gauge.find((v) => v.value === 1)?.labels.state;
      assert.ok(stateNow === 'open' || stateNow === 'half_open', `breaker state while the receiver fails: ${String(stateNow)}`);
      const failedWhileDown = hook.requests;
      hook.status = 200; // the receiver comes back
      await h.waitLog((l) => l.msg === 'Circuit breaker half-open: probing');
      await h.waitLog((l) => l.msg === 'Circuit breaker closed');
      await waitCount(h, jobDone, slots.length);
      assert.deepEqual(await h.service.admin.listDeadLetters(), [], 'nothing dead-lettered');
      assert.ok(failedWhileDown <= 5, `only the failures that opened the breaker were attempted (${failedWhileDown})`);
      assert.equal(hook.accepted.length, slots.length);
      const paths = new Set<string>();
      for (const d of hook.accepted) {
        const ts = Number(d.headers['x-hfs-timestamp']);
        assert.equal(d.headers['x-hfs-signature'], signWebhook(SECRET, ts, d.body), 'signed with the shared secret');
        const event = JSON.parse(d.body) as { event: string; id: string; path: string; sha256: string };
        assert.equal(event.event, 'file.published');
        assert.equal(d.headers['x-hfs-delivery'], event.id);
        assert.match(event.sha256, /^[0-9a-f]{64}$/);
        paths.add(event.path);
      }
      assert.deepEqual([...paths].sort(), [...slots].sort());
    } finally {
      await h.dispose();
      await hook.close();
    }
  });

  it('a failing storage publish opens the storage breaker; claims pause, then everything publishes', async () => {
    let failing = true;
    const h2 = await startBreakerHarness(100);
    // EIO until the disk "comes back".
    const publishes = failPublishes(h2, () => (failing ? 'EIO' : null));
    try {
      const slots = Array.from({ length: 5 }, (_, i) => slot(`s${i}.bin`));
      for (const s of slots) await h2.put(s, Buffer.from(s));
      await h2.waitLog((l) => l.msg === 'Circuit breaker opened after 2 consecutive failures' && l.dependency === 'storage');
      const attemptsWhileOpen = publishes.calls;
      failing = false;
      await waitCount(h2, published, slots.length);
      assert.deepEqual(await h2.service.admin.listDeadLetters(), []);
      assert.ok(attemptsWhileOpen <= 3, `claims paused while open (${attemptsWhileOpen} publish calls)`);
    } finally {
      await h2.dispose();
    }
  });

  // Failures that are the upload's, not the store's: one attempt, a dead letter, no breaker.
  const poisonings: Array<[what: string, prefix: string, failure: string, code: string]> = [
    ['a slot path the store cannot hold (name too long)', 'long-', 'ENAMETOOLONG', 'ERR_BAD_PATH'],
    ['a store request that could not be sent for what it carries (ERR_INVALID_CHAR)', 'bad-header-', 'ERR_INVALID_CHAR', 'ERR_INTERNAL'],
  ];
  for (const [what, prefix, failure, code] of poisonings) {
    it(`${what} is a dead letter at once and never counts against the storage breaker`, async () => {
      const h2 = await startBreakerHarness(60_000);
      const publishes = failPublishes(h2, (path) => (path.includes(`/${prefix}`) ? failure : null));
      try {
        const poisoned = Array.from({ length: 4 }, (_, i) => slot(`${prefix}${i}.bin`));
        for (const s of poisoned) await h2.put(s, Buffer.from(s));
        const ok = slot('fine.bin');
        await h2.put(ok, Buffer.from('fine'));
        await waitCount(h2, published, 1);
        await waitCount(h2, (l) => /moved to dead letter queue$/.test(String(l.msg)), poisoned.length);
        const dead = await h2.service.admin.listDeadLetters();
        assert.deepEqual(dead.map((d) => d.slotPath).sort(), [...poisoned].sort());
        for (const d of dead) assert.deepEqual([d.attempts, d.errors.at(-1)?.code], [1, code], d.slotPath);
        assert.equal(publishes.calls, poisoned.length + 1, 'one attempt each: no retries');
        assert.equal(h2.lines.some((l) => typeof l.msg === 'string' && l.msg.startsWith('Circuit breaker opened')), false);
      } finally {
        await h2.dispose();
      }
    });
  }

  it('a worker stuck past the job timeout is replaced and its job requeued', async () => {
    let first = true;
    const timeoutsBefore = (await metrics.timeouts.get()).values.find((v) => v.labels.type === 'queue')?.value ?? 0;
    const h = await startHarness(fileStore, {
      workers: 1,
      // Long enough for the requeued attempt's publish (fsyncs) on a loaded machine: at 200 ms
      // it timed out too in a full run, and the job went to the dead letters.
      jobTimeoutMs: 1_500,
      // The first hash hangs and ignores its abort signal, like a stuck NFS read; the next ones
      // hash inline (no worker thread to start under load).
      hash: async (path) => {
        if (first) {
          first = false;
          return new Promise<string>(() => {});
        }
        return createHash('sha256').update(await readFile(path)).digest('hex');
      },
    });
    try {
      const s = slot('stuck.bin');
      await h.put(s, Buffer.from('stuck'));
      await h.waitLog((l) => l.msg === 'Worker 1 stuck past the job timeout: replaced, job requeued');
      await h.waitLog(published);
      assert.equal((await h.published.record(s))?.size, 5);
      const job = (await h.service.admin.counts()).done.high;
      assert.equal(job, 1);
      assert.equal((await metrics.timeouts.get()).values.find((v) => v.labels.type === 'queue')?.value, timeoutsBefore + 1);
      assert.equal(h.service.admin.workers()[0]?.replacements, 1);
    } finally {
      await h.dispose();
    }
  });
});
