/** Go HMAC File Server 3.x configs: each example starts with the same effective policy, or is refused naming the key. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, parseTomlText, resolveConfig, type ConfigWarning, type RawConfig } from '../../src/config/index.js';
import { GO_CONFIGS, goConfig } from '../fixtures/go-configs.js';

const MiB = 2 ** 20;
const HOUR = 3_600_000;
const resolve = (toml: string, env = {}) => resolveConfig(parseTomlText(toml, 'go.toml'), env);
const byCode = (warnings: ConfigWarning[], code: ConfigWarning['code']) => warnings.filter((w) => w.code === code);
const issuePaths = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map((i) => i.path).sort();
    throw err;
  }
  return [];
};

describe('Go 3.4 example configs: every key is accounted for', () => {
  for (const { name, toml } of GO_CONFIGS) {
    it(`${name}: no key is dropped as unknown; each mapped key says → new key = value`, () => {
      const raw = parseTomlText(toml, `${name}.toml`);
      let warnings: ConfigWarning[];
      try {
        warnings = resolveConfig(raw, {}).warnings;
      } catch (err) {
        // production-enhanced is refused; its warnings are checked with the key accepted below.
        assert.ok(err instanceof ConfigError);
        return;
      }
      assert.deepEqual(byCode(warnings, 'CONFIG_UNKNOWN_KEY'), []);
      for (const w of byCode(warnings, 'CONFIG_LEGACY_KEY')) assert.match(w.message, /→ [a-z_]+\.[a-z_]+ = \S/, `${w.path}: ${w.message}`);
      for (const w of byCode(warnings, 'CONFIG_LEGACY_IGNORED')) assert.ok(w.message.length > 30, `${w.path} says why: ${w.message}`);
    });
  }
});

describe('Go 3.4 example configs: effective values', () => {
  const exts26 = ['.txt', '.pdf', '.jpg', '.jpeg', '.png', '.gif', '.webp', '.zip', '.tar', '.gz', '.7z', '.mp4', '.webm', '.ogg', '.mp3', '.wav', '.flac', '.doc', '.docx', '.xls', '.xlsx', '.ppt', '.pptx', '.odt', '.ods', '.odp'];

  it('network-switching', () => {
    const { config, warnings } = resolve(goConfig('network-switching'));
    assert.deepEqual(config.server.listen, { host: '', port: 8080 });
    assert.equal(config.storage.dataDir, './uploads');
    assert.equal(config.server.maxUploadBytes, 100 * MiB, 'the smaller of max_upload_size (500MB) and [uploads] max_file_size (100MB), in binary units');
    assert.match(warnings.find((w) => w.code === 'CONFIG_ADJUSTED' && w.path === 'uploads.max_file_size')?.message ?? '', /Go 3\.4 did not read it and accepted up to 500MiB .*here the smaller 100MiB .*applies/);
    assert.deepEqual(config.uploads.allowedExtensions, exts26);
    assert.equal(config.security.expiryGraceMs, 72 * HOUR, 'the longest of the four grace keys');
    assert.equal(config.logging.level, 'info', '"INFO" in any case');
    assert.deepEqual([config.workers.count, config.workers.queueSize], [20, 2000]);
    assert.deepEqual(config.metrics.listen, { host: '', port: 9090 });
    assert.equal(config.metrics.enabled, true);
    assert.equal(config.tus.expirationMs, 72 * HOUR);
    assert.equal(config.server.gracefulShutdownMs, 30_000);
    assert.equal(config.security.secret, 'network-switching-secret-0123456789');
    assert.equal(config.server.uploadPath, '/', 'Go served slot URLs at the root');
    assert.equal(byCode(warnings, 'CONFIG_WEAK').length, 1, 'the 72 h grace is flagged at every start');
  });

  for (const name of ['docker', 'systemd']) {
    it(name, () => {
      const { config, warnings } = resolve(goConfig(name));
      assert.deepEqual(config.server.listen, { host: '', port: 8080 });
      assert.equal(config.storage.dataDir, '/opt/hmac-file-server/data/uploads');
      assert.equal(config.server.maxUploadBytes, 100 * MiB, 'maxfilesize "100MB" under max_upload_size "10GB"');
      assert.deepEqual(config.uploads.allowedExtensions, exts26);
      assert.equal(config.logging.level, 'info');
      assert.deepEqual([config.workers.count, config.workers.queueSize], [10, 1000]);
      assert.deepEqual(config.metrics.listen, { host: '', port: 9090 });
      assert.equal(config.finalize.dedup, true);
      assert.equal(config.redis.url, '');
      assert.equal(config.server.gracefulShutdownMs, 30_000);
      assert.equal(config.security.expiryGraceMs, 0);
      const redis = warnings.find((w) => w.path === 'redis.enabled');
      assert.match(redis?.message ?? '', /Redis is off/);
      assert.ok(!warnings.some((w) => /read as redis\.url|→ redis\.url/.test(w.message)), 'a disabled Redis is not reported as mapped');
    });
  }

  it('mobile-resilient', () => {
    const { config } = resolve(goConfig('mobile-resilient'));
    assert.deepEqual(config.server.listen, { host: '', port: 8080 });
    assert.equal(config.server.maxUploadBytes, 500 * MiB);
    assert.equal(config.uploads.allowedExtensions.length, 31);
    assert.ok(config.uploads.allowedExtensions.includes('.tar.gz'));
    assert.equal(config.security.expiryGraceMs, 72 * HOUR);
    assert.deepEqual([config.workers.count, config.workers.queueSize], [10, 500]);
    assert.deepEqual(config.metrics.listen, { host: '', port: 9090 });
  });

  it('production-enhanced is refused, naming filettlenabled only', () => {
    assert.deepEqual(issuePaths(() => resolve(goConfig('production-enhanced'))), ['server.filettlenabled']);
  });

  it('production-enhanced with the key accepted in [migration]', () => {
    const { config, warnings } = resolve(`${goConfig('production-enhanced')}\n[migration]\naccept_unenforced = ["server.filettlenabled"]\n`);
    assert.deepEqual(byCode(warnings, 'CONFIG_UNKNOWN_KEY'), []);
    assert.deepEqual(byCode(warnings, 'CONFIG_UNENFORCED').map((w) => w.path), ['server.filettlenabled']);
    assert.deepEqual(config.server.listen, { host: '', port: 8080 });
    assert.equal(config.server.maxUploadBytes, 1024 * MiB);
    assert.equal(config.uploads.allowedExtensions.length, 37);
    assert.deepEqual(config.metrics.listen, { host: '', port: 9090 });
    assert.equal(config.metrics.path, '/metrics');
    assert.equal(config.finalize.dedup, true);
    assert.equal(config.redis.url, 'redis://localhost:6379/0');
    assert.deepEqual([config.workers.count, config.workers.queueSize], [8, 100]);
    assert.equal(config.logging.level, 'debug');
  });

  it('enhanced-security', () => {
    const { config, warnings } = resolve(goConfig('enhanced-security'));
    assert.deepEqual(config.server.listen, { host: '', port: 8080 });
    assert.equal(config.server.maxUploadBytes, 100 * MiB, '[uploads] max_file_size under the 10 GB default');
    assert.deepEqual(config.uploads.allowedExtensions, ['.txt', '.pdf', '.jpg', '.png', '.mp4', '.mkv']);
    assert.equal(config.finalize.dedup, true);
    assert.ok(warnings.some((w) => w.path === 'security.enhanced_security' && /never enforces/.test(w.message)));
  });

  it('minimal', () => {
    const { config } = resolve(goConfig('minimal'));
    assert.deepEqual(config.server.listen, { host: '', port: 8080 });
    assert.equal(config.storage.dataDir, '/tmp/test-uploads');
    assert.equal(config.metrics.enabled, true);
    assert.equal(config.server.maxUploadBytes, 10e9, 'no Go size key: the default');
  });
});

describe('Go 3.x keys: case, levels, sizes', () => {
  it('key names are case-insensitive, as viper reads them', () => {
    const { config } = resolve('[Server]\nListen_Address = "9000"\nBIND_IP = "127.0.0.1"\n[LOGGING]\nLevel = "Warning"\n[Workers]\nNumWorkers = 3\n');
    assert.deepEqual(config.server.listen, { host: '127.0.0.1', port: 9000 });
    assert.equal(config.logging.level, 'warn');
    assert.equal(config.workers.count, 3);
  });

  it('one key spelt in two cases is an error naming it', () => {
    assert.deepEqual(issuePaths(() => resolve('[server]\nListen = ":81"\nlisten = ":82"\n')), ['server.listen']);
  });

  const levels: [given: string, expected: string][] = [['INFO', 'info'], ['Debug', 'debug'], ['WARNING', 'warn'], ['panic', 'fatal'], ['Trace', 'trace']];
  for (const [given, expected] of levels) {
    it(`log level "${given}" -> ${expected}, from the file and from HFS_LOG_LEVEL`, () => {
      assert.equal(resolveConfig({ logging: { level: given } }, {}).config.logging.level, expected);
      assert.equal(resolveConfig({}, { HFS_LOG_LEVEL: given }).config.logging.level, expected);
    });
  }

  it('an unknown log level is still an error naming the key', () => {
    assert.deepEqual(issuePaths(() => resolveConfig({ logging: { level: 'loud' } }, {})), ['logging.level']);
  });

  it("a config of this server keeps SI sizes; a Go config's sizes are binary", () => {
    assert.equal(resolveConfig({ server: { max_upload_size: '100MB' } }, {}).config.server.maxUploadBytes, 100e6);
    assert.equal(resolveConfig({ server: { max_upload_size: '100MB', listen_address: '8080' } }, {}).config.server.maxUploadBytes, 100 * MiB);
    assert.equal(resolveConfig({ server: { max_upload_size: '1GiB', listen_address: '8080' } }, {}).config.server.maxUploadBytes, 2 ** 30);
  });

  it('an invalid Go size names its key', () => {
    assert.deepEqual(issuePaths(() => resolveConfig({ uploads: { maxfilesize: 'lots' } }, {})), ['uploads.maxfilesize']);
  });

  it('metrics port: public on all interfaces, said so', () => {
    const { config, warnings } = resolveConfig({ server: { metrics_port: '9100', bind_ip: '10.0.0.1', listen_address: '80' } }, {});
    assert.deepEqual(config.metrics.listen, { host: '', port: 9100 }, 'Go served metrics on ":port" whatever bind_ip said');
    assert.deepEqual(config.server.listen, { host: '10.0.0.1', port: 80 });
    assert.match(warnings.find((w) => w.path === 'server.metrics_port')?.message ?? '', /→ metrics\.listen = :9100 \(public/);
  });

  it('upload_path: "/" as Go served slots, unless the config names a URL path; Go\'s directory value is replaced, said so', () => {
    const go = { server: { listen_address: '8080' } };
    assert.equal(resolveConfig(go, {}).config.server.uploadPath, '/');
    assert.equal(resolveConfig({ server: { ...go.server, upload_path: '/upload/' } }, {}).config.server.uploadPath, '/upload/');
    const dir = resolveConfig({ server: { ...go.server, upload_path: './uploads' } }, {});
    assert.equal(dir.config.server.uploadPath, '/');
    assert.match(dir.warnings.find((w) => w.path === 'server.upload_path')?.message ?? '', /"\.\/uploads" named a directory/);
    assert.equal(resolveConfig({ server: { ...go.server, upload_path: '/var/lib/hmac/uploads' } }, {}).config.server.uploadPath, '/', 'an absolute directory too');
    assert.equal(resolveConfig({}, {}).config.server.uploadPath, '/upload/', "this server's own configs keep the prefix");
    assert.deepEqual(resolveConfig({ server: { listen_address: '8080', bind_ip: '::' } }, {}).config.server.listen, { host: '', port: 8080 }, 'a wildcard bind_ip: every interface, both stacks');
  });

  it('quoted switches and counts read as Go (viper) read them; a string neither way reads names its key', () => {
    const { config } = resolveConfig({ server: { listen_address: '8080', metricsenabled: 'false', deduplication_enabled: 'TRUE' }, workers: { numworkers: '8', uploadqueuesize: ' 500 ' } }, {});
    assert.deepEqual([config.metrics.enabled, config.finalize.dedup, config.workers.count, config.workers.queueSize], [false, true, 8, 500]);
    assert.deepEqual(issuePaths(() => resolveConfig({ server: { listen_address: '8080' }, workers: { numworkers: 'eight' } }, {})), ['workers.numworkers']);
    assert.deepEqual(issuePaths(() => resolveConfig({ workers: { numworkers: '8' } }, {})), ['workers.numworkers'], "this server's own config keeps its types");
  });

  it('Go 2.x: filettl alone deleted files there (no switch), so it is refused unless accepted; its [server] spellings are read', () => {
    const go2 = { server: { listenport: '8080', filettl: '356D', DeduplicationEnabled: true, loglevel: 'debug', logfile: './x.log', minfreebytes: '100GB' } };
    assert.deepEqual(issuePaths(() => resolveConfig(go2, {})), ['server.filettl']);
    const { config, warnings } = resolveConfig({ ...go2, migration: { accept_unenforced: ['server.filettl'] } }, {});
    assert.match(warnings.find((w) => w.path === 'server.filettl')?.message ?? '', /not enforced .*Go 2\.x deleted published files after filettl \(356D\)/);
    assert.deepEqual([config.finalize.dedup, config.logging.level], [true, 'debug']);
    assert.ok(!warnings.some((w) => w.code === 'CONFIG_UNKNOWN_KEY'), JSON.stringify(warnings.filter((w) => w.code === 'CONFIG_UNKNOWN_KEY')));
    assert.doesNotThrow(() => resolveConfig({ server: { listen_address: '8080', filettl: '30d' } }, {}), 'Go 3.x: filettl without filettlenabled deleted nothing');
    assert.doesNotThrow(() => resolveConfig({ server: { listenport: '8080', filettl: '0' } }, {}));
  });

  it("the Go installer's [tls], [clamav] and [redis] spellings, which Go never read, point to this server's keys", () => {
    const { config, warnings } = resolveConfig(
      { server: { listen_address: '8080' }, tls: { enabled: true, cert_file: '/c.crt', key_file: '/k.key' }, clamav: { enabled: true, socket: '/run/clamd.ctl' }, redis: { host: 'localhost', port: 6379, password: 'pw' } },
      {},
    );
    assert.deepEqual([config.server.tls, config.scan.enabled, config.redis.url], [null, false, ''], 'as in Go: plain HTTP, no scan, no Redis');
    assert.ok(!warnings.some((w) => w.code === 'CONFIG_UNKNOWN_KEY'));
    assert.match(warnings.find((w) => w.path === 'tls.cert_file')?.message ?? '', /\[server\] tls_certificate and tls_key/);
    assert.match(warnings.find((w) => w.path === 'clamav.enabled')?.message ?? '', /\[scan\] enabled and clamd/);
    assert.ok(!JSON.stringify(warnings).includes('pw'), 'the password is never shown');
  });

  it('bind_ip alone: Go listened on port 8080 there', () => {
    assert.deepEqual(resolveConfig({ server: { bind_ip: '127.0.0.1' } }, {}).config.server.listen, { host: '127.0.0.1', port: 8080 });
  });

  it('Redis: mapped when enabled, its password never printed', () => {
    const { config, warnings } = resolveConfig({ redis: { redisenabled: true, redisaddr: 'r:6379', redispassword: 'p@ss', redisdbindex: 2 } }, {});
    assert.equal(config.redis.url, 'redis://:p%40ss@r:6379/2');
    const line = warnings.find((w) => w.code === 'CONFIG_LEGACY_KEY' && w.path.startsWith('redis'));
    assert.match(line?.message ?? '', /→ redis\.url = redis:\/\/:\(hidden\)@r:6379\/2/);
    assert.ok(!warnings.some((w) => w.message.includes('p@ss') || w.message.includes('p%40ss')));
  });

  it('Redis switched on as a quoted "true" is on, as Go read it', () => {
    assert.equal(resolveConfig({ redis: { redisenabled: 'true', redisaddr: 'r:6379' } }, {}).config.redis.url, 'redis://r:6379/0');
  });

  it('Redis: a quoted database index is the number, as Go read it; one that is no number names its key', () => {
    assert.equal(resolveConfig({ redis: { redisenabled: true, redisaddr: 'r:6379', redisdbindex: '3' } }, {}).config.redis.url, 'redis://r:6379/3');
    assert.deepEqual(issuePaths(() => resolveConfig({ redis: { redisenabled: true, redisaddr: 'r:6379', redisdbindex: 'three' } }, {})), ['redis.redisdbindex']);
    assert.deepEqual(issuePaths(() => resolveConfig({ redis: { redisenabled: true, redisaddr: 'r:6379', redisdbindex: -1 } }, {})), ['redis.redisdbindex']);
  });

  it('a Go size Go could not read, in a unit that reads two ways, is refused naming its key', () => {
    for (const size of ['1.5GB', '10G', '1TB', '100 MB']) {
      assert.deepEqual(issuePaths(() => resolveConfig({ server: { max_upload_size: size, listen_address: '8080' } }, {})), ['server.max_upload_size'], size);
      assert.deepEqual(issuePaths(() => resolveConfig({ uploads: { maxfilesize: size } }, {})), ['uploads.maxfilesize'], size);
      assert.deepEqual(issuePaths(() => resolveConfig({ clamav: { maxscansize: size } }, {})), ['clamav.maxscansize'], size);
    }
    // Byte counts and binary units mean one thing: read as written.
    assert.equal(resolveConfig({ server: { max_upload_size: '1.5GiB', listen_address: '8080' } }, {}).config.server.maxUploadBytes, 1.5 * 2 ** 30);
    assert.equal(resolveConfig({ uploads: { maxfilesize: '1048576' } }, {}).config.server.maxUploadBytes, MiB);
  });

  it("an error in a renamed key's value names the key as the file holds it", () => {
    assert.deepEqual(issuePaths(() => resolveConfig({ timeouts: { shutdown: '30' } }, {})), ['timeouts.shutdown (read as server.graceful_shutdown_timeout)']);
    assert.deepEqual(issuePaths(() => resolveConfig({ uploads: { allowedextensions: ['*.jpg'] } }, {})), ['uploads.allowedextensions.0 (read as uploads.allowed_extensions.0)']);
    assert.deepEqual(issuePaths(() => resolveConfig({ uploads: { maxfilesize: 0 } }, {})), ['uploads.maxfilesize (read as server.max_upload_size)']);
    assert.deepEqual(issuePaths(() => resolveConfig({ server: { max_upload_size: 0 } }, {})), ['server.max_upload_size'], "this server's own key as it is");
  });

  it('a key left in a Go section after its known keys were read is named, not only its section', () => {
    const { warnings } = resolveConfig({ clamav: { clamavenabled: false, scanfileextension: ['.exe'] }, deduplication: { enabled: true, algorithm: 'sha256' } }, {});
    assert.deepEqual(byCode(warnings, 'CONFIG_UNKNOWN_KEY').map((w) => w.path).sort(), ['clamav.scanfileextension', 'deduplication.algorithm']);
  });

  it('the flat pre-3.x secret is moved without being printed', () => {
    const { config, warnings } = resolveConfig({ Secret: 'flat-layout-secret-0123456789' } as RawConfig, {});
    assert.equal(config.security.secret, 'flat-layout-secret-0123456789');
    assert.ok(!warnings.some((w) => w.message.includes('flat-layout-secret')));
  });

  it('the flat pre-3.x restrictions are judged as their 3.x keys: the upload limit applies, what cannot be enforced is refused', () => {
    const flat = { ListenPort: ':8080', Secret: 'flat-layout-secret-0123456789', MaxUploadSize: 1000 } as RawConfig;
    assert.equal(resolveConfig(flat, {}).config.server.maxUploadBytes, 1000);
    assert.deepEqual(issuePaths(() => resolveConfig({ ...flat, UnixSocket: true, DeleteFiles: true, DeleteFilesAfterPeriod: '1y' } as RawConfig, {})).sort(), ['server.filettlenabled', 'server.unixsocket']);
    const accepted = resolveConfig({ ...flat, UnixSocket: true, migration: { accept_unenforced: ['server.unixsocket'] } } as RawConfig, {});
    assert.deepEqual(byCode(accepted.warnings, 'CONFIG_UNENFORCED').map((w) => w.path), ['server.unixsocket']);
  });

  it('a single grace key maps as is; a bad one names its key', () => {
    assert.equal(resolveConfig({ security: { token_grace_period: '15m' } }, {}).config.security.expiryGraceMs, 900_000);
    assert.deepEqual(issuePaths(() => resolveConfig({ security: { mobile_grace_period: 'soon' } }, {})), ['security.mobile_grace_period']);
  });
});

describe('Go 3.x restrictions this server cannot enforce', () => {
  const refused: [name: string, raw: RawConfig, path: string][] = [
    ['file TTL', { server: { filettlenabled: true, filettl: '168h' } }, 'server.filettlenabled'],
    ['Unix socket', { server: { unixsocket: true } }, 'server.unixsocket'],
    ['HMAC file naming', { server: { file_naming: 'HMAC' } }, 'server.file_naming'],
    ['magic-byte checks', { validation: { check_magic_bytes: true } }, 'validation.check_magic_bytes'],
    ['blocked MIME types', { validation: { blocked_types: ['text/html'] } }, 'validation.blocked_types'],
    ['quotas', { quotas: { enabled: true, default: '1GB' } }, 'quotas.enabled'],
    ['rate limits', { rate_limit: { enabled: true } }, 'rate_limit.enabled'],
    ['audit log', { audit: { enabled: true } }, 'audit.enabled'],
    ['key rotation', { key_rotation: { enabled: true } }, 'key_rotation.enabled'],
    ['ISO container', { iso: { enabled: true } }, 'iso.enabled'],
    ['file TTL switched on as a quoted "true" (Go read it as on)', { server: { filettlenabled: 'true' } }, 'server.filettlenabled'],
    ['Unix socket as "TRUE"', { server: { unixsocket: 'TRUE' } }, 'server.unixsocket'],
    ['quotas as 1', { quotas: { enabled: 1 } }, 'quotas.enabled'],
    ['file TTL as 2 (Go: any non-zero number is true)', { server: { filettlenabled: 2 } }, 'server.filettlenabled'],
    ['Unix socket as "yes" (Go could not read it and did not start): refused, never read as off', { server: { unixsocket: 'yes' } }, 'server.unixsocket'],
  ];
  for (const [name, raw, path] of refused) {
    it(`${name}: refused naming ${path}, accepted when listed in [migration]`, () => {
      assert.deepEqual(issuePaths(() => resolveConfig(raw, {})), [path]);
      const { warnings } = resolveConfig({ ...raw, migration: { accept_unenforced: [path] } }, {});
      assert.deepEqual(byCode(warnings, 'CONFIG_UNENFORCED').map((w) => w.path), [path]);
    });
  }

  it('the same keys switched off change nothing', () => {
    const { warnings } = resolveConfig({ server: { filettlenabled: 0, unixsocket: 'false', unix_socket: 'F', file_naming: 'original' }, iso: { enabled: false } }, {});
    assert.deepEqual(byCode(warnings, 'CONFIG_UNKNOWN_KEY'), []);
    assert.deepEqual(byCode(warnings, 'CONFIG_UNENFORCED'), []);
  });

  it('every refused key is named at once, with how to accept it', () => {
    try {
      resolveConfig({ server: { filettlenabled: true, unixsocket: true } }, {});
      assert.fail('expected a ConfigError');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(err.issues.map((i) => i.path).sort(), ['server.filettlenabled', 'server.unixsocket']);
      for (const i of err.issues) assert.match(i.message, /\[migration\] accept_unenforced/);
    }
  });

  it('accepting a key the config does not set is a warning', () => {
    const { warnings } = resolveConfig({ migration: { accept_unenforced: ['server.filettlenabled'] } }, {});
    assert.deepEqual(warnings.map((w) => w.path), ['migration.accept_unenforced']);
  });
});
