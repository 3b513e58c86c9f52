/**
 * Benchmark baseline: the least a Node server can do with an upload, the request body piped
 * into a file. `PUT /<name>` writes <dataDir>/<name> and answers 201 once the file is written.
 * Usage: node pipe-sink-server.js <dataDir>. Prints one JSON line {"msg":"Server listening","address":…}.
 */
import { createWriteStream } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';

const dir = process.argv[2];
if (!dir) throw new Error('usage: pipe-sink-server <dataDir>');

const server = createServer({ requestTimeout: 0 }, (req, res) => {
  const name = /^\/([\w.-]+)$/.exec(req.url ?? '')?.[1];
  if (req.method !== 'PUT' || !name || name.startsWith('.')) {
    req.resume();
    res.writeHead(400).end();
    return;
  }
  pipeline(req, createWriteStream(join(dir, name), { flags: 'wx' })).then(
    () => res.writeHead(201).end(),
    (err: Error) => res.writeHead(500).end(err.message),
  );
});
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  console.log(JSON.stringify({ msg: 'Server listening', address: `http://127.0.0.1:${port}` }));
});
