/**
 * The stored record of a tus upload: @tus/file-store's JSON (id, size, offset, the client's
 * metadata, creation date) plus the server's own state under `hfs`. The client's
 * `Upload-Metadata` is kept exactly as sent and never mixed with server state, so HEAD returns
 * it unchanged and the slot path does not leak to whoever holds the upload URL.
 *
 * Uploads created before the record carried `hfs` kept the slot path and type in the metadata
 * (`hfs-slot`, `hfs-type`): they are read as the record, and the two keys are hidden from HEAD.
 * Pure: no I/O.
 */
import type { Scheme } from '../config/index.js';

export const LEGACY_SLOT_KEY = 'hfs-slot';
export const LEGACY_TYPE_KEY = 'hfs-type';

/** Concatenation (tus `Upload-Concat`): a partial of a slot, or the final joining partials. */
export type ConcatRole =
  /** `consumedBy`: the final upload that joined this partial. */
  | { readonly kind: 'partial'; readonly consumedBy?: string }
  /** Partial upload ids in order. */
  | { readonly kind: 'final'; readonly parts: readonly string[] };

/** What the server knows about an upload that the client did not send as metadata. */
export interface UploadServerState {
  /** Decoded slot path: where the file is published. */
  readonly slotPath: string;
  /** The type the slot was signed for, served on GET. */
  readonly contentType: string;
  /** Absent on records written before this field existed. */
  readonly scheme?: Scheme;
  /** The whole file's size the signature binds (v, v2, token). */
  readonly signedSize?: number;
  readonly createdAtMs?: number;
  /** The whole file's sha256 the client declared (lowercase hex), checked at the last PATCH. */
  readonly expectedSha256?: string;
  readonly concat?: ConcatRole;
  /** Created through IETF Resumable Uploads: the interop version and the request that created it. */
  readonly rufh?: { readonly interop: number; readonly via: 'put' | 'post' };
}

/** The JSON stored per upload (the @tus/file-store fields this server reads, plus `hfs`). */
export interface StoredUpload {
  id: string;
  size?: number;
  offset: number;
  metadata?: Record<string, string | null>;
  creation_date?: string;
  hfs?: UploadServerState;
}

/** The server's state of an upload, from `hfs` or, for older records, from the legacy metadata keys. Null: not created through a slot. */
export function serverStateOf(info: Pick<StoredUpload, 'metadata' | 'hfs'>): UploadServerState | null {
  if (info.hfs) return info.hfs;
  const slotPath = info.metadata?.[LEGACY_SLOT_KEY];
  const contentType = info.metadata?.[LEGACY_TYPE_KEY];
  return slotPath && contentType ? { slotPath, contentType } : null;
}

/**
 * The metadata exactly as the client sent it (undefined when it sent none). Legacy records lose
 * the two keys the server added; a record with `hfs` is returned as stored, whatever its keys.
 */
export function clientMetadataOf(info: Pick<StoredUpload, 'metadata' | 'hfs'>): Record<string, string | null> | undefined {
  if (info.metadata === undefined || info.hfs) return info.metadata;
  if (!(LEGACY_SLOT_KEY in info.metadata) && !(LEGACY_TYPE_KEY in info.metadata)) return info.metadata;
  const { [LEGACY_SLOT_KEY]: _slot, [LEGACY_TYPE_KEY]: _type, ...rest } = info.metadata;
  return Object.keys(rest).length > 0 ? rest : undefined;
}

/** Every byte arrived: markFinished sets offset = size (FileStore itself leaves the stored offset at 0). */
export function isFinishedRecord(info: Pick<StoredUpload, 'size' | 'offset'>): info is StoredUpload & { size: number } {
  return typeof info.size === 'number' && info.offset === info.size;
}

export function isPartial(info: Pick<StoredUpload, 'hfs'>): boolean {
  return info.hfs?.concat?.kind === 'partial';
}

/** Upload ids are base64url (auth/upload-id.ts); anything else, e.g. the slot index keys beside the records, is no upload. */
/** A record file's text as a record; null when it is none (not JSON, or JSON that is no object: a disk error, a hand edit). */
export function parseStoredUpload(text: string): StoredUpload | null {
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null ? (parsed as StoredUpload) : null;
  } catch {
    return null;
  }
}

export function isUploadId(id: string): boolean {
  return /^[A-Za-z0-9_-]{1,128}$/.test(id);
}
