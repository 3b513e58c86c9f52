import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { authorizeSlot, pickScheme, sign, type SlotDecision, type SlotPolicy, type SlotRequest } from '../../src/auth/index.js';
import type { Scheme } from '../../src/config/index.js';

const SECRET = 'test-secret';
const PATH = 'abc123/photo.jpg';
const ALL: Scheme[] = ['v', 'v2', 'token', 'v3'];
const policy: SlotPolicy = { secrets: [SECRET], schemes: ALL };
const NOW_MS = 1_699_999_000_000; // before the v3 vector's expiry (1700000000 s)
const EXPIRES = 1_700_000_000;

// Signatures from hmac-protocols.md, plus v3 for the vector's expiry.
const V = '0c3d5a1c3f378728e0fe91c35b66e86689bb8b701c4fdfd34ff1dc4518d915af';
const V2_JPEG = '6115a7eea415f845079ef7d7cba377467aa9eabfa1b6c70d33636d1266c9a5f2';
const V3 = '3c85213965026b69f60128cf9c5402fd971611fe3419105abd69e51c216a75a4';
const WRONG = 'f'.repeat(64);

function req(query: Record<string, string>, over: Partial<SlotRequest> = {}): SlotRequest {
  return { path: PATH, query: new URLSearchParams(query), size: 1024, contentType: 'image/jpeg', nowMs: NOW_MS, ...over };
}

const refusedWith = (d: SlotDecision) => (d.ok ? 'ok' : d.code);

describe('authorizeSlot: each scheme', () => {
  const cases: [name: string, request: SlotRequest, scheme: Scheme, signedSize: number | undefined, expiresAtMs: number | undefined][] = [
    ['v (Prosody v1 / ejabberd)', req({ v: V }), 'v', 1024, undefined],
    ['v with a space in the name', req({ v: 'a6239481e567af4353796d0eb1766228db802fa86da9e3516846107619d24969' }, { path: 'abc123/my photo.jpg' }), 'v', 1024, undefined],
    ['v2', req({ v2: V2_JPEG }), 'v2', 1024, undefined],
    ['token (v2 message)', req({ token: V2_JPEG }), 'token', 1024, undefined],
    ['v3 before expiry', req({ v3: V3, expires: String(EXPIRES) }), 'v3', undefined, EXPIRES * 1000],
    ['v3 exactly at expiry', req({ v3: V3, expires: String(EXPIRES) }, { nowMs: EXPIRES * 1000 }), 'v3', undefined, EXPIRES * 1000],
    ['v3 needs no size', req({ v3: V3, expires: String(EXPIRES) }, { size: undefined }), 'v3', undefined, EXPIRES * 1000],
    ['v uppercase hex', req({ v: V.toUpperCase() }), 'v', 1024, undefined],
  ];
  for (const [name, request, scheme, signedSize, expiresAtMs] of cases) {
    it(name, () => {
      const d = authorizeSlot(request, policy);
      assert.deepEqual(d, {
        ok: true,
        slot: { path: request.path, scheme, contentType: request.contentType, signedSize, expiresAtMs },
      });
    });
  }

  it('accepts a slot signed with a previous secret during rotation, refuses it once dropped', () => {
    const oldSig = sign('v', 'old-secret', { path: PATH, size: 1024 });
    assert.equal(authorizeSlot(req({ v: oldSig }), { secrets: [SECRET, 'old-secret'], schemes: ALL }).ok, true);
    assert.equal(refusedWith(authorizeSlot(req({ v: oldSig }), { secrets: [SECRET], schemes: ALL })), 'ERR_SIGNATURE_INVALID');
  });
});

describe('authorizeSlot: a signature of a scheme turned off', () => {
  it('is named in the refusal (not the schemes accepted); no signature at all keeps the plain message', () => {
    const off = authorizeSlot(req({ v: V }), { secrets: [SECRET], schemes: ['v2', 'v3'] });
    assert.deepEqual(off, { ok: false, code: 'ERR_SIGNATURE_MISSING', message: "The upload URL's v signature is not accepted by this server" });
    const none = authorizeSlot(req({}), { secrets: [SECRET], schemes: ['v2', 'v3'] });
    assert.deepEqual(none, { ok: false, code: 'ERR_SIGNATURE_MISSING' });
  });
});

describe('authorizeSlot: the content type a v2 or token signature binds', () => {
  // The Go server derived the type from the name and ignored the header: clients that send none,
  // or one with parameters, or another one, kept working there.
  const cases: [name: string, request: SlotRequest, slotType: string][] = [
    ['as sent', req({ v2: V2_JPEG }), 'image/jpeg'],
    ['none sent: the type of the name', req({ v2: V2_JPEG }, { contentType: undefined }), 'image/jpeg'],
    ['sent with parameters, signed without', req({ token: V2_JPEG }, { contentType: 'image/jpeg; charset=binary' }), 'image/jpeg'],
    ['another one sent: the type of the name', req({ v2: V2_JPEG }, { contentType: 'image/png' }), 'image/jpeg'],
    ['signed with parameters, sent so', req({ v2: sign('v2', SECRET, { path: PATH, size: 1024, contentType: 'image/jpeg; x=1' }) }, { contentType: 'image/jpeg; x=1' }), 'image/jpeg; x=1'],
    ['none signed, none sent', req({ v2: sign('v2', SECRET, { path: 'a/b.unknownext', size: 1024 }) }, { path: 'a/b.unknownext', contentType: undefined }), 'application/octet-stream'],
  ];
  for (const [name, request, slotType] of cases) {
    it(`${name} -> the slot keeps ${slotType}`, () => {
      const d = authorizeSlot(request, policy);
      assert.ok(d.ok, refusedWith(d));
      assert.equal(d.slot.contentType, slotType);
    });
  }
});

describe('authorizeSlot: refusals and precedence', () => {
  const cases: [name: string, request: SlotRequest, schemes: Scheme[], expected: string][] = [
    ['no signature parameter', req({}), ALL, 'ERR_SIGNATURE_MISSING'],
    ['unrelated parameters only', req({ sig: V, foo: 'bar' }), ALL, 'ERR_SIGNATURE_MISSING'],
    ['wrong v', req({ v: WRONG }), ALL, 'ERR_SIGNATURE_INVALID'],
    ['empty v', req({ v: '' }), ALL, 'ERR_SIGNATURE_INVALID'],
    ['v for another size', req({ v: V }, { size: 1025 }), ALL, 'ERR_SIGNATURE_INVALID'],
    ['v for another path', req({ v: V }, { path: 'abc123/other.jpg' }), ALL, 'ERR_SIGNATURE_INVALID'],
    ['right v + wrong v3: v3 wins and fails', req({ v: V, v3: WRONG, expires: String(EXPIRES) }), ALL, 'ERR_SIGNATURE_INVALID'],
    ['right v + wrong v2: v2 wins and fails', req({ v: V, v2: WRONG }), ALL, 'ERR_SIGNATURE_INVALID'],
    ['right v + wrong token: token wins and fails', req({ v: V, token: WRONG }), ALL, 'ERR_SIGNATURE_INVALID'],
    ['only v present, v not accepted', req({ v: V }), ['v2', 'v3'], 'ERR_SIGNATURE_MISSING'],
    ['only v3 present, v3 not accepted', req({ v3: V3, expires: String(EXPIRES) }), ['v', 'v2', 'token'], 'ERR_SIGNATURE_MISSING'],
    ['v: size missing', req({ v: V }, { size: undefined }), ALL, 'ERR_LENGTH_REQUIRED'],
    ['v2: size missing', req({ v2: V2_JPEG }, { size: undefined }), ALL, 'ERR_LENGTH_REQUIRED'],
    ['token: size missing', req({ token: V2_JPEG }, { size: undefined }), ALL, 'ERR_LENGTH_REQUIRED'],
    ['v2 signed for a type neither sent nor of the name', req({ v2: sign('v2', SECRET, { path: PATH, size: 1024, contentType: 'image/gif' }) }, { contentType: 'image/png' }), ALL, 'ERR_SIGNATURE_INVALID'],
    ['v2 signed for another type, none sent', req({ v2: sign('v2', SECRET, { path: PATH, size: 1024, contentType: 'image/gif' }) }, { contentType: undefined }), ALL, 'ERR_SIGNATURE_INVALID'],
    ['v2 for another size', req({ v2: V2_JPEG }, { size: 1025 }), ALL, 'ERR_SIGNATURE_INVALID'],
    ['v3 expired, right signature', req({ v3: V3, expires: String(EXPIRES) }, { nowMs: EXPIRES * 1000 + 1 }), ALL, 'ERR_SIGNATURE_EXPIRED'],
    ['v3 expired, wrong signature', req({ v3: WRONG, expires: String(EXPIRES) }, { nowMs: EXPIRES * 1000 + 1 }), ALL, 'ERR_SIGNATURE_INVALID'],
    ['v3 wrong signature, not expired', req({ v3: WRONG, expires: String(EXPIRES) }), ALL, 'ERR_SIGNATURE_INVALID'],
    ['v3 expiry moved later than signed', req({ v3: V3, expires: String(EXPIRES + 3600) }), ALL, 'ERR_SIGNATURE_INVALID'],
    ['v3 without expires', req({ v3: V3 }), ALL, 'ERR_SIGNATURE_INVALID'],
    ['v3 empty expires', req({ v3: V3, expires: '' }), ALL, 'ERR_SIGNATURE_INVALID'],
    ['v3 non-numeric expires', req({ v3: V3, expires: 'tomorrow' }), ALL, 'ERR_SIGNATURE_INVALID'],
    ['v3 exponent expires', req({ v3: V3, expires: '1.7e9' }), ALL, 'ERR_SIGNATURE_INVALID'],
    ['v3 negative expires', req({ v3: V3, expires: '-1' }), ALL, 'ERR_SIGNATURE_INVALID'],
    ['v3 16-digit expires', req({ v3: V3, expires: '1'.repeat(16) }), ALL, 'ERR_SIGNATURE_INVALID'],
  ];
  for (const [name, request, schemes, expected] of cases) {
    it(`${name} -> ${expected}`, () => assert.equal(refusedWith(authorizeSlot(request, { secrets: [SECRET], schemes })), expected));
  }

  const wins: [name: string, request: SlotRequest, schemes: Scheme[], scheme: Scheme][] = [
    ['wrong v + right v2 -> v2', req({ v: WRONG, v2: V2_JPEG }), ALL, 'v2'],
    ['wrong v + wrong token + right v2 -> v2', req({ v: WRONG, token: WRONG, v2: V2_JPEG }), ALL, 'v2'],
    ['wrong v + right v3 -> v3', req({ v: WRONG, v3: V3, expires: String(EXPIRES) }), ALL, 'v3'],
    ['right v + wrong v3 with v3 not accepted -> v', req({ v: V, v3: WRONG, expires: String(EXPIRES) }), ['v', 'v2'], 'v'],
    ['right v + wrong v2 with v2 not accepted -> v', req({ v: V, v2: WRONG }), ['v'], 'v'],
  ];
  for (const [name, request, schemes, scheme] of wins) {
    it(name, () => {
      const d = authorizeSlot(request, { secrets: [SECRET], schemes });
      assert.equal(d.ok, true, `refused with ${refusedWith(d)}`);
      assert.equal(d.ok && d.slot.scheme, scheme);
    });
  }
});

describe('authorizeSlot: v2 content type', () => {
  const sized = { path: PATH, size: 10 };

  it('no declared type verifies a signature over application/octet-stream, and reports that type', () => {
    const sig = sign('v2', SECRET, { ...sized, contentType: 'application/octet-stream' });
    const d = authorizeSlot(req({ v2: sig }, { size: 10, contentType: undefined }), policy);
    assert.deepEqual(d, {
      ok: true,
      slot: { path: PATH, scheme: 'v2', contentType: 'application/octet-stream', signedSize: 10, expiresAtMs: undefined },
    });
  });

  const declared = 'text/plain; charset=utf-8';
  const sig = sign('v2', SECRET, { ...sized, contentType: declared });
  it(`"${declared}" verifies when sent exactly`, () => {
    const d = authorizeSlot(req({ v2: sig }, { size: 10, contentType: declared }), policy);
    assert.equal(d.ok && d.slot.contentType, declared);
  });
  const variants = ['text/plain;charset=utf-8', 'text/plain; charset=UTF-8', 'Text/Plain; charset=utf-8', 'text/plain', 'text/plain;  charset=utf-8'];
  for (const variant of variants) {
    it(`normalised variant "${variant}" is refused`, () => {
      assert.equal(refusedWith(authorizeSlot(req({ v2: sig }, { size: 10, contentType: variant }), policy)), 'ERR_SIGNATURE_INVALID');
    });
  }
});

describe('pickScheme', () => {
  const cases: [query: string, accepted: Scheme[], expected: Scheme | undefined][] = [
    ['v=1&v2=1&token=1&v3=1', ALL, 'v3'],
    ['v=1&v2=1&token=1', ALL, 'v2'],
    ['v=1&token=1', ALL, 'token'],
    ['v=1', ALL, 'v'],
    ['v=1&v2=1&v3=1', ['v', 'token'], 'v'],
    ['', ALL, undefined],
    ['v2=1', ['v'], undefined],
  ];
  for (const [query, accepted, expected] of cases) {
    it(`"${query}" with [${accepted.join(',')}] -> ${expected}`, () => assert.equal(pickScheme(new URLSearchParams(query), accepted), expected));
  }
});
