/**
 * Published (downloadable) files, addressed by decoded slot path. Implemented on the local
 * filesystem (FilePublishedStore) and on S3 (S3PublishedStore); both pass
 * test/conformance/published-store.suite.ts.
 *
 * A path is written once: publishing never overwrites, which is what makes a PUT and a tus
 * upload of the same slot unable to both win. A file becomes visible whole, with its record
 * (type, sha256, origin), or not at all.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { parse as parseContentType } from 'content-type';
import { DEFAULT_CONTENT_TYPE } from '../auth/index.js';
import type { ByteRange, UploadSource } from './upload-source.js';

/** What is known about a published (downloadable) file. */
export interface PublishedFile {
  path: string;
  size: number;
  /** The type the uploader declared (PUT Content-Type, tus metadata filetype). */
  contentType: string;
  /** This path's publish time (Last-Modified), ms since the epoch; not the shared content's mtime. */
  mtimeMs: number;
  /** Strong validator for If-None-Match / If-Range, distinct per path even for identical bytes. */
  etag: string;
}

/**
 * The ETag of `path` holding `content` (its sha256, or what stands in for it): the path is hashed
 * in, so identical bytes at two paths (a dedup hit, or S3's own content ETag) never share a
 * validator that would tell one uploader about the other's file. Every backend uses this.
 */
export function pathEtag(content: string, path: string): string {
  return `"${createHash('sha256').update(content).update('\0').update(path).digest('base64url').slice(0, 27)}"`;
}

/**
 * The type a file is stored with: the declared one when it is a media type (one type/subtype,
 * well-formed parameters) in printable ASCII, else application/octet-stream, on every backend.
 * Anything else could not be an S3 header (CR LF fails in the SDK, non-ASCII fails S3's
 * signature check) and would be served as application/octet-stream anyway.
 */
export function storableContentType(declared: string): string {
  if (!/^[\x20-\x7e]+$/.test(declared)) return DEFAULT_CONTENT_TYPE;
  try {
    parseContentType(declared);
    return declared;
  } catch {
    return DEFAULT_CONTENT_TYPE;
  }
}

export interface PublishMeta {
  contentType: string;
  /** tus upload id or PUT request id, for tracing a file back to its upload. */
  uploadId: string;
}

/** What the finalization pipeline records beside a file it publishes. */
export interface PublishRecord extends PublishMeta {
  sha256: string;
  size: number;
  protocol: string;
  /** When the upload's last byte arrived, ms since the epoch. */
  receivedAtMs: number;
}

/**
 * The record of a published file: every record has publishedAt; pipeline-published ones have the
 * rest. `deletedAtMs`: the file was deleted for good and the record is its tombstone.
 */
export type StoredRecord = PublishMeta & { publishedAt: string; deletedAtMs?: number } & Partial<PublishRecord>;

/**
 * 'published': made visible now. 'already': this upload (same uploadId, or the same stored
 * content) is there already, from an earlier run. 'taken': another file holds the path.
 * 'withdrawn': the path holds a tombstone (its file was deleted for good; DeletablePublishedStore).
 */
export type LinkPublishOutcome = 'published' | 'already' | 'taken' | 'withdrawn';

/** Called between the steps of a publish (crash tests kill the process there). */
export interface PublishStepHooks {
  afterRecord?(): void;
  afterLink?(): void;
}

/** One published file, as a listing yields it. */
export interface PublishedEntry {
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
}

export interface PublishedStore {
  /** null when nothing is published at `path` (including when `path` names a directory). */
  stat(path: string): Promise<PublishedFile | null>;
  /** The record written with the file, or null (not published, or published without one). */
  record(path: string): Promise<StoredRecord | null>;
  /**
   * Bytes `start`..`end` inclusive, or the whole file, streamed (never buffered whole). The
   * caller has checked the range against stat(); a file that is gone errors on the stream.
   */
  read(path: string, range?: ByteRange): Readable;
  /**
   * Makes `source`'s bytes visible at `path` with `record`, atomically and idempotently (safe to
   * repeat after a crash at any point). A source of this store's own backend is adopted without
   * passing the bytes through this process; any other is streamed. The source is left in place.
   * Never overwrites: 'taken' when another upload holds the path.
   */
  publish(path: string, source: UploadSource, record: PublishRecord, hooks?: PublishStepHooks): Promise<LinkPublishOutcome>;
  /** Unpublishes `path` (bytes and record); false when nothing was there. */
  remove(path: string): Promise<boolean>;
  /** Every published file (for verify and recover), in no particular order, without holding them all in memory. */
  list(): AsyncIterable<PublishedEntry>;
}

/** A published store whose PUT bodies arrive in local temp files (the file backend). */
export interface LocalIncoming {
  /** A fresh temp file name on the same filesystem as the published files. */
  newIncomingFile(): string;
}

/** What deduplication adopted: the content entry to publish from. */
export interface AdoptedSource {
  readonly source: UploadSource;
  /** True when these bytes were new to the store; false when identical content was there already. */
  readonly fresh: boolean;
}

/**
 * Content-addressed storage for deduplication: each distinct content is stored once under its
 * sha256. Entries are never modified once written.
 */
export interface ContentStore {
  /**
   * Makes `source`'s bytes (whose digest the caller computed) available under `sha256` and returns
   * the entry as a source to publish from. Idempotent; the source is left in place. Rejects when
   * an entry exists with another size (a corrupt store) rather than publishing the wrong bytes.
   */
  adoptSource(source: UploadSource, sha256: string, size: number): Promise<AdoptedSource>;
}

/** 'deleted': the file (if any) is gone and the path holds a tombstone; 'foreign': another upload's file is there, nothing changed. */
export type DeleteOutcome = { readonly kind: 'deleted'; readonly sha256?: string } | { readonly kind: 'foreign' };

/**
 * Optional capability: a published file deleted for good. Its path keeps a tombstone, so it is
 * never published again (publishing answers 'withdrawn') and downloads answer 410.
 */
export interface DeletablePublishedStore {
  /** Idempotent; `uploadId` names the upload whose file it is. Resolves the deleted content's sha256 when recorded. */
  deleteForGood(path: string, uploadId: string, nowMs: number): Promise<DeleteOutcome>;
  /** When `path`'s file was deleted (ms since the epoch), or null when it never was. */
  deletedAt(path: string): Promise<number | null>;
}

/**
 * Optional capability of a store whose paths are folders (the file backend): a slot path that can
 * never hold a file, because a published file sits where one of its folders would be, or folders
 * sit where its file or record would be (`a/b` beside `a/b/c`). Asked before an upload's body is
 * read, so such a slot is refused (409) instead of answered 201 and never published.
 */
export interface PathObstruction {
  blocked(path: string): Promise<boolean>;
}

/** A path's claim, as ClaimedPaths lists it. */
export interface ClaimEntry {
  readonly path: string;
  /** When the claim was made, ms since the epoch. */
  readonly mtimeMs: number;
}

/**
 * Optional capability of a store that records who publishes a path apart from its file (S3:
 * `claims/`). A claim with no file beside it is a publish in progress or interrupted (its job
 * finishes it), or a file deleted behind the store's back: that claim alone would keep the slot
 * taken for ever, so verify reports it and recover releases it (ops/verify.ts, ops/recovery.ts).
 */
export interface ClaimedPaths {
  /** Claimed paths where no file was published when the store was listed, in no particular order. */
  unpublishedClaims(): AsyncIterable<ClaimEntry>;
  /** Frees `path` for another upload unless a file is published there (then false, nothing changed). */
  releaseClaim(path: string): Promise<boolean>;
}

export function hasClaims<T extends object>(store: T): store is T & ClaimedPaths {
  return typeof (store as Partial<ClaimedPaths>).releaseClaim === 'function';
}

export function canDelete(store: PublishedStore): store is PublishedStore & DeletablePublishedStore {
  return typeof (store as Partial<DeletablePublishedStore>).deletedAt === 'function';
}
