import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { forwardedProtoFor } from '../../src/http/forwarded-proto.js';

describe('X-Forwarded-Proto as @tus/server sees it', () => {
  const cases: Array<[string, boolean, string | null]> = [
    ['https', false, null],
    ['https, http', false, null],
    ['https', true, 'https'],
    ['http', true, 'http'],
    ['HTTPS', true, 'https'],
    [' https , http', true, 'https'],
    ['http,https', true, 'http'],
    ['', true, null],
    ['gopher', true, null],
    ['https;x', true, null],
  ];
  for (const [value, trust, expected] of cases) {
    it(`${JSON.stringify(value)} with trust_proxy ${trust} -> ${expected ?? 'dropped'}`, () => assert.equal(forwardedProtoFor(value, trust), expected));
  }
});
