import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, parseTomlText, resolveConfig, type ConfigWarning, type Env, type RawConfig } from '../../src/config/index.js';

const hasIssue = (path: string) => (err: unknown) =>
  err instanceof ConfigError && err.issues.some((i) => i.path === path);

const warningPaths = (warnings: ConfigWarning[], code: ConfigWarning['code']) =>
  warnings.filter((w) => w.code === code).map((w) => w.path).sort();

describe('resolveConfig defaults (empty file, empty env)', () => {
  const { config, warnings } = resolveConfig({}, {});

  it('server', () => {
    assert.deepEqual(config.server, {
      listen: { host: '127.0.0.1', port: 8080 },
      publicUrl: '',
      tusPath: '/files/',
      uploadPath: '/upload/',
      maxUploadBytes: 10e9,
      gracefulShutdownMs: 300_000,
      requestTimeoutMs: 7_200_000,
      uploadStallMs: 60_000,
      headersTimeoutMs: 60_000,
      maxConcurrentUploads: 100,
      connectionPoolSize: 200,
      listenBacklog: 4096,
      trustProxy: false,
      tls: null,
    });
  });
  it('workers', () => {
    assert.deepEqual(config.workers, {
      count: 4,
      queueSize: 1000,
      queueTimeoutMs: 300_000,
      priorityQueueEnabled: true,
      largeFileQueueSize: 20,
      circuitBreakerEnabled: true,
      backpressureThreshold: 0.8,
    });
  });
  it('timeouts', () => {
    assert.deepEqual(config.timeouts, {
      smallFileMs: 60_000,
      mediumFileMs: 600_000,
      largeFileMs: 3_600_000,
      hugeFileMs: 7_200_000,
      stallMs: { small: null, medium: null, large: null, huge: null }, // derived from server.upload_stall_timeout
      keepAliveProbeIntervalMs: 30_000,
      keepAliveProbeCount: 9,
      retryBaseDelayMs: 1000,
      retryMaxDelayMs: 60_000,
      maxRetryAttempts: 5,
      minUploadRateBytesPerSec: 8192, // EDGE-class links pass (issue 18.8)
      minUploadRateWindowMs: 60_000,
    });
  });
  it('limits, takeover', () => {
    assert.deepEqual(config.limits, { maxBodiesPerClient: 32, maxConnectionsPerClient: 100, creationsPerMinutePerClient: 120, maxUnfinishedBytes: 100e9, maxPromisedBytesPerClient: { percent: 25 }, ipv6ClientPrefix: 64 });
    assert.equal(config.tus.takeoverIdleMs, 200);
  });
  it('queue_resilience', () => {
    assert.deepEqual(config.queue_resilience, {
      spilloverToDisk: true,
      persistentQueue: true,
      recoveryEnabled: true,
      deadLetterEnabled: true,
      healthCheckIntervalMs: 15_000,
      emergencyThreshold: 0.95,
      priorityLevels: 3,
      priorityAgingEnabled: true,
      loadBalancingStrategy: 'least_loaded',
    });
  });
  it('security, storage, redis, metrics', () => {
    assert.deepEqual(config.security, { secret: '', previousSecrets: [], schemes: ['v', 'v2', 'token', 'v3'], expiryGraceMs: 0, clockSkewMs: 0 });
    assert.deepEqual(config.uploads, { allowedExtensions: [], blockedExtensions: [] });
    assert.deepEqual({ ...config.storage, s3: undefined }, { backend: 'file', dataDir: './data', minFreeSpace: { bytes: 64 * 2 ** 20 }, fileMode: 0o640, dirMode: 0o750, s3: undefined }); // s3: config-storage-s3.test.ts
    assert.equal(config.redis.url, '');
    assert.equal(config.metrics.listen, null);
  });
  it('no warnings', () => assert.deepEqual(warnings, []));
  it('warns when upload_stall_timeout is shorter than lock_drain_timeout (issue 9.5)', () => {
    const r = resolveConfig({ server: { upload_stall_timeout: '2s' }, tus: { lock_drain_timeout: '5s' } }, {});
    assert.ok(r.warnings.some((w) => w.path === 'server.upload_stall_timeout' && /lock_drain_timeout/.test(w.message)));
  });
});

describe('resolveConfig values from the file', () => {
  const cases: [name: string, raw: RawConfig, pick: (c: ReturnType<typeof resolveConfig>['config']) => unknown, expected: unknown][] = [
    ['listen', { server: { listen: '[::1]:9000' } }, (c) => c.server.listen, { host: '::1', port: 9000 }],
    ['max_upload_size', { server: { max_upload_size: '1GiB' } }, (c) => c.server.maxUploadBytes, 2 ** 30],
    ['max_upload_size as a number', { server: { max_upload_size: 1234 } }, (c) => c.server.maxUploadBytes, 1234],
    ['small_file_timeout', { timeouts: { small_file_timeout: '2m' } }, (c) => c.timeouts.smallFileMs, 120_000],
    ['a CORS origin with a trailing slash or capitals is written as browsers send it', { cors: { allowed_origins: ['https://Chat.Example.org/', '*'] } }, (c) => c.cors.allowedOrigins, ['https://chat.example.org', '*']],
    ['a CORS origin with its scheme\'s default port is written as browsers send it (without)', { cors: { allowed_origins: ['https://c.example:443', 'http://d.example:80', 'https://e.example:8443'] } }, (c) => c.cors.allowedOrigins, ['https://c.example', 'http://d.example', 'https://e.example:8443']],
    ['a lifetime longer than a timer holds is fine where nothing waits for it', { tus: { expiration: '30d' } }, (c) => c.tus.expirationMs, 30 * 24 * 3600_000],
        [
      'uploads at the root: tus routed first, the page off and metrics on their own listener',
      { server: { upload_path: '/' }, upload_page: { enabled: false }, metrics: { listen: '127.0.0.1:9100' } },
      (c) => [c.server.uploadPath, c.server.tusPath],
      ['/', '/files/'],
    ],
        ['extension endings with digits, dots and dashes', { uploads: { blocked_extensions: ['.7z', 'tar.gz', '.c++', '.x-y_z'] } }, (c) => c.uploads.blockedExtensions.length, 4],
        ['public_url trailing slashes dropped', { server: { public_url: 'https://f.example//' } }, (c) => c.server.publicUrl, 'https://f.example'],
    ['logging.level "warning" read as warn', { logging: { level: 'warning' } }, (c) => c.logging.level, 'warn'],
    ['metrics.listen', { metrics: { listen: ':9090' } }, (c) => c.metrics.listen, { host: '', port: 9090 }],
    ['file_mode "0600"', { storage: { file_mode: '0600' } }, (c) => [c.storage.fileMode, c.storage.dirMode], [0o600, 0o700]],
    ['file_mode "644"', { storage: { file_mode: '644' } }, (c) => [c.storage.fileMode, c.storage.dirMode], [0o644, 0o755]],
    ['file_mode as a TOML octal integer', { storage: { file_mode: 0o660 } }, (c) => [c.storage.fileMode, c.storage.dirMode], [0o660, 0o770]],
    [
      'CORS credentials with listed origins',
      { cors: { allowed_origins: ['https://a.example'], allow_credentials: true } },
      (c) => [c.cors.allowedOrigins, c.cors.allowCredentials],
      [['https://a.example'], true],
    ],
  ];
  for (const [name, raw, pick, expected] of cases) it(name, () => assert.deepEqual(pick(resolveConfig(raw, {}).config), expected));
});

describe('resolveConfig environment overrides', () => {
  const file: RawConfig = {
    server: { listen: '10.0.0.1:1000' },
    storage: { data_dir: '/from/file' },
    security: { secret: 'secret-from-the-file-0123' },
    redis: { url: 'redis://file-host:6379/0' },
  };
  const env: Env = {
    HFS_LISTEN: '0.0.0.0:9999',
    HFS_DATA_DIR: '/from/env',
    HFS_SECRET: 'secret-from-the-env-456789',
    HFS_REDIS_URL: 'redis://env-host:6379/2',
  };

  it('each override wins over the file value', () => {
    const { config } = resolveConfig(file, env);
    assert.deepEqual(config.server.listen, { host: '0.0.0.0', port: 9999 });
    assert.equal(config.storage.dataDir, '/from/env');
    assert.equal(config.security.secret, 'secret-from-the-env-456789');
    assert.equal(config.redis.url, 'redis://env-host:6379/2');
  });

  it('overrides apply without a file section', () => {
    const { config } = resolveConfig({}, env);
    assert.deepEqual(config.server.listen, { host: '0.0.0.0', port: 9999 });
    assert.equal(config.storage.dataDir, '/from/env');
  });

  it('an empty or absent variable keeps the file value', () => {
    const { config } = resolveConfig(file, { HFS_LISTEN: '', HFS_DATA_DIR: undefined });
    assert.deepEqual(config.server.listen, { host: '10.0.0.1', port: 1000 });
    assert.equal(config.storage.dataDir, '/from/file');
  });

  it('a listen address without a host is every interface, and says so', () => {
    const { config, warnings } = resolveConfig({ server: { listen: 8080 } }, {});
    assert.deepEqual(config.server.listen, { host: '', port: 8080 });
    assert.match(warnings.find((w) => w.path === 'server.listen')?.message ?? '', /every interface/);
    assert.equal(resolveConfig({ server: { listen: '0.0.0.0:8080' } }, {}).warnings.some((w) => w.path === 'server.listen'), false, 'said explicitly: no warning');
  });

  it('the override wins over a Go 3.x listen_address too', () => {
    const { config } = resolveConfig({ server: { listen_address: '8080' } }, { HFS_LISTEN: '127.0.0.2:81' });
    assert.deepEqual(config.server.listen, { host: '127.0.0.2', port: 81 });
  });

  it('an invalid override is reported with the variable name', () => {
    assert.throws(() => resolveConfig(file, { HFS_LISTEN: 'nowhere' }), hasIssue('server.listen (from HFS_LISTEN)'));
  });

  it('the input object is not mutated', () => {
    const before = structuredClone(file);
    resolveConfig(file, env);
    assert.deepEqual(file, before);
  });

  it('an override into a section that is not a table is a ConfigError, not a crash', () => {
    // BUG: resolveConfig assigns the env value onto the raw string ("Cannot create property 'listen' on string").
    assert.throws(() => resolveConfig({ server: 'oops' }, { HFS_LISTEN: ':8080' }), (err: unknown) =>
      err instanceof ConfigError && err.issues.some((i) => i.path.startsWith('server')),
    );
  });
});

describe('resolveConfig errors name the key path', () => {
  const cases: [name: string, raw: RawConfig, path: string][] = [
    ['bad size', { server: { max_upload_size: '10XB' } }, 'server.max_upload_size'],
    ['negative size', { server: { max_upload_size: -1 } }, 'server.max_upload_size'],
    ['bare-number duration', { timeouts: { small_file_timeout: 30 } }, 'timeouts.small_file_timeout'],
    ['unit-less duration string', { timeouts: { small_file_timeout: '30' } }, 'timeouts.small_file_timeout'],
    ['bad listen', { server: { listen: 'host' } }, 'server.listen'],
    ['string for a boolean', { server: { trust_proxy: 'yes' } }, 'server.trust_proxy'],
    ['number for a boolean', { finalize: { dedup: 1 } }, 'finalize.dedup'],
    ['array for a section', { server: [] }, 'server'],
    ['string for a section', { timeouts: '60s' }, 'timeouts'],
    ['numworkers 0', { workers: { numworkers: 0 } }, 'workers.numworkers'],
    ['fractional count', { workers: { queue_size: 1.5 } }, 'workers.queue_size'],
    ['fraction above 1', { workers: { queue_backpressure_threshold: 1.5 } }, 'workers.queue_backpressure_threshold'],
    ['unknown scheme', { security: { schemes: ['v4'] } }, 'security.schemes.0'],
    ['no schemes', { security: { schemes: [] } }, 'security.schemes'],
    ['upload_path without slashes', { server: { upload_path: 'upload' } }, 'server.upload_path'],
    ['storage backend unknown', { storage: { backend: 'ftp' } }, 'storage.backend'],
    ['min_free_space not a size', { storage: { min_free_space: 'lots' } }, 'storage.min_free_space'],
    ['min_free_space above 100%', { storage: { min_free_space: '150%' } }, 'storage.min_free_space'],
    ['min_free_space negative', { storage: { min_free_space: -5 } }, 'storage.min_free_space'],
    ['webhook not http', { finalize: { webhook_url: 'ftp://x/' } }, 'finalize.webhook_url'],
    ['file_mode not octal', { storage: { file_mode: '0680' } }, 'storage.file_mode'],
    ['file_mode beyond 0777', { storage: { file_mode: 0o1777 } }, 'storage.file_mode'],
    ['file_mode the server cannot write', { storage: { file_mode: '0440' } }, 'storage.file_mode'],
    ['CORS credentials with any origin', { cors: { allowed_origins: ['*'], allow_credentials: true } }, 'cors.allow_credentials'],
    ['CORS credentials with "*" among origins', { cors: { allowed_origins: ['https://a.example', '*'], allow_credentials: true } }, 'cors.allow_credentials'],
    ['webhook with a password in its URL', { finalize: { webhook_url: 'http://bob:pw@hooks.example/h' } }, 'finalize.webhook_url'],
    ['public_url without a scheme', { server: { public_url: 'files.example.org' } }, 'server.public_url'],
    ['public_url not a URL', { server: { public_url: 'my upload server' } }, 'server.public_url'],
    ['queue_timeout 0', { workers: { queue_timeout: '0s' } }, 'workers.queue_timeout'],
    ['headers_timeout 0', { server: { headers_timeout: '0s' } }, 'server.headers_timeout'],
    ['headers_timeout without a unit', { server: { headers_timeout: 60 } }, 'server.headers_timeout'],
    ['max_connections_per_client negative', { limits: { max_connections_per_client: -1 } }, 'limits.max_connections_per_client'],
    ['max_connections_per_client fractional', { limits: { max_connections_per_client: 2.5 } }, 'limits.max_connections_per_client'],
    ['a glob as a blocked ending', { uploads: { blocked_extensions: ['*.exe'] } }, 'uploads.blocked_extensions.0'],
    ['a comma list in one entry', { uploads: { blocked_extensions: ['.exe,.bat'] } }, 'uploads.blocked_extensions.0'],
    ['a glob as an allowed ending', { uploads: { allowed_extensions: ['.jpg', 'image/*'] } }, 'uploads.allowed_extensions.1'],
    ['scan max_size 0', { scan: { max_size: 0 } }, 'scan.max_size'],
    ['metrics on the main listener address', { server: { listen: '127.0.0.1:8080' }, metrics: { listen: '127.0.0.1:8080' } }, 'metrics.listen'],
    ['tus_path equal to upload_path', { server: { tus_path: '/data/', upload_path: '/data/' } }, 'server.upload_path'],
    ['upload path below the tus path', { server: { tus_path: '/files/', upload_path: '/files/up/' } }, 'server.upload_path'],
    ['metrics below the tus path', { metrics: { path: '/files/metrics' } }, 'metrics.path'],
    ['a per-client storage share that is no size', { limits: { max_promised_bytes_per_client: 'lots' } }, 'limits.max_promised_bytes_per_client'],
    ['a per-client storage share above 100%', { limits: { max_promised_bytes_per_client: '150%' } }, 'limits.max_promised_bytes_per_client'],
    ['a CORS origin without its scheme', { cors: { allowed_origins: ['chat.example.org'] } }, 'cors.allowed_origins.0'],
    ['a CORS origin with a path', { cors: { allowed_origins: ['https://chat.example.org/app'] } }, 'cors.allowed_origins.0'],
    ['a wildcard inside a CORS origin (it never matched)', { cors: { allowed_origins: ['https://chat.example.org', 'https://*.example.org'] } }, 'cors.allowed_origins.1'],
    ['a timer duration past what a Node timer holds (it fired after 1 ms)', { server: { graceful_shutdown_timeout: '30d' } }, 'server.graceful_shutdown_timeout'],
    ['an interval past what a Node timer holds (a busy loop)', { queue_resilience: { queue_health_check_interval: '30d' } }, 'queue_resilience.queue_health_check_interval'],
    ['upload_stall_timeout 0 (every body would end at once)', { server: { upload_stall_timeout: '0s' } }, 'server.upload_stall_timeout'],
    ['max_upload_size 0 (every upload 413)', { server: { max_upload_size: 0 } }, 'server.max_upload_size'],
    ['webhook_timeout 0', { finalize: { webhook_timeout: '0s' } }, 'finalize.webhook_timeout'],
    ['redis health_check_interval 0 (a busy loop)', { redis: { health_check_interval: '0s' } }, 'redis.health_check_interval'],
    ['scan timeout 0', { scan: { timeout: '0s' } }, 'scan.timeout'],
        ['upload page chunk_size 0', { upload_page: { chunk_size: 0 } }, 'upload_page.chunk_size'],
        ['admin on the metrics listener address', { metrics: { listen: '127.0.0.1:9090' }, admin: { listen: '127.0.0.1:9090' } }, 'admin.listen'],
  ];
  for (const [name, raw, path] of cases) {
    it(`${name} -> ${path}`, () => assert.throws(() => resolveConfig(raw, {}), hasIssue(path)));
  }

  it('several bad keys are all reported at once', () => {
    const raw: RawConfig = {
      server: { max_upload_size: '10XB', listen: 'host', trust_proxy: 'yes' },
      timeouts: { small_file_timeout: '30' },
      workers: { numworkers: 0 },
    };
    assert.throws(
      () => resolveConfig(raw, { HFS_DATA_DIR: '/d' }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.deepEqual(err.issues.map((i) => i.path).sort(), [
          'server.listen',
          'server.max_upload_size',
          'server.trust_proxy',
          'timeouts.small_file_timeout',
          'workers.numworkers',
        ]);
        for (const issue of err.issues) assert.ok(err.message.includes(`${issue.path}: `), `message names ${issue.path}`);
        return true;
      },
    );
  });
});

describe('resolveConfig warnings for weak values', () => {
  it('an admin token with whitespace is refused with its key path (a Bearer token cannot carry it), without the token in the message', () => {
    assert.throws(
      () => resolveConfig({ admin: { token: 'admin token with spaces 0123456789' } }, {}),
      (err: Error) => /admin\.token: must not contain spaces/.test(err.message) && !err.message.includes('with spaces 0123'),
    );
  });

  it('an admin token under 32 characters is warned about, without the token in the message', () => {
    const short = resolveConfig({ admin: { token: 'short-token' } }, {});
    assert.deepEqual(warningPaths(short.warnings, 'CONFIG_ADJUSTED'), ['admin.token']);
    assert.ok(!JSON.stringify(short.warnings).includes('short-token'));
    assert.deepEqual(resolveConfig({ admin: { token: 'x'.repeat(32) } }, {}).warnings, []);
    assert.deepEqual(warningPaths(resolveConfig({}, { HFS_ADMIN_TOKEN: 'abc' }).warnings, 'CONFIG_ADJUSTED'), ['admin.token']);
  });
});

describe('resolveConfig unknown keys', () => {
  it('unknown keys and sections are warned about and dropped', () => {
    const { config, warnings } = resolveConfig({ server: { bogus: 1, listen: ':81' }, nosuch: { a: 1, b: 2 }, toplevel: 'x' }, {});
    assert.deepEqual(warningPaths(warnings, 'CONFIG_UNKNOWN_KEY'), ['nosuch.a', 'nosuch.b', 'server.bogus', 'toplevel'], 'each key of an unknown section by name');
    assert.equal('bogus' in config.server, false);
    assert.equal('nosuch' in config, false);
    assert.equal('toplevel' in config, false);
    assert.deepEqual(config.server.listen, { host: '', port: 81 });
  });

  it('an unknown key with an invalid-looking value is not an error', () => {
    assert.doesNotThrow(() => resolveConfig({ server: { bogus: [] }, timeouts: { readtimeout_x: 'nope' } }, {}));
  });
});

const GO_TOML = `
[server]
listen_address = "8080"
bind_ip = "0.0.0.0"
storage_path = "/var/lib/hfs"
max_upload_size = "1GB"
metrics_enabled = true
metrics_port = "9090"
deduplication_enabled = true

[security]
secret = "0123456789abcdef0123"
enablejwt = false

[uploads]
allowed_extensions = [".jpg"]

[timeouts]
readtimeout = "300s"
shutdown = "30s"

[workers]
numworkers = 8
uploadqueuesize = 100

[redis]
redisenabled = true
redisaddr = "localhost:6379"
redisdbindex = 0

[logging]
level = "info"
file = "/var/log/x.log"

[clamav]
clamavenabled = false
`;

describe('resolveConfig with a Go HMAC File Server 3.x config', () => {
  const raw = parseTomlText(GO_TOML, 'go.toml');
  const before = structuredClone(raw);
  const { config, warnings } = resolveConfig(raw, {});

  const mapped: [name: string, actual: unknown, expected: unknown][] = [
    ['listen (listen_address + bind_ip)', config.server.listen, { host: '', port: 8080 }],
    ['data dir (storage_path)', config.storage.dataDir, '/var/lib/hfs'],
    ['maxUploadBytes ("1GB" in Go\'s binary units)', config.server.maxUploadBytes, 2 ** 30],
    ['allowed extensions', config.uploads.allowedExtensions, ['.jpg']],
    ['metrics enabled', config.metrics.enabled, true],
    ['metrics listen (metrics_port)', config.metrics.listen, { host: '', port: 9090 }],
    ['finalize.dedup', config.finalize.dedup, true],
    ['workers.count', config.workers.count, 8],
    ['workers.queueSize (uploadqueuesize)', config.workers.queueSize, 100],
    ['gracefulShutdownMs (timeouts.shutdown)', config.server.gracefulShutdownMs, 30_000],
    ['redis.url', config.redis.url, 'redis://localhost:6379/0'],
    ['security.secret', config.security.secret, '0123456789abcdef0123'],
    ['logging.level', config.logging.level, 'info'],
  ];
  for (const [name, actual, expected] of mapped) it(name, () => assert.deepEqual(actual, expected));

  it('CONFIG_LEGACY_KEY for the moved keys', () => {
    assert.deepEqual(warningPaths(warnings, 'CONFIG_LEGACY_KEY'), [
      'clamav.clamavenabled',
      'redis.redisaddr',
      'server.bind_ip',
      'server.deduplication_enabled',
      'server.listen_address',
      'server.max_upload_size',
      'server.metrics_enabled',
      'server.metrics_port',
      'server.storage_path',
      'timeouts.shutdown',
      'workers.uploadqueuesize',
    ]);
  });

  it('CONFIG_LEGACY_IGNORED for Go keys that change nothing here, each with the reason', () => {
    assert.deepEqual(warningPaths(warnings, 'CONFIG_LEGACY_IGNORED'), ['logging.file', 'security.enablejwt', 'security.expiry_grace', 'timeouts.readtimeout']);
  });

  it('CONFIG_UNKNOWN_KEY for the rest', () => {
    assert.deepEqual(warningPaths(warnings, 'CONFIG_UNKNOWN_KEY'), []);
  });

  // smol-toml builds null-prototype tables; compare plain copies so only the values count.
  it('does not mutate the parsed object', () => assert.deepEqual(structuredClone(raw), before));

  it('a new key wins over its Go 3.x name, with a warning', () => {
    const r = resolveConfig({ server: { listen: '1.2.3.4:5', listen_address: '8080' } }, {});
    assert.deepEqual(r.config.server.listen, { host: '1.2.3.4', port: 5 });
    assert.deepEqual(warningPaths(r.warnings, 'CONFIG_LEGACY_IGNORED'), ['security.expiry_grace', 'server.listen_address']);
  });
});

describe('parseTomlText', () => {
  it('parses valid TOML', () => {
    assert.deepEqual(structuredClone(parseTomlText('[server]\nlisten = ":80"\nport = 8080\n', 'x.toml')), { server: { listen: ':80', port: 8080 } });
  });

  const bad: [name: string, text: string, line: number][] = [
    ['double "="', '[server]\nlisten = ":80"\nbad = = 1\n', 3],
    ['unclosed table header', '[server\nlisten = ":80"\n', 1],
    ['duplicate key', '[server]\nlisten = ":80"\nlisten = ":81"\n', 3],
  ];
  for (const [name, text, line] of bad) {
    it(`${name}: ConfigError at (file) naming line ${line}`, () => {
      assert.throws(
        () => parseTomlText(text, 'conf/bad.toml'),
        (err: unknown) =>
          err instanceof ConfigError &&
          err.issues.length === 1 &&
          err.issues[0]!.path === '(file)' &&
          err.issues[0]!.message.includes('conf/bad.toml') &&
          err.issues[0]!.message.includes(`line ${line}`) &&
          err.message.includes(`line ${line}`),
      );
    });
  }
  it('names the key or table on that line, never its value', () => {
    const named = (text: string) => {
      try {
        parseTomlText(text, 'x.toml');
      } catch (err) {
        return (err as ConfigError).issues[0]!.message;
      }
      throw new Error('accepted');
    };
    assert.match(named('[server]\nlisten = ":80"\nlisten = ":81"\n'), /line 3, column \d+ \(listen\)/);
    assert.match(named('[server]\n[server]\n'), /line 2, column \d+ \(\[server\]\)/);
    const secret = named('[security]\nsecret = "s3cr3t-value\n');
    assert.match(secret, /\(secret\)/);
    assert.doesNotMatch(secret, /s3cr3t/);
  });
});
