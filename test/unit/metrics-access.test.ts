import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isLoopbackAddress, mayReadMetrics } from '../../src/http/metrics-access.js';

describe('metrics on the main listener: who may read them', () => {
  const cases: Array<[string, string | undefined, Record<string, string>, boolean, boolean]> = [
    ['IPv4 loopback', '127.0.0.1', {}, false, true],
    ['another 127/8 address', '127.0.0.2', {}, false, true],
    ['IPv6 loopback', '::1', {}, false, true],
    ['IPv4-mapped loopback', '::ffff:127.0.0.1', {}, false, true],
    ['a LAN peer', '192.168.1.20', {}, false, false],
    ['a public IPv6 peer', '2001:db8::1', {}, false, false],
    ['mapped non-loopback', '::ffff:10.0.0.1', {}, false, false],
    ['unknown peer (closed socket)', undefined, {}, false, false],
    ['loopback proxy with X-Forwarded-For', '127.0.0.1', { 'x-forwarded-for': '203.0.113.9' }, false, false],
    ['loopback proxy with Forwarded', '127.0.0.1', { forwarded: 'for=203.0.113.9' }, false, false],
    ['loopback proxy with X-Real-IP', '::1', { 'x-real-ip': '203.0.113.9' }, false, false],
    ['loopback proxy with Via', '127.0.0.1', { via: '1.1 nginx' }, false, false],
    ['public = true: a LAN peer', '192.168.1.20', {}, true, true],
    ['public = true: through a proxy', '127.0.0.1', { 'x-forwarded-for': '203.0.113.9' }, true, true],
  ];
  for (const [name, peer, headers, isPublic, expected] of cases) {
    it(`${name} -> ${expected ? 'served' : 'refused'}`, () => assert.equal(mayReadMetrics(peer, headers, isPublic), expected));
  }
  it('127 only as the first octet counts as loopback', () => {
    assert.equal(isLoopbackAddress('10.127.0.1'), false);
    assert.equal(isLoopbackAddress('1270.0.0.1'), false);
  });
});
