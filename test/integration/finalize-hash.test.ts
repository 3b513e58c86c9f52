/**
 * sha256File keeps the event loop free: a large file is hashed in a worker thread, so the main
 * thread stays mostly idle (event-loop utilization) and keeps serving timers. The bench
 * (test/bench/queue.bench.ts) measures the event-loop delay on a 1 GiB file.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { it } from 'node:test';
import { sha256File } from '../../src/finalize/index.js';

it('hashes a 64 MiB file off the main thread, with the right digest', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hfs-hash-'));
  try {
    const path = join(dir, 'big.bin');
    const expected = createHash('sha256');
    const out = createWriteStream(path);
    for (let i = 0; i < 64; i++) {
      const chunk = randomBytes(1024 * 1024);
      expected.update(chunk);
      if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
    }
    await new Promise<void>((r) => out.end(r));

    const delay = monitorEventLoopDelay({ resolution: 5 });
    delay.enable();
    let ticks = 0;
    const ticker = setInterval(() => (ticks += 1), 5);
    const before = performance.eventLoopUtilization();
    const digest = await sha256File(path);
    const elu = performance.eventLoopUtilization(before);
    clearInterval(ticker);
    delay.disable();

    assert.equal(digest, expected.digest('hex'));
    t.diagnostic(`main-thread utilization ${elu.utilization.toFixed(3)}, event-loop delay max ${(delay.max / 1e6).toFixed(1)} ms, p99 ${(delay.percentile(99) / 1e6).toFixed(1)} ms, ${ticks} timer ticks`);
    // Hashing on the main thread keeps it busy ~100% of the time; in a worker it mostly waits.
    assert.ok(elu.utilization < 0.5, `main thread busy ${(elu.utilization * 100).toFixed(0)}% while hashing`);
    assert.ok(ticks > 0, 'timers kept firing while hashing');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

it('an aborted hash rejects with the abort reason and stops the worker', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hfs-hash-'));
  try {
    const path = join(dir, 'f.bin');
    const out = createWriteStream(path);
    for (let i = 0; i < 16; i++) out.write(randomBytes(1024 * 1024));
    await new Promise<void>((r) => out.end(r));
    const ac = new AbortController();
    const hashing = sha256File(path, { signal: ac.signal, inlineBelowBytes: 0 });
    ac.abort(new Error('job timed out'));
    await assert.rejects(hashing, /job timed out/);
    await assert.rejects(sha256File(join(dir, 'missing.bin')), { code: 'ENOENT' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
