/**
 * A background writer for BENCH_DISK_PRESSURE=1: streams zeros into a file and fdatasyncs every
 * 64 MiB, starting over at 2 GiB, until killed, so the disk is busy writing back while an upload
 * is measured (as on a server where other writes, backups or a neighbour's load keep it busy).
 * Usage: node disk-pressure.js <file>
 */
import { closeSync, fdatasyncSync, ftruncateSync, openSync, writeSync } from 'node:fs';

const file = process.argv[2];
if (!file) throw new Error('usage: disk-pressure.js <file>');
const chunk = Buffer.alloc(1024 * 1024);
const fd = openSync(file, 'w');
process.on('SIGTERM', () => {
  closeSync(fd);
  process.exit(0);
});
let written = 0;
const step = () => {
  for (let i = 0; i < 64; i++) written += writeSync(fd, chunk, 0, chunk.length, written);
  fdatasyncSync(fd);
  if (written >= 2 * 1024 ** 3) {
    ftruncateSync(fd, 0);
    written = 0;
  }
  setImmediate(step); // lets SIGTERM in between batches
};
step();
