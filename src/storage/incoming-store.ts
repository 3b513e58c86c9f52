/**
 * Where a PUT body streams while it arrives, before finalization takes it over. `begin(id)` opens
 * one incoming upload: the request body is piped into `sink`; once every byte arrived the caller
 * asks `complete()` for the bytes as an UploadSource (handed to finalization, which then owns
 * them); on any failure (client drop, size mismatch, refused publish) `abort()` leaves nothing.
 * Implemented on local temp files (incoming-store-file.ts, the file backend) and on S3 multipart
 * uploads (incoming-store-s3.ts).
 */
import type { Writable } from 'node:stream';
import type { UploadSource } from './upload-source.js';

export interface IncomingUpload {
  /** The body goes here; destroyed by abort(). */
  readonly sink: Writable;
  /** After `sink` finished: the stored bytes. Rejects when they could not be made whole (then call abort()). */
  complete(): Promise<UploadSource>;
  /** Removes everything of this upload (a completed one too); idempotent, never rejects. */
  abort(): Promise<void>;
}

export interface IncomingStore {
  /** A new incoming upload; `id` only names it (a request id), uniqueness is the store's job. */
  begin(id: string): IncomingUpload;
  /** Removes what interrupted PUTs of an earlier run left (temp files, unfinished multipart uploads); returns how many. */
  sweep(): Promise<number>;
}
