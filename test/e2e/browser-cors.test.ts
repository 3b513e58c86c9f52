/**
 * CORS as a browser enforces it: a page on another origin uploads with tus-js-client and reads
 * the download (with Range) when that origin is configured, and is refused when it is not.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { signSlotUrl } from '../../src/index.js';
import { pathOf, rawRequest, sha256, slotDir } from '../helpers/http.js';
import { browserUnavailable, launchChromium } from '../helpers/browser.js';
import { startServer, TEST_SECRET, type LogLine, type SpawnedServer } from '../helpers/server.js';

const SIZE = 3 * 1024 * 1024 + 5;
/** The bytes the page uploads, generated the same way on both sides. */
const pattern = (size: number) => {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + (i >> 12)) & 255;
  return b;
};

interface Origin {
  url: string;
  close(): Promise<void>;
}

/** A bare site on its own port (= its own origin) that loads tus-js-client and nothing else. */
async function startOrigin(tusBundle: Buffer): Promise<Origin> {
  const server: Server = createServer((req, res) => {
    if (req.url === '/tus.min.js') {
      res.setHeader('Content-Type', 'text/javascript');
      res.end(tusBundle);
      return;
    }
    res.setHeader('Content-Type', 'text/html');
    res.end('<!doctype html><title>other origin</title><script src="/tus.min.js"></script>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

interface PageResult {
  ok: boolean;
  status?: number | null;
  error?: string;
}

/** In the page: upload the pattern through a slot with tus-js-client, no retries. */
const uploadFromPage = (page: Page, endpoint: string, slot: string, size: number) =>
  page.evaluate(
    ({ endpoint, slot, size }) =>
      new Promise<PageResult>((resolve) => {
        const data = new Uint8Array(size);
        for (let i = 0; i < size; i++) data[i] = (i * 31 + (i >> 12)) & 255;
        const w = window as unknown as { tus: { Upload: new (file: Blob, o: Record<string, unknown>) => { start(): void } } };
        const upload = new w.tus.Upload(new Blob([data]), {
          endpoint,
          chunkSize: 1024 * 1024,
          retryDelays: null,
          headers: { 'Upload-Slot': slot },
          metadata: { filename: 'cors.bin', filetype: 'application/octet-stream' },
          onSuccess: () => resolve({ ok: true }),
          onError: (e: Error & { originalResponse?: { getStatus(): number } | null }) =>
            resolve({ ok: false, status: e.originalResponse ? e.originalResponse.getStatus() : null, error: String(e) }),
        });
        upload.start();
      }),
    { endpoint, slot, size },
  );

/** In the page: fetch a byte range of a download. */
const fetchRange = (page: Page, url: string) =>
  page.evaluate(async (url) => {
    try {
      const res = await fetch(url, { headers: { Range: 'bytes=100-199' } });
      const body = new Uint8Array(await res.arrayBuffer());
      return { ok: true, status: res.status, contentRange: res.headers.get('Content-Range'), bytes: Array.from(body) };
    } catch (e) {
      return { ok: false, error: String(e) };
    }
  }, url);

describe('CORS from other origins, in Chromium', { skip: browserUnavailable() ?? false }, () => {
  let allowed: Origin;
  let refused: Origin;
  let server: SpawnedServer;
  let browser: Browser;

  before(async () => {
    const bundle = await readFile(createRequire(import.meta.url).resolve('tus-js-client/dist/tus.min.js'));
    [allowed, refused] = await Promise.all([startOrigin(bundle), startOrigin(bundle)]);
    server = await startServer({ config: `[cors]\nallowed_origins = ["${allowed.url}"]\n` });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await Promise.all([allowed?.close(), refused?.close(), server?.dispose()]);
  });

  const openAt = async (origin: Origin) => {
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${origin.url}/`);
    await page.waitForFunction(() => 'tus' in window);
    return page;
  };
  const slot = () => signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/cors.bin`, size: SIZE, baseUrl: server.uploadUrl });
  const requests = (from: number) => server.logs.slice(from).filter((l: LogLine) => l.msg === 'Request finished');

  it('a configured origin uploads through tus and reads a Range of the download', async () => {
    const page = await openAt(allowed);
    const s = slot();
    const start = server.logs.length;
    const result = await uploadFromPage(page, server.tusUrl, s.url, SIZE);
    assert.deepEqual(result, { ok: true });
    const uploadPath = String(requests(start).find((l) => l.method === 'PATCH')?.path);
    await server.waitForLog((l) => l.msg === 'File published' && l.uploadId === uploadPath.split('/').pop());
    const data = pattern(SIZE);
    assert.equal(sha256((await rawRequest(server.baseUrl, pathOf(s.getUrl))).body), sha256(data));
    const seen = requests(start);
    assert.ok(seen.some((l) => l.method === 'OPTIONS'), 'the browser sent a preflight');
    assert.equal(seen.filter((l) => l.method === 'POST' && l.status === 201).length, 1);
    assert.equal(seen.filter((l) => l.method === 'PATCH' && l.status === 204).length, 4);

    const range = await fetchRange(page, s.getUrl);
    assert.equal(range.ok, true, range.error);
    assert.equal(range.status, 206);
    assert.equal(range.contentRange, `bytes 100-199/${SIZE}`, 'Content-Range is exposed to the page');
    assert.deepEqual(range.bytes, [...data.subarray(100, 200)]);
    await page.context().close();
  });

  it('another origin is refused by the browser: its creation never reaches the server', async () => {
    const page = await openAt(refused);
    const s = slot();
    const start = server.logs.length;
    const result = await uploadFromPage(page, server.tusUrl, s.url, SIZE);
    assert.equal(result.ok, false);
    assert.equal(result.status, null, `a CORS refusal leaves no readable response: ${result.error}`);
    assert.match(String(result.error), /failed to create upload.*response code: n\/a/);
    // Log lines arrive asynchronously: a request of our own after the browser gave up is logged
    // after everything the browser's requests produced, so wait for it before looking.
    await rawRequest(server.baseUrl, '/health?barrier');
    await server.waitForLog((l) => server.logs.indexOf(l) >= start && l.msg === 'Request finished' && l.path === '/health');
    const seen = requests(start).filter((l) => l.path !== '/health');
    assert.deepEqual(
      seen.map((l) => l.method),
      ['OPTIONS'],
      'only the preflight reached the server; the browser stopped there',
    );
    assert.equal((await rawRequest(server.baseUrl, pathOf(s.getUrl))).status, 404);

    // Downloads too: the response carries no Access-Control-Allow-Origin for this origin.
    const done = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/public.txt`, size: 300, baseUrl: server.uploadUrl });
    assert.equal((await rawRequest(server.baseUrl, pathOf(done.url), { method: 'PUT', body: Buffer.alloc(300, 97) })).status, 201);
    const range = await fetchRange(page, done.getUrl);
    assert.equal(range.ok, false, 'fetch from a refused origin fails');
    assert.match(String(range.error), /TypeError/);
    await page.context().close();
  });
});
