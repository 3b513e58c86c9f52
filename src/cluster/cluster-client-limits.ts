/**
 * The per-client caps of [limits] across the cluster (issue 13.6): bodies streaming at once and
 * starts per minute of one client (its address key, client-key.ts), counted in Redis, so a
 * client spread over N instances by the balancer gets its caps once, not N times.
 *
 * - Bodies: a sorted set per client of lease tokens scored by their expiry (Redis time). Each
 *   instance renews its own leases every third of `leaseMs` and removes one when its body ends;
 *   a crashed instance's leases stop being renewed and stop counting after `leaseMs`.
 * - A same-slot retry at the cap (the newest body takes over): the script lets it in and turns
 *   the slot's leases of other instances into "taken over" markers (`!<token>`, not counted);
 *   their instance learns it at its next renewal and asks the body to let go (tus keeps its
 *   bytes, a PUT's are dropped). So one slot has one counted body cluster-wide, plus old ones
 *   ending within a renewal period, instead of one per instance. This instance's own body on
 *   the slot is left to its local takeover (BodySlots: a PUT still moving is not ended there).
 * - Starts: the token bucket of ClientLimits, as one script on a hash per client that expires
 *   after a minute untouched (a full bucket).
 * - Redis unreachable or failing: this process's ClientLimits answers (SharedCounts logs the switch).
 */
import { createHash, randomBytes } from 'node:crypto';
import { LuaScript } from '../storage/index.js';
import type { ClientCaps, ClientLimits, CreationVerdict } from '../transfer/index.js';
import type { SharedCounts } from './shared-counts.js';

/** Shared by the scripts: Redis time in ms (scripts replicate their effects, so TIME is allowed). */
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** The set lives as long as its latest lease. */
const EXPIRE_WITH_LATEST = `local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIREAT', KEYS[1], last[2]) end`;

const BODY_ENTER = new LuaScript(`
-- KEYS[1] the client's body leases (sorted set: token -> expiry, ms of Redis time; "!<token>":
--         a lease taken over, not counted, until its instance's renewal reads it)
-- ARGV[1] token ("<slot tag>:<instance tag>:<random>"), ARGV[2] cap, ARGV[3] lease ms,
-- ARGV[4] slot tag, ARGV[5] this instance's tag
-- Reply: 1 counted; 0 the client streams its maximum (expired leases of crashed instances dropped
-- first), unless one of its bodies is on the same slot: its retry, which takes that body over
-- (other instances' leases of the slot become markers)
${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
local live = 0
for _, member in ipairs(members) do
  if string.sub(member, 1, 1) ~= '!' then live = live + 1 end
end
if live >= tonumber(ARGV[2]) then
  local prefix = ARGV[4] .. ':'
  local own = prefix .. ARGV[5] .. ':'
  local same = false
  for _, member in ipairs(members) do
    if string.sub(member, 1, #prefix) == prefix then
      same = true
      if string.sub(member, 1, #own) ~= own then
        redis.call('ZREM', KEYS[1], member)
        redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), '!' .. member)
      end
    end
  end
  if not same then return 0 end
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
${EXPIRE_WITH_LATEST}
return 1
`);

const BODY_RENEW = new LuaScript(`
-- KEYS[1] the client's body leases; ARGV[1] token, ARGV[2] lease ms
-- Reply: 1 renewed; 0 taken over by a retry of its slot at another instance (the marker is
-- removed: the body is to let go). A lease that expired meanwhile (a long pause) is added
-- again: its body still streams.
if redis.call('ZREM', KEYS[1], '!' .. ARGV[1]) == 1 then return 0 end
${NOW}
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
${EXPIRE_WITH_LATEST}
return 1
`);

const START = new LuaScript(`
-- KEYS[1] the client's start bucket (hash: tokens, at = ms of Redis time)
-- ARGV[1] starts per minute
-- Reply: 0 the start is allowed (one token taken); otherwise ms until one is
${NOW}
local perMinute = tonumber(ARGV[1])
local perMs = perMinute / 60000
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = perMinute
if b[1] and b[2] then tokens = math.min(perMinute, tonumber(b[1]) + (now - tonumber(b[2])) * perMs) end
local wait = 0
if tokens < 1 then
  wait = math.max(1, math.ceil((1 - tokens) / perMs))
else
  tokens = tokens - 1
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'at', string.format('%d', now))
redis.call('PEXPIRE', KEYS[1], 61000)
return wait
`);

export interface ClusterClientLimitsOptions {
  readonly maxBodies: number;
  readonly creationsPerMinute: number;
  readonly counts: SharedCounts;
  /** This process's caps: the fallback while Redis is unreachable; also gives the client key. */
  readonly local: ClientLimits;
}

export class ClusterClientLimits implements ClientCaps {
  readonly #o: ClusterClientLimitsOptions;
  /** This instance's body leases in Redis: token -> key, and what to do when a retry elsewhere takes the body over. */
  readonly #leases = new Map<string, { key: string; onTakenOver: (() => void) | undefined }>();
  /** Tells this instance's leases from others' in the script (a retry takes over only other instances' bodies). */
  readonly #self = randomBytes(6).toString('base64url');
  #renewal: NodeJS.Timeout | undefined;

  constructor(options: ClusterClientLimitsOptions) {
    this.#o = options;
  }

  /**
   * `slotKey`: the slot or upload the body is for. At its cap, a client whose other body is on the
   * same slot, at any instance, is let in: the newest body takes the old one over (issue 18), which
   * at another instance no local check can see, so it is told through Redis: `onTakenOver` is
   * called (once, within a renewal period) when a retry at another instance took this body over.
   */
  async enterBody(address: string, slotKey = '', onTakenOver?: () => void): Promise<(() => void) | null> {
    const { local, counts, maxBodies } = this.#o;
    if (maxBodies <= 0) return local.enterBody(address);
    const key = `${counts.keyPrefix}limits:bodies:${local.keyOf(address)}`;
    // A digest, not the path: the slot names stay out of Redis.
    const tag = createHash('sha256').update(slotKey).digest('base64url').slice(0, 16);
    const token = `${tag}:${this.#self}:${randomBytes(9).toString('base64url')}`;
    const entered = await counts.run<'shared' | (() => void) | null>(
      'body',
      async (redis) => ((await BODY_ENTER.run(redis, [key], [token, maxBodies, counts.leaseMs, slotKey === '' ? '' : tag, this.#self])) === 1 ? 'shared' : null),
      () => local.enterBody(address),
    );
    if (entered !== 'shared') return entered;
    this.#leases.set(token, { key, onTakenOver });
    this.#renewSoon();
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.#leases.delete(token);
      void counts.tryShared('body end', (redis) => redis.zrem(key, token, `!${token}`));
    };
  }

  async allowCreation(address: string, nowMs: number): Promise<CreationVerdict> {
    const { local, counts, creationsPerMinute } = this.#o;
    if (creationsPerMinute <= 0) return { ok: true };
    const key = `${counts.keyPrefix}limits:starts:${local.keyOf(address)}`;
    return counts.run<CreationVerdict>(
      'start',
      async (redis) => {
        const waitMs = Number(await START.run(redis, [key], [creationsPerMinute]));
        return waitMs === 0 ? { ok: true } : { ok: false, retryAfterS: Math.max(1, Math.ceil(waitMs / 1000)) };
      },
      () => local.allowCreation(address, nowMs),
    );
  }

  /** Leases held by this instance in Redis (for tests and the heartbeat). */
  get leases(): number {
    return this.#leases.size;
  }

  stop(): void {
    clearInterval(this.#renewal);
    this.#renewal = undefined;
  }

  #renewSoon(): void {
    if (this.#renewal !== undefined) return;
    this.#renewal = setInterval(() => {
      if (this.#leases.size === 0) return this.stop();
      const leases = [...this.#leases];
      void this.#o.counts.tryShared('body renewal', async (redis) => {
        await Promise.all(
          leases.map(async ([token, { key, onTakenOver }]) => {
            if ((await BODY_RENEW.run(redis, [key], [token, this.#o.counts.leaseMs])) !== 0) return;
            this.#leases.delete(token); // no longer renewed: it counts no more, its body ends
            onTakenOver?.();
          }),
        );
      });
    }, Math.max(50, Math.floor(this.#o.counts.leaseMs / 3))).unref();
  }
}
