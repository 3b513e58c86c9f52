/**
 * The scan step inside the finalization pipeline, on real files and SQLite with the in-memory
 * SignatureScanner (the clamd scanner is checked against the same contract in scanners.test.ts;
 * the e2e scan-*.test.ts files run the whole server with a real clamd): quarantine records and
 * byte moves, the oversize and extension rules, hold without spent attempts, retries into dead
 * letters on scanner errors, and idempotent re-runs.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SignatureScanner, hdbLine, type ScanPolicy, type ScanVerdict, type Scanner } from '../../src/scan/index.js';
import { fileSource, FileQuarantineStore } from '../../src/storage/index.js';
import type { FinalizationOptions } from '../../src/finalize/index.js';
import { slot, fileStore, startHarness, waitCount, type Harness, type Line } from './finalize-harness.js';

const EVIL = Buffer.from('pipeline test: this file carries the test signature\n');
const [md5, size] = hdbLine(EVIL, 'Hfs.Pipeline.Evil').split(':') as [string, string];
const policy = (p: Partial<ScanPolicy> = {}): ScanPolicy => ({ extensions: 'all', maxBytes: 1_000_000, oversize: 'publish', unavailable: 'hold', ...p });

async function scanHarness(scanner: Scanner, p: Partial<ScanPolicy> = {}, more: Partial<FinalizationOptions> = {}): Promise<{ h: Harness; quarantine: FileQuarantineStore }> {
  const dir = await mkdtemp(join(tmpdir(), 'hfs-finalize-scan-'));
  const quarantine = new FileQuarantineStore(dir);
  await quarantine.init();
  const h = await startHarness(fileStore, { scan: { scanner, policy: policy(p), concurrency: 2 }, quarantine, ...more }, dir);
  // The harness leaves a dir it was given in place: remove it after the service stopped.
  const dispose = h.dispose;
  h.dispose = async () => {
    await dispose();
    await rm(dir, { recursive: true, force: true });
  };
  return { h, quarantine };
}

const byJob = (msg: string) => (l: Line) => l.msg === msg;

describe('the scan step in the finalization pipeline', () => {
  it('publishes clean bytes, quarantines flagged ones with their record; the bytes move, nothing is published', async () => {
    const scanner = new SignatureScanner({ signatures: [{ md5, size: Number(size), name: 'Hfs.Pipeline.Evil' }] });
    const { h, quarantine } = await scanHarness(scanner);
    try {
      const clean = slot('clean.txt');
      const evil = slot('evil.txt');
      await h.put(clean, Buffer.from('fine'));
      await h.put(evil, EVIL);
      await h.waitLog(byJob('File published'));
      const line = await h.waitLog(byJob('File quarantined: malware detected'));
      assert.equal(line.signature, 'Hfs.Pipeline.Evil');
      assert.ok(await h.published.stat(clean));
      assert.equal(await h.published.stat(evil), null);
      const [record] = await quarantine.list();
      assert.equal(record?.slotPath, evil);
      assert.equal(record?.reason, 'infected');
      assert.equal(record?.size, EVIL.length);
      assert.deepEqual(await readFile(quarantine.contentFile(record!.id)), EVIL);
      assert.deepEqual((await quarantine.bySlot(evil))?.id, record?.id);
      const job = await h.service.admin.job(record!.id);
      assert.equal(job?.state, 'done');
      assert.equal(existsSync(join(h.dir, 'queue', 'staging', record!.id)), false, 'the staged body moved, not copied');
    } finally {
      await h.dispose();
    }
  });

  it('extension and size rules: skipped files publish unscanned; oversize publishes or quarantines as configured', async () => {
    const scanner = new SignatureScanner({ signatures: [{ md5, size: Number(size), name: 'Hfs.Pipeline.Evil' }] });
    const a = await scanHarness(scanner, { extensions: ['.exe'], maxBytes: 10 });
    try {
      await a.h.put(slot('evil.txt'), EVIL); // not an .exe: never scanned
      await a.h.waitLog(byJob('File published'));
      assert.equal(scanner.scans, 0);
    } finally {
      await a.h.dispose();
    }
    const b = await scanHarness(scanner, { maxBytes: 10, oversize: 'quarantine' });
    try {
      await b.h.put(slot('evil.exe'), EVIL);
      await b.h.waitLog(byJob('File quarantined: too large to scan'));
      assert.equal(scanner.scans, 0);
      assert.deepEqual((await b.quarantine.list()).map((r) => [r.reason, r.signature]), [['oversize', null]]);
    } finally {
      await b.h.dispose();
    }
  });

  it('hold: an unavailable scanner postpones without spending attempts, then the job publishes', async () => {
    const scanner = new SignatureScanner({ signatures: [] });
    scanner.unavailable = true;
    const { h } = await scanHarness(scanner, {}, { circuitBreaker: null, retry: { baseMs: 5, maxMs: 20, maxRetries: 1 } });
    try {
      const s = slot('held.txt');
      await h.put(s, Buffer.from('held'));
      await h.waitLog(byJob('Scanner unavailable: finalization held until it answers'));
      await waitCount(h, byJob('Finalization held: scanner unavailable'), 5);
      const [job] = await h.service.admin.listJobs();
      assert.equal(job?.attempts, 0, 'held tries spend no attempt');
      assert.ok(job?.state === 'queued' || job?.state === 'leased', job?.state);
      scanner.unavailable = false;
      await h.waitLog(byJob('File published'));
      assert.ok(await h.published.stat(s));
      assert.deepEqual(await h.service.admin.listDeadLetters(), []);
    } finally {
      await h.dispose();
    }
  });

  it('an error answer is a retry (attempts spent), then a dead letter with ERR_SCAN_FAILED; nothing published', async () => {
    const erring: Scanner = { scan: async (): Promise<ScanVerdict> => ({ kind: 'failed', failure: 'error', message: "clamd: Can't allocate memory" }) };
    const { h } = await scanHarness(erring, {}, { circuitBreaker: null, retry: { baseMs: 5, maxMs: 20, maxRetries: 2 } });
    try {
      const s = slot('erring.txt');
      await h.put(s, Buffer.from('x'));
      const line = await h.waitLog(byJob('Upload failed after 2 retries, moved to dead letter queue'));
      assert.equal(line.code, 'ERR_SCAN_FAILED');
      assert.equal(await h.published.stat(s), null);
    } finally {
      await h.dispose();
    }
  });

  it('a re-run after the quarantine step (crash, timeout) finds it quarantined and only notifies', async () => {
    const scanner = new SignatureScanner({ signatures: [{ md5, size: Number(size), name: 'Hfs.Pipeline.Evil' }] });
    let crashes = 0;
    const { h, quarantine } = await scanHarness(scanner, {}, {
      retry: { baseMs: 5, maxMs: 20, maxRetries: 3 },
      onStep: (step) => {
        if (step === 'quarantined' && crashes++ === 0) throw new Error('crash after the move');
      },
    });
    try {
      await h.put(slot('evil.bin'), EVIL);
      await h.waitLog(byJob('Finalization job done'));
      assert.equal(h.lines.filter(byJob('File quarantined: malware detected')).length, 1, 'reported once');
      assert.equal(scanner.scans, 1, 'not scanned again');
      assert.equal((await quarantine.list()).length, 1);
    } finally {
      await h.dispose();
    }
  });

  it('FileQuarantineStore.admit finishes a move a crash cut between the record and the rename', async () => {
    const { h, quarantine } = await scanHarness(new SignatureScanner({ signatures: [] }));
    try {
      const source = join(h.dir, 'incoming', 'cut.part');
      await writeFile(source, 'bytes');
      const record = { id: 'put-cut', slotPath: 'a/cut.bin', size: 5, sha256: 'ab'.repeat(32), contentType: 'text/plain', protocol: 'put' as const, uploadId: 'cut', receivedAtMs: 1, quarantinedAtMs: 2, reason: 'infected' as const, signature: 'X' };
      await writeFile(join(h.dir, 'quarantine', 'put-cut.json'), JSON.stringify(record)); // the record made it, the bytes did not
      await quarantine.admit(record, fileSource(source, 5));
      assert.equal(existsSync(source), false);
      assert.equal(await readFile(quarantine.contentFile('put-cut'), 'utf8'), 'bytes');
      await quarantine.admit(record, fileSource(source, 5)); // again: the bytes are in, nothing to do
      await assert.rejects(quarantine.admit({ ...record, id: 'put-gone' }, fileSource(source, 5)), { code: 'ENOENT' });
      assert.equal(await quarantine.get('../escape'), null);
      assert.throws(() => quarantine.contentFile('../escape'), TypeError);
    } finally {
      await h.dispose();
    }
  });
});
