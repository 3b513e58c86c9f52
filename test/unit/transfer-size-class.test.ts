import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MB, sizeClassOf, type SizeClass } from '../../src/transfer/index.js';

describe('sizeClassOf (decimal MB)', () => {
  const cases: [bytes: number, expected: SizeClass][] = [
    [0, 'small'],
    [10 * MB - 1, 'small'],
    [10 * 1024 * 1024 - 1, 'medium'], // 10 MiB is past 10 MB: decimal, not binary
    [10 * MB, 'medium'],
    [100 * MB - 1, 'medium'],
    [100 * MB, 'large'],
    [1000 * MB - 1, 'large'],
    [1000 * MB, 'huge'],
    [5_000_000_000_000, 'huge'],
  ];
  for (const [bytes, expected] of cases) {
    it(`${bytes} bytes is ${expected}`, () => assert.equal(sizeClassOf(bytes), expected));
  }

  for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
    it(`rejects ${bad}`, () => assert.throws(() => sizeClassOf(bad), RangeError));
  }
});
