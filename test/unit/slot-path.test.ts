import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeSlotPath, encodeSlotPath, newUploadId } from '../../src/auth/index.js';
import { AppError } from '../../src/errors.js';

const isBadPath = (err: unknown): boolean => err instanceof AppError && err.code === 'ERR_BAD_PATH' && err.status === 400;

describe('decodeSlotPath: accepted paths', () => {
  const cases: [name: string, raw: string, decoded: string][] = [
    ['Prosody uuid/name', 'abc123/photo.jpg', 'abc123/photo.jpg'],
    ['encoded space', 'abc123/my%20photo.jpg', 'abc123/my photo.jpg'],
    ['raw "+" stays "+" (not a space)', 'abc123/a+b.txt', 'abc123/a+b.txt'],
    ['encoded "+"', 'abc123/a%2Bb.txt', 'abc123/a+b.txt'],
    [
      'ejabberd sha1/random/name (3 levels)',
      'a94a8fe5ccb19ba61c4c0873d391e987982fbbd3/XkSEt5fUqWn3/photo_2024-01-01.jpg',
      'a94a8fe5ccb19ba61c4c0873d391e987982fbbd3/XkSEt5fUqWn3/photo_2024-01-01.jpg',
    ],
    ['four levels', 'a/b/c/d.txt', 'a/b/c/d.txt'],
    ['single segment', 'file.txt', 'file.txt'],
    ['Prosody lowercase hex', 'abc/gr%c3%bc%c3%9fe%2bx%281%29.txt', 'abc/grüße+x(1).txt'],
    ['client re-encoded uppercase hex', 'abc/gr%C3%BC%C3%9Fe%2Bx(1).txt', 'abc/grüße+x(1).txt'],
    ['dots inside a name', 'abc/a..b', 'abc/a..b'],
    ['hidden-file name', 'abc/.profile', 'abc/.profile'],
    ['encoded "#" and "?"', 'abc/%231%3F.txt', 'abc/#1?.txt'],
    ['250-byte segment', `abc/${'x'.repeat(250)}`, `abc/${'x'.repeat(250)}`],
    ['900-byte path', `${'y'.repeat(250)}/${'y'.repeat(250)}/${'y'.repeat(250)}/${'y'.repeat(147)}`, `${'y'.repeat(250)}/${'y'.repeat(250)}/${'y'.repeat(250)}/${'y'.repeat(147)}`],
  ];
  for (const [name, raw, decoded] of cases) it(name, () => assert.equal(decodeSlotPath(raw), decoded));

  it("Prosody's lowercase and a client's uppercase re-encoding decode to the same path", () => {
    assert.equal(decodeSlotPath('abc/%c3%bc%2b%281%29'), decodeSlotPath('abc/%C3%BC%2B(1)'));
  });
});

describe('decodeSlotPath: refused paths (ERR_BAD_PATH, 400)', () => {
  const cases: [name: string, raw: string][] = [
    ['empty path', ''],
    ['".." alone', '..'],
    ['".." segment', 'abc/../etc/passwd'],
    ['trailing ".."', 'abc/..'],
    ['encoded ".."', 'abc/%2e%2e/x'],
    ['"." segment', 'abc/./x'],
    ['"." alone', '.'],
    ['empty segment a//b', 'a//b'],
    ['trailing slash', 'a/b/'],
    ['leading slash', '/a/b'],
    ['NUL', 'a/b%00.txt'],
    ['newline', 'a/b%0A.txt'],
    ['DEL', 'a/b%7F.txt'],
    ['raw backslash', 'a\\b'],
    ['encoded backslash %5C', 'a/b%5Cc'],
    ['encoded backslash %5c', 'a/b%5cc'],
    ['encoded slash %2F', 'a/b%2Fc'],
    ['encoded slash %2f', 'a/b%2fc'],
    ['lone "%"', 'a/100%'],
    ['"%" with non-hex', 'a/%zz'],
    ['truncated UTF-8', 'a/%c3'],
    ['invalid UTF-8', 'a/%ff%fe'],
    ['251-byte segment (its record, name + ".json", would pass the 255-byte file-name limit)', `abc/${'x'.repeat(251)}`],
    ['252-byte segment of 126 two-byte characters', `abc/${encodeURIComponent('ü'.repeat(126))}`],
    ['path over 900 bytes', `${'y'.repeat(250)}/${'y'.repeat(250)}/${'y'.repeat(250)}/${'y'.repeat(148)}`],
  ];
  for (const [name, raw] of cases) it(name, () => assert.throws(() => decodeSlotPath(raw), isBadPath));
});

describe('encodeSlotPath', () => {
  const roundTrip = [
    'abc/my photo.jpg',
    'abc/a+b.txt',
    'abc/#1?.txt',
    'abc/grüße 日本.txt',
    'abc/100%.txt',
    "abc/it's (1)!*.txt",
    'abc/😀.png',
    'sha1/random/a&b=c;d.txt',
  ];
  for (const path of roundTrip) {
    it(`round-trips ${JSON.stringify(path)}`, () => {
      const encoded = encodeSlotPath(path);
      assert.match(encoded, /^[A-Za-z0-9\-_.!~*'()%/]+$/, 'only URL-safe characters');
      assert.equal(encoded.split('/').length, path.split('/').length, 'keeps the "/" between segments');
      assert.equal(decodeSlotPath(encoded), path);
    });
  }

  const exact: [path: string, encoded: string][] = [
    ['abc123/my photo.jpg', 'abc123/my%20photo.jpg'],
    ['abc/a+b', 'abc/a%2Bb'],
    ['abc/#?', 'abc/%23%3F'],
    ['abc/ü', 'abc/%C3%BC'],
  ];
  for (const [path, encoded] of exact) it(`${JSON.stringify(path)} -> ${encoded}`, () => assert.equal(encodeSlotPath(path), encoded));
});

describe('newUploadId', () => {
  it('is 32 base64url characters and never starts with a dash (ops commands take ids as arguments)', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const id = newUploadId();
      assert.match(id, /^[A-Za-z0-9_][A-Za-z0-9_-]{31}$/);
      ids.add(id);
    }
    assert.equal(ids.size, 5000);
  });
});
