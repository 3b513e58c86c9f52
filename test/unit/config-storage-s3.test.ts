/** `[storage.s3]`: defaults, a full S3-compatible setup, and each bad value named by its key path. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, parseTomlText, resolveConfig, type RawConfig } from '../../src/config/index.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { buildApp } from '../../src/app.js';
import { createLogger } from '../../src/observability/index.js';
import { s3ClientConfig } from '../../src/storage/s3.js';

const hasIssue = (path: string) => (err: unknown) => err instanceof ConfigError && err.issues.some((i) => i.path === path);

describe('[storage.s3]', () => {
  it('defaults: region us-east-1, AWS endpoint, credential chain, no prefix, 8 MiB parts', () => {
    const { config, warnings } = resolveConfig({}, {});
    assert.deepEqual(config.storage.s3, {
      bucket: '',
      region: 'us-east-1',
      endpoint: '',
      forcePathStyle: false,
      accessKeyId: '',
      secretAccessKey: '',
      keyPrefix: '',
      partBytes: 8 * 1024 * 1024,
      presignedDownloads: false,
      presignedTtlMs: 5 * 60_000,
      connectTimeoutMs: 5_000,
      requestTimeoutMs: 60_000,
    });
    assert.deepEqual(warnings, []);
  });

  it('a RadosGW setup from TOML', () => {
    const raw = parseTomlText(
      `[storage]
backend = "s3"
[storage.s3]
bucket = "uploads"
region = "default"
endpoint = "http://127.0.0.1:7480/"
force_path_style = true
access_key_id = "AK"
secret_access_key = "SK"
key_prefix = "hfs/"
part_size = "16MiB"
presigned_downloads = true
presigned_ttl = "90s"
connect_timeout = "2s"
request_timeout = "30s"
`,
      'test.toml',
    );
    const { config, warnings } = resolveConfig(raw, {});
    assert.equal(config.storage.backend, 's3');
    assert.deepEqual(config.storage.s3, {
      bucket: 'uploads',
      region: 'default',
      endpoint: 'http://127.0.0.1:7480',
      forcePathStyle: true,
      accessKeyId: 'AK',
      secretAccessKey: 'SK',
      keyPrefix: 'hfs/',
      partBytes: 16 * 1024 * 1024,
      presignedDownloads: true,
      presignedTtlMs: 90_000,
      connectTimeoutMs: 2_000,
      requestTimeoutMs: 30_000,
    });
    assert.deepEqual(warnings, []);
  });

  const cases: Array<[string, RawConfig, string]> = [
    ['backend s3 without a bucket', { storage: { backend: 's3' } }, 'storage.s3.bucket'],
    ['endpoint with a path', { storage: { s3: { endpoint: 'http://host:7480/bucket' } } }, 'storage.s3.endpoint'],
    ['endpoint not http', { storage: { s3: { endpoint: 'ftp://host' } } }, 'storage.s3.endpoint'],
    ['key prefix without a slash', { storage: { s3: { key_prefix: 'hfs' } } }, 'storage.s3.key_prefix'],
    ['part size below the S3 minimum', { storage: { s3: { part_size: '1MiB' } } }, 'storage.s3.part_size'],
    ['access key without a secret', { storage: { s3: { access_key_id: 'AK' } } }, 'storage.s3.secret_access_key'],
    ['string for force_path_style', { storage: { s3: { force_path_style: 'yes' } } }, 'storage.s3.force_path_style'],
    ['presigned URLs valid longer than S3 allows', { storage: { s3: { presigned_ttl: '8d' } } }, 'storage.s3.presigned_ttl'],
    ['request timeout below 1s', { storage: { s3: { request_timeout: '500ms' } } }, 'storage.s3.request_timeout'],
    ['request timeout not a duration', { storage: { s3: { request_timeout: 'soon' } } }, 'storage.s3.request_timeout'],
    ['connect timeout above 5m', { storage: { s3: { connect_timeout: '10m' } } }, 'storage.s3.connect_timeout'],
    ['misspelt key (a nested table is strict)', { storage: { s3: { acess_key_id: 'AK' } } }, 'storage.s3'],
  ];
  for (const [name, raw, path] of cases) {
    it(`${name} -> ${path}`, () => assert.throws(() => resolveConfig(raw, {}), hasIssue(path)));
  }
});

describe('s3ClientConfig', () => {
  const base = { bucket: 'b', region: 'r', endpoint: '', forcePathStyle: false, accessKeyId: '', secretAccessKey: '', keyPrefix: '', partBytes: 5 * 1024 * 1024 };

  it('AWS itself: default checksums and the standard credential chain', () => {
    assert.deepEqual(s3ClientConfig(base), { region: 'r', forcePathStyle: false, requestHandler: { connectionTimeout: 5_000, socketTimeout: 60_000 } });
  });

  it('an S3-compatible endpoint: checksums only when required (RGW rejects aws-chunked bodies), keys from the config', () => {
    assert.deepEqual(s3ClientConfig({ ...base, endpoint: 'http://127.0.0.1:7480', forcePathStyle: true, accessKeyId: 'AK', secretAccessKey: 'SK' }), {
      region: 'r',
      endpoint: 'http://127.0.0.1:7480',
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      forcePathStyle: true,
      requestHandler: { connectionTimeout: 5_000, socketTimeout: 60_000 },
      credentials: { accessKeyId: 'AK', secretAccessKey: 'SK' },
    });
  });
});

describe('storage.backend = "s3" is served', () => {
  it('builds the app on the S3 stores (no refusal), naming bucket and prefix; an unreachable S3 at start is logged, not fatal', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'hfs-s3-app-'));
    try {
      const { config } = resolveConfig(
        { storage: { backend: 's3', data_dir: dataDir, s3: { bucket: 'uploads', endpoint: 'http://127.0.0.1:9', force_path_style: true, access_key_id: 'AK', secret_access_key: 'SK', key_prefix: 'hfs/' } }, security: { secret: 'a-long-enough-test-secret' } },
        {},
      );
      const out = new PassThrough();
      const lines: Array<Record<string, unknown>> = [];
      out.on('data', (d: Buffer) => lines.push(...d.toString().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)));
      const log = createLogger({ level: 'info', format: 'json' }, out);
      await buildApp(config, { log });
      const storage = lines.find((l) => l.msg === 'Storage backend');
      assert.equal(storage?.backend, 's3');
      assert.equal(storage?.bucket, 'uploads');
      assert.equal(storage?.keyPrefix, 'hfs/');
      assert.ok(lines.some((l) => l.msg === 'Could not remove what interrupted PUTs left on S3; retried at the next start'));
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('the S3 client on Node 20', () => {
  it("keeps the SDK's multi-line NodeVersionSupportWarning out of stderr (the server logs JSON lines), unless asked for", async () => {
    const { execFile } = await import('node:child_process');
    const script = `import { createS3Client } from ${JSON.stringify(new URL('../../src/storage/s3-client.js', import.meta.url).href)};
      const c = createS3Client({ bucket: 'b', region: 'us-east-1', endpoint: 'http://127.0.0.1:9', forcePathStyle: true, accessKeyId: 'a', secretAccessKey: 'b', keyPrefix: '', partBytes: 8 << 20 });
      await c.config.region();`;
    const stderrWith = (env: Record<string, string>) =>
      new Promise<string>((resolve, reject) => {
        const rest = { ...process.env };
        delete rest.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
        execFile(process.execPath, ['--input-type=module', '-e', script], { env: { ...rest, ...env }, timeout: 30_000 }, (err, _out, stderr) => (err ? reject(err) : resolve(stderr)));
      });
    assert.equal(await stderrWith({}), '');
    // The SDK warns only below Node 22: there the variable set to "false" brings the warning back.
    if (Number(process.versions.node.split('.')[0]) < 22) assert.match(await stderrWith({ AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'false' }), /NodeVersionSupportWarning/);
  });
});
