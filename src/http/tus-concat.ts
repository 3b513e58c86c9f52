/**
 * tus concatenation (tus-js-client `parallelUploads`) through slots. Partial uploads are created
 * with the same slot as their final upload; together they count as the slot's one upload: at
 * most `max_concat_parts` of them, their lengths together never above the signed size (or
 * max_upload_size for v3, which binds no size). The final POST (same slot) names its parts in
 * order; they must be finished partials of that slot, not used before, and, for size-binding
 * schemes, add up to the signed size. The final's file is joined by the store (first part
 * linked, the rest appended once) and then finalized like any upload.
 *
 * A final POST repeated after a crash during its join (same slot, same parts in the same
 * order) completes that final upload instead of failing: its parts are marked as consumed by it
 * before the join starts. Once the final is complete its parts are gone: the caller answers a
 * repeat with that final (tus-endpoint.ts earlierFinal), and serializes the finals of a slot.
 */
import type { Lock, Locker } from '@tus/utils';
import type { AuthorizedSlot } from '../auth/index.js';
import { AppError } from '../errors.js';
import { isFinishedRecord, serverStateOf, type StoredUpload, type TusFileStore, type UploadServerState } from '../storage/index.js';

export type UploadConcat = { readonly kind: 'partial' } | { readonly kind: 'final'; readonly ids: readonly string[] };

/** Header carrying the whole file's signed size on a partial's creation (v, v2, token sign it). */
export const SLOT_LENGTH_HEADER = 'Upload-Slot-Length';

/**
 * Parses `Upload-Concat`: `partial`, or `final;<url> <url>…` whose URLs (absolute or paths) name
 * uploads under one of `tusPrefixes` (e.g. "/files/"). Throws ERR_CONCAT_MALFORMED otherwise.
 */
export function parseUploadConcat(header: string, tusPrefixes: readonly string[]): UploadConcat {
  const value = header.trim();
  if (value === 'partial') return { kind: 'partial' };
  const m = /^final;(.*)$/.exec(value);
  const urls = m?.[1]!.trim().split(/ +/).filter((u) => u !== '') ?? [];
  if (urls.length === 0) throw new AppError('ERR_CONCAT_MALFORMED', { message: 'Upload-Concat must be "partial" or "final;<url> <url>…"' });
  return { kind: 'final', ids: urls.map((u) => uploadIdOf(u, tusPrefixes)) };
}

function uploadIdOf(url: string, prefixes: readonly string[]): string {
  let pathname: string;
  try {
    pathname = new URL(url, 'http://upload.invalid').pathname;
  } catch {
    throw new AppError('ERR_CONCAT_MALFORMED', { message: 'Upload-Concat names an invalid URL' });
  }
  const prefix = prefixes.find((p) => pathname.startsWith(p));
  let id = '';
  try {
    id = prefix ? decodeURIComponent(pathname.slice(prefix.length)) : '';
  } catch {
    // invalid percent-encoding: no id
  }
  if (!/^[A-Za-z0-9_-]+$/.test(id)) throw new AppError('ERR_CONCAT_MALFORMED', { message: 'Upload-Concat names a URL that is not an upload of this server' });
  return id;
}

export interface ConcatDeps {
  readonly store: TusFileStore;
  readonly locker: Locker;
  readonly maxParts: number;
  readonly maxUploadBytes: number;
  readonly now: () => number;
}

/** What a final POST asks for, once its slot is authorized. */
export interface FinalRequest {
  readonly slot: AuthorizedSlot;
  readonly ids: readonly string[];
  /** The final's Upload-Metadata as the client sent it. */
  readonly metadata: Record<string, string | null> | undefined;
  readonly expectedSha256: string | undefined;
  /** Used when this is a new final upload (not the repeat of an interrupted one). */
  readonly newId: string;
  readonly signal: AbortSignal;
}

export class TusConcatenation {
  constructor(private readonly deps: ConcatDeps) {}

  /**
   * Admits a partial of `size` bytes under `slot`, to be created with id `id`: within the
   * slot's part count and size. Resolves a release to call once the creation is over (partial
   * creations of one slot are serialized, so the count is exact).
   */
  async admitPartial(slot: AuthorizedSlot, size: number, id: string, signal: AbortSignal): Promise<() => Promise<void>> {
    const bound = slot.signedSize ?? this.deps.maxUploadBytes;
    if (size > bound) throw new AppError('ERR_CONCAT_TOO_LARGE');
    const lock = await this.#lock(`concat.${slot.path}`, signal);
    try {
      const live = await this.#livePartials(slot.path);
      if (live.length >= this.deps.maxParts) throw new AppError('ERR_CONCAT_TOO_MANY_PARTS');
      if (live.reduce((n, p) => n + p.size, 0) + size > bound) throw new AppError('ERR_CONCAT_TOO_LARGE');
      await this.deps.store.setPartialsOf(slot.path, [...live, { id, size }]);
    } catch (err) {
      await lock.unlock();
      throw err;
    }
    return () => lock.unlock();
  }

  /** Whether the slot has partials still waiting for their final: then they are its one upload. */
  async hasLiveParts(slotPath: string): Promise<boolean> {
    return (await this.#livePartials(slotPath)).length > 0;
  }

  /**
   * The size to check a final's signature against when it declares none: the signed size its
   * first part was created under (checked then), else the parts' lengths together.
   */
  async signedSizeOf(ids: readonly string[]): Promise<number> {
    let total = 0;
    for (const id of ids) {
      const record = await this.deps.store.record(id);
      // An unknown part is the final's mistake, not the signature's (which would be checked against 0).
      if (record === null) throw new AppError('ERR_CONCAT_PART_INVALID', { message: 'A part is unknown or not a partial upload' });
      if (record.hfs?.signedSize !== undefined) return record.hfs.signedSize;
      total += record.size ?? 0;
    }
    return total;
  }

  /** Validates the parts, records the final upload and joins its file. Resolves its record (finished bytes, not yet marked finished). */
  async createFinal(req: FinalRequest): Promise<StoredUpload> {
    const { store } = this.deps;
    if (new Set(req.ids).size !== req.ids.length) throw new AppError('ERR_CONCAT_PART_USED', { message: 'A part is listed twice' });
    if (req.ids.length > this.deps.maxParts) throw new AppError('ERR_CONCAT_TOO_MANY_PARTS');
    const locks: Lock[] = [];
    try {
      for (const id of [...req.ids].sort()) locks.push(await this.#lock(id, req.signal));
      const parts = await Promise.all(req.ids.map((id) => store.record(id)));
      const resumed = await this.#interruptedFinal(req, parts);
      const finalId = resumed?.id ?? req.newId;
      if (resumed) locks.push(await this.#lock(finalId, req.signal));
      else this.#validate(req, parts);
      const sizes = parts.map((p) => p!.size!);
      const total = sizes.reduce((n, s) => n + s, 0);
      if (req.slot.signedSize !== undefined && total !== req.slot.signedSize) throw new AppError('ERR_CONCAT_LENGTH_MISMATCH');
      if (total > this.deps.maxUploadBytes) throw new AppError('ERR_TOO_LARGE');
      const record = resumed ?? this.#finalRecord(req, total);
      if (!resumed) {
        await store.putRecord(record);
        for (const id of req.ids) await store.updateServerState(id, (s) => ({ ...s, concat: { kind: 'partial', consumedBy: finalId } }));
      }
      await store.concatenate(finalId, req.ids.map((id, i) => ({ id, size: sizes[i]! })));
      return record;
    } finally {
      for (const lock of locks.reverse()) await lock.unlock().catch(() => {});
    }
  }

  /** Removes the parts of a final upload once it is admitted (or refused for good). Tolerates parts already gone. */
  async removeParts(ids: readonly string[]): Promise<void> {
    for (const id of ids) await this.deps.store.remove(id).catch(() => {});
  }

  #validate(req: FinalRequest, parts: ReadonlyArray<StoredUpload | null>): void {
    for (const part of parts) {
      const state = part && serverStateOf(part);
      if (!part || state?.concat?.kind !== 'partial') throw new AppError('ERR_CONCAT_PART_INVALID', { message: 'A part is unknown or not a partial upload' });
      if (state.slotPath !== req.slot.path) throw new AppError('ERR_CONCAT_PART_FOREIGN');
      if (state.concat.consumedBy !== undefined) throw new AppError('ERR_CONCAT_PART_USED');
      if (!isFinishedRecord(part)) throw new AppError('ERR_CONCAT_PART_INVALID', { message: 'A part is not finished yet' });
    }
  }

  /** The unfinished final upload a crash interrupted, when every part names it and it names exactly these parts. */
  async #interruptedFinal(req: FinalRequest, parts: ReadonlyArray<StoredUpload | null>): Promise<StoredUpload | null> {
    const owner = parts[0]?.hfs?.concat?.kind === 'partial' ? parts[0].hfs.concat.consumedBy : undefined;
    if (owner === undefined || !parts.every((p) => p?.hfs?.concat?.kind === 'partial' && p.hfs.concat.consumedBy === owner && isFinishedRecord(p))) return null;
    const final = await this.deps.store.record(owner);
    const concat = final?.hfs?.concat;
    if (!final || isFinishedRecord(final) || concat?.kind !== 'final' || final.hfs?.slotPath !== req.slot.path) return null;
    return concat.parts.length === req.ids.length && concat.parts.every((id, i) => id === req.ids[i]) ? final : null;
  }

  #finalRecord(req: FinalRequest, total: number): StoredUpload {
    const nowMs = this.deps.now();
    const hfs: UploadServerState = {
      slotPath: req.slot.path,
      contentType: req.slot.contentType,
      scheme: req.slot.scheme,
      ...(req.slot.signedSize !== undefined && { signedSize: req.slot.signedSize }),
      createdAtMs: nowMs,
      ...(req.expectedSha256 !== undefined && { expectedSha256: req.expectedSha256 }),
      concat: { kind: 'final', parts: [...req.ids] },
    };
    // offset 0 until the join is done and completion marks it finished (offset = size).
    return { id: req.newId, size: total, offset: 0, ...(req.metadata && { metadata: req.metadata }), creation_date: new Date(nowMs).toISOString(), hfs };
  }

  /** Partials of the slot still waiting for their final: the index, pruned of uploads removed, expired or joined since. */
  async #livePartials(slotPath: string): Promise<Array<{ id: string; size: number }>> {
    const live: Array<{ id: string; size: number }> = [];
    for (const entry of await this.deps.store.partialsOf(slotPath)) {
      const record = await this.deps.store.record(entry.id);
      const concat = record?.hfs?.concat;
      if (concat?.kind === 'partial' && concat.consumedBy === undefined) live.push(entry);
    }
    return live;
  }

  async #lock(key: string, signal: AbortSignal): Promise<Lock> {
    const lock = this.deps.locker.newLock(key);
    await lock.lock(signal, async () => {});
    return lock;
  }
}
