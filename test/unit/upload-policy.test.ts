/** Upload policy (names and sizes) and the v3 expiry window, decided by the pure slot check on a fake clock. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { authorizeSlot, sign, type SlotPolicy } from '../../src/auth/index.js';
import { resolveConfig } from '../../src/config/index.js';
import { AppError } from '../../src/errors.js';
import { checkUpload, Intake, type IntakeDeps, type UploadPolicy } from '../../src/intake/index.js';

const policy = (over: Partial<UploadPolicy> = {}): UploadPolicy => ({ maxBytes: 1000, allowedExtensions: [], blockedExtensions: [], ...over });
const verdict = (p: UploadPolicy, path: string, size?: number) => {
  const v = checkUpload(p, path, size);
  return v.ok ? 'ok' : v.code;
};

describe('checkUpload: extensions', () => {
  const images = policy({ allowedExtensions: ['.jpg', '.png', '.tar.gz'] });
  const cases: [name: string, p: UploadPolicy, path: string, expected: string][] = [
    ['no lists: any name', policy(), 'a/anything.exe', 'ok'],
    ['allowed', images, 'a/photo.jpg', 'ok'],
    ['allowed, other case', images, 'a/PHOTO.JpG', 'ok'],
    ['allowed two-part ending', images, 'a/backup.TAR.GZ', 'ok'],
    ['only the last segment counts', images, 'x.jpg/notes.txt', 'ERR_EXTENSION_NOT_ALLOWED'],
    ['not in the list', images, 'a/notes.txt', 'ERR_EXTENSION_NOT_ALLOWED'],
    ['no extension', images, 'a/README', 'ERR_EXTENSION_NOT_ALLOWED'],
    ['".jpg" inside the name only', images, 'a/photo.jpg.exe', 'ERR_EXTENSION_NOT_ALLOWED'],
    ['trailing dots and spaces dropped (as Windows does)', images, 'a/photo.jpg. . ', 'ok'],
    ['a suffix without the dot does not match', images, 'a/notjpg', 'ERR_EXTENSION_NOT_ALLOWED'],
    ['blocked', policy({ blockedExtensions: ['.exe'] }), 'a/setup.EXE', 'ERR_EXTENSION_NOT_ALLOWED'],
    ['blocked, trailing dot', policy({ blockedExtensions: ['.exe'] }), 'a/setup.exe.', 'ERR_EXTENSION_NOT_ALLOWED'],
    ['blocked wins over allowed', policy({ allowedExtensions: ['.gz'], blockedExtensions: ['.tar.gz'] }), 'a/x.tar.gz', 'ERR_EXTENSION_NOT_ALLOWED'],
    ['blocked list leaves other names alone', policy({ blockedExtensions: ['.exe'] }), 'a/setup.exe.txt', 'ok'],
  ];
  for (const [name, p, path, expected] of cases) it(`${name}: ${path} -> ${expected}`, () => assert.equal(verdict(p, path), expected));

  it('the refusal names the ending, never the whole list', () => {
    const v = checkUpload(policy({ allowedExtensions: ['.jpg'] }), 'a/b.Txt', 1);
    assert.equal(v.ok, false);
    assert.match(!v.ok ? v.message : '', /"\.txt"/);
    assert.doesNotMatch(!v.ok ? v.message : '', /\.jpg/);
  });
});

describe('checkUpload: size', () => {
  const cases: [size: number | undefined, expected: string][] = [
    [0, 'ok'],
    [1000, 'ok'],
    [1001, 'ERR_TOO_LARGE'],
    [undefined, 'ok'], // unknown here: enforced while the body streams
  ];
  for (const [size, expected] of cases) it(`${size} bytes with a 1000-byte limit -> ${expected}`, () => assert.equal(verdict(policy(), 'a/b.bin', size), expected));

  it('a refused name is reported before a refused size', () => {
    assert.equal(verdict(policy({ blockedExtensions: ['.exe'] }), 'a/b.exe', 5000), 'ERR_EXTENSION_NOT_ALLOWED');
  });
});

describe('Intake.authorize applies the upload policy after the signature', () => {
  const SECRET = 'policy-secret';
  // authorize() reads only the slot policy, the upload policy, the published store and the clock.
  const intake = new Intake({
    policy: { secrets: [SECRET], schemes: ['v'] },
    uploadPolicy: policy({ allowedExtensions: ['.jpg'], maxBytes: 100 }),
    published: { stat: async () => null },
    now: () => 0,
  } as unknown as IntakeDeps);
  const signed = (path: string, size: number) => new URLSearchParams({ v: sign('v', SECRET, { path, size }) });
  const authorize = (path: string, size: number, query = signed(path, size)) =>
    intake.authorize({ path, query, sizeBytes: size, contentType: undefined }).then(
      () => 'ok',
      (err: unknown) => (err instanceof AppError ? `${err.status} ${err.code}` : String(err)),
    );

  it('accepts a signed slot within the policy', async () => assert.equal(await authorize('d/a.jpg', 100), 'ok'));
  it('415 for a signed slot with a refused name', async () => assert.equal(await authorize('d/a.exe', 10), '415 ERR_EXTENSION_NOT_ALLOWED'));
  it('413 for a signed slot over the limit', async () => assert.equal(await authorize('d/a.jpg', 101), '413 ERR_TOO_LARGE'));
  it('the signature is checked first: an unsigned request learns nothing about the policy', async () => {
    assert.equal(await authorize('d/a.exe', 10, new URLSearchParams()), '403 ERR_SIGNATURE_MISSING');
    assert.equal(await authorize('d/a.exe', 10, new URLSearchParams({ v: 'f'.repeat(64) })), '403 ERR_SIGNATURE_INVALID');
  });
  it("the refusal's message names the ending", async () => {
    await assert.rejects(intake.authorize({ path: 'd/a.exe', query: signed('d/a.exe', 10), sizeBytes: 10, contentType: undefined }), /"\.exe"/);
  });
});

describe('authorizeSlot: v3 expiry grace and clock skew (fake clock)', () => {
  const SECRET = 'grace-secret';
  const PATH = 'd/voice.ogg';
  const EXPIRES = 1_700_000_000; // unix seconds
  const query = new URLSearchParams({ v3: sign('v3', SECRET, { path: PATH, method: 'PUT', expires: EXPIRES }), expires: String(EXPIRES) });
  const at = (nowMs: number, over: Partial<SlotPolicy> = {}) => {
    const d = authorizeSlot({ path: PATH, query, size: undefined, contentType: undefined, nowMs }, { secrets: [SECRET], schemes: ['v3'], ...over });
    return d.ok ? 'ok' : d.code;
  };
  const expiry = EXPIRES * 1000;

  const cases: [name: string, nowMs: number, over: Partial<SlotPolicy>, expected: string][] = [
    ['default: accepted at expiry', expiry, {}, 'ok'],
    ['default: refused 1 ms later', expiry + 1, {}, 'ERR_SIGNATURE_EXPIRED'],
    ['grace 5m: accepted 5 minutes late', expiry + 300_000, { expiryGraceMs: 300_000 }, 'ok'],
    ['grace 5m: refused 1 ms after the grace', expiry + 300_001, { expiryGraceMs: 300_000 }, 'ERR_SIGNATURE_EXPIRED'],
    ['skew 30s: accepted 30 s late', expiry + 30_000, { clockSkewMs: 30_000 }, 'ok'],
    ['grace and skew add up', expiry + 330_000, { expiryGraceMs: 300_000, clockSkewMs: 30_000 }, 'ok'],
    ['grace and skew add up, not more', expiry + 330_001, { expiryGraceMs: 300_000, clockSkewMs: 30_000 }, 'ERR_SIGNATURE_EXPIRED'],
  ];
  for (const [name, nowMs, over, expected] of cases) it(`${name} -> ${expected}`, () => assert.equal(at(nowMs, over), expected));

  it('a grace never makes a wrong signature valid', () => {
    const forged = new URLSearchParams({ v3: sign('v3', 'other', { path: PATH, method: 'PUT', expires: EXPIRES }), expires: String(EXPIRES) });
    const d = authorizeSlot({ path: PATH, query: forged, size: undefined, contentType: undefined, nowMs: expiry + 1 }, { secrets: [SECRET], schemes: ['v3'], expiryGraceMs: 3_600_000 });
    assert.equal(d.ok ? 'ok' : d.code, 'ERR_SIGNATURE_INVALID');
  });

  it('the config keys reach the policy', () => {
    const { config } = resolveConfig({ security: { expiry_grace: '10m', clock_skew: '30s' }, uploads: { allowed_extensions: ['JPG', '.Tar.Gz'] } }, {});
    assert.equal(config.security.expiryGraceMs, 600_000);
    assert.equal(config.security.clockSkewMs, 30_000);
    assert.deepEqual(config.uploads.allowedExtensions, ['.jpg', '.tar.gz']);
  });
});
