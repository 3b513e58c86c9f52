/**
 * The free-space rules without a disk: the budget (space-budget.ts), the running account of
 * promised bytes, storage-full recognition (ENOSPC, SQLITE_FULL, S3 QuotaExceeded), and the
 * intake's space step (StorageSpace) against a probe whose answers the test sets.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { AppError } from '../../src/errors.js';
import {
  PromisedBytes,
  StorageSpace,
  admitGrowth,
  admitNew,
  admitResume,
  headroom,
  reserveBytes,
  spaceLevel,
  type SpaceLevel,
  type SpaceReading,
} from '../../src/intake/index.js';
import { createLogger } from '../../src/observability/index.js';
import { insufficientStorageError, storageFullCause, type StorageCapacity } from '../../src/storage/index.js';

const MiB = 2 ** 20;
const reading = (free: number, promised = 0, reserve = MiB, total = 100 * MiB): SpaceReading => ({ totalBytes: total, freeBytes: free, reserveBytes: reserve, promisedBytes: promised });

describe('space budget', () => {
  it('the reserve is a size or a share of the file system (rounded up)', () => {
    assert.equal(reserveBytes({ bytes: 64 * MiB }, 10 * MiB), 64 * MiB);
    assert.equal(reserveBytes({ percent: 2 }, 1000), 20);
    assert.equal(reserveBytes({ percent: 0.1 }, 1001), 2);
  });

  it('headroom = free - reserve - promised', () => {
    assert.equal(headroom(reading(10 * MiB, 3 * MiB)), 6 * MiB);
    assert.equal(headroom(reading(MiB / 2)), -MiB / 2);
  });

  const levels: [free: number, promised: number, previous: SpaceLevel, expected: SpaceLevel][] = [
    [10 * MiB, 0, 'ok', 'ok'],
    [MiB, 0, 'ok', 'ok'], // exactly the reserve left
    [MiB - 1, 0, 'ok', 'low'],
    [5 * MiB, 4.5 * MiB, 'ok', 'low'], // promises eat into the reserve
    [MiB + 4096, 0, 'low', 'low'], // within the clear band (5 % of the reserve)
    [MiB + Math.ceil(MiB / 20), 0, 'low', 'ok'],
  ];
  for (const [free, promised, previous, expected] of levels) {
    it(`level: free ${free}, promised ${promised}, was ${previous} -> ${expected}`, () => assert.equal(spaceLevel(reading(free, promised), previous), expected));
  }

  it('a new upload fits in the headroom; below the reserve nothing new starts', () => {
    const r = reading(4 * MiB, MiB);
    assert.deepEqual(admitNew(r, 'ok', 2 * MiB), { ok: true });
    assert.deepEqual(admitNew(r, 'ok', 2 * MiB + 1), { ok: false, reason: 'no_room' });
    assert.deepEqual(admitNew(r, 'ok', undefined), { ok: true });
    assert.deepEqual(admitNew(r, 'low', 0), { ok: false, reason: 'below_reserve' });
    assert.deepEqual(admitNew(r, 'low', undefined), { ok: false, reason: 'below_reserve' });
  });

  it('an admitted upload resumes while its rest fits above the reserve, whatever others promised', () => {
    const r = reading(4 * MiB, 10 * MiB);
    assert.deepEqual(admitResume(r, 3 * MiB), { ok: true });
    assert.deepEqual(admitResume(r, 3 * MiB + 1), { ok: false, reason: 'no_room' });
    assert.deepEqual(admitResume(reading(0), 0), { ok: true });
  });

  it('growth of a deferred-length upload is a new promise', () => {
    assert.deepEqual(admitGrowth(reading(4 * MiB, MiB), 2 * MiB), { ok: true });
    assert.deepEqual(admitGrowth(reading(4 * MiB, MiB), 2 * MiB + 1), { ok: false, reason: 'no_room' });
  });
});

describe('promised bytes', () => {
  /** The running total must equal the sum of what each entry promises. */
  const consistent = (p: PromisedBytes, keys: string[]) => assert.equal(p.total(), keys.reduce((n, k) => n + p.of(k), 0));

  it('declared minus stored; deferred uploads promise nothing until they stream', () => {
    const p = new PromisedBytes();
    p.set('a', { size: 100, stored: 30 });
    p.set('b', { size: null, stored: 50 });
    assert.equal(p.total(), 70);
    p.update('a', { stored: 90 });
    p.update('b', { size: 80 });
    assert.equal(p.total(), 40);
    p.update('a', { stored: 200 }); // never negative
    assert.equal(p.of('a'), 0);
    consistent(p, ['a', 'b']);
    p.delete('a');
    p.delete('unknown');
    assert.equal(p.total(), 30);
  });

  it('bytes received by a streaming request count as stored, and stay counted once it ends', () => {
    const p = new PromisedBytes();
    p.set('a', { size: 1000, stored: 0 });
    let received = 0;
    const detach = p.stream('a', () => received);
    received = 400;
    assert.equal(p.total(), 600);
    detach();
    received = 999; // the socket is reused by another request: no longer counted
    assert.equal(p.total(), 600);
    assert.equal(p.get('a')?.stored, 400);
    assert.equal(p.isStreaming('a'), false);
  });

  it('a deferred-length request promises its Content-Length while it streams', () => {
    const p = new PromisedBytes();
    p.set('d', { size: null, stored: 10 });
    let received = 0;
    const detach = p.stream('d', () => received, 300);
    received = 100;
    assert.equal(p.total(), 200);
    detach();
    assert.equal(p.total(), 0);
    assert.equal(p.get('d')?.stored, 110);
  });

  it('a hold moves to its upload with its stream; reset rebuilds the account', () => {
    const p = new PromisedBytes();
    p.set('request-1', { size: 500, stored: 0 });
    let received = 50;
    p.stream('request-1', () => received);
    p.rekey('request-1', 'upload-x');
    assert.equal(p.get('request-1'), undefined);
    assert.equal(p.of('upload-x'), 450);
    received = 100;
    assert.equal(p.total(), 400);
    p.reset([['u', { size: 10, stored: 4 }]]);
    assert.equal(p.total(), 6);
    assert.equal(p.count, 1);
  });

  it('the detach of a stream whose hold moved to its upload ends that stream (it kept its request alive before)', () => {
    const p = new PromisedBytes();
    p.set('request-1', { size: 500, stored: 0 });
    let received = 120;
    const detach = p.stream('request-1', () => received);
    p.rekey('request-1', 'upload-x');
    detach();
    received = 400; // the request is gone: nothing it "receives" counts any more
    assert.equal(p.of('upload-x'), 380, 'what arrived counts as stored, and the stream no more');
    assert.equal(p.bound(), p.total());
  });

  it('bound() is never below total(), overstates only what streams received since measured, and meets total() once measured', () => {
    const p = new PromisedBytes();
    p.set('a', { size: 1000, stored: 0 });
    p.set('b', { size: 500, stored: 100 });
    let ra = 0;
    const detachA = p.stream('a', () => ra);
    assert.equal(p.bound(), 1400);
    ra = 300;
    assert.equal(p.bound(), 1400, 'not measured since: the older, larger figure');
    assert.equal(p.total(), 1100);
    assert.equal(p.bound(), 1100);
    ra = 500;
    p.update('a', { size: 2000 }); // a live entry is measured again when it changes
    assert.equal(p.bound(), p.total());
    let rb = 0;
    p.stream('b', () => rb);
    const detachB = p.stream('b', () => rb); // a newer request replaces the streaming one
    rb = 50;
    detachA();
    detachB();
    assert.equal(p.bound(), p.total());
    assert.equal(p.total(), 1500 + 350);
  });

  it('bound() >= total() through any sequence of operations, and equal once nothing streams', () => {
    let seed = 7;
    const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    const p = new PromisedBytes();
    const received = new Map<string, number>();
    const detaches: Array<() => void> = [];
    for (let i = 0; i < 2000; i++) {
      const key = `k${rand(8)}`;
      switch (rand(7)) {
        case 0: p.set(key, { size: rand(3) === 0 ? null : rand(10_000), stored: rand(3_000) }); break;
        case 1: p.update(key, rand(2) === 0 ? { stored: rand(10_000) } : { size: rand(10_000) }); break;
        case 2: {
          received.set(key, 0);
          detaches.push(p.stream(key, () => received.get(key) ?? 0, rand(5_000)));
          break;
        }
        case 3: received.set(key, (received.get(key) ?? 0) + rand(2_000)); break;
        case 4: detaches.splice(rand(detaches.length + 1), 1)[0]?.(); break;
        case 5: p.rekey(key, `k${rand(8)}`); break;
        default: if (rand(4) === 0) p.delete(key); else assert.ok(p.total() >= 0);
      }
      const bound = p.bound();
      assert.ok(bound >= p.total(), `step ${i}: bound ${bound} below the exact total`);
    }
    for (const detach of detaches) detach();
    for (let i = 0; i < 8; i++) if (p.isStreaming(`k${i}`)) p.delete(`k${i}`);
    assert.equal(p.bound(), p.total());
  });
});

describe('storage-full recognition', () => {
  const cases: [name: string, err: unknown, cause: ReturnType<typeof storageFullCause>][] = [
    ['ENOSPC', Object.assign(new Error('no space'), { code: 'ENOSPC' }), 'disk_full'],
    ['SQLITE_FULL', Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' }), 'disk_full'],
    ['EDQUOT', Object.assign(new Error('quota'), { code: 'EDQUOT' }), 'quota'],
    // @aws-sdk/client-s3 names an unmodelled error by its code; RadosGW answers 403 QuotaExceeded.
    ['S3 QuotaExceeded', Object.assign(new Error('QuotaExceeded'), { name: 'QuotaExceeded', $metadata: { httpStatusCode: 403 } }), 'quota'],
    ['S3 Code field', { Code: 'QuotaExceeded' }, 'quota'],
    ['wrapped', new AppError('ERR_INTERNAL', { cause: Object.assign(new Error('x'), { code: 'ENOSPC' }) }), 'disk_full'],
    ['EACCES', Object.assign(new Error('denied'), { code: 'EACCES' }), null],
    ['S3 AccessDenied', Object.assign(new Error('AccessDenied'), { name: 'AccessDenied' }), null],
    ['not an object', 'ENOSPC', null],
  ];
  for (const [name, err, cause] of cases) it(name, () => assert.equal(storageFullCause(err), cause));

  it('insufficientStorageError: 507 with Retry-After and the cause kept, null for anything else', () => {
    const err = insufficientStorageError({ name: 'QuotaExceeded' });
    assert.ok(err instanceof AppError);
    assert.equal(err.status, 507);
    assert.equal(err.code, 'ERR_INSUFFICIENT_STORAGE');
    assert.ok(Number(err.headers['Retry-After']) > 0);
    assert.equal(insufficientStorageError(new Error('other')), null);
  });
});

type FakeRequest = IncomingMessage & { sent(bytes: number): void; end(): void; connectionClosed(): void };

/** A request as the space step sees it: a socket byte counter, close events of the request and of its connection. */
function fakeRequest(): FakeRequest {
  const req = new EventEmitter() as FakeRequest;
  const socket = Object.assign(new EventEmitter(), { bytesRead: 1000, destroyed: false });
  Object.assign(req, { socket, readableLength: 0, destroyed: false });
  req.sent = (bytes) => (socket.bytesRead += bytes);
  req.end = () => {
    Object.assign(req, { destroyed: true });
    req.emit('close');
  };
  req.connectionClosed = () => {
    socket.destroyed = true;
    socket.emit('close');
  };
  return req;
}

function spaceWith(capacity: { value: StorageCapacity }, uploads: Array<{ id: string; size: number | null; offset: number }> = [], clock?: { now: number }) {
  const levels: SpaceLevel[] = [];
  const space = new StorageSpace({
    ...(clock && { now: () => clock.now, promiseLapseMs: 60_000 }),
    probe: { capacity: () => capacity.value },
    reserve: { bytes: MiB },
    uploads: {
      listUnfinished: async () => uploads,
      summarize: async (id) => {
        const u = uploads.find((x) => x.id === id);
        return u === undefined ? null : { ...u, finished: u.size === u.offset };
      },
    },
    log: createLogger({ level: 'silent', format: 'json' }),
    recheckMs: 3_600_000,
    onLevel: (l) => levels.push(l),
  });
  return { space, levels };
}

const refused = (err: unknown) => err instanceof AppError && err.code === 'ERR_INSUFFICIENT_STORAGE' && err.status === 507 && Number(err.headers['Retry-After']) > 0;

describe('the intake space step', () => {
  it('a creation promises its length until the request ends, or until its upload is gone once bound', async () => {
    const cap = { value: { totalBytes: 100 * MiB, freeBytes: 5 * MiB } };
    const { space } = spaceWith(cap);
    await space.start();
    const a = fakeRequest();
    await space.claimNew(a, 3 * MiB);
    await assert.rejects(space.claimNew(fakeRequest(), 2 * MiB), refused); // 5 - 1 - 3 = 1 MiB left
    space.uploadCreated(a, 'up-a', 3 * MiB);
    a.end();
    assert.equal((await space.view()).promisedBytes, 3 * MiB, 'bound: stays promised after the request');
    const b = fakeRequest();
    await space.claimNew(b, MiB);
    b.end(); // never bound (a PUT): released
    assert.equal((await space.view()).promisedBytes, 3 * MiB);
    space.forget('up-a');
    assert.equal((await space.view()).promisedBytes, 0);
    space.stop();
  });

  it('an unfinished upload idle past the lapse holds no room any more; resuming, it is checked and promised again', async () => {
    const clock = { now: 0 };
    const cap = { value: { totalBytes: 100 * MiB, freeBytes: 5 * MiB } };
    const { space } = spaceWith(cap, [], clock);
    await space.start();
    const idle = fakeRequest();
    await space.claimNew(idle, 3 * MiB);
    space.uploadCreated(idle, 'up-idle', 3 * MiB);
    idle.end();
    await assert.rejects(space.claimNew(fakeRequest(), 2 * MiB), refused, '5 - 1 - 3 = 1 MiB left');
    clock.now = 59_999;
    assert.equal(space.lapseIdle(), 0, 'not yet');
    clock.now = 60_000;
    assert.equal(space.lapseIdle(), 1);
    assert.equal((await space.view()).promisedBytes, 0);
    const other = fakeRequest();
    await space.claimNew(other, 2 * MiB); // the room it held went to another upload
    space.uploadCreated(other, 'up-other', 2 * MiB);
    other.end();
    // The idle one resumes: its 3 MiB no longer fit beside the other's 2 MiB (5 - 1 - 2 = 2).
    await assert.rejects(space.checkAppend(fakeRequest(), { uploadId: 'up-idle', requestBytes: 3 * MiB, declaredLength: undefined }), refused);
    cap.value = { totalBytes: 100 * MiB, freeBytes: 10 * MiB };
    const resume = fakeRequest();
    await space.checkAppend(resume, { uploadId: 'up-idle', requestBytes: 3 * MiB, declaredLength: undefined });
    assert.equal((await space.view()).promisedBytes, 5 * MiB, 'promised again while it sends');
    resume.end();
    space.stop();
  });

  it('a check judged on the stale bound is judged again on the exact total before it refuses', async () => {
    const cap = { value: { totalBytes: 100 * MiB, freeBytes: 12 * MiB } };
    const { space, levels } = spaceWith(cap);
    await space.start();
    const big = fakeRequest();
    await space.claimNew(big, 8 * MiB); // 12 - 1 - 8 = 3 MiB left
    big.sent(6 * MiB); // its bytes are on disk now: free space shrinks as the promise does
    cap.value = { totalBytes: 100 * MiB, freeBytes: 6 * MiB }; // 6 - 1 - 2 = 3 MiB left, exactly
    await space.claimNew(fakeRequest(), 3 * MiB); // the bound (still 8 MiB promised) would refuse this
    await assert.rejects(space.claimNew(fakeRequest(), 1), refused, 'nothing left now');
    assert.deepEqual(levels, []);
    space.stop();
    // Far from the line (the state is plainly ok), a request larger than the bound's headroom.
    const far = spaceWith({ value: { totalBytes: 100 * MiB, freeBytes: 50 * MiB } });
    await far.space.start();
    const streaming = fakeRequest();
    await far.space.claimNew(streaming, 8 * MiB);
    streaming.sent(6 * MiB); // exact: 50 - 1 - 2 = 47 MiB left; the bound says 41
    await far.space.claimNew(fakeRequest(), 44 * MiB);
    await assert.rejects(far.space.claimNew(fakeRequest(), 4 * MiB), refused, '47 - 44 = 3 MiB left');
    far.space.stop();
  });

  it('a hold is given back when the body guard lets go, or when the connection closes, whichever comes first', async () => {
    const { space } = spaceWith({ value: { totalBytes: 100 * MiB, freeBytes: 50 * MiB } });
    await space.start();
    // A PUT answered 507 mid-body: its unread request never closes; the guard's release ends it.
    const put = fakeRequest();
    await space.claimNew(put, 3 * MiB);
    put.sent(MiB);
    assert.equal((await space.view()).promisedBytes, 2 * MiB);
    space.requestOver(put);
    space.requestOver(put); // once
    assert.equal((await space.view()).promisedBytes, 0);
    // Refused before its body (no guard): the connection closing ends it.
    const refused = fakeRequest();
    await space.claimNew(refused, MiB);
    refused.connectionClosed();
    assert.equal((await space.view()).promisedBytes, 0);
    assert.equal(refused.socket.listenerCount('close'), 0, 'no listener left on a kept-alive socket');
    space.stop();
  });

  it('two creations racing for the last bytes: one of them is refused (the check and the promise are one step)', async () => {
    const { space } = spaceWith({ value: { totalBytes: 100 * MiB, freeBytes: 3 * MiB } });
    await space.start();
    const results = await Promise.allSettled([space.claimNew(fakeRequest(), 1.5 * MiB), space.claimNew(fakeRequest(), 1.5 * MiB)]);
    assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    space.stop();
  });

  it('rebuilds promises from the store; appends: admitted ones while they fit, deferred ones as new bytes', async () => {
    const cap = { value: { totalBytes: 100 * MiB, freeBytes: 4 * MiB } };
    const uploads = [
      { id: 'big', size: 10 * MiB, offset: 0 },
      { id: 'small', size: MiB, offset: MiB / 2 },
      { id: 'deferred', size: null, offset: 100 },
    ];
    const { space, levels } = spaceWith(cap, uploads);
    await space.start();
    assert.equal((await space.view()).promisedBytes, 10.5 * MiB);
    assert.equal(space.level, 'low');
    assert.deepEqual(levels, ['low']);
    await space.checkAppend(fakeRequest(), { uploadId: 'small', requestBytes: MiB / 2, declaredLength: undefined });
    await assert.rejects(space.checkAppend(fakeRequest(), { uploadId: 'big', requestBytes: 10 * MiB, declaredLength: undefined }), refused);
    await assert.rejects(space.checkAppend(fakeRequest(), { uploadId: 'deferred', requestBytes: 10, declaredLength: undefined }), refused);
    await space.checkAppend(fakeRequest(), { uploadId: 'unknown', requestBytes: 10, declaredLength: undefined }); // the protocol answers it
    await assert.rejects(space.claimNew(fakeRequest(), 0), refused, 'nothing new below the reserve');

    // Space returns: the state ends by itself on the next reading.
    cap.value = { totalBytes: 100 * MiB, freeBytes: 50 * MiB };
    await space.refresh();
    assert.deepEqual(levels, ['low', 'ok']);
    const req = fakeRequest();
    await space.checkAppend(req, { uploadId: 'deferred', requestBytes: 2000, declaredLength: 5000 });
    req.sent(2000);
    assert.equal(space.level, 'ok');
    assert.equal((await space.view()).promisedBytes, 10.5 * MiB + 5000 - 100 - 2000);
    space.stop();
  });

  it('a full store mid-body becomes a logged 507 once; anything else is not its business', async () => {
    const { space } = spaceWith({ value: { totalBytes: 100 * MiB, freeBytes: 0 } });
    const enospc = Object.assign(new Error('no space'), { code: 'ENOSPC' });
    const err = await space.storageFull(enospc, { protocol: 'tus', uploadId: 'x' });
    assert.ok(refused(err));
    assert.equal(await space.storageFull(err, { protocol: 'put', uploadId: 'x' }), err, 'a decided 507 passes as it is');
    assert.equal(await space.storageFull(new Error('other'), { protocol: 'put', uploadId: 'x' }), null);
  });

  it('a store that cannot tell its capacity lets everything through', async () => {
    const space = new StorageSpace({
      probe: { capacity: () => null },
      reserve: { bytes: MiB },
      uploads: { listUnfinished: async () => [], summarize: async () => null },
      log: createLogger({ level: 'silent', format: 'json' }),
    });
    await space.start();
    await space.claimNew(fakeRequest(), 10 ** 15);
    assert.equal(await space.problem(), null);
    assert.equal((await space.view()).freeBytes, null);
    space.stop();
  });
});
