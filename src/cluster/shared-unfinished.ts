/**
 * The unfinished tus uploads of [limits] across the cluster (issue 13.6): the bytes they hold
 * (max_unfinished_bytes) and each slot's one unfinished upload, mirrored into Redis, so a
 * creation at B sees the uploads created at A (the bytes are on the shared directory either way).
 *
 * Redis keeps `<prefix>{unfinished}:ids` (id -> JSON: slot, size, partial, offset),
 * `…:slots` (slot path -> id of its upload) and `…:total` (the sum of offsets). Every change is
 * one script that keeps total = sum of offsets, so instances writing at once cannot skew it.
 * This process keeps its own index as before (the fallback while Redis is unreachable); the
 * held total the gate reads is Redis's, taken from every script's reply and re-read every
 * `refreshMs` for changes at other instances. The index is rebuilt from the shared store at
 * start and after expiry sweeps (reset), and this instance's uploads are written again when
 * Redis answers after an outage; the store stays the truth for "is it unfinished".
 * Nothing here needs a lease: the bytes outlive the instance that wrote them.
 *
 * One unfinished upload per slot across the cluster: a creation claims its slot with one script
 * that answers the slot's upload when `…:slots` names one, else sets `…:claim:<hash of slot>`
 * (SET NX PX) for this creation; a second creation at another instance meanwhile is told "busy"
 * and asks again, and then finds the new upload in `…:slots`. The claim is released once the new
 * upload's entry is written (or the creation failed); a crashed instance's claim expires.
 */
import { createHash, randomUUID } from 'node:crypto';
import { LuaScript, UnfinishedUploads, type SlotClaim, type UnfinishedUpload } from '../storage/index.js';
import type { SharedCounts } from './shared-counts.js';

/** ARGV numbers come back as integers for INCRBY (tostring would write 1e+11). */
// An entry's committed bytes (limits.max_unfinished_bytes): its declared length, or its offset when more or deferred.
const COMMITTED_OF = `local function committed(e) return math.max(tonumber(e.n) or 0, tonumber(e.o)) end`;

const SET = new LuaScript(`
-- KEYS[1] ids hash, KEYS[2] slots hash, KEYS[3] total (held), KEYS[4] committed total
-- ARGV[1] upload id, ARGV[2] JSON {s: slot path, n: size or null, p: partial, o: offset}
-- Reply: {held total, committed total}
${COMMITTED_OF}
local prev, prevCommitted = 0, 0
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  local e = cjson.decode(old)
  prev, prevCommitted = tonumber(e.o), committed(e)
end
local info = cjson.decode(ARGV[2])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if not info.p then redis.call('HSET', KEYS[2], info.s, ARGV[1]) end
return {
  redis.call('INCRBY', KEYS[3], string.format('%d', tonumber(info.o) - prev)),
  redis.call('INCRBY', KEYS[4], string.format('%d', committed(info) - prevCommitted)),
}
`);

const REMOVE = new LuaScript(`
-- KEYS[1] ids hash, KEYS[2] slots hash, KEYS[3] total (held), KEYS[4] committed total; ARGV[1] upload id
-- Reply: {held total, committed total}
${COMMITTED_OF}
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then return {redis.call('INCRBY', KEYS[3], 0), redis.call('INCRBY', KEYS[4], 0)} end
local info = cjson.decode(old)
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HGET', KEYS[2], info.s) == ARGV[1] then redis.call('HDEL', KEYS[2], info.s) end
return {
  redis.call('INCRBY', KEYS[3], string.format('%d', -tonumber(info.o))),
  redis.call('INCRBY', KEYS[4], string.format('%d', -committed(info))),
}
`);

const TOTALS = new LuaScript(`
-- KEYS[1] total (held), KEYS[2] committed total. Reply: {held total, committed total}
return {redis.call('INCRBY', KEYS[1], 0), redis.call('INCRBY', KEYS[2], 0)}
`);

const CLAIM = new LuaScript(`
-- KEYS[1] slots hash, KEYS[2] the slot's claim key; ARGV[1] slot path, ARGV[2] token, ARGV[3] ttl ms
-- Reply: {'taken', id} | {'claimed'} | {'busy'}
local id = redis.call('HGET', KEYS[1], ARGV[1])
if id then return {'taken', id} end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then return {'claimed'} end
return {'busy'}
`);

const RELEASE = new LuaScript(`
-- KEYS[1] the slot's claim key; ARGV[1] token. Reply: 1 when it was this claim
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);

/** A claim outlives a crashed creator this long; a creation reaches its index entry well within it. */
export const SLOT_CLAIM_TTL_MS = 15_000;

interface Stored {
  s: string;
  n: number | null;
  p: boolean;
  o: number;
}

export interface SharedUnfinishedOptions {
  readonly counts: SharedCounts;
  /** Re-read the cluster's total this often (changes at other instances). */
  readonly refreshMs: number;
  readonly onChange?: (heldBytes: number) => void;
  /** How long a creation's slot claim outlives a creator that never releases it (crashed); default SLOT_CLAIM_TTL_MS. */
  readonly claimTtlMs?: number;
}

export class SharedUnfinishedUploads extends UnfinishedUploads {
  readonly #o: SharedUnfinishedOptions;
  readonly #keys: [string, string, string, string];
  /** The cluster's held bytes as Redis last said; null while counted locally. */
  #clusterHeld: number | null = null;
  /** The cluster's committed bytes as Redis last said (limits.max_unfinished_bytes); null while counted locally. */
  #clusterCommitted: number | null = null;
  #refresh: NodeJS.Timeout | undefined;
  /** super.reset() adds one by one: those are written by reset itself. */
  #resetting = false;
  /** The last index write per slot: a claim is released only after it (scripts may be re-sent on NOSCRIPT). */
  readonly #written = new Map<string, Promise<void>>();

  constructor(options: SharedUnfinishedOptions) {
    const sink = { report: (_local: number) => {} };
    super((local) => sink.report(local));
    sink.report = (local) => options.onChange?.(this.#o.counts.local || this.#clusterHeld === null ? local : this.#clusterHeld);
    this.#o = options;
    const base = `${options.counts.keyPrefix}{unfinished}:`;
    this.#keys = [`${base}ids`, `${base}slots`, `${base}total`, `${base}committed`];
    // Back from an outage (Redis may have restarted empty): this instance's uploads are written again.
    options.counts.onBack(() => {
      for (const u of this.all()) this.#mirror(u);
    });
  }

  override get heldBytes(): number {
    return this.#o.counts.local || this.#clusterHeld === null ? super.heldBytes : this.#clusterHeld;
  }

  /** The cluster's committed bytes, with this instance's creations not yet written there. */
  override get committedBytes(): number {
    if (this.#o.counts.local || this.#clusterCommitted === null) return super.committedBytes;
    return this.#clusterCommitted + this.reservedBytes;
  }

  /** Another instance may have created the upload: its PATCH here refreshes it too. */
  override tracks(_id: string): boolean {
    return true;
  }

  override async onSlot(slotPath: string): Promise<UnfinishedUpload[]> {
    const here = this.ofSlot(slotPath);
    if (here.some((u) => !u.partial)) return here;
    const elsewhere = await this.#o.counts.run<UnfinishedUpload | null>(
      'slot lookup',
      async (redis) => {
        const id = await redis.hget(this.#keys[1], slotPath);
        const json = id === null ? null : await redis.hget(this.#keys[0], id);
        if (id === null || json === null) return null;
        const s = JSON.parse(json) as Stored;
        return { id, slotPath: s.s, size: s.n, offset: s.o, partial: s.p };
      },
      () => null,
    );
    return elsewhere ? [...here, elsewhere] : here;
  }

  override async claimSlot(slotPath: string): Promise<SlotClaim> {
    const here = await super.claimSlot(slotPath);
    if (here.kind === 'taken') return here;
    const key = `${this.#o.counts.keyPrefix}{unfinished}:claim:${createHash('sha256').update(slotPath).digest('hex').slice(0, 40)}`;
    const token = randomUUID();
    const reply = await this.#o.counts.run<unknown>('slot claim', (redis) => CLAIM.run(redis, [this.#keys[1], key], [slotPath, token, this.#o.claimTtlMs ?? SLOT_CLAIM_TTL_MS]), () => null);
    if (!Array.isArray(reply)) return here; // Redis unreachable: this instance's index only (degraded mode)
    const [kind, id] = reply as [string, string | undefined];
    if (kind === 'taken' && id) return { kind: 'taken', id };
    if (kind === 'busy') return { kind: 'busy' };
    return {
      kind: 'claimed',
      release: async () => {
        await this.#written.get(slotPath);
        await this.#o.counts.tryShared('slot claim release', (redis) => RELEASE.run(redis, [key], [token]));
      },
    };
  }

  override add(upload: UnfinishedUpload): void {
    super.add(upload);
    this.#mirror(upload);
  }

  override setOffset(id: string, offset: number): void {
    super.setOffset(id, offset);
    const u = this.get(id);
    if (u) this.#mirror(u);
  }

  override remove(id: string): void {
    super.remove(id);
    void this.#update('unfinished remove', (redis) => REMOVE.run(redis, this.#keys, [id]));
  }

  /** Rebuilt from the shared store (start, expiry sweeps): this listing replaces the cluster's index. */
  override reset(uploads: Iterable<UnfinishedUpload>): void {
    const list = [...uploads];
    this.#resetting = true;
    try {
      super.reset(list);
    } finally {
      this.#resetting = false;
    }
    void this.#update('unfinished reset', async (redis) => {
      await redis.multi().del(...this.#keys).exec();
      // One connection: the scripts run in this order, so the last reply is the total after all of them.
      const totals = await Promise.all(list.map((u) => SET.run(redis, this.#keys, [u.id, JSON.stringify(stored(u))])));
      return totals.at(-1) ?? [0, 0];
    });
  }

  /** Starts re-reading the cluster's total (changes made at other instances). */
  start(): void {
    this.#refresh ??= setInterval(() => void this.#update('unfinished total', (redis) => TOTALS.run(redis, [this.#keys[2], this.#keys[3]], [])), this.#o.refreshMs).unref();
  }

  stop(): void {
    clearInterval(this.#refresh);
    this.#refresh = undefined;
  }

  #mirror(u: UnfinishedUpload): void {
    if (this.#resetting) return;
    const written = this.#update('unfinished update', (redis) => SET.run(redis, this.#keys, [u.id, JSON.stringify(stored(u))]));
    this.#written.set(u.slotPath, written);
    void written.finally(() => {
      if (this.#written.get(u.slotPath) === written) this.#written.delete(u.slotPath);
    });
  }

  async #update(during: string, call: Parameters<SharedCounts['run']>[1]): Promise<void> {
    const totals = await this.#o.counts.run(during, call, () => null);
    const [held, committed] = Array.isArray(totals) ? totals.map(Number) : [NaN, NaN];
    const heldNow = held !== undefined && Number.isFinite(held) ? held : null;
    const changed = heldNow !== this.#clusterHeld;
    this.#clusterHeld = heldNow;
    this.#clusterCommitted = committed !== undefined && Number.isFinite(committed) ? committed : null;
    if (changed) this.#o.onChange?.(this.heldBytes);
  }
}

function stored(u: UnfinishedUpload): Stored {
  return { s: u.slotPath, n: u.size, p: u.partial, o: u.offset };
}
