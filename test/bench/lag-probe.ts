/**
 * Benchmark preload (node --import): event-loop delay of the process it is loaded into, read
 * by the bench without touching the server's code. On SIGUSR2 it writes the delay percentiles
 * since the previous SIGUSR2 and the RSS, as JSON, to $HFS_BENCH_LAG_FILE, then starts over.
 * With HFS_BENCH_COUNT_ASYNC=1 it also counts async resources by type (async_hooks; slows the
 * server, so not for timing runs): `pool` = requests to the libuv pool (fs callbacks, fs
 * promises, FileHandle closes), `promises` = promises created.
 */
import { createHook } from 'node:async_hooks';
import { writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const file = process.env.HFS_BENCH_LAG_FILE;
if (file) {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  const counts = { pool: 0, promises: 0 };
  if (process.env.HFS_BENCH_COUNT_ASYNC === '1') {
    const POOL = new Set(['FSREQCALLBACK', 'FSREQPROMISE', 'FILEHANDLECLOSEREQ']);
    createHook({
      init(_id, type) {
        if (POOL.has(type)) counts.pool += 1;
        else if (type === 'PROMISE') counts.promises += 1;
      },
    }).enable();
  }
  process.on('SIGUSR2', () => {
    const ms = (ns: number) => Math.round(ns / 1e4) / 100;
    writeFileSync(file, JSON.stringify({ p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max), rss: process.memoryUsage().rss, ...counts }));
    h.reset();
    counts.pool = 0;
    counts.promises = 0;
  });
}
