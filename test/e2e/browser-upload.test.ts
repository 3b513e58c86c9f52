/**
 * The upload page in headless Debian Chromium: a 50 MiB upload that goes offline mid-way and
 * comes back, a page reload mid-upload, both resumed from the server's offset. The proof is the
 * server's own request log (and our own tus HEAD), not what the page says.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { pathOf, randomData, rawRequest, sha256 } from '../helpers/http.js';
import { artifactPath, browserUnavailable, launchChromium, startSigningEndpoint, type SigningEndpoint } from '../helpers/browser.js';
import { startServer, TEST_SECRET, type LogLine, type SpawnedServer } from '../helpers/server.js';

const MiB = 1024 * 1024;
const TUS = { 'Tus-Resumable': '1.0.0' };
const skip = browserUnavailable() ?? false;

const finished = (l: LogLine) => l.msg === 'Request finished';
const isPatch = (l: LogLine) => finished(l) && l.method === 'PATCH' && l.status === 204;
const isCreation = (l: LogLine) => finished(l) && l.method === 'POST' && String(l.path).startsWith('/files');

describe('upload page in Chromium', { skip }, () => {
  let server: SpawnedServer;
  let signer: SigningEndpoint;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let fileDir: string;

  before(async () => {
    fileDir = await mkdtemp(join(tmpdir(), 'hfs-browser-'));
    signer = await startSigningEndpoint();
    server = await startServer({
      config: `[server]\ngraceful_shutdown_timeout = "1s"\n[upload_page]\nsigning_endpoint = "${signer.url}"\nchunk_size = "5MiB"\n`,
    });
    signer.configure(server.uploadUrl, TEST_SECRET);
    browser = await launchChromium();
    context = await browser.newContext();
    page = await context.newPage();
  });
  after(async () => {
    await browser?.close();
    await signer?.close();
    await server?.dispose();
    if (fileDir) await rm(fileDir, { recursive: true, force: true });
  });

  const tempFile = async (name: string, data: Buffer) => {
    const file = join(fileDir, name); // the browser sees this base name
    await writeFile(file, data);
    return file;
  };
  const openPage = async () => {
    await page.goto(`${server.baseUrl}/`);
    await page.waitForSelector('body[data-ready="true"]');
  };
  const row = (name: string) => page.locator(`li.upload[data-name="${name}"]`).last();
  /** Waits until the file's row is in one of `states` (or failed) and returns the state it reached. */
  const rowState = async (name: string, ...states: string[]) => {
    const selector = [...states, 'failed'].map((s) => `li.upload[data-name="${name}"][data-state="${s}"]`).join(', ');
    const el = await page.waitForSelector(selector, { timeout: 90_000 });
    const state = await el.getAttribute('data-state');
    const status = await el.$eval('.status', (n) => n.textContent);
    assert.ok(state && states.includes(state), `row "${name}" reached ${state} (${status}), expected ${states.join(' or ')}`);
    return state;
  };
  /** The page's "done" is the tus 204; publishing at the slot's GET URL may finish a moment later. */
  const published = (uploadPath: string) => server.waitForLog((l) => l.msg === 'File published' && l.uploadId === uploadPath.split('/').pop());
  const headOffset = async (uploadPath: string) => {
    const head = await rawRequest(server.baseUrl, uploadPath, { method: 'HEAD', headers: TUS });
    assert.equal(head.status, 200, `HEAD ${uploadPath}`);
    return Number(head.headers['upload-offset']);
  };

  it('50 MiB through the page; offline mid-way, back online, resumes from the server offset', async () => {
    const data = randomData(50 * MiB + 123);
    const name = `fifty ${process.pid}.bin`;
    const file = await tempFile(name, data);
    await openPage();
    const startIndex = server.logs.length;

    await page.setInputFiles('#files', file);
    // The first 5 MiB chunk is stored: go offline while the rest is on its way.
    const firstPatch = await server.waitForLog((l) => server.logs.indexOf(l) >= startIndex && isPatch(l));
    let offlineIndex: number;
    let offsetWhileOffline: number;
    const uploadPath = String(firstPatch.path);
    await context.setOffline(true);
    try {
      offlineIndex = server.logs.length;
      await rowState(name, 'offline'); // the page noticed (its XHR failed with navigator.onLine false)
      const shown = Number(await row(name).getAttribute('data-sent'));
      assert.ok(shown > 0 && shown < data.length, `the page showed progress (${shown} bytes) before the outage`);
      offsetWhileOffline = await headOffset(uploadPath);
      assert.ok(offsetWhileOffline >= 5 * MiB && offsetWhileOffline < data.length, `offset ${offsetWhileOffline} while offline`);
      // Offline for a few seconds: this timer is the scenario, not a wait for a result.
      await new Promise((resolve) => setTimeout(resolve, 3000));
    } finally {
      await context.setOffline(false);
    }

    await rowState(name, 'done');
    await published(uploadPath);
    const slot = signer.issued.find((s) => s.name === name);
    assert.ok(slot, 'the page asked the signing endpoint for a slot');
    const get = await rawRequest(server.baseUrl, pathOf(slot.getUrl));
    assert.equal(get.status, 200);
    assert.equal(get.body.length, data.length);
    assert.equal(sha256(get.body), sha256(data), 'byte-identical');

    // The server's view: one creation in all; after the offline moment a HEAD on the same upload,
    // then PATCHes continuing it (a restart from 0 would need a new POST, or a PATCH at offset 0
    // that this upload, already at offsetWhileOffline, answers with 409).
    const all = server.logs.slice(startIndex);
    const afterOffline = server.logs.slice(offlineIndex);
    assert.equal(all.filter(isCreation).length, 1, 'exactly one creation');
    const resumeHead = afterOffline.findIndex((l) => finished(l) && l.method === 'HEAD' && l.path === uploadPath && l.status === 200);
    assert.ok(resumeHead >= 0, 'the browser asked the server for its offset after the outage');
    const resumed = afterOffline.slice(resumeHead + 1).filter((l) => finished(l) && l.method === 'PATCH' && l.path === uploadPath);
    assert.ok(resumed.length > 0 && resumed.every((l) => l.status === 204), `PATCHes after the outage: ${JSON.stringify(resumed.map((l) => l.status))}`);
    assert.equal(afterOffline.filter((l) => finished(l) && l.status === 409).length, 0, 'no offset conflict');
    const resentBytes = resumed.reduce((n, l) => n + Number(l.bytesIn), 0);
    assert.ok(resentBytes < data.length - offsetWhileOffline + MiB, `sent ${resentBytes} bytes after resuming, not the whole file`);
    assert.match(await row(name).locator('.status').innerText(), /Uploaded 50\.0 MiB/);
    assert.equal(await row(name).locator('a.link').getAttribute('href'), slot.getUrl);
    await page.screenshot({ path: await artifactPath('browser-upload-finished.png'), fullPage: true });
  });

  it('a reload mid-upload resumes the same upload when the file is chosen again', async () => {
    const data = randomData(30 * MiB + 7);
    const name = `reload ${process.pid}.bin`;
    const file = await tempFile(name, data);
    await openPage();
    const startIndex = server.logs.length;
    await page.setInputFiles('#files', file);
    const firstPatch = await server.waitForLog((l) => server.logs.indexOf(l) >= startIndex && isPatch(l));
    await page.reload();
    const reloadIndex = server.logs.length;
    await page.waitForSelector('body[data-ready="true"]');
    const uploadPath = String(firstPatch.path);
    const offsetAfterReload = await headOffset(uploadPath);
    assert.ok(offsetAfterReload > 0 && offsetAfterReload < data.length, `offset ${offsetAfterReload} after the reload`);
    // The page remembers the unfinished upload (localStorage) and lists it.
    await page.waitForSelector('#earlier:not([hidden])');
    assert.match(await page.locator('#earlier-list').innerText(), new RegExp(name));

    await page.setInputFiles('#files', file);
    await rowState(name, 'done');
    await published(uploadPath);
    assert.equal(await row(name).getAttribute('data-resumed'), 'true');
    assert.equal(server.logs.slice(startIndex).filter(isCreation).length, 1, 'no second creation after the reload');
    const afterReload = server.logs.slice(reloadIndex);
    assert.ok(afterReload.some((l) => finished(l) && l.method === 'HEAD' && l.path === uploadPath && l.status === 200));
    assert.ok(afterReload.some((l) => isPatch(l) && l.path === uploadPath));
    const slot = signer.issued.filter((s) => s.name === name);
    assert.equal(slot.length, 1, 'one slot for the file, not one per attempt');
    assert.equal(sha256((await rawRequest(server.baseUrl, pathOf(slot[0]!.getUrl))).body), sha256(data));
    await page.waitForSelector('#earlier', { state: 'hidden' }); // finished: forgotten
  });
});
