/**
 * The finalization service on real files and SQLite: publish with dedup and metadata, atomic
 * slot claims, checksum and missing-file dead letters, the dead-letter API, bounded download
 * waits, restart recovery, and backpressure / emergency under a slowed pipeline (the in-process
 * test of intake.pass, the intake gate the PUT and tus front doors pass through src/intake).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { FinalizeStep } from '../../src/finalize/index.js';
import { metrics } from '../../src/observability/index.js';
import { fileSource } from '../../src/storage/index.js';
import { gate, slot, fileStore, startHarness, waitCount, type Harness } from './finalize-harness.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const published = (l: { msg: string }) => l.msg === 'File published';

async function bytesAt(h: Harness, path: string): Promise<Buffer> {
  return readFile(join(h.dir, 'files', path));
}

describe('FinalizationService', () => {
  it('publishes through the queue with dedup, metadata and no leftovers', async () => {
    const h = await startHarness(fileStore);
    try {
      const same = Buffer.from('identical bytes '.repeat(1000));
      const other = Buffer.from('something else');
      const [a, b, c] = [slot('a.bin'), slot('b.bin'), slot('c.txt')];
      assert.equal(await h.put(a, same), 'accepted');
      assert.equal(await h.put(b, same), 'accepted');
      assert.equal(await h.put(c, other, { contentType: 'text/plain' }), 'accepted');
      await waitCount(h, published, 3);
      await h.waitLog((l) => l.msg === 'File published' && l.dedup === true);
      assert.deepEqual(await bytesAt(h, a), same);
      assert.deepEqual(await bytesAt(h, c), other);
      const [sa, sb, sc] = await Promise.all([a, b, c].map((p) => stat(join(h.dir, 'files', p))));
      assert.equal(sa!.ino, sb!.ino, 'identical content is stored once');
      assert.notEqual(sa!.ino, sc!.ino);
      assert.equal(sa!.nlink, 3, 'two slots + one content-store entry');
      const record = await h.published.record(c);
      assert.equal(record?.sha256, sha(other));
      assert.equal(record?.size, other.length);
      assert.equal(record?.contentType, 'text/plain');
      assert.equal(typeof record?.receivedAtMs, 'number');
      assert.equal(typeof record?.publishedAt, 'string');
      assert.deepEqual(await readdir(join(h.dir, 'queue', 'staging')), [], 'staged bodies are consumed');
      assert.deepEqual(await readdir(join(h.dir, 'incoming')), []);
      assert.equal(await h.service.intake.slotTaken(a), true);
    } finally {
      await h.dispose();
    }
  });

  it('admits one upload per slot: the second gets exists and keeps its file', async () => {
    const hold = gate();
    const h = await startHarness(fileStore, { onStep: (step: FinalizeStep) => (step === 'start' ? hold.wait() : undefined) });
    try {
      const s = slot('race.bin');
      assert.equal(await h.put(s, Buffer.from('first')), 'accepted');
      const loserFile = h.published.newIncomingFile();
      await writeFile(loserFile, 'second');
      const outcome = await h.service.finalize({ protocol: 'tus', uploadId: 'tus-loser', slotPath: s, contentType: 'x/y', size: 6, source: fileSource(loserFile, 6) });
      assert.equal(outcome, 'exists');
      assert.equal((await readFile(loserFile)).toString(), 'second', 'the source stays with the caller on exists');
      hold.open();
      await h.waitLog(published);
      assert.equal((await bytesAt(h, s)).toString(), 'first');
      assert.equal(await h.put(s, Buffer.from('third')), 'exists', 'published slots stay taken');
    } finally {
      hold.open();
      await h.dispose();
    }
  });

  it('dead-letters a checksum mismatch and a missing file at once; list, replay, purge', async () => {
    const h = await startHarness(fileStore);
    try {
      const data = Buffer.from('payload');
      const bad = slot('bad.bin');
      const good = slot('good.bin');
      assert.equal(await h.put(bad, data, { expectedSha256: sha(Buffer.from('other')) }), 'accepted');
      assert.equal(await h.put(good, data, { expectedSha256: sha(data) }), 'accepted');
      await h.waitLog((l) => l.msg === 'Upload failed permanently, moved to dead letter queue' && l.code === 'ERR_CHECKSUM_MISMATCH');
      await h.waitLog(published);
      const [dead] = await h.service.admin.listDeadLetters();
      assert.equal(dead?.slotPath, bad);
      assert.equal(dead?.attempts, 1);
      assert.deepEqual(dead?.errors.map((e) => e.code), ['ERR_CHECKSUM_MISMATCH']);
      assert.equal((await h.service.awaitPublished(bad)).kind, 'absent', 'a dead letter is not being finalized');
      assert.equal(await h.service.intake.slotTaken(bad), true, 'the slot stays held until purged');

      // A missing source is permanent too; replaying cannot bring it back.
      const gone = slot('gone.bin');
      const hold = gate();
      const h2 = await h.restart({ onStep: (step: FinalizeStep) => (step === 'start' ? hold.wait() : undefined) });
      try {
        const before = new Set(await readdir(join(h2.dir, 'queue', 'staging'))); // the dead letter's bytes
        await h2.put(gone, data);
        const staged = (await readdir(join(h2.dir, 'queue', 'staging'))).filter((f) => !before.has(f));
        assert.equal(staged.length, 1);
        await unlink(join(h2.dir, 'queue', 'staging', staged[0]!));
        hold.open();
        await h2.waitLog((l) => l.code === 'ERR_SOURCE_MISSING');
        assert.deepEqual((await h2.service.admin.listDeadLetters()).map((d) => d.slotPath), [bad, gone]);
        // Replay keeps the history; the checksum still mismatches, so it comes back with two errors.
        assert.equal(await h2.service.admin.replayDeadLetters({ id: (await h2.service.admin.listDeadLetters())[0]!.id }), 1);
        await h2.waitLog((l) => l.code === 'ERR_CHECKSUM_MISMATCH' && l.msg.startsWith('Upload failed')); // this run's log
        const replayed = (await h2.service.admin.listDeadLetters()).find((d) => d.slotPath === bad);
        assert.deepEqual([replayed?.attempts, replayed?.errors.length], [1, 2]);
        assert.equal(await h2.service.admin.purgeDeadLetters('all'), 2);
        assert.deepEqual(await h2.service.admin.listDeadLetters(), []);
        assert.equal(await h2.service.intake.slotTaken(bad), false, 'purged: the slot is free again');
        assert.deepEqual(await readdir(join(h2.dir, 'queue', 'staging')), [], 'purge removes the bytes');
      } finally {
        hold.open();
        await h2.dispose();
      }
    } finally {
      await h.dispose().catch(() => {});
    }
  });

  it('a GET of a file still being finalized waits, then 503s; it is woken by the publish', async () => {
    const hold = gate();
    const h = await startHarness(fileStore, { downloadWaitMs: 150, onStep: (step: FinalizeStep) => (step === 'hashed' ? hold.wait() : undefined) });
    try {
      const s = slot('wait.bin');
      await h.put(s, Buffer.from('soon'));
      const first = await h.service.awaitPublished(s);
      assert.equal(first.kind, 'not_ready');
      assert.ok(first.kind === 'not_ready' && first.retryAfterS >= 1);
      assert.deepEqual(await h.service.awaitPublished('never/uploaded.bin'), { kind: 'absent' });
      // A second waiter, started before the publish. Each wait lasts 150 ms (so the 503 above is
      // quick); on a busy machine the rest of the pipeline may take longer than one wait, so the
      // waiter asks again, as a client told Retry-After would, a bounded number of times.
      const waitPublished = async (): Promise<string> => {
        for (let i = 0; i < 200; i++) {
          const r = await h.service.awaitPublished(s);
          if (r.kind !== 'not_ready') return r.kind;
        }
        return 'still not published';
      };
      const waiting = waitPublished();
      hold.open();
      assert.equal(await waiting, 'published');
    } finally {
      hold.open();
      await h.dispose();
    }
  });

  it('restores every job after a restart, in-flight ones included, and publishes them', async () => {
    const hold = gate();
    const h = await startHarness(fileStore, { workers: 2, onStep: (step: FinalizeStep) => (step === 'start' ? hold.wait() : undefined) });
    const slots = Array.from({ length: 6 }, (_, i) => slot(`r${i}.bin`));
    for (const s of slots) assert.equal(await h.put(s, Buffer.from(s)), 'accepted');
    // Two are in flight (held at 'start'), four wait. Stop: the in-flight ones go back to the queue.
    const h2 = await h.restart({ onStep: undefined });
    try {
      const line = await h2.waitLog((l) => l.msg.startsWith('Queue recovery completed'));
      assert.equal(line.msg, 'Queue recovery completed: 6 items restored from persistence');
      await waitCount(h2, published, 6);
      for (const s of slots) assert.equal((await bytesAt(h2, s)).toString(), s);
      assert.deepEqual(await readdir(join(h2.dir, 'queue', 'staging')), []);
    } finally {
      hold.open();
      await h2.dispose();
      await h.dispose().catch(() => {});
    }
  });

  it('spills past queue_size to disk, logs the episode once, and pulls the jobs back', async () => {
    const hold = gate();
    const h = await startHarness(fileStore, { capacity: 3, workers: 2, onStep: (step: FinalizeStep) => (step === 'start' ? hold.wait() : undefined) });
    try {
      const before = (await metrics.spilloverItems.get()).values[0]?.value ?? 0;
      const slots = Array.from({ length: 8 }, (_, i) => slot(`sp${i}.bin`));
      for (const s of slots) assert.equal(await h.put(s, Buffer.from(s)), 'accepted');
      // Two are running (held), three wait in memory, three wait on disk only.
      await h.waitLog((l) => l.msg === 'Spillover activated: 1 items moved to disk');
      assert.equal((await metrics.spilloverItems.get()).values[0]?.value, before + 3);
      hold.open();
      await h.waitLog((l) => l.msg === 'Spillover drained: every waiting job is back in memory');
      await waitCount(h, published, slots.length);
      assert.equal(h.lines.filter((l) => l.msg.startsWith('Spillover activated')).length, 1);
      for (const s of slots) assert.equal((await bytesAt(h, s)).toString(), s);
    } finally {
      hold.open();
      await h.dispose();
    }
  });

  it('dead_letter_queue_enabled = false: a failed upload is discarded, not kept', async () => {
    const h = await startHarness(fileStore, { deadLetterEnabled: false });
    try {
      const s = slot('dropped.bin');
      await h.put(s, Buffer.from('x'), { expectedSha256: sha(Buffer.from('y')) });
      await h.waitLog((l) => l.msg === 'Upload failed permanently, discarded (dead letter queue disabled)');
      assert.ok(!h.lines.some((l) => /dead letter queue$/.test(String(l.msg))), 'never said to be kept');
      assert.deepEqual(await h.service.admin.listDeadLetters(), []);
      assert.equal(await h.service.intake.slotTaken(s), false);
      assert.deepEqual(await readdir(join(h.dir, 'queue', 'staging')), []);
    } finally {
      await h.dispose();
    }
  });

  it('queue_recovery_enabled = false: jobs of the previous run become dead letters, not lost', async () => {
    const hold = gate();
    const h = await startHarness(fileStore, { onStep: (step: FinalizeStep) => (step === 'start' ? hold.wait() : undefined), workers: 1 });
    for (let i = 0; i < 3; i++) await h.put(slot(`nr${i}.bin`), Buffer.from(`nr${i}`));
    const h2 = await h.restart({ recoveryEnabled: false, onStep: undefined });
    try {
      await h2.waitLog((l) => l.msg === 'Queue recovery disabled: jobs of the previous run moved to the dead letter queue' && l.deadLettered === 3);
      const dead = await h2.service.admin.listDeadLetters();
      assert.deepEqual(dead.map((d) => d.errors.at(-1)?.code), ['ERR_NOT_RECOVERED', 'ERR_NOT_RECOVERED', 'ERR_NOT_RECOVERED']);
      assert.equal(await h2.service.admin.replayDeadLetters('all'), 3);
      await waitCount(h2, published, 3);
    } finally {
      hold.open();
      await h2.dispose();
      await h.dispose().catch(() => {});
    }
  });

  it('backpressure delays new uploads, emergency refuses big ones with Retry-After, both clear by themselves', async () => {
    const hold = gate();
    const h = await startHarness(fileStore, {
      capacity: 10,
      backpressureThreshold: 0.5,
      emergencyThreshold: 0.8,
      workers: 2,
      intakeDelay: { minDelayMs: 20, maxDelayMs: 60, rampMs: 1000 },
      onStep: (step: FinalizeStep) => (step === 'start' ? hold.wait() : undefined), // a slowed pipeline
    });
    try {
      const MB = 1_000_000;
      assert.deepEqual(await h.service.intake.pass({ kind: 'put', sizeBytes: 50 * MB }), { ok: true, delayedMs: 0 });
      for (let i = 0; i < 5; i++) await h.put(slot(`bp${i}`), Buffer.from(`bp${i}`));
      assert.equal(h.service.intake.pressure().level, 'backpressure');
      const delayedBefore = (await metrics.intakeDelayed.get()).values.find((v) => v.labels.kind === 'put')?.value ?? 0;
      const delayed = await h.service.intake.pass({ kind: 'put', sizeBytes: 50 * MB });
      assert.ok(delayed.ok && delayed.delayedMs > 0, JSON.stringify(delayed));
      assert.equal((await metrics.intakeDelayed.get()).values.find((v) => v.labels.kind === 'put')?.value, delayedBefore + 1);
      await h.waitLog((l) => l.msg === 'Queue backpressure activated (queue 50% full)');

      for (let i = 5; i < 8; i++) await h.put(slot(`em${i}`), Buffer.from(`em${i}`)); // uploads already under way still finish
      assert.deepEqual(h.service.intake.pressure(), { level: 'emergency', fill: 0.8 });
      const refused = await h.service.intake.pass({ kind: 'create', sizeBytes: 50 * MB });
      assert.equal(refused.ok, false);
      assert.ok(!refused.ok && refused.reason === 'emergency' && refused.retryAfterS >= 1);
      assert.equal((await h.service.intake.pass({ kind: 'create' })).ok, false, 'unknown size is not small');
      assert.equal((await h.service.intake.pass({ kind: 'put', sizeBytes: 1000 })).ok, true, 'small files still get in');
      assert.equal(await h.put(slot('late.bin'), Buffer.from('late')), 'accepted', 'completed uploads are always admitted');
      await h.waitLog((l) => l.msg === 'Queue emergency mode activated (queue 80% full)');

      hold.open();
      await h.waitLog((l) => l.msg === 'Queue emergency mode cleared');
      await h.waitLog((l) => l.msg === 'Queue backpressure cleared');
      assert.deepEqual(await h.service.intake.pass({ kind: 'create', sizeBytes: 50 * MB }), { ok: true, delayedMs: 0 });
      assert.equal(h.lines.filter((l) => l.msg.startsWith('Queue backpressure activated')).length, 1, 'logged once per episode');
      await waitCount(h, published, 9);
    } finally {
      hold.open();
      await h.dispose();
    }
  });
});
