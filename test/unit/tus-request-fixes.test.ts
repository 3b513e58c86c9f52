import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { adaptTusRequest, forwardedProtoFor, methodOf } from '../../src/http/tus-request-fixes.js';

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

describe('X-HTTP-Method-Override', () => {
  const cases: Array<[string, string | undefined, string]> = [
    ['POST', undefined, 'POST'],
    ['POST', 'PATCH', 'PATCH'],
    ['POST', 'delete', 'DELETE'],
    ['POST', ' head ', 'HEAD'],
    ['POST', '', 'POST'],
    ['GET', 'PATCH', 'PATCH'],
  ];
  for (const [method, override, expected] of cases) it(`${method} + ${JSON.stringify(override)} -> ${expected}`, () => assert.equal(methodOf(method, override), expected));
});

describe('adaptTusRequest changes both views of the request', () => {
  const request = (method: string, raw: string[], url = '/files/abc'): IncomingMessage => {
    const headers: Record<string, string> = {};
    for (let i = 0; i < raw.length; i += 2) headers[raw[i]!.toLowerCase()] = raw[i + 1]!;
    return { method, url, headers, rawHeaders: [...raw] } as unknown as IncomingMessage;
  };
  it("an upload URL's query is dropped (the id is the path's); a creation keeps its query", () => {
    for (const method of ['HEAD', 'PATCH', 'DELETE', 'GET']) {
      const req = request(method, [], '/files/abc?t=1&x=%2F');
      adaptTusRequest(req, false);
      assert.equal(req.url, '/files/abc', method);
    }
    const overridden = request('POST', ['X-HTTP-Method-Override', 'PATCH'], '/files/abc?t=1');
    adaptTusRequest(overridden, false);
    assert.equal(overridden.url, '/files/abc', 'a PATCH sent as POST is a PATCH');
    const creation = request('POST', [], '/files/?slot=%2Fupload%2Fa%2Fb.bin%3Fv%3D1');
    adaptTusRequest(creation, false);
    assert.equal(creation.url, '/files/?slot=%2Fupload%2Fa%2Fb.bin%3Fv%3D1');
  });
  it('an override to HEAD is refused (400): the answer would announce a body it never sends', () => {
    for (const method of ['POST', 'GET', 'PATCH']) {
      const req = request(method, ['X-HTTP-Method-Override', 'head'], '/files/abc');
      assert.throws(() => adaptTusRequest(req, false), (err: Error & { code?: string }) => err.code === 'ERR_BAD_REQUEST');
      assert.equal(req.method, method, 'unchanged');
    }
    const head = request('HEAD', ['X-HTTP-Method-Override', 'HEAD'], '/files/abc');
    adaptTusRequest(head, false);
    assert.equal(head.method, 'HEAD');
  });
  it('override, proto kept (trusted), empty metadata dropped, other headers untouched', () => {
    const req = request('POST', ['Host', 'a', 'X-HTTP-Method-Override', 'PATCH', 'X-Forwarded-Proto', 'HTTPS, http', 'Upload-Metadata', ' ', 'Upload-Offset', '0']);
    adaptTusRequest(req, true);
    assert.equal(req.method, 'PATCH');
    assert.equal(req.headers['x-forwarded-proto'], 'https');
    assert.equal(req.headers['upload-metadata'], undefined);
    assert.deepEqual(req.rawHeaders, ['Host', 'a', 'X-HTTP-Method-Override', 'PATCH', 'Upload-Offset', '0', 'x-forwarded-proto', 'https']);
  });
  it('untrusted proto dropped; metadata with pairs kept', () => {
    const req = request('POST', ['X-Forwarded-Proto', 'https', 'Upload-Metadata', 'name YQ==']);
    adaptTusRequest(req, false);
    assert.equal(req.method, 'POST');
    assert.equal(req.headers['x-forwarded-proto'], undefined);
    assert.equal(req.headers['upload-metadata'], 'name YQ==');
    assert.deepEqual(req.rawHeaders, ['Upload-Metadata', 'name YQ==']);
  });
});
