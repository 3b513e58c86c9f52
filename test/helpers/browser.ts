/**
 * Headless Debian Chromium driven by playwright-core (never a downloaded browser). Each launch
 * gets a fresh temporary profile from Playwright; close() ends the browser process.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { signSlotUrl } from '../../src/index.js';
import { slotDir } from './http.js';
import { REPO_ROOT } from './server.js';

export const CHROMIUM = '/usr/bin/chromium';
export const ARTIFACTS = join(REPO_ROOT, 'test-artifacts');

/** Why browser tests cannot run here, or null. Tests pass it to `skip` so the reason is visible. */
export function browserUnavailable(): string | null {
  return existsSync(CHROMIUM) ? null : `${CHROMIUM} is missing: run scripts/ensure-system-deps.sh as root (apt package chromium)`;
}

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Without the background-networking flags Chromium keeps dialling Google's hosts, which
    // this machine's closed network refuses. Playwright adds a fresh --user-data-dir itself.
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Path for a screenshot under test-artifacts/ (gitignored), created on demand. */
export async function artifactPath(name: string): Promise<string> {
  await mkdir(ARTIFACTS, { recursive: true });
  return join(ARTIFACTS, name);
}

/**
 * A stand-in for an operator's signing endpoint (the app backend that hands the upload page its
 * slots): POST {name, size, type} -> {url, getUrl}, v2 slots, with CORS for the page's origin.
 * The real one authenticates its users; this one records what it issued.
 */
export interface SigningEndpoint {
  url: string;
  origin: string;
  /** Slots handed out so far, newest last. */
  issued: Array<{ name: string; size: number; type: string; url: string; getUrl: string }>;
  /** Set once the upload server runs: where slots point and the secret they are signed with. */
  configure(uploadUrl: string, secret: string): void;
  close(): Promise<void>;
}

const readBody = async (req: IncomingMessage) => {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
};

export async function startSigningEndpoint(): Promise<SigningEndpoint> {
  let uploadUrl = '';
  let secret = '';
  const issued: SigningEndpoint['issued'] = [];
  const server: Server = createServer((req, res) => {
    const origin = req.headers.origin;
    if (origin) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Vary', 'Origin');
    }
    if (req.method === 'OPTIONS') {
      res.setHeader('Access-Control-Allow-Methods', 'POST');
      res.setHeader('Access-Control-Allow-Headers', 'content-type');
      res.writeHead(204).end();
      return;
    }
    if (req.method !== 'POST' || !uploadUrl) {
      res.writeHead(405).end();
      return;
    }
    void readBody(req).then((text) => {
      const { name, size, type } = JSON.parse(text) as { name: string; size: number; type: string };
      const slot = signSlotUrl({ secret, path: `${slotDir()}/${name}`, size, scheme: 'v2', contentType: type, baseUrl: uploadUrl });
      issued.push({ name, size, type, url: slot.url, getUrl: slot.getUrl });
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ url: slot.url, getUrl: slot.getUrl }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    url: `${origin}/sign`,
    origin,
    issued,
    configure(u, s) {
      uploadUrl = u;
      secret = s;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
