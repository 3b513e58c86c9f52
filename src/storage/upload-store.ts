/**
 * The tus upload store as the rest of the server uses it: the @tus/server DataStore that speaks
 * the protocol, plus what finalization, expiry and the operator commands need. Implemented on
 * the local filesystem (TusFileStore) and on S3 (S3TusStore); both pass
 * test/conformance/tus-store.suite.ts. Nothing here exposes where the bytes live: they are
 * read through an UploadSource.
 *
 * An upload is *finished* once every declared byte arrived (markFinished recorded it). A
 * finished upload never expires and keeps answering HEAD with offset = length, also after its
 * bytes were released (published), so a client resuming it sees it complete.
 */
import type { DataStore } from '@tus/utils';
import type { UploadServerState } from './tus-upload-record.js';
import type { UploadSource } from './upload-source.js';

export interface UploadSummary {
  id: string;
  slotPath: string | null;
  offset: number;
  /** null while the length is deferred. */
  size: number | null;
  finished: boolean;
  createdAt: string | null;
  /** Last write of bytes, when the store knows it. */
  lastActivityAt: string | null;
  /** A partial upload of a concatenation (one of its slot's parts), where the store knows it. */
  partial?: boolean;
}

/** Whole seconds from an upload summary's timestamp (createdAt, lastActivityAt) to `nowMs`; null when unknown. */
export function secondsSince(iso: string | null, nowMs: number): number | null {
  return iso === null ? null : Math.max(0, Math.round((nowMs - Date.parse(iso)) / 1000));
}

export interface FinishedUpload {
  readonly id: string;
  readonly size: number;
  /** The server's state (slot path, signed type, declared sha256); null for an upload not created through a slot. */
  readonly state: UploadServerState | null;
  readonly source: UploadSource;
}

export interface TusUploadStore {
  /** What @tus/server is given as its `datastore`. */
  readonly datastore: DataStore;
  /** The declared Upload-Length, when known; undefined for an unknown id or a deferred length. */
  declaredSize(id: string): Promise<number | undefined>;
  /** The upload's tus metadata as the client sent it, or null when the id is unknown. */
  metadata(id: string): Promise<Readonly<Record<string, string | null>> | null>;
  /** Records that every byte arrived (idempotent); rejects for an unknown or incomplete upload. */
  markFinished(id: string): Promise<void>;
  /** One upload as operators see it, or null when unknown (also for ids that are no valid key). */
  summarize(id: string): Promise<UploadSummary | null>;
  /** Uploads still receiving bytes. */
  listUnfinished(): Promise<UploadSummary[]>;
  /** Finished uploads whose bytes are still held (not yet released): what a crash may have left unqueued. */
  finished(): AsyncIterable<FinishedUpload>;
  /** The bytes of a finished upload, or null when unknown, unfinished or released. */
  source(id: string): Promise<UploadSource | null>;
  /**
   * Releases the bytes of a finished upload once they are published; its record stays so HEAD
   * still answers offset = length. Idempotent.
   */
  releaseData(id: string): Promise<void>;
  /** tus termination of an unfinished upload: nothing of it is left. Rejects when unknown. */
  remove(id: string): Promise<void>;
  /** Removes everything of an upload, finished or not; tolerates any part being gone. */
  discard(id: string): Promise<void>;
  /** Removes unfinished uploads created more than the expiration period before `nowMs`; returns how many. */
  deleteExpired(nowMs?: number): Promise<number>;
}
