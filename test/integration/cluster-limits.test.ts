/**
 * [limits] across the cluster on a real redis-server: two "instances" (each its own connection,
 * SharedCounts, local fallback) share per-client body and start caps and the unfinished-upload
 * index; a crashed instance's body leases stop counting after the lease; without Redis every
 * instance counts locally, with one log line per switch.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { ClusterClientLimits, SharedCounts, SharedUnfinishedUploads } from '../../src/cluster/index.js';
import { createLogger } from '../../src/observability/index.js';
import { ClientLimits } from '../../src/transfer/index.js';
import { uniquePrefix, useRedis } from '../helpers/redis.js';

const redis = useRedis();

interface Instance {
  readonly counts: SharedCounts;
  readonly clients: ClusterClientLimits;
  readonly unfinished: SharedUnfinishedUploads;
  readonly lines: string[];
  readonly failures: string[];
  /** The commands connection; `reachable = false` makes it count locally as after a failed health check. */
  readonly connection: Redis;
  reachable: boolean;
}

function instance(keyPrefix: string, o: { maxBodies?: number; perMinute?: number; leaseMs?: number; claimTtlMs?: number } = {}): Instance {
  const lines: string[] = [];
  const failures: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(String(JSON.parse(chunk.toString()).msg));
      done();
    },
  });
  const connection = redis.clients.open();
  const self: Instance = {
    reachable: true,
    connection,
    lines,
    failures,
    counts: new SharedCounts({
      redis: () => (self.reachable ? connection : null),
      keyPrefix,
      leaseMs: o.leaseMs ?? 10_000,
      log: createLogger({ level: 'info', format: 'json' }, sink),
      onSharedFailure: (_err, during) => failures.push(during),
    }),
  } as Instance;
  const local = new ClientLimits({ maxBodies: o.maxBodies ?? 0, creationsPerMinute: o.perMinute ?? 0 });
  Object.assign(self, {
    clients: new ClusterClientLimits({ maxBodies: o.maxBodies ?? 0, creationsPerMinute: o.perMinute ?? 0, counts: self.counts, local }),
    unfinished: new SharedUnfinishedUploads({ counts: self.counts, refreshMs: 50, ...(o.claimTtlMs !== undefined && { claimTtlMs: o.claimTtlMs }) }),
  });
  return self;
}

/** Polls `probe` until it is true (deadline 10 s): for what a lease expiry or another instance's write decides. */
async function until(what: string, probe: () => Promise<boolean> | boolean): Promise<void> {
  const end = Date.now() + 10_000;
  while (!(await probe())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('per-client caps across instances', () => {
  it('bodies: a client streaming at A and B counts once against its cap; an ended body frees a place anywhere', async () => {
    const prefix = uniquePrefix('limits');
    const [a, b] = [instance(prefix, { maxBodies: 2 }), instance(prefix, { maxBodies: 2 })];
    const reader = redis.clients.open();
    const atA = await a.clients.enterBody('198.51.100.1');
    const atB = await b.clients.enterBody('198.51.100.1');
    assert.ok(atA && atB);
    assert.equal(await a.clients.enterBody('198.51.100.1'), null, 'the third body, at A, is over the cluster-wide cap');
    assert.equal(await b.clients.enterBody('198.51.100.1'), null, 'and at B');
    assert.ok(await a.clients.enterBody('198.51.100.2'), 'another client is not limited');
    atB();
    atB(); // idempotent
    await until('the ended body to free its place', async () => (await reader.zcard(`${prefix}limits:bodies:198.51.100.1`)) === 1);
    assert.ok(await a.clients.enterBody('198.51.100.1'), 'the body that ended at B made room at A');
    assert.deepEqual([a.failures, b.failures], [[], []]);
    a.clients.stop();
    b.clients.stop();
  });

  it("bodies: a same-slot retry at the cap takes over the slot's body at another instance (told at its renewal), not this instance's own", async () => {
    const prefix = uniquePrefix('limits');
    const leaseMs = 600; // renewed every 200 ms
    const [a, b] = [instance(prefix, { maxBodies: 1, leaseMs }), instance(prefix, { maxBodies: 1, leaseMs })];
    const key = `${prefix}limits:bodies:198.51.100.7`;
    const reader = redis.clients.open();
    const live = async () => (await reader.zrange(key, 0, -1)).filter((m) => !m.startsWith('!')).length;
    let takenAtA = 0;
    let takenAtB = 0;
    assert.ok(await a.clients.enterBody('198.51.100.7', 'slot/x', () => takenAtA++));
    assert.equal(await b.clients.enterBody('198.51.100.7', 'slot/y'), null, 'another slot: over the cap');
    const retry = await b.clients.enterBody('198.51.100.7', 'slot/x', () => takenAtB++);
    assert.ok(retry, 'the same slot at B: let in');
    assert.equal(await live(), 1, "A's lease no longer counts");
    await until("A's renewal to learn of the takeover", () => takenAtA === 1);
    assert.equal(a.clients.leases, 0, 'A stopped renewing it');
    // Another retry of the slot at B, beside B's own body: left to B's local takeover (BodySlots).
    const again = await b.clients.enterBody('198.51.100.7', 'slot/x', () => takenAtB++);
    assert.ok(again);
    await new Promise((resolve) => setTimeout(resolve, leaseMs));
    assert.equal(takenAtB, 0, "B's own bodies are not taken over through Redis");
    assert.equal(takenAtA, 1, 'told once');
    retry();
    again();
    await until('the leases gone', async () => (await reader.zcard(key)) === 0);
    a.clients.stop();
    b.clients.stop();
  });

  it('bodies of one IPv6 /64 count together across instances', async () => {
    const prefix = uniquePrefix('limits');
    const [a, b] = [instance(prefix, { maxBodies: 1 }), instance(prefix, { maxBodies: 1 })];
    assert.ok(await a.clients.enterBody('2001:db8:5:6::1'));
    assert.equal(await b.clients.enterBody('2001:db8:5:6::beef'), null);
    assert.ok(await b.clients.enterBody('2001:db8:5:7::1'), 'another /64');
    a.clients.stop();
    b.clients.stop();
  });

  it("a crashed instance's body leases keep counting while renewed, and expire once it stops renewing", async () => {
    const prefix = uniquePrefix('limits');
    const leaseMs = 1_000; // renewed every 333 ms: long enough for a busy machine
    const [a, b] = [instance(prefix, { maxBodies: 2, leaseMs }), instance(prefix, { maxBodies: 2, leaseMs })];
    const key = `${prefix}limits:bodies:198.51.100.9`;
    const reader = redis.clients.open();
    const scoreOf = async (i: number) => Number((await reader.zrange(key, i, i, 'WITHSCORES'))[1]);
    assert.ok(await a.clients.enterBody('198.51.100.9'));
    assert.ok(await b.clients.enterBody('198.51.100.9'), "B's own body: B renews it, so the set outlives A's lease");
    const first = await scoreOf(0);
    // Past the first expiry the lease is still there, renewed by A: B is still refused.
    await until('renewals by A', async () => (await scoreOf(0)) > first + leaseMs / 3 && (await reader.zcard(key)) === 2);
    assert.equal(await b.clients.enterBody('198.51.100.9'), null, 'renewed leases count');
    // A "crashes": it stops renewing and never ends its body; B keeps renewing its own.
    a.clients.stop();
    await until('the lease of the crashed instance to expire', async () => {
      const entered = await b.clients.enterBody('198.51.100.9');
      entered?.();
      return entered !== null;
    });
    assert.equal(b.clients.leases, 1, "B's own body still counts");
    b.clients.stop();
  });

  it('starts per minute: one bucket per client for the whole cluster, with when to retry', async () => {
    const prefix = uniquePrefix('limits');
    const [a, b] = [instance(prefix, { perMinute: 3 }), instance(prefix, { perMinute: 3 })];
    const verdicts = [
      await a.clients.allowCreation('203.0.113.5', Date.now()),
      await b.clients.allowCreation('203.0.113.5', Date.now()),
      await a.clients.allowCreation('203.0.113.5', Date.now()),
      await b.clients.allowCreation('203.0.113.5', Date.now()),
    ];
    assert.deepEqual(verdicts.slice(0, 3), [{ ok: true }, { ok: true }, { ok: true }]);
    const fourth = verdicts[3]!;
    assert.equal(fourth.ok, false);
    assert.ok(!fourth.ok && fourth.retryAfterS >= 1 && fourth.retryAfterS <= 20, `retry after ${JSON.stringify(fourth)}`);
    assert.deepEqual(await a.clients.allowCreation('203.0.113.6', Date.now()), { ok: true }, 'another client has its own bucket');
  });

  it('Redis unreachable: each instance counts locally, one log line per switch, and back on Redis after', async () => {
    const prefix = uniquePrefix('limits');
    const [a, b] = [instance(prefix, { maxBodies: 1, perMinute: 1 }), instance(prefix, { maxBodies: 1, perMinute: 1 })];
    a.reachable = false;
    b.reachable = false;
    const atA = await a.clients.enterBody('198.51.100.3');
    const atB = await b.clients.enterBody('198.51.100.3');
    assert.ok(atA && atB, 'per instance: one body each');
    assert.equal(await a.clients.enterBody('198.51.100.3'), null, "A's local cap still holds");
    assert.ok((await a.clients.allowCreation('198.51.100.3', 0)).ok);
    assert.equal((await a.clients.allowCreation('198.51.100.3', 0)).ok, false);
    assert.deepEqual(a.lines, ['Cluster limits counted per instance: Redis unreachable'], 'one line for the switch, not one per call');
    atA();
    atB();

    a.reachable = true;
    assert.ok(await a.clients.enterBody('198.51.100.3'));
    assert.deepEqual(a.lines, ['Cluster limits counted per instance: Redis unreachable', 'Cluster limits counted across the cluster again']);
    a.clients.stop();

    // A Redis call that fails (connection gone) also falls back, and reports the failure.
    b.reachable = true;
    b.connection.disconnect();
    assert.ok(await b.clients.enterBody('198.51.100.4'), 'counted locally');
    assert.deepEqual(b.failures, ['limits body']);
    b.clients.stop();
  });
});

describe('unfinished uploads across instances', () => {
  it('bytes held and the slot of an upload created at A are seen at B; PATCHes anywhere move the total', async () => {
    const prefix = uniquePrefix('unfinished');
    const [a, b] = [instance(prefix), instance(prefix)];
    const reader = redis.clients.open();
    a.unfinished.reset([]);
    a.unfinished.add({ id: 'u1', slotPath: 'd/one.bin', size: 1_000, offset: 100, partial: false });
    a.unfinished.add({ id: 'p1', slotPath: 'd/two.bin', size: 50, offset: 20, partial: true });
    b.unfinished.start();
    await until('B to read the total', () => b.unfinished.heldBytes === 120);
    await until('B to read the committed bytes (declared lengths)', () => b.unfinished.committedBytes === 1_050);
    assert.deepEqual(await b.unfinished.onSlot('d/one.bin'), [{ id: 'u1', slotPath: 'd/one.bin', size: 1_000, offset: 100, partial: false }], "B finds A's upload on its slot");
    assert.deepEqual(await b.unfinished.onSlot('d/two.bin'), [], 'a partial upload is not its slot\'s one upload');

    // A PATCH at B of A's upload (refreshHeld adds it to B's index), then at A again.
    assert.equal(b.unfinished.tracks('u1'), true);
    b.unfinished.add({ id: 'u1', slotPath: 'd/one.bin', size: 1_000, offset: 600, partial: false });
    await until('A to read the total', async () => {
      a.unfinished.setOffset('p1', 20); // any write brings Redis's total back
      return a.unfinished.heldBytes === 620;
    });
    a.unfinished.setOffset('u1', 900);
    await until('the total after A wrote', () => a.unfinished.heldBytes === 920);

    // Finished at B: gone for both.
    b.unfinished.remove('u1');
    await until('B to drop it', () => b.unfinished.heldBytes === 20);
    await until('its declared length dropped too', () => b.unfinished.committedBytes === 50);
    assert.deepEqual(await a.unfinished.onSlot('d/one.bin'), [{ id: 'u1', slotPath: 'd/one.bin', size: 1_000, offset: 900, partial: false }], "A's own index still lists it: existingFor asks the store, which is the truth");
    assert.equal(await reader.hget(`${prefix}{unfinished}:slots`, 'd/one.bin'), null);

    // A reset (start, expiry sweep) replaces the cluster's index with the store's listing.
    b.unfinished.reset([{ id: 'u2', slotPath: 'd/three.bin', size: null, offset: 7, partial: false }]);
    await until('the reset total', () => b.unfinished.heldBytes === 7);
    await until('a deferred length commits what it stored', () => b.unfinished.committedBytes === 7);
    const release = b.unfinished.reserve(100);
    assert.equal(b.unfinished.committedBytes, 107, "a creation admitted here counts before it reaches Redis");
    release();
    release();
    assert.equal(b.unfinished.committedBytes, 7);
    assert.deepEqual(await a.unfinished.onSlot('d/two.bin'), a.unfinished.ofSlot('d/two.bin'));
    b.unfinished.stop();
  });

  it('Redis unreachable: the local index answers; back on Redis, this instance writes its uploads again', async () => {
    const prefix = uniquePrefix('unfinished');
    const a = instance(prefix);
    const reader = redis.clients.open();
    a.reachable = false;
    a.unfinished.add({ id: 'x', slotPath: 'd/x.bin', size: 10, offset: 5, partial: false });
    assert.equal(a.unfinished.heldBytes, 5, 'local numbers');
    assert.equal(await reader.exists(`${prefix}{unfinished}:ids`), 0);
    a.reachable = true;
    a.unfinished.start();
    await until('the upload written to Redis again', async () => (await reader.hget(`${prefix}{unfinished}:slots`, 'd/x.bin')) === 'x');
    await until('the total from Redis', () => a.unfinished.heldBytes === 5);
    a.unfinished.stop();
  });
});

describe('one creation per slot across instances (slot claims)', () => {
  it('claims made at once at two instances: exactly one wins each slot; the other is busy until the winner\'s upload is indexed, then sees it', async () => {
    const prefix = uniquePrefix('claims');
    const [a, b] = [instance(prefix), instance(prefix)];
    const slots = Array.from({ length: 50 }, (_, i) => `d/race-${i}.bin`);
    const pairs = await Promise.all(slots.map((slot) => Promise.all([a.unfinished.claimSlot(slot), b.unfinished.claimSlot(slot)])));
    for (const [i, pair] of pairs.entries()) {
      assert.deepEqual(pair.map((c) => c.kind).sort(), ['busy', 'claimed'], `slot ${slots[i]}`);
    }
    // The winner creates its upload, indexes it and releases: the loser now gets that upload.
    const [first] = pairs;
    const winner = first![0].kind === 'claimed' ? a : b;
    const loser = winner === a ? b : a;
    const claim = first!.find((c) => c.kind === 'claimed');
    assert.ok(claim?.kind === 'claimed');
    assert.equal((await loser.unfinished.claimSlot(slots[0]!)).kind, 'busy', 'still held while the creation runs');
    winner.unfinished.add({ id: 'won', slotPath: slots[0]!, size: 10, offset: 0, partial: false });
    await claim.release();
    assert.deepEqual(await loser.unfinished.claimSlot(slots[0]!), { kind: 'taken', id: 'won' });
    assert.deepEqual(await winner.unfinished.claimSlot(slots[0]!), { kind: 'taken', id: 'won' }, 'at the winner too');
    // Once the upload is gone from the index, the slot can be claimed again.
    winner.unfinished.remove('won');
    await until('the slot free in Redis', async () => (await a.connection.hget(`${prefix}{unfinished}:slots`, slots[0]!)) === null);
    assert.equal((await loser.unfinished.claimSlot(slots[0]!)).kind, 'claimed');
  });

  it("a creation that failed releases its claim (only its own); a crashed creator's claim expires", async () => {
    const prefix = uniquePrefix('claims');
    const [a, b] = [instance(prefix, { claimTtlMs: 400 }), instance(prefix, { claimTtlMs: 400 })];
    const failed = await a.unfinished.claimSlot('d/failed.bin');
    assert.ok(failed.kind === 'claimed');
    await failed.release();
    const next = await b.unfinished.claimSlot('d/failed.bin');
    assert.equal(next.kind, 'claimed', 'released without an upload: free for the next creation');
    await failed.release(); // a late second release of A's claim leaves B's alone
    assert.equal((await a.unfinished.claimSlot('d/failed.bin')).kind, 'busy');

    assert.equal((await a.unfinished.claimSlot('d/crashed.bin')).kind, 'claimed'); // never released
    assert.equal((await b.unfinished.claimSlot('d/crashed.bin')).kind, 'busy');
    await until('the crashed claim to expire', async () => (await b.unfinished.claimSlot('d/crashed.bin')).kind === 'claimed');
  });

  it('Redis unreachable: a claim is decided by this instance\'s index alone', async () => {
    const prefix = uniquePrefix('claims');
    const a = instance(prefix);
    a.reachable = false;
    assert.equal((await a.unfinished.claimSlot('d/local.bin')).kind, 'claimed');
    a.unfinished.add({ id: 'l1', slotPath: 'd/local.bin', size: 1, offset: 0, partial: false });
    assert.deepEqual(await a.unfinished.claimSlot('d/local.bin'), { kind: 'taken', id: 'l1' });
  });
});
