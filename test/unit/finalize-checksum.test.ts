import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { expectedSha256FromHeaders, expectedSha256FromMetadata } from '../../src/finalize/index.js';

const digest = createHash('sha256').update('hello').digest();
const HEX = digest.toString('hex');
const B64 = digest.toString('base64');

describe('expectedSha256FromMetadata (tus Upload-Metadata)', () => {
  const cases: [Record<string, string | null>, string | null | undefined][] = [
    [{}, undefined],
    [{ filename: 'a.txt' }, undefined],
    [{ sha256: HEX }, HEX],
    [{ sha256: HEX.toUpperCase() }, HEX],
    [{ sha256: 'abc' }, null],
    [{ sha256: null }, undefined],
    [{ checksum: `sha256 ${B64}` }, HEX],
    [{ checksum: `SHA-256 ${B64}` }, HEX],
    [{ checksum: `md5 ${B64}` }, null],
    [{ checksum: 'sha256 !!!' }, null],
    [{ checksum: `sha256 ${Buffer.from('short').toString('base64')}` }, null],
    [{ sha256: HEX, checksum: 'md5 x' }, HEX], // sha256 wins
  ];
  for (const [meta, expected] of cases) {
    it(JSON.stringify(meta), () => assert.equal(expectedSha256FromMetadata(meta), expected));
  }
});

describe('expectedSha256FromHeaders (PUT)', () => {
  const cases: [Record<string, string>, string | null | undefined][] = [
    [{}, undefined],
    [{ 'repr-digest': `sha-256=:${B64}:` }, HEX],
    [{ 'content-digest': `sha-512=:AAAA:, sha-256=:${B64}:` }, HEX],
    [{ 'repr-digest': 'sha-512=:AAAA:' }, null],
    [{ digest: `SHA-256=${B64}` }, HEX],
    [{ digest: `md5=xyz, sha-256=${B64}` }, HEX],
    [{ digest: 'md5=xyz' }, null],
    [{ 'x-content-sha256': HEX }, HEX],
    [{ 'x-content-sha256': 'nope' }, null],
    [{ 'repr-digest': `sha-256=:${B64}:`, 'x-content-sha256': 'nope' }, HEX], // RFC 9530 first
  ];
  for (const [headers, expected] of cases) {
    it(JSON.stringify(headers), () => assert.equal(expectedSha256FromHeaders((n) => headers[n]), expected));
  }
});
