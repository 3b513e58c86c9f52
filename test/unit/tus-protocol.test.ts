/** Pure parts of the tus extensions: header parsing, the upload record, running digests. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { AppError } from '../../src/errors.js';
import { parseUploadChecksum } from '../../src/http/tus-checksum.js';
import { parseUploadConcat } from '../../src/http/tus-concat.js';
import { clientMetadataOf, serverStateOf } from '../../src/storage/tus-upload-record.js';
import { chunkVerdict, HashingTap } from '../../src/storage/tus-chunk-check.js';
import { UploadDigests } from '../../src/storage/upload-digests.js';

const b64 = (alg: string, data: string) => createHash(alg).update(data).digest('base64');
const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return AppError.is(err) ? err.code : 'not an AppError';
  }
  return 'no error';
};

describe('Upload-Checksum', () => {
  it('parses the offered algorithms and refuses the rest with their own codes', () => {
    const ok = parseUploadChecksum(`SHA1 ${b64('sha1', 'x')}`, '1');
    assert.equal(ok?.algorithm, 'sha1');
    assert.equal(ok?.declaredBytes, 1);
    assert.equal(parseUploadChecksum(`md5 ${b64('md5', 'x')}`, undefined)?.declaredBytes, undefined, 'chunked body: length unknown');
    assert.equal(parseUploadChecksum(undefined, '5'), undefined);
    const cases: Array<[string, string]> = [
      [`crc32 ${Buffer.from('abcd').toString('base64')}`, 'ERR_CHECKSUM_UNSUPPORTED'],
      ['sha1', 'ERR_CHECKSUM_MALFORMED'],
      ['sha1 not*base64', 'ERR_CHECKSUM_MALFORMED'],
      [`sha256 ${b64('sha1', 'x')}`, 'ERR_CHECKSUM_MALFORMED'], // a sha1-sized digest for sha256
      [`sha1  ${b64('sha1', 'x')} extra`, 'ERR_CHECKSUM_MALFORMED'],
    ];
    for (const [header, code] of cases) assert.equal(codeOf(() => parseUploadChecksum(header, '1')), code, header);
  });

  it('decides a chunk: ok, mismatch, or incomplete when fewer bytes than declared arrived', () => {
    const check = parseUploadChecksum(`sha256 ${b64('sha256', 'hello')}`, '5')!;
    const hashOf = (data: string) => createHash('sha256').update(data);
    assert.equal(chunkVerdict(check, 5, hashOf('hello')), 'ok');
    assert.equal(chunkVerdict(check, 5, hashOf('hellO')), 'mismatch');
    assert.equal(chunkVerdict(check, 3, hashOf('hel')), 'incomplete');
  });

  it('HashingTap feeds every hash and counts bytes', async () => {
    const a = createHash('sha1');
    const b = createHash('md5');
    const tap = new HashingTap([a, b]);
    tap.end(Buffer.from('abc'));
    for await (const _ of tap) {
      // drain
    }
    assert.equal(tap.bytes, 3);
    assert.equal(a.digest('base64'), b64('sha1', 'abc'));
    assert.equal(b.digest('base64'), b64('md5', 'abc'));
  });
});

describe('Upload-Concat', () => {
  const prefixes = ['/base/files/', '/files/'];
  it('partial, and final with absolute or relative URLs under the tus path', () => {
    assert.deepEqual(parseUploadConcat('partial', prefixes), { kind: 'partial' });
    assert.deepEqual(parseUploadConcat('final;https://h.example/files/abc_-1 /base/files/xyz  /files/q%2D1', prefixes), { kind: 'final', ids: ['abc_-1', 'xyz', 'q-1'] });
  });
  it('anything else is ERR_CONCAT_MALFORMED, never a 5xx', () => {
    for (const header of ['final;', 'final', 'partial;x', 'whole', 'final;/other/abc', 'final;/files/', 'final;/files/a/b', 'final;/files/%ZZ', 'final;http://[::1/files/a', 'final;/files/..%2F..%2Fetc']) {
      assert.equal(codeOf(() => parseUploadConcat(header, prefixes)), 'ERR_CONCAT_MALFORMED', header);
    }
  });
});

describe('upload record', () => {
  it('server state from hfs, or from the legacy hfs-* metadata keys, which HEAD then hides', () => {
    const legacy = { metadata: { filename: 'a.txt', 'hfs-slot': 'd/a.txt', 'hfs-type': 'text/plain', empty: null } };
    assert.deepEqual(serverStateOf(legacy), { slotPath: 'd/a.txt', contentType: 'text/plain' });
    assert.deepEqual(clientMetadataOf(legacy), { filename: 'a.txt', empty: null });
    assert.equal(clientMetadataOf({ metadata: { 'hfs-slot': 'd/a', 'hfs-type': 't/p' } }), undefined, 'nothing the client sent');
    const current = { metadata: { 'hfs-slot': 'client value' }, hfs: { slotPath: 'd/b', contentType: 'image/png' } };
    assert.deepEqual(clientMetadataOf(current), { 'hfs-slot': 'client value' }, 'a client key of that name is the client\u2019s');
    assert.equal(serverStateOf(current)?.slotPath, 'd/b');
    assert.equal(serverStateOf({ metadata: { filename: 'x' } }), null, 'not created through a slot');
  });
});

describe('UploadDigests', () => {
  const sha = (s: string) => createHash('sha256').update(s).digest('hex');
  it('follows contiguous writes; anything else falls back to hashing the file', () => {
    const d = new UploadDigests(2);
    d.start('a');
    d.forWrite('a', 0)!.update('hello ');
    d.settle('a', 6, 6);
    d.forWrite('a', 6)!.update('world');
    d.settle('a', 5, 11);
    assert.equal(d.finish('a', 11), sha('hello world'));
    assert.equal(d.finish('a', 11), undefined, 'forgotten once finished');

    d.start('b');
    d.forWrite('b', 0)!.update('abc');
    d.settle('b', 3, 2); // the store kept fewer bytes than were hashed
    assert.equal(d.forWrite('b', 2), undefined);
    assert.equal(d.finish('b', 2), undefined);

    d.start('c');
    assert.equal(d.forWrite('c', 5), undefined, 'a write that does not continue the digest drops it');
    for (const id of ['x', 'y', 'z']) d.start(id);
    assert.equal(d.forWrite('x', 0), undefined, 'bounded: the oldest is dropped');
    assert.ok(d.forWrite('z', 0));
  });
});
