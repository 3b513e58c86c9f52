/**
 * The admission waitlist on a fake clock: completed tus uploads whose job the full disk refused
 * are retried with growing delays, at once when space comes back, until admitted; another
 * upload holding the slot meanwhile means the bytes are discarded.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AdmissionWaitlist } from '../../src/finalize/admission-waitlist.js';
import type { CompletedUpload, FinalizeOutcome } from '../../src/finalize/index.js';
import { createLogger } from '../../src/observability/index.js';
import { fileSource } from '../../src/storage/index.js';
import { FakeClock } from './finalize-fake-clock.js';

const full = () => Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
const upload = (n: number): CompletedUpload => ({ protocol: 'tus', uploadId: `u${n}`, slotPath: `s/${n}.bin`, contentType: 'application/octet-stream', size: 10, source: fileSource(`/x/u${n}`, 10) });

function waitlist(admit: (u: CompletedUpload) => Promise<FinalizeOutcome>) {
  const clock = new FakeClock(0);
  const attempts: Array<[number, string]> = [];
  const discarded: string[] = [];
  const list = new AdmissionWaitlist({
    admit: (u) => {
      attempts.push([clock.now(), u.uploadId]);
      return admit(u);
    },
    discard: async (u) => void discarded.push(u.uploadId),
    clock,
    log: createLogger({ level: 'silent', format: 'json' }),
  });
  return { clock, list, attempts, discarded };
}

describe('admission waitlist', () => {
  it('retries after 1 s, then doubling delays, until the disk takes the job; the slot is held meanwhile', async () => {
    let room = false;
    const { clock, list, attempts } = waitlist(async () => {
      if (!room) throw full();
      return 'accepted';
    });
    list.add(upload(1), full());
    assert.equal(list.has('s/1.bin'), true);
    await clock.advance(7_000);
    assert.deepEqual(attempts.map(([t]) => t), [1_000, 2_000, 4_000]);
    room = true;
    await clock.advance(8_000);
    assert.deepEqual(attempts.map(([t]) => t), [1_000, 2_000, 4_000, 8_000]);
    assert.equal(list.size, 0);
    assert.equal(list.has('s/1.bin'), false);
    await clock.advance(60_000);
    assert.equal(attempts.length, 4, 'nothing tried once admitted');
  });

  it('space coming back (poke) tries at once; a pass stops at the first still-full answer', async () => {
    let room = false;
    const { clock, list, attempts } = waitlist(async () => {
      if (!room) throw full();
      return 'accepted';
    });
    list.add(upload(1), full());
    list.add(upload(2), full());
    await clock.advance(1_000);
    assert.deepEqual(attempts, [[1_000, 'u1']], 'u2 not tried while the disk is full');
    room = true;
    list.poke();
    await clock.advance(0);
    assert.deepEqual(attempts.slice(1), [[1_000, 'u1'], [1_000, 'u2']]);
    assert.equal(list.size, 0);
  });

  it('another upload took the slot meanwhile: the bytes are discarded, as at completion', async () => {
    const { clock, list, discarded } = waitlist(async () => 'exists');
    list.add(upload(3), full());
    await clock.advance(1_000);
    assert.deepEqual(discarded, ['u3']);
    assert.equal(list.size, 0);
  });

  it('an unexpected failure keeps the upload for the next pass; stop ends the retries (a restart admits it)', async () => {
    let calls = 0;
    const { clock, list, attempts } = waitlist(async () => {
      calls += 1;
      throw new Error(`boom ${calls}`);
    });
    list.add(upload(4), full());
    await clock.advance(3_000);
    assert.equal(attempts.length, 2);
    assert.equal(list.size, 1);
    list.stop();
    await clock.advance(60_000);
    assert.equal(attempts.length, 2);
    assert.equal(clock.pendingTimers, 0);
  });
});
