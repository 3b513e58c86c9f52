import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { requestOrigin } from '../../src/http/request-origin.js';

describe('requestOrigin: the scheme and host of the upload URLs we hand out', () => {
  const of = (headers: Record<string, string>, trust: boolean, scheme: 'http' | 'https' = 'http') => requestOrigin((name) => headers[name], scheme, trust);
  const cases: Array<[string, Record<string, string>, boolean, string]> = [
    ['Host alone', { host: 'up.example:8080' }, true, 'http://up.example:8080'],
    ['forwarded headers ignored without trust_proxy', { host: 'in:1', forwarded: 'host=fw.example;proto=https', 'x-forwarded-host': 'x.example', 'x-forwarded-proto': 'https' }, false, 'http://in:1'],
    ['RFC 7239 Forwarded', { host: 'in:1', forwarded: 'for=1.2.3.4;host=fw.example;proto=https' }, true, 'https://fw.example'],
    ['Forwarded: the first element (nearest the client)', { host: 'in:1', forwarded: 'host=first.example;proto=https, host=second.example;proto=http' }, true, 'https://first.example'],
    ['Forwarded: quoted host with a port', { host: 'in:1', forwarded: 'host="fw.example:8443";proto=https' }, true, 'https://fw.example:8443'],
    ['Forwarded before X-Forwarded-*', { host: 'in:1', forwarded: 'host=fw.example;proto=https', 'x-forwarded-host': 'x.example', 'x-forwarded-proto': 'http' }, true, 'https://fw.example'],
    ['Forwarded without host: X-Forwarded-Host', { host: 'in:1', forwarded: 'for=1.2.3.4;proto=https', 'x-forwarded-host': 'x.example' }, true, 'https://x.example'],
    ['malformed Forwarded: as if absent', { host: 'in:1', forwarded: 'host=;;==', 'x-forwarded-host': 'x.example' }, true, 'http://x.example'],
    ['Forwarded as proxies write it: unquoted IPv6 for= and host:port', { host: 'in:1', forwarded: 'for=[::1];host=fw.example:8443;proto=https' }, true, 'https://fw.example:8443'],
    ['a forwarded host that would change the URL: the next one', { host: 'in:1', forwarded: 'host="a b/c@d";proto=https', 'x-forwarded-host': 'x.example' }, true, 'https://x.example'],
    ['no usable forwarded host: Host', { host: 'in:1', 'x-forwarded-host': 'evil.example/path' }, true, 'http://in:1'],
    ['X-Forwarded-* lists: the first value', { host: 'in:1', 'x-forwarded-host': 'a.example, b.example', 'x-forwarded-proto': 'HTTPS, http' }, true, 'https://a.example'],
    ['an unknown forwarded scheme: the listener\u2019s', { host: 'in:1', 'x-forwarded-proto': 'gopher' }, true, 'http://in:1'],
  ];
  for (const [name, headers, trust, expected] of cases) it(name, () => assert.equal(of(headers, trust), expected));
  it('no host at all (HTTP/1.0 without Host): no origin, so the URL stays path-only', () => {
    assert.equal(of({}, false), '');
    assert.equal(of({ 'x-forwarded-proto': 'https' }, true), '');
  });
  it('our own TLS listener says https', () => assert.equal(of({ host: 'up.example' }, false, 'https'), 'https://up.example'));
});
