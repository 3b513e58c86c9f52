/**
 * tus concatenation across instances (file backend: S3 does not offer it): a final upload sent at
 * two instances at once is joined once, and a final repeated at another instance (its 201 lost)
 * is answered with the first's Location. Finalization is held (HFS_TEST_HOLD_AT=start) while the
 * finals are sent, so nothing is published yet: the repeat must be found through the shared
 * queue, not the published file; SIGUSR2 then lets every file be published and checked.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { signSlotUrl } from '../../src/index.js';
import { getPublished, startCluster, type TestCluster } from '../helpers/cluster.js';
import { pathOf, randomData, rawRequest, sha256, slotDir, type RawResponse } from '../helpers/http.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { TEST_SECRET, type SpawnedServer } from '../helpers/server.js';

const TUS = { 'Tus-Resumable': '1.0.0' };
/** The upload id at the end of a Location (instances answer with their own host). */
const idOf = (res: RawResponse) => String(res.headers.location ?? '').split('/').pop() ?? '';

describe('cluster mode (file): tus concatenation finals across instances', () => {
  let redis: RedisServer;
  let cluster: TestCluster;
  let a: SpawnedServer;
  let b: SpawnedServer;
  /** Every slot joined here, checked once finalization is let go. */
  const joined: Array<{ getPath: string; data: Buffer }> = [];

  before(async () => {
    redis = await startRedis();
    cluster = await startCluster({
      size: 2,
      redisUrl: redis.url,
      env: { HFS_TEST_HOLD_AT: 'start' },
      config: '[limits]\nmax_bodies_per_client = 0\ncreations_per_minute_per_client = 0\n',
    });
    [a, b] = cluster.servers as [SpawnedServer, SpawnedServer];
  });
  after(async () => {
    await cluster?.dispose();
    await redis?.stop();
  });

  /** A slot sent as `count` partials at instance A; resolves its slot URL, the part URLs (A's) and the whole data. */
  const uploadParts = async (count: number, partBytes: number) => {
    const data = randomData(count * partBytes);
    const s = signSlotUrl({ secret: TEST_SECRET, path: `${slotDir()}/joined.bin`, size: data.length, baseUrl: cluster.uploadUrl });
    const parts: string[] = [];
    for (let i = 0; i < count; i++) {
      const created = await rawRequest(a.baseUrl, '/files/', {
        method: 'POST',
        headers: { ...TUS, 'Upload-Concat': 'partial', 'Upload-Length': partBytes, 'Upload-Slot': s.url, 'Upload-Slot-Length': data.length, 'Content-Type': 'application/offset+octet-stream' },
        body: data.subarray(i * partBytes, (i + 1) * partBytes),
      });
      assert.equal(created.status, 201, created.text);
      parts.push(`${a.baseUrl}${pathOf(String(created.headers.location))}`);
    }
    joined.push({ getPath: pathOf(s.getUrl), data });
    return { slotUrl: s.url, parts, data };
  };
  const finalAt = (server: SpawnedServer, slotUrl: string, parts: string[]) =>
    rawRequest(server.baseUrl, '/files/', { method: 'POST', headers: { ...TUS, 'Upload-Concat': `final;${parts.join(' ')}`, 'Upload-Slot': slotUrl } });

  it('a final repeated at another instance (its 201 lost) is answered with the first final, before it is published', async () => {
    const { slotUrl, parts } = await uploadParts(2, 100_000);
    const first = await finalAt(a, slotUrl, parts);
    assert.equal(first.status, 201, first.text);
    const again = await finalAt(b, slotUrl, parts);
    assert.equal(again.status, 201, `the repeat at B: ${again.status} ${again.text}`);
    assert.equal(idOf(again), idOf(first), 'the same final upload');
    assert.equal(again.headers['upload-offset'], first.headers['upload-offset']);
  });

  it('the same final at two instances at once: both 201 with one Location (joined once)', async () => {
    for (let round = 0; round < 3; round++) {
      // Parts large enough that the join takes a while: the second final arrives during it.
      const { slotUrl, parts } = await uploadParts(3, 4 * 1024 * 1024);
      const [one, two] = await Promise.all([finalAt(a, slotUrl, parts), finalAt(b, slotUrl, parts)]);
      assert.deepEqual([one.status, two.status], [201, 201], `round ${round}: ${one.text} ${two.text}`);
      assert.equal(idOf(one), idOf(two), `round ${round}: one final upload`);
    }
  });

  it('once finalization goes on, every joined file is published whole, once, without a dead letter', async () => {
    for (const server of cluster.servers) server.proc.kill('SIGUSR2');
    for (const { getPath, data } of joined) {
      const res = await getPublished(a.baseUrl, getPath);
      assert.equal(res.status, 200, `${getPath}: ${res.status} ${res.text}`);
      assert.equal(sha256(res.body), sha256(data), `${getPath}: the joined file`);
    }
    assert.deepEqual(cluster.linesOf((l) => l.msg === 'Job moved to dead letters' || l.code === 'ERR_STORED_SIZE_MISMATCH'), []);
  });
});
