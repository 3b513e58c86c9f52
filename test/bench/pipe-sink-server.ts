/**
 * Benchmark baseline: the least a Node server can do with an upload, the request body piped
 * into a file. `PUT /<name>` writes <dataDir>/<name> and answers 201 once the file is written.
 * Usage: node pipe-sink-server.js <dataDir> [--durable]. Prints one JSON line {"msg":"Server listening","address":…}.
 *
 * --durable adds only what issue 14's rules make every upload pay: sha256 of the bytes as they
 * pass, and an fsync of the file before the 201. It is the floor of any server that hashes while
 * receiving and acknowledges only durable bytes (upload.bench path (f)).
 */
import { createHash } from 'node:crypto';
import { close, createWriteStream, fsync, open } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const dir = process.argv[2];
if (!dir) throw new Error('usage: pipe-sink-server <dataDir> [--durable]');
const durable = process.argv.includes('--durable');

function fsyncPath(path: string): Promise<void> {
  return new Promise((resolve, reject) =>
    open(path, 'r', (err, fd) => (err ? reject(err) : fsync(fd, (syncErr) => close(fd, () => (syncErr ? reject(syncErr) : resolve()))))),
  );
}

async function receive(req: NodeJS.ReadableStream, path: string): Promise<void> {
  const file = createWriteStream(path, { flags: 'wx' });
  if (!durable) return pipeline(req, file);
  const hash = createHash('sha256');
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  await pipeline(req, tap, file);
  await fsyncPath(path);
  hash.digest('hex');
}

const server = createServer({ requestTimeout: 0 }, (req, res) => {
  const name = /^\/([\w.-]+)$/.exec(req.url ?? '')?.[1];
  if (req.method !== 'PUT' || !name || name.startsWith('.')) {
    req.resume();
    res.writeHead(400).end();
    return;
  }
  receive(req, join(dir, name)).then(
    () => res.writeHead(201).end(),
    (err: Error) => res.writeHead(500).end(err.message),
  );
});
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  console.log(JSON.stringify({ msg: 'Server listening', address: `http://127.0.0.1:${port}` }));
});
