/**
 * What every Scanner must do; run against each implementation by test/integration/scanners.test.ts
 * (the in-memory SignatureScanner, clamd over a unix socket and over TCP).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { describe, it } from 'node:test';
import { PassThrough, Readable } from 'node:stream';
import type { Scanner } from '../../src/scan/index.js';

/** The signature every fixture's scanner knows, and the name it must report (contains it). */
export const EVIL = Buffer.from('hmac-file-server conformance: flag me, I am the test signature\n');
export const EVIL_NAME = 'Hfs.Conformance.Evil';

export interface ScannerFixture {
  /** A scanner that flags EVIL as EVIL_NAME and refuses streams above `maxBytes` as too_large. */
  open(): Promise<Scanner>;
  readonly maxBytes: number;
  /** Makes the scanner unreachable / reachable again; absent when the fixture cannot. */
  stop?(): Promise<void>;
  start?(): Promise<void>;
}

const never = () => new AbortController().signal;

/** Chunks of `size` bytes in total, 64 KiB at a time, produced lazily. */
function chunked(size: number, fill = 0x41): Readable {
  let left = size;
  return new Readable({
    read() {
      const n = Math.min(left, 64 * 1024);
      left -= n;
      this.push(n === 0 ? null : Buffer.alloc(n, fill));
    },
  });
}

export function describeScanner(name: string, fixture: ScannerFixture): void {
  describe(`${name} conforms to Scanner`, () => {
    it('answers clean for ordinary bytes, and for an empty stream', async () => {
      const scanner = await fixture.open();
      assert.deepEqual(await scanner.scan(() => Readable.from([randomBytes(10_000)]), never()), { kind: 'clean' });
      assert.deepEqual(await scanner.scan(() => Readable.from([]), never()), { kind: 'clean' });
    });

    it('flags the signature, whatever the chunking, and names it', async () => {
      const scanner = await fixture.open();
      const whole = await scanner.scan(() => Readable.from([EVIL]), never());
      const split = await scanner.scan(() => Readable.from([...EVIL].map((b) => Buffer.from([b]))), never());
      for (const verdict of [whole, split]) {
        assert.equal(verdict.kind, 'infected');
        assert.match((verdict as { signature: string }).signature, new RegExp(EVIL_NAME.replace(/\./g, '\\.')));
      }
    });

    it('refuses a stream longer than its limit as too_large (or, when the answer is lost, an error, never clean)', async () => {
      const scanner = await fixture.open();
      const verdict = await scanner.scan(() => chunked(fixture.maxBytes + 2 * 1024 * 1024), never());
      assert.ok(verdict.kind === 'too_large' || (verdict.kind === 'failed' && verdict.failure === 'error'), JSON.stringify(verdict));
    });

    it('reports a failing source as source_failed, not as a scanner failure', async () => {
      const scanner = await fixture.open();
      const verdict = await scanner.scan(() => createReadStream('/nonexistent/hfs-scan-source'), never());
      assert.equal(verdict.kind, 'source_failed');
      assert.equal((verdict as { error: NodeJS.ErrnoException }).error.code, 'ENOENT');
    });

    it('rejects with the signal reason when aborted mid-stream, and closes the source', async () => {
      const scanner = await fixture.open();
      const source = new PassThrough();
      source.write(Buffer.alloc(1000));
      const controller = new AbortController();
      const reason = new Error('job timed out');
      let opened!: () => void;
      const wasOpened = new Promise<void>((resolve) => (opened = resolve));
      const scanning = scanner.scan(() => {
        opened();
        return source;
      }, controller.signal);
      await wasOpened; // the scan is streaming: the source never ends
      controller.abort(reason);
      await assert.rejects(scanning, (err) => err === reason);
      assert.equal(source.destroyed, true);
    });

    it('an aborted signal rejects before anything is read', async () => {
      const scanner = await fixture.open();
      const controller = new AbortController();
      controller.abort(new Error('gone'));
      let opened = false;
      await assert.rejects(
        scanner.scan(() => {
          opened = true;
          return Readable.from([EVIL]);
        }, controller.signal),
        /gone/,
      );
      assert.equal(opened, false);
    });

    if (fixture.stop && fixture.start) {
      it('answers failed/unavailable while stopped, and verdicts again once started', async () => {
        const scanner = await fixture.open();
        await fixture.stop!();
        try {
          const verdict = await scanner.scan(() => Readable.from([EVIL]), never());
          assert.equal(verdict.kind, 'failed');
          assert.equal((verdict as { failure: string }).failure, 'unavailable');
        } finally {
          await fixture.start!();
        }
        assert.equal((await scanner.scan(() => Readable.from([EVIL]), never())).kind, 'infected');
      });
    }
  });
}
