import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { authorizeSlot, decodeSlotPath, signSlotUrl, type SignSlotOptions, type SlotDecision } from '../../src/auth/index.js';
import type { Scheme } from '../../src/config/index.js';
import { AppError } from '../../src/errors.js';

const SECRET = 'sign-slot-secret';
const NOW_MS = 1_700_000_000_000;
const EXPIRES = 1_700_000_600;

/** What the server does with a slot URL: strip the base URL's path, decode, authorize. */
function authorizeUrl(url: string, baseUrl: string, size: number | undefined, contentType: string | undefined): SlotDecision {
  const parsed = new URL(url);
  const basePath = new URL(baseUrl).pathname.replace(/\/?$/, '/');
  assert.ok(parsed.pathname.startsWith(basePath), `${parsed.pathname} is under ${basePath}`);
  const path = decodeSlotPath(parsed.pathname.slice(basePath.length));
  return authorizeSlot(
    { path, query: parsed.searchParams, size, contentType, nowMs: NOW_MS },
    { secrets: [SECRET], schemes: ['v', 'v2', 'token', 'v3'] },
  );
}

describe('signSlotUrl mints URLs that authorizeSlot accepts', () => {
  const paths = ['abc123/photo.jpg', 'abc123/my photo.jpg', 'abc/grüße (1)+x#?.txt', 'sha1/rand/日本 😀.png'];
  const bases = ['https://files.example.org/upload/', 'https://files.example.org/upload', 'http://127.0.0.1:8080/a/b/', 'https://files.example.org'];
  const schemes: [Scheme, Partial<SignSlotOptions>][] = [
    ['v', { size: 1024 }],
    ['v2', { size: 1024, contentType: 'image/jpeg' }],
    ['v2', { size: 3, contentType: 'text/plain; charset=utf-8' }],
    ['v2', { size: 0 }],
    ['token', { size: 5, contentType: 'image/png' }],
    ['v3', { expires: EXPIRES }],
  ];
  for (const [scheme, extra] of schemes) {
    for (const path of paths) {
      for (const baseUrl of bases) {
        it(`${scheme} ${JSON.stringify(extra)} ${JSON.stringify(path)} under ${baseUrl}`, () => {
          const slot = signSlotUrl({ secret: SECRET, path, baseUrl, scheme, ...extra });
          const d = authorizeUrl(slot.url, baseUrl, extra.size, extra.contentType);
          assert.equal(d.ok, true, d.ok ? '' : d.code);
          assert.equal(d.ok && d.slot.scheme, scheme);
          assert.equal(d.ok && d.slot.path, path);
        });
      }
    }
  }

  it('defaults to scheme v', () => {
    const slot = signSlotUrl({ secret: SECRET, path: 'a/b.txt', baseUrl: 'https://x/upload/', size: 9 });
    assert.deepEqual([...slot.query.keys()], ['v']);
    assert.equal(authorizeUrl(slot.url, 'https://x/upload/', 9, undefined).ok, true);
  });

  it('a v URL is refused for another size, a v3 URL after its expiry', () => {
    const v = signSlotUrl({ secret: SECRET, path: 'a/b.txt', baseUrl: 'https://x/upload/', size: 9 });
    const dv = authorizeUrl(v.url, 'https://x/upload/', 10, undefined);
    assert.equal(dv.ok ? 'ok' : dv.code, 'ERR_SIGNATURE_INVALID');
    const v3 = signSlotUrl({ secret: SECRET, path: 'a/b.txt', baseUrl: 'https://x/upload/', scheme: 'v3', expires: NOW_MS / 1000 - 1 });
    const d3 = authorizeUrl(v3.url, 'https://x/upload/', undefined, undefined);
    assert.equal(d3.ok ? 'ok' : d3.code, 'ERR_SIGNATURE_EXPIRED');
  });
});

describe('signSlotUrl URL shape', () => {
  const cases: [name: string, options: SignSlotOptions, getUrl: string][] = [
    ['space is %20', { secret: SECRET, path: 'abc123/my photo.jpg', baseUrl: 'https://f.example/upload/', size: 1 }, 'https://f.example/upload/abc123/my%20photo.jpg'],
    ['non-ASCII is UTF-8 percent-encoded', { secret: SECRET, path: 'abc/grüße.txt', baseUrl: 'https://f.example/upload/', size: 1 }, 'https://f.example/upload/abc/gr%C3%BC%C3%9Fe.txt'],
    ['"+", "#", "?" are encoded', { secret: SECRET, path: 'abc/a+b#c?d', baseUrl: 'https://f.example/upload/', size: 1 }, 'https://f.example/upload/abc/a%2Bb%23c%3Fd'],
    ['base URL without trailing slash', { secret: SECRET, path: 'abc/x.jpg', baseUrl: 'https://f.example/upload', size: 1 }, 'https://f.example/upload/abc/x.jpg'],
    ['base URL with trailing slash', { secret: SECRET, path: 'abc/x.jpg', baseUrl: 'https://f.example/upload/', size: 1 }, 'https://f.example/upload/abc/x.jpg'],
  ];
  for (const [name, options, getUrl] of cases) {
    it(name, () => {
      const slot = signSlotUrl(options);
      assert.equal(slot.getUrl, getUrl);
      assert.equal(slot.url, `${getUrl}?${slot.query.toString()}`);
    });
  }

  it('v3 carries v3 and expires parameters', () => {
    const slot = signSlotUrl({ secret: SECRET, path: 'a/b', baseUrl: 'https://f.example/u/', scheme: 'v3', expires: EXPIRES });
    assert.deepEqual([...slot.query.keys()].sort(), ['expires', 'v3']);
    assert.equal(slot.query.get('expires'), String(EXPIRES));
    assert.match(slot.query.get('v3') ?? '', /^[0-9a-f]{64}$/);
  });

  it('reproduces the hmac-protocols.md v vector in the URL', () => {
    const slot = signSlotUrl({ secret: 'test-secret', path: 'abc123/my photo.jpg', baseUrl: 'https://files.example.org/upload/', size: 1024 });
    assert.equal(
      slot.url,
      'https://files.example.org/upload/abc123/my%20photo.jpg?v=a6239481e567af4353796d0eb1766228db802fa86da9e3516846107619d24969',
    );
  });
});

describe('signSlotUrl refusals', () => {
  const base = { secret: SECRET, baseUrl: 'https://f.example/upload/' };
  const typeErrors: [name: string, options: SignSlotOptions][] = [
    ['v without size', { ...base, path: 'a/b' }],
    ['v2 without size', { ...base, path: 'a/b', scheme: 'v2', contentType: 'image/png' }],
    ['token without size', { ...base, path: 'a/b', scheme: 'token' }],
    ['v with negative size', { ...base, path: 'a/b', size: -1 }],
    ['v with fractional size', { ...base, path: 'a/b', size: 1.5 }],
    ['v3 without expires', { ...base, path: 'a/b', scheme: 'v3' }],
  ];
  for (const [name, options] of typeErrors) it(`TypeError: ${name}`, () => assert.throws(() => signSlotUrl(options), TypeError));

  const badPaths = ['abc/../x', '..', 'a//b', '/a/b', 'a/b/', '', 'a/./b', 'a\\b', 'a/b\u0000'];
  for (const path of badPaths) {
    it(`ERR_BAD_PATH: ${JSON.stringify(path)}`, () => {
      assert.throws(() => signSlotUrl({ ...base, path, size: 1 }), (err: unknown) => AppError.is(err, 'ERR_BAD_PATH'));
    });
  }
});
