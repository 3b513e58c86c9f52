/** A full SQLite queue, leases included, comes back whole after close + reopen. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, it } from 'node:test';
import { openSqliteQueueBackend, tierForSize, totalInState, type EnqueueInput } from '../../src/queue/index.js';

const JOBS = 10_000;
const LEASED = 100;
const BATCH = 1_000;
let dir = '';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'queue-restore-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

it(`restores ${JOBS} jobs, ${LEASED} of them leased at close`, async (t) => {
  const path = join(dir, 'queue.sqlite');
  const ids = Array.from({ length: JOBS }, (_, i) => `upload-${i.toString().padStart(5, '0')}`);
  const inputs: EnqueueInput[] = ids.map((id, i) => {
    const size = (i % 4) * 50_000_000; // 0, 50 MB, 100 MB, 150 MB: every tier appears
    return { id, slotPath: `slots/${id}`, size, priority: tierForSize(size), payload: { uploadId: id }, enqueuedAtMs: i };
  });

  const first = await openSqliteQueueBackend({ path });
  // Bounded batches, one durable transaction each (the spillover path); enqueue() is per job.
  for (let i = 0; i < JOBS; i += BATCH) {
    assert.equal(await first.enqueueMany(inputs.slice(i, i + BATCH)), BATCH);
  }
  const leasedIds = new Set<string>();
  for (let i = 0; i < LEASED; i++) {
    const job = await first.claimNext(`worker-${i % 4}`, JOBS, 60_000);
    assert.ok(job, 'a job to lease');
    leasedIds.add(job.id);
  }
  assert.equal(totalInState(await first.counts(), 'leased'), LEASED);
  await first.close();

  const started = performance.now();
  const second = await openSqliteQueueBackend({ path });
  const reopenMs = performance.now() - started;
  try {
    t.diagnostic(`reopen + lease recovery of ${JOBS} jobs took ${reopenMs.toFixed(1)} ms`);
    assert.deepEqual(second.recovery, { restoredJobs: JOBS, releasedLeases: LEASED });
    const counts = await second.counts();
    assert.equal(totalInState(counts, 'queued'), JOBS);
    assert.equal(totalInState(counts, 'leased'), 0);

    for (const id of ids) assert.equal((await second.get(id))?.state, 'queued', id);
    // Requeued leases keep their place in line, so the next claims return exactly them.
    const reclaimed = new Set<string>();
    for (let i = 0; i < LEASED; i++) reclaimed.add((await second.claimNext('after-restart', JOBS, 60_000))!.id);
    assert.deepEqual([...reclaimed].sort(), [...leasedIds].sort());
  } finally {
    await second.close();
  }
});
