import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decideRange, etagMatches, ifRangeAllows, preconditionFails, type RangeDecision } from '../../src/http/range.js';

const full: RangeDecision = { kind: 'full' };
const unsatisfiable: RangeDecision = { kind: 'unsatisfiable' };
const part = (start: number, end: number): RangeDecision => ({ kind: 'partial', start, end });

describe('decideRange', () => {
  const cases: [header: string | undefined, size: number, expected: RangeDecision][] = [
    // ignored: answer with the whole file
    [undefined, 10, full],
    ['', 10, full],
    ['bytes', 10, full],
    ['bytes=', 10, full],
    ['bytes=-', 10, full],
    ['bytes=abc', 10, full],
    ['items=0-1', 10, full],
    ['bytes=0-1,3-4', 10, full], // multi-range: whole file
    ['bytes=4-2', 10, full], // last < first: invalid, ignored
    ['bytes=1.5-3', 10, full],
    // single ranges
    ['bytes=0-0', 10, part(0, 0)],
    ['bytes=2-4', 10, part(2, 4)],
    ['bytes=5-', 10, part(5, 9)],
    ['bytes=-3', 10, part(7, 9)],
    ['bytes=0-', 10, part(0, 9)],
    ['bytes=9-9', 10, part(9, 9)],
    ['BYTES=2-4', 10, part(2, 4)],
    ['bytes=-20', 10, part(0, 9)], // suffix longer than the file: whole file as a range
    ['bytes=5-100', 10, part(5, 9)], // end past size clamps
    ['bytes=0-99999999999999999999', 10, part(0, 9)],
    // unsatisfiable
    ['bytes=10-', 10, unsatisfiable],
    ['bytes=10-20', 10, unsatisfiable],
    ['bytes=11-11', 10, unsatisfiable],
    ['bytes=-0', 10, unsatisfiable],
    // zero-size file
    [undefined, 0, full],
    ['bytes=0-', 0, unsatisfiable],
    ['bytes=0-0', 0, unsatisfiable],
    ['bytes=-5', 0, unsatisfiable],
  ];
  for (const [header, size, expected] of cases) {
    it(`${JSON.stringify(header)} on ${size} bytes -> ${JSON.stringify(expected)}`, () => assert.deepEqual(decideRange(header, size), expected));
  }
});

describe('ifRangeAllows', () => {
  const etag = '"1a-2b-3c"';
  const mtimeMs = Date.UTC(2024, 0, 2, 3, 4, 5, 678); // Last-Modified truncates to the second
  const lastModified = new Date(Math.floor(mtimeMs / 1000) * 1000).toUTCString();
  const cases: [name: string, ifRange: string | undefined, expected: boolean][] = [
    ['absent', undefined, true],
    ['empty', '', true],
    ['matching strong etag', etag, true],
    ['other etag', '"ffff"', false],
    ['weak form of the etag (If-Range needs a strong match)', `W/${etag}`, false],
    ['etag without quotes is read as a date and fails', '1a-2b-3c', false],
    ['exact Last-Modified date', lastModified, true],
    ['date one second before Last-Modified (file changed since)', new Date(Math.floor(mtimeMs / 1000) * 1000 - 1000).toUTCString(), false],
    ['date a day before', new Date(mtimeMs - 86_400_000).toUTCString(), false],
    ['date after Last-Modified (only an exact match validates)', new Date(Math.floor(mtimeMs / 1000) * 1000 + 3600_000).toUTCString(), false],
    ['garbage', 'not a date', false],
  ];
  for (const [name, ifRange, expected] of cases) it(`${name} -> ${expected}`, () => assert.equal(ifRangeAllows(ifRange, etag, mtimeMs), expected));
});

describe('etagMatches (If-None-Match)', () => {
  const etag = '"abc"';
  const cases: [ifNoneMatch: string | undefined, expected: boolean][] = [
    [undefined, false],
    ['', false],
    ['"abc"', true],
    ['"xyz"', false],
    ['*', true],
    [' * ', true],
    ['"xyz", "abc"', true],
    ['"xyz","abc"', true],
    ['"xyz", "def"', false],
    ['W/"abc"', true], // weak comparison
    ['"xyz", W/"abc"', true],
    ['abc', false], // unquoted is not the same tag
    ['"ABC"', false], // etags are case-sensitive
  ];
  for (const [header, expected] of cases) it(`${JSON.stringify(header)} -> ${expected}`, () => assert.equal(etagMatches(header, etag), expected));
});

describe('preconditionFails (If-Match, If-Unmodified-Since)', () => {
  const etag = '"abc"';
  const mtimeMs = Date.UTC(2024, 0, 2, 3, 4, 5, 678);
  const lastModified = new Date(Math.floor(mtimeMs / 1000) * 1000).toUTCString();
  const earlier = new Date(Math.floor(mtimeMs / 1000) * 1000 - 1000).toUTCString();
  const cases: [name: string, ifMatch: string | undefined, ifUnmodifiedSince: string | undefined, fails: boolean][] = [
    ['neither', undefined, undefined, false],
    ['If-Match the etag', '"abc"', undefined, false],
    ['If-Match in a list', '"x", "abc"', undefined, false],
    ['If-Match *', '*', undefined, false],
    ['If-Match another', '"x"', undefined, true],
    ['If-Match weak form (strong comparison)', 'W/"abc"', undefined, true],
    ['If-Unmodified-Since Last-Modified', undefined, lastModified, false],
    ['If-Unmodified-Since a second earlier', undefined, earlier, true],
    ['If-Unmodified-Since garbage is ignored', undefined, 'not a date', false],
    ['If-Match decides over If-Unmodified-Since', '"abc"', earlier, false],
  ];
  for (const [name, ifMatch, ius, fails] of cases) it(`${name} -> ${fails ? '412' : 'served'}`, () => assert.equal(preconditionFails(ifMatch, ius, etag, mtimeMs), fails));
});
