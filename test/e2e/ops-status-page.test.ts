/**
 * The operator status page in headless Chromium: the token prompt, a wrong token, the numbers it
 * shows against /metrics at the moment of a screenshot, and refreshing itself when the queue
 * changes. Also served (prefix-free) on a dedicated admin listener.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { randomData, rawRequest, slotDir } from '../helpers/http.js';
import { artifactPath, browserUnavailable, launchChromium } from '../helpers/browser.js';
import { ADMIN_TOKEN, sampleValue, tusCreate } from '../helpers/ops.js';
import { startServer, type LogLine, type SpawnedServer } from '../helpers/server.js';

const skip = browserUnavailable();
const WRONG_SHA = 'ef'.repeat(32);

describe('operator status page', { skip: skip ?? false }, () => {
  let server: SpawnedServer;
  let browser: Browser;
  const dead: string[] = [];
  const addDeadLetter = async () => {
    const { id } = await tusCreate(server, `${slotDir()}/broken.bin`, Buffer.from('checksum will not match'), { sha256: WRONG_SHA });
    await server.waitForLog((l: LogLine) => l.jobId === `tus-${id}` && /moved to dead letter queue$/.test(String(l.msg)));
    dead.push(`tus-${id}`);
  };
  const open = async (fragment: string, refresh = 0): Promise<Page> => {
    const page = await browser.newPage();
    await page.goto(`${server.baseUrl}/admin/status?refresh=${refresh}${fragment}`);
    return page;
  };
  const text = async (page: Page, testid: string) => (await page.locator(`[data-testid="${testid}"]`).first().textContent())?.trim() ?? '';

  before(async () => {
    [server, browser] = await Promise.all([startServer({ env: { HFS_ADMIN_TOKEN: ADMIN_TOKEN }, config: '[testing]\nskip_intake_checksum = true\n' }), launchChromium()]);
    await addDeadLetter();
    await addDeadLetter();
    await tusCreate(server, `${slotDir()}/incomplete.bin`, randomData(1000), { sent: 100 });
  });
  after(async () => {
    await browser?.close();
    await server?.dispose();
  });

  it('asks for the token, keeps data hidden, and says when a token is refused', async () => {
    const page = await open('');
    await page.waitForSelector('body[data-state="login"]');
    assert.equal(await page.isVisible('#login'), true);
    assert.equal(await page.isVisible('#status'), false);
    await page.fill('#token', 'wrong-token');
    await page.click('button[type="submit"]');
    await page.waitForSelector('#login-error:has-text("not accepted")');
    assert.equal(await text(page, 'dead-letters'), '', 'no numbers shown');
    await page.fill('#token', ADMIN_TOKEN);
    await page.click('button[type="submit"]');
    await page.waitForSelector('body[data-state="ok"]');
    assert.equal(await page.isVisible('#status'), true);
    assert.equal(await page.isVisible('#login'), false);
    await page.close();
  });

  it('shows the same numbers as /metrics (screenshot taken at that moment)', async () => {
    const page = await open(`#token=${ADMIN_TOKEN}`);
    await page.waitForSelector('body[data-state="ok"]');
    assert.doesNotMatch(page.url(), /token=/, 'the token leaves the address bar');
    const shown = {
      high: Number(await text(page, 'queue-high')),
      medium: Number(await text(page, 'queue-medium')),
      low: Number(await text(page, 'queue-low')),
      dead: Number(await text(page, 'dead-letters')),
      streaming: Number(await text(page, 'uploads-streaming')),
      incomplete: Number(await text(page, 'uploads-incomplete')),
      pressure: await text(page, 'pressure'),
      breakers: await page.$$eval('[data-testid^="breaker-"]', (rows) => rows.map((r) => [r.children[0]!.textContent, r.children[1]!.textContent])),
      workers: await page.$$eval('[data-testid^="worker-"]', (rows) => rows.map((r) => [r.children[0]!.textContent, r.children[1]!.textContent])),
      deadRows: await page.$$eval('[data-testid="dead-letter"]', (rows) => rows.map((r) => r.children[0]!.textContent)),
    };
    const shot = await artifactPath('ops-status-page.png');
    await page.screenshot({ path: shot, fullPage: true });
    const png = await readFile(shot);
    assert.equal(png.subarray(1, 4).toString(), 'PNG');
    const metrics = (await rawRequest(server.baseUrl, '/metrics')).text;
    await page.close();

    for (const tier of ['high', 'medium', 'low'] as const) assert.equal(shown[tier], sampleValue(metrics, 'hmac_queue_length', { priority: tier }), tier);
    assert.equal(shown.dead, sampleValue(metrics, 'hmac_dead_letter_queue_length'));
    assert.equal(shown.dead, dead.length);
    assert.equal(shown.streaming, sampleValue(metrics, 'hmac_active_uploads'));
    assert.equal(shown.incomplete, 1);
    assert.equal(shown.pressure, ['normal', 'backpressure', 'emergency'][sampleValue(metrics, 'hmac_queue_pressure_level')!]);
    assert.ok(shown.breakers.length > 0);
    for (const [dependency, state] of shown.breakers) assert.equal(sampleValue(metrics, 'hmac_circuit_breaker_state', { dependency: dependency!, state: state! }), 1, `${dependency} ${state}`);
    assert.equal(shown.workers.length, 4);
    for (const [id, status] of shown.workers) assert.equal(sampleValue(metrics, 'hmac_worker_health_status', { worker_id: id!, status: status! }), 1, `worker ${id}`);
    assert.deepEqual(shown.deadRows, [...dead].reverse(), 'newest dead letter first');
  });

  it('refreshes itself: a new dead letter appears without a reload', async () => {
    const page = await open(`#token=${ADMIN_TOKEN}`, 1);
    await page.waitForSelector('body[data-state="ok"]');
    const before = Number(await text(page, 'dead-letters'));
    await addDeadLetter();
    await page.waitForFunction((n) => document.querySelector('[data-testid="dead-letters"]')?.textContent === String(n), before + 1);
    assert.equal(await page.locator('[data-testid="dead-letter"]').first().locator('td').first().textContent(), dead.at(-1));
    await page.close();
  });
});

it('the status page on a dedicated admin listener (no /admin prefix)', async () => {
  const server = await startServer({ env: { HFS_ADMIN_TOKEN: ADMIN_TOKEN }, config: '[admin]\nlisten = "127.0.0.1:0"\n' });
  try {
    const admin = String((await server.waitForLog((l) => l.msg === 'Admin API listening')).address);
    const page = await rawRequest(admin, '/status');
    assert.equal(page.status, 200);
    assert.match(page.text, /href="\/status\/status\.css"/);
    assert.equal((await rawRequest(admin, '/status/data')).status, 401);
    assert.equal((await rawRequest(admin, '/status/data', { headers: { Authorization: `Bearer ${ADMIN_TOKEN}` } })).status, 200);
    assert.equal((await rawRequest(server.baseUrl, '/admin/status')).status, 404, 'not on the main listener');
  } finally {
    await server.dispose();
  }
});
