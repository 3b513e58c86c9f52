/**
 * Benchmark peer: bare @tus/server + @tus/file-store, none of our code in the path.
 * Usage: node tus-bare-server.js <dataDir>. Prints one JSON line {"msg":"Server listening","address":…}.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FileStore } from '@tus/file-store';
import { Server } from '@tus/server';

const dir = process.argv[2];
if (!dir) throw new Error('usage: tus-bare-server <dataDir>');

const tus = new Server({ path: '/files', datastore: new FileStore({ directory: dir }) });
// requestTimeout 0: Node's 300 s default would cut one long PATCH (field-notes.md).
const server = createServer({ requestTimeout: 0 }, (req, res) => {
  tus.handle(req, res).catch(() => res.destroy());
});
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  console.log(JSON.stringify({ msg: 'Server listening', address: `http://127.0.0.1:${port}` }));
});
