/** Pure request checks of the HTTP edge: request targets (request-target.ts) and tus requests (tus-request.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppError } from '../../src/errors.js';
import { hostProblem, logPathOf, parseRequestTarget } from '../../src/http/request-target.js';
import { byteCountOf, checkTusRequest, tusTargetOf } from '../../src/http/tus-request.js';
import { clientErrorCode } from '../../src/http/client-errors.js';

describe('parseRequestTarget', () => {
  const cases: Array<[target: string, expected: ReturnType<typeof parseRequestTarget>]> = [
    ['/files/abc?x=1', { form: 'origin', pathAndQuery: '/files/abc?x=1' }],
    ['*', { form: 'origin', pathAndQuery: '*' }],
    ['http://h:8080/files/', { form: 'absolute', pathAndQuery: '/files/', authority: 'h:8080' }],
    ['HTTPS://h', { form: 'absolute', pathAndQuery: '/', authority: 'h' }],
    ['http://h?q=1', { form: 'absolute', pathAndQuery: '/?q=1', authority: 'h' }],
    ['http://h/upload/a/../b', { form: 'absolute', pathAndQuery: '/upload/a/../b', authority: 'h' }],
    ['http://[::1]:80/health', { form: 'absolute', pathAndQuery: '/health', authority: '[::1]:80' }],
    ['http://x:99999/files/', null],
    ['http://[::1/upload', null],
    ['https://[zz]:1/', null],
    ['ftp://h/x', null],
    ['http:///files/', null],
    ['http://user@h/', null],
    ['files/abc', null],
    ['', null],
  ];
  for (const [target, expected] of cases) it(JSON.stringify(target), () => assert.deepEqual(parseRequestTarget(target), expected));

  it('logPathOf never throws and drops the query', () => {
    assert.equal(logPathOf('http://h/upload/a?v=secret'), '/upload/a');
    assert.equal(logPathOf('http://[::1/upload?v=secret'), 'http://[::1/upload');
    assert.equal(logPathOf('/x'.repeat(1000)).length, 512);
  });
});

describe('hostProblem (RFC 9112 §3.2)', () => {
  const cases: Array<[string, string[], string | null]> = [
    ['one host', ['Host', 'example.com'], null],
    ['host and port', ['host', 'example.com:8080'], null],
    ['IPv4 and port', ['Host', '127.0.0.1:9'], null],
    ['IPv6 literal and port', ['Host', '[::1]:8080'], null],
    ['empty value', ['Host', ''], null],
    ['no Host (HTTP/1.0)', ['Accept', '*/*'], null],
    ['two Host lines', ['Host', 'a', 'host', 'a'], 'More than one Host header'],
    ['a space', ['Host', 'a b'], 'The Host header is malformed'],
    ['a path', ['Host', 'a/b'], 'The Host header is malformed'],
    ['userinfo', ['Host', 'u@a'], 'The Host header is malformed'],
    ['unclosed IPv6 literal', ['Host', '[::1'], 'The Host header is malformed'],
    ['port out of range', ['Host', 'a:99999'], 'The Host header is malformed'],
    ['non-numeric port', ['Host', 'a:b'], 'The Host header is malformed'],
  ];
  for (const [name, raw, expected] of cases) it(`${name} -> ${expected ?? 'ok'}`, () => assert.equal(hostProblem(raw), expected));
});

describe('tus request checks', () => {
  const code = (fn: () => unknown) => {
    try {
      fn();
      return null;
    } catch (err) {
      assert.ok(err instanceof AppError, String(err));
      return err.code;
    }
  };

  it('targets: the collection, one upload id, nothing else', () => {
    assert.deepEqual(tusTargetOf('/files', '/files'), { kind: 'collection' });
    assert.deepEqual(tusTargetOf('/files/', '/files'), { kind: 'collection' });
    assert.deepEqual(tusTargetOf('/files/Ab_-9', '/files'), { kind: 'upload', id: 'Ab_-9' });
    assert.equal(code(() => tusTargetOf('/files/%ZZ', '/files')), 'ERR_BAD_REQUEST');
    assert.equal(code(() => tusTargetOf('/files/%E0%A4%A', '/files')), 'ERR_BAD_REQUEST');
    assert.equal(code(() => tusTargetOf('/files/%c0%ae%c0%ae', '/files')), 'ERR_BAD_REQUEST');
    assert.equal(code(() => tusTargetOf('/files/..%2fx', '/files')), 'ERR_NOT_FOUND');
    assert.equal(code(() => tusTargetOf('/files/a/b', '/files')), 'ERR_NOT_FOUND');
    assert.equal(code(() => tusTargetOf(`/files/${'a'.repeat(129)}`, '/files')), 'ERR_NOT_FOUND');
  });

  it('requests: Tus-Resumable 1.0.0 (412 with Tus-Version), known methods', () => {
    const headers = (h: Record<string, string>) => (name: string) => h[name] ?? '';
    assert.equal(code(() => checkTusRequest('PATCH', headers({ 'Tus-Resumable': '1.0.0' }))), null);
    assert.equal(code(() => checkTusRequest('OPTIONS', headers({}))), null);
    assert.equal(code(() => checkTusRequest('PATCH', headers({}))), 'ERR_TUS_RESUMABLE_REQUIRED');
    assert.equal(code(() => checkTusRequest('HEAD', headers({ 'Tus-Resumable': '0.2.2' }))), 'ERR_TUS_RESUMABLE_REQUIRED');
    assert.equal(code(() => checkTusRequest('PUT', headers({ 'Tus-Resumable': '1.0.0' }))), 'ERR_METHOD_NOT_ALLOWED');
    try {
      checkTusRequest('HEAD', headers({}));
    } catch (err) {
      assert.equal((err as AppError).headers['Tus-Version'], '1.0.0');
    }
  });

  it('byte counts: non-negative integers only', () => {
    assert.deepEqual(['5', '0', '-5', '1e3', ' 5', '', '99999999999999999'].map(byteCountOf), [5, 0, undefined, undefined, undefined, undefined, undefined]);
  });
});

describe('clientErrorCode', () => {
  it('maps parser errors as Node does', () => {
    assert.equal(clientErrorCode('HPE_HEADER_OVERFLOW'), 'ERR_HEADERS_TOO_LARGE');
    assert.equal(clientErrorCode('ERR_HTTP_REQUEST_TIMEOUT'), 'ERR_HEADERS_TIMEOUT');
    assert.equal(clientErrorCode('HPE_INVALID_METHOD'), 'ERR_BAD_REQUEST');
    assert.equal(clientErrorCode(undefined), 'ERR_BAD_REQUEST');
  });
});
