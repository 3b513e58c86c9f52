/**
 * Where the RUFH 104 may go ([rufh] interim_responses, proxy_addresses, proxies_passing_1xx):
 * the decision table, and the config checks with their key paths.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, parseAddressRange, resolveConfig, type InterimPolicy } from '../../src/config/index.js';
import { InterimDecider, type InterimRequest, type InterimVerdict } from '../../src/http/rufh-interim.js';

const LOOPBACK = [parseAddressRange('127.0.0.0/8'), parseAddressRange('::1')];
const decider = (policy: InterimPolicy, extra: { passing?: string[]; trustProxy?: boolean; proxies?: string[] } = {}) =>
  new InterimDecider({
    policy,
    proxies: extra.proxies ? extra.proxies.map(parseAddressRange) : LOOPBACK,
    passing1xx: (extra.passing ?? []).map(parseAddressRange),
    trustProxy: extra.trustProxy ?? false,
  });
const request = (peer: string, more: Partial<InterimRequest> = {}): InterimRequest => ({ httpVersion: '1.1', peer, forwarded: false, ...more });

describe('RUFH interim decision', () => {
  const cases: Array<[name: string, d: InterimDecider, r: InterimRequest, expected: InterimVerdict]> = [
    ['a phone on a public address, defaults', decider('direct'), request('203.0.113.9'), { send: true, via: 'direct' }],
    ['a phone over IPv6, defaults', decider('direct'), request('2001:db8::7'), { send: true, via: 'direct' }],
    ['a local proxy (loopback), defaults', decider('direct'), request('127.0.0.1'), { send: false, reason: 'proxy' }],
    ['a local proxy on a dual-stack socket', decider('direct'), request('::ffff:127.0.0.1'), { send: false, reason: 'proxy' }],
    ['IPv6 loopback', decider('direct'), request('::1'), { send: false, reason: 'proxy' }],
    ['a remote proxy that adds X-Forwarded-For', decider('direct'), request('10.1.2.3', { forwarded: true }), { send: false, reason: 'proxy' }],
    ['any peer with trust_proxy on', decider('direct', { trustProxy: true }), request('10.1.2.3'), { send: false, reason: 'proxy' }],
    ['a remote proxy listed in proxy_addresses', decider('direct', { proxies: ['10.0.0.0/8'] }), request('10.1.2.3'), { send: false, reason: 'proxy' }],
    ['loopback with proxy_addresses = []', decider('direct', { proxies: [] }), request('127.0.0.1'), { send: true, via: 'direct' }],
    ['a proxy that passes 1xx', decider('direct', { passing: ['127.0.0.1'] }), request('127.0.0.1', { forwarded: true }), { send: true, via: 'proxy' }],
    ['a proxy that passes 1xx, by network', decider('direct', { passing: ['10.0.0.0/24'], trustProxy: true }), request('::ffff:10.0.0.5'), { send: true, via: 'proxy' }],
    ['another proxy beside one that passes 1xx', decider('direct', { passing: ['10.0.0.5'] }), request('10.0.0.6', { forwarded: true }), { send: false, reason: 'proxy' }],
    ['"always" through any proxy', decider('always'), request('127.0.0.1', { forwarded: true }), { send: true, via: 'proxy' }],
    ['"always" to a direct client', decider('always'), request('203.0.113.9'), { send: true, via: 'direct' }],
    ['"never"', decider('never'), request('203.0.113.9'), { send: false, reason: 'disabled' }],
    ['HTTP/1.0 (RFC 9110: no 1xx), even with "always"', decider('always'), request('203.0.113.9', { httpVersion: '1.0' }), { send: false, reason: 'http/1.0' }],
    ['HTTP/2', decider('direct'), request('203.0.113.9', { httpVersion: '2.0' }), { send: true, via: 'direct' }],
    ['an unknown peer without forwarding headers', decider('direct'), { httpVersion: '1.1', peer: undefined, forwarded: false }, { send: true, via: 'direct' }],
  ];
  for (const [name, d, r, expected] of cases) it(name, () => assert.deepEqual(d.decide(r), expected));
});

describe('[rufh] config', () => {
  it('defaults: direct, loopback counts as a proxy, no proxy passes 1xx', () => {
    const { rufh } = resolveConfig({}, {}).config;
    assert.equal(rufh.interimResponses, 'direct');
    assert.deepEqual(rufh.proxyAddresses, [
      { address: '127.0.0.0', family: 'ipv4', prefix: 8 },
      { address: '::1', family: 'ipv6', prefix: 128 },
    ]);
    assert.deepEqual(rufh.proxiesPassing1xx, []);
  });

  it('reads addresses and networks of both families', () => {
    const { rufh } = resolveConfig({ rufh: { interim_responses: 'always', proxies_passing_1xx: ['10.0.0.7', 'fd00::/8'] } }, {}).config;
    assert.equal(rufh.interimResponses, 'always');
    assert.deepEqual(rufh.proxiesPassing1xx, [
      { address: '10.0.0.7', family: 'ipv4', prefix: 32 },
      { address: 'fd00::', family: 'ipv6', prefix: 8 },
    ]);
  });

  const bad: Array<[raw: Record<string, unknown>, path: RegExp]> = [
    [{ interim_responses: 'sometimes' }, /^rufh\.interim_responses$/],
    [{ proxy_addresses: ['nginx.local'] }, /^rufh\.proxy_addresses/],
    [{ proxy_addresses: ['10.0.0.0/33'] }, /^rufh\.proxy_addresses/],
    [{ proxies_passing_1xx: ['::1/129'] }, /^rufh\.proxies_passing_1xx/],
    [{ proxies_passing_1xx: ['10.0.0.1/8/2'] }, /^rufh\.proxies_passing_1xx/],
    [{ proxies_passing_1xx: '127.0.0.1' }, /^rufh\.proxies_passing_1xx$/],
  ];
  for (const [raw, path] of bad) {
    it(`refuses ${JSON.stringify(raw)} naming the key`, () =>
      assert.throws(
        () => resolveConfig({ rufh: raw }, {}),
        (err: unknown) => err instanceof ConfigError && err.issues.some((i) => path.test(i.path)),
      ));
  }
});
