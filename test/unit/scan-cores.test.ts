/** Pure parts of malware scanning: clamd addresses and replies, the scan policy, scan slots, the [scan] config and the Go [clamav] mapping. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, parseClamdAddress, parseTomlText, resolveConfig } from '../../src/config/index.js';
import { ScanSlots, parseClamdReply, planScan, type ScanPolicy } from '../../src/scan/index.js';

describe('parseClamdAddress', () => {
  const ok: Array<[string, unknown]> = [
    ['/run/clamav/clamd.ctl', { path: '/run/clamav/clamd.ctl' }],
    ['unix:/run/clamav/clamd.ctl', { path: '/run/clamav/clamd.ctl' }],
    ['unix:///var/run/clamav/clamd.ctl', { path: '/var/run/clamav/clamd.ctl' }],
    ['127.0.0.1:3310', { host: '127.0.0.1', port: 3310 }],
    ['tcp://clamav.internal:3310', { host: 'clamav.internal', port: 3310 }],
    ['[::1]:3310', { host: '::1', port: 3310 }],
  ];
  for (const [text, expected] of ok) it(`reads ${text}`, () => assert.deepEqual(parseClamdAddress(text), expected));
  for (const bad of ['clamd.ctl', 'localhost', 'host:0', 'host:70000', 'http://x:1', '']) {
    it(`refuses ${JSON.stringify(bad)} with a reason`, () => assert.throws(() => parseClamdAddress(bad), /neither a unix socket path/));
  }
});

describe('parseClamdReply', () => {
  const cases: Array<[string, unknown]> = [
    ['stream: OK\0', { kind: 'clean' }],
    ['stream: Eicar-Test-Signature FOUND\0', { kind: 'infected', signature: 'Eicar-Test-Signature' }],
    ['stream: Hfs.Test.Evil.UNOFFICIAL FOUND\n', { kind: 'infected', signature: 'Hfs.Test.Evil.UNOFFICIAL' }],
    ['1: stream: OK\0', { kind: 'clean' }],
    ['INSTREAM size limit exceeded. ERROR\0', { kind: 'too_large' }],
    ['COMMAND READ TIMED OUT\0', { kind: 'failed', failure: 'timeout', message: 'clamd timed out reading the stream (ReadTimeout)' }],
    ['stream: Can\'t allocate memory ERROR\0', { kind: 'failed', failure: 'error', message: "clamd: stream: Can't allocate memory" }],
    ['UNKNOWN COMMAND\0', { kind: 'failed', failure: 'error', message: 'clamd: UNKNOWN COMMAND' }],
    ['\0', { kind: 'failed', failure: 'unavailable', message: 'clamd closed the connection without a verdict' }],
  ];
  for (const [raw, expected] of cases) it(JSON.stringify(raw), () => assert.deepEqual(parseClamdReply(raw), expected));
});

describe('planScan', () => {
  const policy = (p: Partial<ScanPolicy> = {}): ScanPolicy => ({ extensions: 'all', maxBytes: 100, oversize: 'publish', unavailable: 'hold', ...p });
  it('scans every file up to max_size with extensions = "all"', () => {
    assert.deepEqual(planScan(policy(), 'a/b/photo.jpg', 100), { kind: 'scan' });
    assert.deepEqual(planScan(policy(), 'a/b/photo.jpg', 101), { kind: 'oversize' });
    assert.deepEqual(planScan(policy(), 'a/b/empty', 0), { kind: 'scan' });
  });
  it('matches extensions case-insensitively on the file name only, multi-part ones too', () => {
    const p = policy({ extensions: ['.exe', '.tar.gz'] });
    assert.deepEqual(planScan(p, 'dir.exe/SETUP.EXE', 10), { kind: 'scan' });
    assert.deepEqual(planScan(p, 'x/backup.tar.gz', 10), { kind: 'scan' });
    assert.deepEqual(planScan(p, 'dir.exe/readme.txt', 10), { kind: 'skip', reason: 'extension' });
    assert.deepEqual(planScan(p, 'x/notes.gz', 10), { kind: 'skip', reason: 'extension' });
  });
  it('an extension outside the list is skipped before the size is looked at', () => {
    assert.deepEqual(planScan(policy({ extensions: ['.exe'] }), 'x/big.iso', 10_000), { kind: 'skip', reason: 'extension' });
  });
});

describe('ScanSlots', () => {
  it('admits up to capacity, then in arrival order as slots are released', async () => {
    const slots = new ScanSlots(2);
    const never = new AbortController().signal;
    const a = await slots.acquire(never);
    const b = await slots.acquire(never);
    const order: string[] = [];
    const c = slots.acquire(never).then((r) => (order.push('c'), r));
    const d = slots.acquire(never).then((r) => (order.push('d'), r));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(order, []);
    a();
    a(); // a second release of the same slot changes nothing
    const releaseC = await c;
    assert.deepEqual(order, ['c']);
    assert.equal(slots.active, 2);
    b();
    (await d)();
    releaseC();
    assert.equal(slots.active, 0);
  });
  it('an aborted waiter leaves the line with the signal reason', async () => {
    const slots = new ScanSlots(1);
    const held = await slots.acquire(new AbortController().signal);
    const controller = new AbortController();
    const waiting = slots.acquire(controller.signal);
    controller.abort(new Error('job timed out'));
    await assert.rejects(waiting, /job timed out/);
    held();
    assert.equal(slots.active, 0);
  });
  it('refuses a capacity below 1', () => assert.throws(() => new ScanSlots(0), RangeError));
});

describe('[scan] config', () => {
  it('defaults: off, the Debian socket, every extension, 200MB, publish oversize, 2 at once, 120s, hold', () => {
    const { scan } = resolveConfig({}, {}).config;
    assert.deepEqual(scan, {
      enabled: false,
      clamd: { path: '/var/run/clamav/clamd.ctl' },
      extensions: 'all',
      maxBytes: 200e6,
      oversize: 'publish',
      concurrency: 2,
      timeoutMs: 120_000,
      unavailable: 'hold',
    });
  });
  it('reads every key', () => {
    const raw = parseTomlText(
      '[scan]\nenabled = true\nclamd = "tcp://127.0.0.1:3310"\nextensions = [".EXE", ".zip"]\nmax_size = "1GiB"\noversize = "quarantine"\nconcurrency = 3\ntimeout = "30s"\nunavailable = "publish"\n',
      'x.toml',
    );
    const { scan } = resolveConfig(raw, {}).config;
    assert.deepEqual(scan, {
      enabled: true,
      clamd: { host: '127.0.0.1', port: 3310 },
      extensions: ['.exe', '.zip'],
      maxBytes: 2 ** 30,
      oversize: 'quarantine',
      concurrency: 3,
      timeoutMs: 30_000,
      unavailable: 'publish',
    });
  });
  it('bad values fail with the key path and the reason', () => {
    const bad = { scan: { clamd: 'clamd.ctl', extensions: ['*.exe'], unavailable: 'retry', concurrency: 0, max_size: 'lots' } };
    const err = (() => {
      try {
        resolveConfig(bad, {});
      } catch (e) {
        return e as ConfigError;
      }
      throw new Error('accepted');
    })();
    const paths = err.issues.map((i) => i.path).sort();
    assert.deepEqual(paths, ['scan.clamd', 'scan.concurrency', 'scan.extensions.0', 'scan.max_size', 'scan.unavailable']);
    assert.match(err.message, /scan\.clamd: "clamd\.ctl" is neither a unix socket path/);
    assert.match(err.message, /scan\.extensions\.0.*one file name ending/);
  });
  it('extensions are written as in [uploads]: with or without the dot, any case', () => {
    const { config } = resolveConfig({ scan: { extensions: ['exe', '.EXE', 'Tar.GZ'] } }, {});
    assert.deepEqual(config.scan.extensions, ['.exe', '.tar.gz']);
  });
  it('an empty extension list is refused (write "all")', () => {
    assert.throws(() => resolveConfig({ scan: { extensions: [] } }, {}), /scan\.extensions: list at least one extension, or write "all"/);
  });
  it('warns when concurrency exceeds numworkers or the timeout reaches queue_timeout', () => {
    const { warnings } = resolveConfig({ scan: { enabled: true, concurrency: 9, timeout: '10m' }, workers: { numworkers: 4, queue_timeout: '300s' } }, {});
    assert.deepEqual(
      warnings.filter((w) => w.path.startsWith('scan.')).map((w) => w.path),
      ['scan.concurrency', 'scan.timeout'],
    );
  });
});

describe('Go [clamav] keys read as [scan]', () => {
  const GO = `
[server]
listen_address = "8080"

[workers]
numworkers = 4
numscanworkers = 3

[clamav]
clamavenabled = true
clamavsocket = "/var/run/clamav/clamd.ctl"
numscanworkers = 2
scanfileextensions = [".txt", ".pdf", ".EXE"]
maxscansize = "200MB"
`;
  const { config, warnings } = resolveConfig(parseTomlText(GO, 'go.toml'), {});

  it('maps each key to its [scan] meaning', () => {
    assert.deepEqual(config.scan, {
      enabled: true,
      clamd: { path: '/var/run/clamav/clamd.ctl' },
      extensions: ['.txt', '.pdf', '.exe'],
      maxBytes: 200 * 2 ** 20, // "200MB" in Go's binary units
      oversize: 'publish', // Go skips the scan above maxscansize and publishes
      concurrency: 2,
      timeoutMs: 120_000,
      unavailable: 'hold',
    });
  });
  it('says where each key went (CONFIG_LEGACY_KEY), and that [workers] numscanworkers lost to [clamav] numscanworkers', () => {
    const legacy = warnings.filter((w) => w.code === 'CONFIG_LEGACY_KEY' && /clamav|numscanworkers/.test(w.path));
    assert.deepEqual(legacy.map((w) => w.path).sort(), ['clamav.clamavenabled', 'clamav.clamavsocket', 'clamav.maxscansize', 'clamav.numscanworkers', 'clamav.scanfileextensions']);
    assert.match(legacy.find((w) => w.path === 'clamav.maxscansize')!.message, /→ scan\.max_size = 200MiB \(209715200 bytes\) \("200MB" in Go's binary units\)/);
    const lost = warnings.find((w) => w.path === 'workers.numscanworkers');
    assert.equal(lost?.code, 'CONFIG_LEGACY_IGNORED');
    assert.match(lost!.message, /ignored because scan\.concurrency is also set/);
    assert.equal(warnings.filter((w) => w.code === 'CONFIG_UNKNOWN_KEY' && w.path.startsWith('clamav')).length, 0);
  });
  it('an empty scanfileextensions scans every file; go-clamd address forms are understood', () => {
    const r = resolveConfig({ clamav: { clamavenabled: true, scanfileextensions: [], clamavsocket: 'tcp://10.0.0.5:3310' } }, {});
    assert.equal(r.config.scan.extensions, 'all');
    assert.deepEqual(r.config.scan.clamd, { host: '10.0.0.5', port: 3310 });
  });
  it('[clamav] with scanning off stays off; a new [scan] key wins over its Go name', () => {
    assert.equal(resolveConfig({ clamav: { clamavenabled: false } }, {}).config.scan.enabled, false);
    const r = resolveConfig({ clamav: { maxscansize: '1MB' }, scan: { max_size: '2MB' } }, {});
    assert.equal(r.config.scan.maxBytes, 2e6);
    assert.equal(resolveConfig({ ClamAV: { ClamAVEnabled: true } }, {}).config.scan.enabled, true, 'Go key names are case-insensitive');
  });
});
