/** The Scanner conformance suite against the in-memory scanner and a real clamd (unix socket and TCP). */
import { after, before } from 'node:test';
import { parseClamdAddress } from '../../src/config/index.js';
import { ClamdScanner, SignatureScanner, hdbLine } from '../../src/scan/index.js';
import { startClamd, type Clamd } from '../helpers/clamd.js';
import { EVIL, EVIL_NAME, describeScanner } from '../conformance/scanner.suite.js';

const MiB = 1024 * 1024;
const [md5, size] = hdbLine(EVIL, EVIL_NAME).split(':') as [string, string];

const memory = new SignatureScanner({ signatures: [{ md5, size: Number(size), name: EVIL_NAME }], maxBytes: MiB });
describeScanner('SignatureScanner', {
  open: async () => memory,
  maxBytes: MiB,
  stop: async () => void (memory.unavailable = true),
  start: async () => void (memory.unavailable = false),
});

let clamd: Clamd;
before(async () => {
  clamd = await startClamd({ signatures: [{ data: EVIL, name: EVIL_NAME }], streamMaxLength: '1M', tcp: true });
});
after(async () => clamd?.dispose());

describeScanner('ClamdScanner (unix socket)', {
  open: async () => new ClamdScanner({ address: { path: clamd.socket }, timeoutMs: 20_000 }),
  maxBytes: MiB,
  stop: () => clamd.stop(),
  start: () => clamd.start(),
});

describeScanner('ClamdScanner (TCP)', {
  open: async () => new ClamdScanner({ address: parseClamdAddress(clamd.tcpAddress!), timeoutMs: 20_000 }),
  maxBytes: MiB,
});
