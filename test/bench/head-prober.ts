/**
 * Benchmark peer: HEADs <url> one after another (every 10 ms at most) from its own process, so
 * the bench's load generator does not delay the measurement. On SIGTERM prints one JSON line
 * {"n","p50","p99","max","failed"} in milliseconds and exits.
 * Usage: node head-prober.js <url>
 */
import { request } from 'node:http';

const url = process.argv[2];
if (!url) throw new Error('usage: head-prober <url>');
const times: number[] = [];
let failed = 0;
let stopping = false;

function head(): Promise<void> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const req = request(url!, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode === 200 || res.statusCode === 204) times.push(performance.now() - t0);
        else failed += 1;
        resolve();
      });
    });
    req.on('error', () => {
      failed += 1;
      resolve();
    });
    req.end();
  });
}

process.on('SIGTERM', () => (stopping = true));
while (!stopping) {
  const started = performance.now();
  await head();
  const left = 10 - (performance.now() - started);
  if (left > 0) await new Promise((r) => setTimeout(r, left));
}
const sorted = times.sort((a, b) => a - b);
const pct = (p: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!);
console.log(JSON.stringify({ n: sorted.length, p50: pct(50), p99: pct(99), max: sorted.at(-1) ?? NaN, failed }));
