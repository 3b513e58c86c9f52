/**
 * Benchmark preload (node --import): event-loop delay of the process it is loaded into, read
 * by the bench without touching the server's code. On SIGUSR2 it writes the delay percentiles
 * since the previous SIGUSR2 and the RSS, as JSON, to $HFS_BENCH_LAG_FILE, then starts over.
 */
import { writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const file = process.env.HFS_BENCH_LAG_FILE;
if (file) {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  process.on('SIGUSR2', () => {
    const ms = (ns: number) => Math.round(ns / 1e4) / 100;
    writeFileSync(file, JSON.stringify({ p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max), rss: process.memoryUsage().rss }));
    h.reset();
  });
}
