/**
 * The free-space step of the intake (docs/storage-space.md). Before a new upload's body: its
 * declared length must fit in free space minus the reserve minus the bytes promised to
 * unfinished uploads (507 ERR_INSUFFICIENT_STORAGE with Retry-After otherwise). Before an
 * append: a deferred-length upload's new bytes must fit the same way; an upload whose length
 * was admitted must still fit in free space minus the reserve. Below the reserve the server is
 * in its storage emergency state: nothing new starts, /ready answers 503, appends that fit and
 * downloads go on; the state is left by itself once space returns (re-checked on every check
 * and every few seconds, one statfs each).
 *
 * A write that fails for lack of room anyway (ENOSPC, quota) is reported through `storageFull`:
 * one warn line naming the upload and the free space, a metric, and the 507 to answer.
 */
import type { IncomingMessage } from 'node:http';
import type { SizeOrPercent } from '../config/index.js';
import { AppError } from '../errors.js';
import { metrics, type Logger } from '../observability/index.js';
import { STORAGE_RETRY_AFTER_S, storageFullCause, type SpaceProbe, type StorageCapacity } from '../storage/index.js';
import { PromisedBytes } from './promised-bytes.js';
import { admitGrowth, admitNew, admitResume, clearBand, headroom, reserveBytes, spaceLevel, type SpaceLevel, type SpaceReading, type SpaceVerdict } from './space-budget.js';

/** The unfinished uploads of the store (TusFileStore satisfies it). */
export interface UploadSpaceSource {
  /** Every unfinished upload with its declared length and stored bytes (read once, at start). */
  listUnfinished(): Promise<ReadonlyArray<{ readonly id: string; readonly size: number | null; readonly offset: number }>>;
  /** One upload as it is now; null when gone. */
  summarize(id: string): Promise<{ readonly size: number | null; readonly offset: number; readonly finished: boolean } | null>;
}

export interface StorageSpaceOptions {
  readonly probe: SpaceProbe;
  /** storage.min_free_space. */
  readonly reserve: SizeOrPercent;
  readonly uploads: UploadSpaceSource;
  readonly log: Logger;
  /** How often the state and the gauges are re-read without traffic. Default 5 s. */
  readonly recheckMs?: number;
  /** Called when the emergency state starts ('low') or ends ('ok'). */
  readonly onLevel?: (level: SpaceLevel) => void;
  /** How long an unfinished upload without a request keeps its room promised. Default PROMISE_LAPSE_MS. */
  readonly promiseLapseMs?: number;
  readonly now?: () => number;
  /**
   * [limits] max_promised_bytes_per_client: what one client's unfinished uploads may hold in
   * promised bytes (a size, or a percent of the free space above the reserve; never below `minBytes`).
   * Without it, one client creating uploads it never sends promised the whole disk away for
   * [tus] expiration (82 requests, no body byte), and everyone else got 507.
   */
  readonly clientShare?: { readonly of: (req: IncomingMessage) => string; readonly max: SizeOrPercent; readonly minBytes: number };
}

/** What the admin API and /ready show. Sizes are null when the store cannot tell its capacity. */
export interface SpaceView {
  readonly level: SpaceLevel;
  readonly totalBytes: number | null;
  readonly freeBytes: number | null;
  readonly reserveBytes: number | null;
  readonly promisedBytes: number;
  /** What a new upload may still declare. */
  readonly headroomBytes: number | null;
  /** Unfinished uploads (and requests holding space for one) in the account. */
  readonly uploadsHoldingPromises: number;
}

interface Hold {
  key: string;
  bound: boolean;
  detach: () => void;
}

/**
 * An unfinished upload without a request for this long stops holding free space (its next append
 * is checked as it comes). One hour: a phone's pause or a resume after a dead zone keeps its room;
 * creations that never send a byte do not hold the disk for the 24 h of [tus] expiration.
 */
export const PROMISE_LAPSE_MS = 60 * 60_000;

export class StorageSpace {
  readonly #o: StorageSpaceOptions;
  readonly #account: PromisedBytes;
  readonly #lapseMs: number;
  #lapseTimer: NodeJS.Timeout | undefined;
  readonly #holds = new WeakMap<IncomingMessage, Hold>();
  /** What ends each request's part in the account (see requestOver). */
  readonly #endings = new WeakMap<IncomingMessage, Array<() => void>>();
  #nextHold = 0;
  /** Account keys by the client that made them (this process's creations; none after a restart). */
  readonly #byClient = new Map<string, Set<string>>();
  readonly #clientOfKey = new Map<string, string>();
  #level: SpaceLevel = 'ok';
  #timer: NodeJS.Timeout | undefined;

  constructor(options: StorageSpaceOptions) {
    this.#o = options;
    this.#account = new PromisedBytes(options.now);
    this.#lapseMs = options.promiseLapseMs ?? PROMISE_LAPSE_MS;
  }

  get level(): SpaceLevel {
    return this.#level;
  }

  /** Rebuilds the account from the store, takes a first reading and starts the periodic re-check. */
  async start(): Promise<void> {
    const uploads = await this.#o.uploads.listUnfinished();
    this.#account.reset(uploads.map((u) => [u.id, { size: u.size, stored: u.offset }] as const));
    const reading = await this.refresh();
    metrics.refreshStorageGaugesWith(() => this.refresh());
    if (reading !== null && reading.reserveBytes * 2 > reading.totalBytes) {
      this.#o.log.warn({ reserveBytes: reading.reserveBytes, totalBytes: reading.totalBytes }, 'storage.min_free_space is more than half of the data directory\'s file system');
    }
    const every = this.#o.recheckMs ?? 5_000;
    this.#timer = setInterval(() => void this.refresh().catch((err: unknown) => this.#o.log.warn({ err }, 'Free space check failed')), every);
    this.#timer.unref();
    this.#lapseTimer = setInterval(() => this.lapseIdle(), Math.min(60_000, this.#lapseMs));
    this.#lapseTimer.unref();
  }

  /** Unfinished uploads without a request for promiseLapseMs (1 h) stop holding room (PromisedBytes.lapse); also run every minute. */
  lapseIdle(): number {
    const lapsed = this.#account.lapse(this.#lapseMs);
    if (lapsed > 0) this.#o.log.info({ uploads: lapsed, idleMs: this.#lapseMs }, 'Unfinished uploads idle too long hold no free space any more; they are checked again when they resume');
    return lapsed;
  }

  stop(): void {
    clearInterval(this.#lapseTimer);
    clearInterval(this.#timer);
  }

  /** Reads the capacity now, follows the emergency state (and logs its changes), sets the gauges. */
  async refresh(): Promise<SpaceReading | null> {
    return this.#readNow(true);
  }

  /**
   * Step of the intake gate: a new upload declaring `bytes` (undefined: deferred or chunked).
   * Throws ERR_INSUFFICIENT_STORAGE when it does not fit; otherwise its bytes are promised
   * until the request is over, or for as long as the upload stays unfinished once
   * `uploadCreated` binds them to it.
   */
  async claimNew(req: IncomingMessage, bytes: number | undefined): Promise<void> {
    const client = this.#o.clientShare?.of(req);
    // Synchronous (the probe answers at once): the verdict and the promise are one step, so two
    // concurrent creations cannot both take the last bytes. The client's share is judged on the
    // same reading (one statfs).
    this.#admit((reading) => {
      if (client !== undefined) this.#refuseBeyondShare(client, bytes ?? 0, reading);
      return admitNew(reading, this.#level, bytes);
    });
    const key = `request-${++this.#nextHold}`;
    this.#account.set(key, { size: bytes ?? null, stored: 0 });
    if (client !== undefined) this.#own(key, client);
    const hold: Hold = { key, bound: false, detach: this.#account.stream(key, receivedSince(req)) };
    this.#holds.set(req, hold);
    this.#whenOver(req, () => {
      hold.detach();
      if (!hold.bound) {
        this.#account.delete(hold.key);
        this.#disown(hold.key);
      }
    });
  }

  /**
   * The request's body is done (the body guard's release): what it received counts as stored,
   * and a hold no upload took is given back. Also happens by itself when the request or its
   * connection closes; whichever comes first, once.
   */
  requestOver(req: IncomingMessage): void {
    const endings = this.#endings.get(req) ?? [];
    this.#endings.delete(req);
    for (const end of endings) end();
  }

  /** The request's new upload exists now as `uploadId`: its promise stays until it is finished or removed. */
  uploadCreated(req: IncomingMessage, uploadId: string, size: number | null): void {
    const hold = this.#holds.get(req);
    if (hold !== undefined && !hold.bound && this.#account.get(hold.key) !== undefined) {
      this.#account.rekey(hold.key, uploadId);
      const client = this.#clientOfKey.get(hold.key);
      this.#disown(hold.key);
      if (client !== undefined) this.#own(uploadId, client);
      hold.key = uploadId;
      hold.bound = true;
      return;
    }
    if (this.#account.get(uploadId) === undefined) this.#account.set(uploadId, { size, stored: 0 });
  }

  /**
   * Before an append's body (tus PATCH): see the file comment. `declaredLength` is the
   * Upload-Length a deferred upload declares with this request. Unknown uploads pass (the
   * protocol answers them).
   */
  async checkAppend(req: IncomingMessage, append: { uploadId: string; requestBytes: number | undefined; declaredLength: number | undefined }): Promise<void> {
    const { uploadId, requestBytes, declaredLength } = append;
    const state = this.#account.get(uploadId);
    if (state === undefined) return;
    let growth = 0;
    const lapsed = this.#account.isLapsed(uploadId);
    this.#admit((reading) => {
      // A lapsed promise is not counted any more: its rest must fit like new bytes.
      if (state.size !== null) return lapsed ? admitGrowth(reading, state.size - state.stored) : admitResume(reading, state.size - state.stored);
      if (declaredLength !== undefined) return admitGrowth(reading, declaredLength - state.stored);
      if (requestBytes === undefined && this.#level === 'low') return { ok: false, reason: 'below_reserve' };
      return admitGrowth(reading, (growth = requestBytes ?? 0));
    });
    if (state.size === null && declaredLength !== undefined) this.#account.update(uploadId, { size: declaredLength });
    this.#whenOver(req, this.#account.stream(uploadId, receivedSince(req), growth));
  }

  /** Re-reads one upload from the store after a request on it (one record read and stat). */
  async settle(uploadId: string): Promise<void> {
    if (this.#account.get(uploadId) === undefined) return;
    const now = await this.#o.uploads.summarize(uploadId).catch(() => undefined);
    if (now === undefined || this.#account.isStreaming(uploadId)) return; // a newer request settles it
    if (now === null || now.finished) this.forget(uploadId);
    else this.#account.update(uploadId, { size: now.size, stored: now.offset });
  }

  /** Finished, terminated, expired or discarded: nothing is promised to it any more. */
  forget(uploadId: string): void {
    this.#account.delete(uploadId);
    this.#disown(uploadId);
  }

  #own(key: string, client: string): void {
    this.#clientOfKey.set(key, client);
    let keys = this.#byClient.get(client);
    if (keys === undefined) this.#byClient.set(client, (keys = new Set()));
    keys.add(key);
  }

  #disown(key: string): void {
    const client = this.#clientOfKey.get(key);
    if (client === undefined) return;
    this.#clientOfKey.delete(key);
    const keys = this.#byClient.get(client);
    keys?.delete(key);
    if (keys?.size === 0) this.#byClient.delete(client);
  }

  /** 429 when the client's unfinished uploads with `bytes` more would hold more than its share (none on a store without a capacity: #admit reads nothing there). */
  #refuseBeyondShare(client: string, bytes: number, reading: SpaceReading): void {
    const share = this.#o.clientShare!;
    if (('bytes' in share.max ? share.max.bytes : share.max.percent) === 0) return; // "0" or "0%": no cap
    // A percent of what uploads may take now (free space above the reserve): stable while the
    // disk has room, shrinking as it fills.
    const room = Math.max(0, reading.freeBytes - reading.reserveBytes);
    const max = Math.max(share.minBytes, reserveBytes(share.max, room));
    let held = 0;
    for (const key of [...(this.#byClient.get(client) ?? [])]) {
      if (this.#account.get(key) === undefined) this.#disown(key); // settled away meanwhile
      else held += this.#account.of(key);
    }
    if (held + bytes <= max) return;
    this.#o.log.info({ client, heldBytes: held, declaredBytes: bytes, maxBytes: max }, 'Upload refused: the client\'s unfinished uploads hold its share of the storage ([limits] max_promised_bytes_per_client)');
    throw new AppError('ERR_CLIENT_STORAGE_SHARE', { headers: { 'Retry-After': '60' } });
  }

  /**
   * A write of an upload's body failed. For a store that ran out of room: one warn line with the
   * upload and the free space, hmac_storage_full_total, and the 507 to answer. A 507 decided
   * elsewhere (finalization) passes as it is. null for any other failure.
   */
  async storageFull(err: unknown, upload: { protocol: 'put' | 'tus'; uploadId: string; log?: Logger | undefined }): Promise<AppError | null> {
    if (AppError.is(err, 'ERR_INSUFFICIENT_STORAGE')) return err; // decided (and reported) where it was raised
    const cause = storageFullCause(err);
    if (cause === null) return null;
    metrics.storageFull.inc({ where: upload.protocol });
    const reading = await this.refresh().catch(() => null);
    const fields = {
      protocol: upload.protocol,
      uploadId: upload.uploadId,
      cause,
      freeBytes: reading?.freeBytes ?? null,
      reserveBytes: reading?.reserveBytes ?? null,
      promisedBytes: this.#account.total(),
    };
    const kept = upload.protocol === 'tus' ? 'Upload stopped: storage full, received bytes kept' : 'Upload stopped: storage full, nothing kept';
    (upload.log ?? this.#o.log).warn(fields, kept);
    return new AppError('ERR_INSUFFICIENT_STORAGE', { cause: err, headers: { 'Retry-After': String(STORAGE_RETRY_AFTER_S) } });
  }

  /** For /ready: null when fine, else the reason (names storage, no paths). */
  async problem(): Promise<string | null> {
    await this.refresh();
    return this.#level === 'low' ? 'storage is below its reserve (storage.min_free_space): new uploads are refused' : null;
  }

  async view(): Promise<SpaceView> {
    const reading = await this.refresh();
    return {
      level: this.#level,
      totalBytes: reading?.totalBytes ?? null,
      freeBytes: reading?.freeBytes ?? null,
      reserveBytes: reading?.reserveBytes ?? null,
      promisedBytes: this.#account.total(),
      headroomBytes: reading === null ? null : headroom(reading),
      uploadsHoldingPromises: this.#account.count,
    };
  }

  /**
   * Runs `fn` once, when the request is over: requestOver, the request's 'close', or its
   * connection's 'close' (a body left unread, e.g. after a 507, may never close the request
   * itself). At once when the request is gone already.
   */
  #whenOver(req: IncomingMessage, fn: () => void): void {
    const socket = req.socket;
    if (req.destroyed || socket.destroyed) {
      fn();
      return;
    }
    let done = false;
    const end = () => {
      if (done) return;
      done = true;
      req.off('close', end);
      socket.off('close', end);
      fn();
    };
    req.once('close', end);
    socket.once('close', end);
    const endings = this.#endings.get(req);
    if (endings === undefined) this.#endings.set(req, [end]);
    else endings.push(end);
  }

  /**
   * Refuses unless `decide` admits the request. Synchronous (the probe answers at once). Judged
   * first on the account's O(1) bound; only a refusal is judged again on the exact total, so
   * the answer is the exact one (every verdict admits less as more is promised).
   */
  #admit(decide: (reading: SpaceReading) => SpaceVerdict): void {
    const reading = this.#readNow(false);
    if (reading === null) return;
    if (decide(reading).ok) return;
    const exact = this.#readNow(true);
    if (exact !== null) refuseUnless(decide(exact));
  }

  /**
   * `exact` false (the per-request checks): promised bytes from the account's bound while that
   * leaves the state plainly 'ok' (with 1,000 bodies in flight, the exact total costs 1,000 calls
   * per check); the gauge of promised bytes is set from exact readings only (/metrics refreshes).
   */
  #readNow(exact: boolean): SpaceReading | null {
    const capacity = this.#o.probe.capacity();
    return capacity === null ? this.#unknown(exact) : this.#reading(capacity, exact);
  }

  #reading(capacity: StorageCapacity, exact: boolean): SpaceReading {
    const base = { totalBytes: capacity.totalBytes, freeBytes: capacity.freeBytes, reserveBytes: reserveBytes(this.#o.reserve, capacity.totalBytes) };
    let reading: SpaceReading = { ...base, promisedBytes: exact ? this.#account.total() : this.#account.bound() };
    // Near the line the level depends on the exact figure (the bound may only overstate it).
    if (!exact && headroom(reading) < clearBand(reading)) {
      reading = { ...base, promisedBytes: this.#account.total() };
      exact = true;
    }
    metrics.storageTotalBytes.set(reading.totalBytes);
    metrics.storageFreeBytes.set(reading.freeBytes);
    metrics.storageReservedBytes.set(reading.reserveBytes);
    if (exact) metrics.storagePromisedBytes.set(reading.promisedBytes);
    const level = spaceLevel(reading, this.#level);
    if (level !== this.#level) this.#transition(level, reading);
    return reading;
  }

  #unknown(exact: boolean): null {
    if (exact) metrics.storagePromisedBytes.set(this.#account.total());
    if (this.#level !== 'ok') this.#transition('ok', null);
    return null;
  }

  #transition(to: SpaceLevel, reading: SpaceReading | null): void {
    this.#level = to;
    metrics.storageEmergency.set(to === 'low' ? 1 : 0);
    const fields = reading ?? {};
    if (to === 'low') this.#o.log.warn(fields, 'Storage emergency mode activated: free space below the reserve, new uploads refused');
    else this.#o.log.info(fields, 'Storage emergency mode cleared');
    this.#o.onLevel?.(to);
  }
}

function refuseUnless(verdict: SpaceVerdict): void {
  if (verdict.ok) return;
  metrics.storageRefused.inc({ reason: verdict.reason });
  throw new AppError('ERR_INSUFFICIENT_STORAGE', { headers: { 'Retry-After': String(STORAGE_RETRY_AFTER_S) } });
}

/** Body bytes the request has read off its socket since now (what the parser buffered included). */
function receivedSince(req: IncomingMessage): () => number {
  const socket = req.socket;
  const start = socket.bytesRead - req.readableLength;
  return () => Math.max(0, socket.bytesRead - start);
}
