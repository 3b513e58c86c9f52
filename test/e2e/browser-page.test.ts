/**
 * The upload page itself: served assets and headers, the config switch, pasted slot URLs, drag
 * and drop, pause/resume, and the message shown for each failure class (headless Chromium).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { signSlotUrl } from '../../src/index.js';
import { pathOf, randomData, rawRequest, sha256, slotDir } from '../helpers/http.js';
import { artifactPath, browserUnavailable, launchChromium } from '../helpers/browser.js';
import { startServer, TEST_SECRET, type LogLine, type SpawnedServer } from '../helpers/server.js';

const MiB = 1024 * 1024;
const PAGE = '/send/';
const finished = (l: LogLine) => l.msg === 'Request finished';

describe('upload page over HTTP', () => {
  let server: SpawnedServer;
  let off: SpawnedServer;
  before(async () => {
    [server, off] = await Promise.all([
      startServer({ config: `[upload_page]\npath = "${PAGE}"\nsigning_endpoint = "https://app.example.org/api/slot"\n` }),
      startServer({ config: '[upload_page]\nenabled = false\n' }),
    ]);
  });
  after(async () => Promise.all([server?.dispose(), off?.dispose()]));

  it('serves the page with a strict CSP and tus-js-client from node_modules (no CDN)', async () => {
    const page = await rawRequest(server.baseUrl, PAGE);
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    const csp = String(page.headers['content-security-policy']);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /connect-src 'self' https:\/\/app\.example\.org(;|$)/, 'fetches allowed to the signing endpoint origin only');
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(page.headers['x-content-type-options'], 'nosniff');
    assert.equal(page.headers['referrer-policy'], 'no-referrer');
    assert.doesNotMatch(page.text, /<script>|(src|href)="(https?:)?\/\//, 'no inline script, no third-party script or style');
    assert.match(page.text, /src="page-assets\/tus\.min\.js"/);

    const bundle = await rawRequest(server.baseUrl, `${PAGE}page-assets/tus.min.js`);
    assert.equal(bundle.status, 200);
    assert.match(String(bundle.headers['content-type']), /^text\/javascript/);
    const local = await readFile(createRequire(import.meta.url).resolve('tus-js-client/dist/tus.min.js'));
    assert.equal(sha256(bundle.body), sha256(local));
    const again = await rawRequest(server.baseUrl, `${PAGE}page-assets/tus.min.js`, { headers: { 'If-None-Match': String(bundle.headers.etag) } });
    assert.equal(again.status, 304);

    const cfg = (await rawRequest(server.baseUrl, `${PAGE}page-assets/config.json`)).json();
    assert.deepEqual(
      { tusEndpoint: cfg.tusEndpoint, signingEndpoint: cfg.signingEndpoint },
      { tusEndpoint: '/files/', signingEndpoint: 'https://app.example.org/api/slot' },
    );
    for (const asset of ['app.js', 'style.css']) assert.equal((await rawRequest(server.baseUrl, `${PAGE}page-assets/${asset}`)).status, 200, asset);
    assert.equal((await rawRequest(server.baseUrl, '/')).status, 404, 'only the configured path');
    assert.equal((await rawRequest(server.baseUrl, `${PAGE}page-assets/../../src/app.ts`)).status, 404);
    assert.equal((await rawRequest(server.baseUrl, PAGE, { method: 'POST', body: 'x' })).status, 404);
  });

  it('[upload_page] enabled = false: no page, no assets', async () => {
    assert.equal((await rawRequest(off.baseUrl, '/')).status, 404);
    assert.equal((await rawRequest(off.baseUrl, '/page-assets/app.js')).status, 404);
    assert.equal((await rawRequest(off.baseUrl, '/page-assets/tus.min.js')).status, 404);
    assert.equal((await rawRequest(off.baseUrl, '/health')).status, 200);
  });
});

describe('upload page in Chromium with pasted slot URLs', { skip: browserUnavailable() ?? false }, () => {
  let server: SpawnedServer;
  let browser: Browser;
  let page: Page;
  let fileDir: string;

  before(async () => {
    fileDir = await mkdtemp(join(tmpdir(), 'hfs-page-'));
    server = await startServer({
      config: `[server]\nmax_upload_size = "45MiB"\ngraceful_shutdown_timeout = "1s"\n[upload_page]\npath = "${PAGE}"\nchunk_size = "1MiB"\n`,
    });
    browser = await launchChromium();
    page = await (await browser.newContext()).newPage();
  });
  after(async () => {
    await browser?.close();
    await server?.dispose();
    if (fileDir) await rm(fileDir, { recursive: true, force: true });
  });

  const slotFor = (name: string, size: number, opts: Partial<Parameters<typeof signSlotUrl>[0]> = {}) =>
    signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/${name}`, size, baseUrl: server.uploadUrl, ...opts });
  const tempFile = async (name: string, data: Buffer) => {
    const file = join(fileDir, name);
    await writeFile(file, data);
    return file;
  };
  const openPage = async () => {
    await page.goto(`${server.baseUrl}${PAGE}`);
    await page.waitForSelector('body[data-ready="true"]');
    assert.equal(await page.isVisible('#slots'), true, 'paste mode: no signing endpoint configured');
  };
  /** Waits for the file's row to reach one of `states` and returns its status text. */
  const rowReaches = async (name: string, ...states: string[]) => {
    const el = await page.waitForSelector(states.map((s) => `li.upload[data-name="${name}"][data-state="${s}"]`).join(', '), { timeout: 60_000 });
    return { state: await el.getAttribute('data-state'), status: await el.$eval('.status', (n) => n.textContent ?? '') };
  };
  const uploadWithSlot = async (name: string, data: Buffer, slotUrl: string) => {
    await page.fill('#slots', slotUrl);
    await page.setInputFiles('#files', await tempFile(name, data));
  };

  it('a pasted slot URL: upload, pause, resume from the server offset, download link', async () => {
    await openPage();
    const data = randomData(40 * MiB);
    const name = 'paused.bin';
    const slot = slotFor(name, data.length);
    const start = server.logs.length;
    await uploadWithSlot(name, data, slot.url);
    await server.waitForLog((l) => server.logs.indexOf(l) >= start && finished(l) && l.method === 'PATCH' && l.status === 204);
    await page.click(`li.upload[data-name="${name}"] button.pause`);
    const paused = await rowReaches(name, 'paused', 'done');
    assert.equal(paused.state, 'paused', 'paused before the end');
    assert.match(paused.status, /^Paused at .*Press Resume/);
    assert.equal(await page.inputValue('#slots'), '', 'the pasted slot was used up');
    const pausedAt = server.logs.length;
    await page.click(`li.upload[data-name="${name}"] button.resume`);
    await rowReaches(name, 'done');
    const uploadPath = String(server.logs.slice(start).find((l) => finished(l) && l.method === 'PATCH')!.path);
    await server.waitForLog((l) => l.msg === 'File published' && l.uploadId === uploadPath.split('/').pop());
    // The paused PATCH may be logged after the pause (the server sees the abort a moment later).
    const resumed = server.logs.slice(pausedAt).filter((l) => finished(l) && l.aborted !== true);
    assert.equal(resumed[0]?.method, 'HEAD', 'resume asks the server for its offset first');
    assert.equal(resumed[0]?.path, uploadPath);
    assert.equal(server.logs.slice(start).filter((l) => finished(l) && l.method === 'POST').length, 1);
    assert.equal(await page.getAttribute(`li.upload[data-name="${name}"] a.link`, 'href'), slot.getUrl);
    assert.equal(sha256((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).body), sha256(data));
  });

  it('drag and drop of a file onto the page', async () => {
    await openPage();
    const slot = slotFor('dropped.txt', 11, { scheme: 'v2', contentType: 'text/plain' });
    await page.fill('#slots', slot.url);
    const dt = await page.evaluateHandle(() => {
      const t = new DataTransfer();
      t.items.add(new File(['hello drop!'], 'dropped.txt', { type: 'text/plain' }));
      return t;
    });
    await page.dispatchEvent('#drop', 'drop', { dataTransfer: dt });
    await rowReaches('dropped.txt', 'done');
    const publishedLine = await server.waitForLog((l) => l.msg === 'File published' && l.size === 11);
    assert.ok(publishedLine);
    assert.equal((await rawRequest(server.baseUrl, pathOf(slot.getUrl))).text, 'hello drop!');
  });

  it('each failure class gets its own message', async () => {
    await openPage();
    const small = randomData(1000);
    const cases: Array<{ name: string; slot: (name: string) => string; data?: Buffer; message: RegExp }> = [
      {
        name: 'tampered.bin',
        slot: (n) => slotFor(n, small.length).url.replace(/v=([0-9a-f])/, (_m, c: string) => `v=${c === '0' ? '1' : '0'}`),
        message: /slot was refused: its signature does not match/,
      },
      { name: 'wrong-size.bin', slot: (n) => slotFor(n, small.length + 1).url, message: /slot was refused/ },
      {
        name: 'expired.bin',
        slot: (n) => slotFor(n, 0, { scheme: 'v3', expires: Math.floor(Date.now() / 1000) - 60 }).url,
        message: /slot has expired/,
      },
      { name: 'unsigned.bin', slot: (n) => slotFor(n, small.length).getUrl, message: /carries no signature/ },
      { name: 'not-a-url.bin', slot: () => 'hello', message: /not an http\(s\) URL/ },
      { name: 'too-large.bin', slot: (n) => slotFor(n, 46 * MiB).url, data: Buffer.alloc(46 * MiB), message: /larger than this server accepts \(limit 45\.0 MiB\)/ },
    ];
    for (const c of cases) {
      await uploadWithSlot(c.name, c.data ?? small, c.slot(c.name));
      const row = await rowReaches(c.name, 'failed', 'done');
      assert.equal(row.state, 'failed', c.name);
      assert.match(row.status, c.message, `${c.name}: ${row.status}`);
    }

    // A slot that already holds a file: 409.
    const taken = slotFor('taken.bin', small.length);
    assert.equal((await rawRequest(server.baseUrl, pathOf(taken.url), { method: 'PUT', body: small })).status, 201);
    await uploadWithSlot('taken.bin', small, taken.url);
    assert.match((await rowReaches('taken.bin', 'failed')).status, /already exists at this slot/);

    // No slot pasted at all.
    await page.fill('#slots', '');
    await page.setInputFiles('#files', await tempFile('no-slot.bin', small));
    assert.match((await rowReaches('no-slot.bin', 'failed')).status, /No slot URL for this file/);
    await page.screenshot({ path: await artifactPath('browser-page-failures.png'), fullPage: true });
  });
});

describe('upload page in Chromium with parallel uploads', { skip: browserUnavailable() ?? false }, () => {
  let server: SpawnedServer;
  let browser: Browser;
  before(async () => {
    server = await startServer({ config: `[upload_page]\npath = "${PAGE}"\nchunk_size = "1MiB"\nparallel_uploads = 3\n` });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.dispose();
  });

  it('sends a large file in three parts the server joins (v2 slot: partials carry the type); a small one in one', async () => {
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${server.baseUrl}${PAGE}`);
    await page.waitForSelector('body[data-ready="true"]');
    for (const [name, size, posts] of [['parallel.mp4', 7 * MiB + 5, 4], ['single.mp4', 2 * MiB, 1]] as const) {
      const data = randomData(size);
      const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/${name}`, size, baseUrl: server.uploadUrl, scheme: 'v2', contentType: 'video/mp4' });
      const start = server.logs.length;
      await page.fill('#slots', slot.url);
      await page.setInputFiles('#files', { name, mimeType: 'video/mp4', buffer: data });
      const row = await page.waitForSelector(`li.upload[data-name="${name}"][data-state="done"], li.upload[data-name="${name}"][data-state="failed"]`, { timeout: 60_000 });
      assert.equal(await row.getAttribute('data-state'), 'done', await row.$eval('.status', (n) => n.textContent ?? ''));
      const creations = server.logs.slice(start).filter((l) => finished(l) && l.method === 'POST' && l.status === 201);
      assert.equal(creations.length, posts, `${name}: ${posts === 1 ? 'one upload' : 'three partials and their final'}`);
      const get = await rawRequest(server.baseUrl, pathOf(slot.getUrl));
      assert.equal(get.headers['content-type'], 'video/mp4');
      assert.equal(sha256(get.body), sha256(data), `${name} byte-identical`);
    }
    await page.screenshot({ path: await artifactPath('browser-page-parallel.png'), fullPage: true });
  });
});
