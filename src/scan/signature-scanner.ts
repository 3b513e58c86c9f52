/**
 * An in-memory Scanner that knows whole-file signatures the way a clamd `.hdb` database does
 * (md5 + size + name): for tests of the pipeline without a daemon, and the reference the clamd
 * scanner is checked against (test/conformance/scanner.suite.ts). `maxBytes` plays clamd's
 * StreamMaxLength; `unavailable` plays a stopped daemon.
 */
import { createHash } from 'node:crypto';
import type { OpenSource, ScanVerdict, Scanner } from './types.js';

export interface FileSignature {
  readonly md5: string;
  readonly size: number;
  readonly name: string;
}

export interface SignatureScannerOptions {
  readonly signatures: readonly FileSignature[];
  /** Streams longer than this get 'too_large'. Default: no limit. */
  readonly maxBytes?: number;
}

export class SignatureScanner implements Scanner {
  readonly #signatures: readonly FileSignature[];
  readonly #maxBytes: number;
  /** While true every scan fails as 'unavailable', like a stopped clamd. */
  unavailable = false;
  /** Scans that reached a verdict or failure (unavailable ones included). */
  scans = 0;

  constructor(options: SignatureScannerOptions) {
    this.#signatures = options.signatures;
    this.#maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
  }

  async scan(open: OpenSource, signal: AbortSignal): Promise<ScanVerdict> {
    signal.throwIfAborted();
    this.scans += 1;
    if (this.unavailable) return { kind: 'failed', failure: 'unavailable', message: 'the scanner is stopped' };
    const source = open();
    const md5 = createHash('md5');
    let size = 0;
    const abort = () => source.destroy();
    signal.addEventListener('abort', abort, { once: true });
    try {
      for await (const chunk of source as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > this.#maxBytes) return { kind: 'too_large' };
        md5.update(chunk);
      }
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      return { kind: 'source_failed', error: err as Error };
    } finally {
      signal.removeEventListener('abort', abort);
      source.destroy();
    }
    const digest = md5.digest('hex');
    const hit = this.#signatures.find((s) => s.md5 === digest && s.size === size);
    return hit ? { kind: 'infected', signature: hit.name } : { kind: 'clean' };
  }
}

/** The `.hdb` line clamd reads for a whole-file signature of `data`. */
export function hdbLine(data: Buffer, name: string): string {
  return `${createHash('md5').update(data).digest('hex')}:${data.length}:${name}`;
}
