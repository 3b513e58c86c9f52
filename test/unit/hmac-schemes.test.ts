import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { DEFAULT_CONTENT_TYPE, sign, signatureMatches, signedMessage, type SignInput } from '../../src/auth/index.js';
import type { Scheme } from '../../src/config/index.js';

const SECRET = 'test-secret';

// hmac-protocols.md "Test vectors (secret `test-secret`)", copied verbatim.
const VECTORS: [name: string, scheme: Scheme, input: SignInput, message: string, hex: string][] = [
  [
    'v',
    'v',
    { path: 'abc123/photo.jpg', size: 1024 },
    'abc123/photo.jpg 1024',
    '0c3d5a1c3f378728e0fe91c35b66e86689bb8b701c4fdfd34ff1dc4518d915af',
  ],
  [
    'v, name with a space',
    'v',
    { path: 'abc123/my photo.jpg', size: 1024 },
    'abc123/my photo.jpg 1024',
    'a6239481e567af4353796d0eb1766228db802fa86da9e3516846107619d24969',
  ],
  [
    'v2',
    'v2',
    { path: 'abc123/photo.jpg', size: 1024, contentType: 'image/jpeg' },
    'abc123/photo.jpg\x001024\x00image/jpeg',
    '6115a7eea415f845079ef7d7cba377467aa9eabfa1b6c70d33636d1266c9a5f2',
  ],
  [
    'token (same message as v2)',
    'token',
    { path: 'abc123/photo.jpg', size: 1024, contentType: 'image/jpeg' },
    'abc123/photo.jpg\x001024\x00image/jpeg',
    '6115a7eea415f845079ef7d7cba377467aa9eabfa1b6c70d33636d1266c9a5f2',
  ],
  [
    'v3',
    'v3',
    { path: 'abc123/photo.jpg', method: 'PUT', expires: 1_700_000_000 },
    'PUT\n1700000000\n/abc123/photo.jpg',
    '3c85213965026b69f60128cf9c5402fd971611fe3419105abd69e51c216a75a4',
  ],
];

describe('hmac-protocols.md test vectors', () => {
  for (const [name, scheme, input, message, hex] of VECTORS) {
    it(`${name}: message`, () => assert.equal(signedMessage(scheme, input), message));
    it(`${name}: signature ${hex.slice(0, 12)}…`, () => assert.equal(sign(scheme, SECRET, input), hex));
    it(`${name}: signatureMatches accepts it`, () => assert.equal(signatureMatches(hex, scheme, [SECRET], input), true));
  }
});

describe('signedMessage details', () => {
  const cases: [name: string, scheme: Scheme, input: SignInput, message: string][] = [
    ['v2 without a content type signs application/octet-stream', 'v2', { path: 'a/b', size: 1 }, 'a/b\x001\x00application/octet-stream'],
    ['token without a content type signs application/octet-stream', 'token', { path: 'a/b', size: 1 }, 'a/b\x001\x00application/octet-stream'],
    ['v2 keeps content type parameters verbatim', 'v2', { path: 'a/b', size: 0, contentType: 'text/plain; charset=utf-8' }, 'a/b\x000\x00text/plain; charset=utf-8'],
    ['v3 defaults the method to PUT', 'v3', { path: 'a/b', expires: 5 }, 'PUT\n5\n/a/b'],
    ['v3 upper-cases the method', 'v3', { path: 'a/b', method: 'get', expires: 5 }, 'GET\n5\n/a/b'],
    ['v size 0', 'v', { path: 'x/y z', size: 0 }, 'x/y z 0'],
  ];
  for (const [name, scheme, input, message] of cases) it(name, () => assert.equal(signedMessage(scheme, input), message));

  it('DEFAULT_CONTENT_TYPE is application/octet-stream', () => assert.equal(DEFAULT_CONTENT_TYPE, 'application/octet-stream'));

  it('signs UTF-8 bytes of non-ASCII paths', () => {
    const expected = createHmac('sha256', SECRET).update(Buffer.from('abc/grüße.txt 7', 'utf8')).digest('hex');
    assert.equal(sign('v', SECRET, { path: 'abc/grüße.txt', size: 7 }), expected);
  });

  const missing: [name: string, scheme: Scheme, input: SignInput][] = [
    ['v without size', 'v', { path: 'a/b' }],
    ['v2 without size', 'v2', { path: 'a/b', contentType: 'image/png' }],
    ['token without size', 'token', { path: 'a/b' }],
    ['v3 without expires', 'v3', { path: 'a/b', size: 3 }],
  ];
  for (const [name, scheme, input] of missing) {
    it(`throws TypeError for ${name}`, () => assert.throws(() => signedMessage(scheme, input), TypeError));
  }
});

describe('signatureMatches', () => {
  const input: SignInput = { path: 'abc123/photo.jpg', size: 1024 };
  const right = '0c3d5a1c3f378728e0fe91c35b66e86689bb8b701c4fdfd34ff1dc4518d915af';
  const flipped = right.slice(0, -1) + (right.endsWith('f') ? '0' : 'f');

  const cases: [name: string, given: string, secrets: string[], expected: boolean][] = [
    ['right lowercase hex', right, [SECRET], true],
    ['right uppercase hex', right.toUpperCase(), [SECRET], true],
    ['last hex digit changed', flipped, [SECRET], false],
    ['right hex, wrong secret', right, ['other-secret'], false],
    ['right hex, no secrets at all', right, [], false],
    ['previous secret still in the list (rotation)', right, ['new-secret', SECRET], true],
    ['previous secret first, new one second', right, [SECRET, 'new-secret'], true],
    ['previous secret dropped from the list', right, ['new-secret', 'older-secret'], false],
    ['non-hex of the right length', 'z'.repeat(64), [SECRET], false],
    ['hex with a trailing space', `${right} `, [SECRET], false],
    ['truncated (63 chars)', right.slice(0, 63), [SECRET], false],
    ['too short (32 chars)', right.slice(0, 32), [SECRET], false],
    ['too long (66 chars)', `${right}00`, [SECRET], false],
    ['empty string', '', [SECRET], false],
    ['base64 of the right bytes', Buffer.from(right, 'hex').toString('base64'), [SECRET], false],
  ];
  for (const [name, given, secrets, expected] of cases) {
    it(`${expected ? 'accepts' : 'rejects'}: ${name}`, () => assert.equal(signatureMatches(given, 'v', secrets, input), expected));
  }

  it('rejects a right signature checked under another scheme', () => {
    assert.equal(signatureMatches(right, 'v2', [SECRET], { ...input, contentType: 'image/jpeg' }), false);
  });

  it('rejects a right signature when the size differs', () => {
    assert.equal(signatureMatches(right, 'v', [SECRET], { ...input, size: 1025 }), false);
  });
});
