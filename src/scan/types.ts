/**
 * The malware scanner contract the finalization pipeline uses (implementations: clamd over its
 * socket, and an in-memory signature scanner for tests). A scan reads the bytes once from a
 * stream it opens itself, so any store (local file, S3) can be the source without a copy.
 */
import type { Readable } from 'node:stream';

/** Why a scan could not give a verdict. */
export type ScanFailure =
  /** No connection, or the connection was lost before a verdict: the scanner is down. */
  | 'unavailable'
  /** No verdict within the scan timeout (a hung or overloaded scanner). */
  | 'timeout'
  /** The scanner answered with an error for this stream, or something unreadable. */
  | 'error';

export type ScanVerdict =
  | { readonly kind: 'clean' }
  | { readonly kind: 'infected'; readonly signature: string }
  /** The scanner refused the stream as longer than it accepts (clamd StreamMaxLength). */
  | { readonly kind: 'too_large' }
  | { readonly kind: 'failed'; readonly failure: ScanFailure; readonly message: string }
  /** The source stream failed (e.g. the file is gone): not the scanner's fault. */
  | { readonly kind: 'source_failed'; readonly error: Error };

/** Opens the bytes to scan, from the start; called at most once per scan. */
export type OpenSource = () => Readable;

export interface Scanner {
  /**
   * Streams the source to the scanner and resolves its verdict. Never rejects for scanner or
   * source failures (they are verdicts); rejects only with `signal`'s reason once it aborts,
   * after closing the connection and the source.
   */
  scan(open: OpenSource, signal: AbortSignal): Promise<ScanVerdict>;
}
