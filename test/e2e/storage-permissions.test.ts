/**
 * Issue 9.11: uploaded files are not world readable. `[storage] file_mode` (default 0640) is the
 * mode of every published file, PUT or tus, deduplicated or not; directories the server creates
 * get the matching x bits (0750). A short admin token draws a warning at start.
 */
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { randomData, rawRequest, slotDir } from '../helpers/http.js';
import { putFile, tusCreate } from '../helpers/ops.js';
import { startServer, type SpawnedServer } from '../helpers/server.js';

const modeOf = async (path: string) => ((await stat(path)).mode & 0o777).toString(8).padStart(4, '0');

/** Publishes one file by PUT, one by tus, and the PUT's bytes again at a third path (a dedup hit). */
async function publishThree(server: SpawnedServer): Promise<string[]> {
  const dir = slotDir();
  const bytes = randomData(3000);
  const paths = [`${dir}/put.bin`, `${dir}/tus.bin`, `${dir}/same-bytes.bin`];
  assert.equal((await putFile(server, paths[0]!, bytes)).status, 201);
  await tusCreate(server, paths[1]!, randomData(2000));
  assert.equal((await putFile(server, paths[2]!, bytes)).status, 201);
  for (const p of paths) assert.equal((await rawRequest(server.baseUrl, `/upload/${p}`, { method: 'HEAD' })).status, 200); // waits for the publish
  return paths;
}

/** A tus upload's record and data file, and the queue's SQLite files, have the file mode. */
async function assertInnerFiles(server: SpawnedServer, mode: string): Promise<void> {
  const { id } = await tusCreate(server, `${slotDir()}/open.bin`, randomData(500), { sent: 100 });
  for (const f of [join('tus', id), join('tus', `${id}.json`), join('queue', 'queue.sqlite'), join('queue', 'queue.sqlite-wal')]) {
    assert.equal(await modeOf(join(server.dataDir, f)), mode, f);
  }
}

describe('storage permissions', () => {
  const servers: SpawnedServer[] = [];
  after(async () => {
    for (const s of servers) await s.dispose();
  });

  it('default: published files 0640, the directories the server creates 0750', async () => {
    const server = await startServer();
    servers.push(server);
    const paths = await publishThree(server);
    for (const p of paths) {
      assert.equal(await modeOf(join(server.dataDir, 'files', p)), '0640', p);
      assert.equal(await modeOf(join(server.dataDir, 'meta', `${p}.json`)), '0640', `record of ${p}`);
    }
    const dir = paths[0]!.split('/')[0]!;
    for (const d of ['files', 'meta', 'incoming', 'cas', 'tus', 'queue', join('queue', 'staging'), join('files', dir), join('meta', dir)]) {
      assert.equal(await modeOf(join(server.dataDir, d)), '0750', d);
    }
    // Upload records name upload ids (capabilities: DELETE of a finished upload) and slot paths; so does the queue.
    await assertInnerFiles(server, '0640');
  });

  it('file_mode = "0600": files 0600, directories 0700; a short admin token is warned about at start', async () => {
    const server = await startServer({ config: '[storage]\nfile_mode = "0600"\n', env: { HFS_ADMIN_TOKEN: 'too-short' } });
    servers.push(server);
    const warning = await server.waitForLog((l) => l.msg === 'Config warning' && l.key === 'admin.token');
    assert.match(String(warning.reason), /shorter than 32 characters/);
    assert.ok(!server.output().includes('too-short'), 'the token itself is never logged');
    const paths = await publishThree(server);
    for (const p of paths) assert.equal(await modeOf(join(server.dataDir, 'files', p)), '0600', p);
    assert.equal(await modeOf(join(server.dataDir, 'files', paths[0]!.split('/')[0]!)), '0700');
    for (const d of ['tus', 'queue', join('queue', 'staging')]) assert.equal(await modeOf(join(server.dataDir, d)), '0700', d);
    await assertInnerFiles(server, '0600');
  });
});
