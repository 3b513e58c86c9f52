/**
 * Benchmark peer: bare @tus/server + @tus/file-store, none of our code in the path.
 * Usage: node tus-bare-server.js <dataDir> [--durable]. Prints one JSON line {"msg":"Server listening","address":…}.
 *
 * --durable adds only what issue 14's rules make every upload pay, done the cheapest way the
 * library allows, with this server's durability rules (docs/resumable-uploads.md, crash
 * safety): every byte hashed (sha256) as it arrives, the upload record fsynced (file and
 * directory) before a creation is answered, the bytes fsynced before the PATCH that finishes
 * the upload is answered. No auth, no queue, no publishing. It is the floor under "this server's tus" in load.bench: what
 * @tus/server costs once acknowledged bytes survive a power loss and are hashed.
 */
import { createHash, type Hash } from 'node:crypto';
import { close, fsync, open } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { FileStore } from '@tus/file-store';
import { Server, type Upload } from '@tus/server';

const dir = process.argv[2];
if (!dir) throw new Error('usage: tus-bare-server <dataDir> [--durable]');
const durable = process.argv.includes('--durable');

function fsyncPath(path: string): Promise<void> {
  return new Promise((resolve, reject) =>
    open(path, 'r', (err, fd) => (err ? reject(err) : fsync(fd, (syncErr) => close(fd, () => (syncErr ? reject(syncErr) : resolve()))))),
  );
}

/** @tus/file-store with the durability and hashing floor (see above). */
class DurableFileStore extends FileStore {
  readonly #hashes = new Map<string, Hash>();

  override async create(upload: Upload): Promise<Upload> {
    const created = await super.create(upload);
    await fsyncPath(join(dir!, `${upload.id}.json`));
    await fsyncPath(dir!);
    return created;
  }

  override async write(readable: Readable, id: string, offset: number): Promise<number> {
    let hash = this.#hashes.get(id);
    if (hash === undefined) this.#hashes.set(id, (hash = createHash('sha256')));
    const tap = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash!.update(chunk);
        done(null, chunk);
      },
    });
    readable.on('error', (err) => tap.destroy(err));
    return super.write(readable.pipe(tap), id, offset);
  }

  /** A finished upload: its bytes made durable, its digest taken (and the hash dropped). */
  async finish(id: string): Promise<string | undefined> {
    await fsyncPath(join(dir!, id));
    const hex = this.#hashes.get(id)?.digest('hex');
    this.#hashes.delete(id);
    return hex;
  }
}

const datastore = durable ? new DurableFileStore({ directory: dir }) : new FileStore({ directory: dir });
const tus = new Server({
  path: '/files',
  datastore,
  ...(durable && {
    onUploadFinish: async (_req: unknown, upload: Upload) => {
      await (datastore as DurableFileStore).finish(upload.id);
      return {};
    },
  }),
});
// requestTimeout 0: Node's 300 s default would cut one long PATCH (field-notes.md).
const server = createServer({ requestTimeout: 0 }, (req, res) => {
  tus.handle(req, res).catch(() => res.destroy());
});
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  console.log(JSON.stringify({ msg: 'Server listening', address: `http://127.0.0.1:${port}` }));
});
