import type { Readable } from 'node:stream';

/** What is known about a published (downloadable) file. */
export interface PublishedFile {
  path: string;
  size: number;
  /** The type the uploader declared (PUT Content-Type, tus metadata filetype). */
  contentType: string;
  mtimeMs: number;
  /** Strong validator for If-None-Match / If-Range. */
  etag: string;
}

export interface PublishMeta {
  contentType: string;
  /** tus upload id or PUT request id, for tracing a file back to its upload. */
  uploadId: string;
}

export type PublishOutcome = 'published' | 'exists';

/**
 * Published files, addressed by decoded slot path. A path is written once: publishing never
 * overwrites, which is what makes a PUT and a tus upload of the same slot unable to both win.
 */
export interface PublishedStore {
  /** null when nothing is published at `path` (including when `path` names a directory). */
  stat(path: string): Promise<PublishedFile | null>;
  /** Bytes `start`..`end` inclusive, or the whole file. The caller has checked the range against stat(). */
  read(path: string, range?: { start: number; end: number }): Readable;
  /**
   * Moves a complete local file to `path` atomically. On 'published' the source is consumed; on
   * 'exists' (the path, or a parent of it, is taken) the source is left for the caller to remove.
   */
  publishFile(path: string, sourceFile: string, meta: PublishMeta): Promise<PublishOutcome>;
  /** A fresh temp file name on the same filesystem, for PUT bodies still arriving. */
  newIncomingFile(): string;
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

export function canDelete(store: PublishedStore): store is PublishedStore & DeletablePublishedStore {
  return typeof (store as Partial<DeletablePublishedStore>).deletedAt === 'function';
}
