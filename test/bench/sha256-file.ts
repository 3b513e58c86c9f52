/**
 * Benchmark peer: sha256 of the first <size> bytes of <file>, in its own process, the floor of
 * "hash every byte once". Prints one JSON line {"cpuSec","sysSec","seconds","hex"}: CPU (user + system)
 * and wall time of the hashing alone, not of Node's start-up.
 * Usage: node sha256-file.js <file> <size>.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';

const [file, sizeArg] = process.argv.slice(2);
const size = Number(sizeArg);
if (!file || !(size > 0)) throw new Error('usage: sha256-file <file> <size>');

const cpu0 = process.cpuUsage();
const t0 = performance.now();
const hash = createHash('sha256');
await pipeline(createReadStream(file, { end: size - 1, highWaterMark: 1024 * 1024 }), hash);
const hex = hash.digest('hex');
const seconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
console.log(JSON.stringify({ cpuSec: (cpu.user + cpu.system) / 1e6, sysSec: cpu.system / 1e6, seconds, hex }));
