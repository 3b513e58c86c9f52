/** `[redis] url` forms and the cluster keys: parsing, validation messages, paths of per-instance state. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, isClusterMode, ownSubdir, parseRedisUrl, redactRedisUrl, resolveConfig, stateDirOf } from '../../src/config/index.js';

describe('parseRedisUrl', () => {
  const cases: Array<[string, ReturnType<typeof parseRedisUrl>]> = [
    ['redis://127.0.0.1:6379/2', { kind: 'standalone', url: 'redis://127.0.0.1:6379/2', tls: false }],
    ['rediss://:s3cret@cache.example:6380', { kind: 'standalone', url: 'rediss://:s3cret@cache.example:6380', tls: true, password: 's3cret' }],
    ['redis://app:pw@h', { kind: 'standalone', url: 'redis://app:pw@h', tls: false, username: 'app', password: 'pw' }],
    [
      'redis+sentinel://:pw@s1:26379,s2,[::1]:26380/mymaster/3',
      { kind: 'sentinel', sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26379 }, { host: '::1', port: 26380 }], masterName: 'mymaster', db: 3, tls: false, password: 'pw' },
    ],
    ['redis+cluster://n1:7000,n2:7001', { kind: 'cluster', nodes: [{ host: 'n1', port: 7000 }, { host: 'n2', port: 7001 }], tls: false }],
    ['rediss+cluster://n1', { kind: 'cluster', nodes: [{ host: 'n1', port: 6379 }], tls: true }],
  ];
  for (const [url, want] of cases) it(url, () => assert.deepEqual(parseRedisUrl(url), want));

  const bad: Array<[string, RegExp]> = [
    ['http://h:6379', /must be a redis:\/\/, rediss:\/\/, redis\+sentinel:\/\/ or redis\+cluster:\/\/ URL/],
    ['redis://a,b', /names one host/],
    ['redis://h/0/1', /database number only/],
    ['redis://h/x', /database "x"/],
    ['redis+sentinel://s1:26379', /needs the master name/],
    ['redis+cluster://n1/0', /has no path/],
    ['redis://h:99999', /out of range/],
    ['redis://', /names no host/],
    ['redis://h:6379/0?family=6', /takes no query string or fragment/],
    ['redis+sentinel://s1:26379/mymaster#x', /takes no query string or fragment/],
  ];
  for (const [url, message] of bad) it(`refuses ${url}`, () => assert.throws(() => parseRedisUrl(url), message));

  for (const url of ['redis://:Pq7s/XyZw9k@redis.internal:6379/0', 'redis://default:k9+Qz/Lm0pW@redis internal:6379', 'redis+sentinel://:Ab3/Cd4@s1:26379/mymaster']) {
    it(`refuses a password with a raw '/' without echoing any of it: ${url}`, () => {
      assert.throws(() => parseRedisUrl(url), (err: Error) => /percent-encoded/.test(err.message) && !/Pq7s|XyZw|k9|Lm0p|Ab3|Cd4/.test(err.message));
    });
  }
  it('a percent-encoded password with a / is accepted', () => assert.equal((parseRedisUrl('redis://:Pq7s%2FXyZw9k@h:6379/0') as { password?: string }).password, 'Pq7s/XyZw9k'));

  it('redacts passwords for logs', () => {
    assert.equal(redactRedisUrl('redis://app:pw@h:1/0'), 'redis://app:***@h:1/0');
    assert.equal(redactRedisUrl('redis://pw@h'), 'redis://***@h');
    assert.equal(redactRedisUrl('redis://h'), 'redis://h');
  });
});

describe('cluster keys', () => {
  it('defaults: single-node, state in the data directory; redis keys have defaults', () => {
    const { config } = resolveConfig({}, {});
    assert.equal(isClusterMode(config), false);
    assert.equal(stateDirOf(config), './data');
    assert.equal(ownSubdir(config, 'data/incoming'), 'data/incoming');
    assert.deepEqual(
      { ...config.redis, url: undefined },
      { url: undefined, keyPrefix: 'hfs:', lockTtlMs: 10_000, commandTimeoutMs: 2_000, healthCheckIntervalMs: 1_000 },
    );
    assert.ok(config.cluster.instanceId.length > 0, 'the host name by default');
  });

  it('HFS_REDIS_URL switches cluster mode on; per-instance state under <data_dir>/instances/<id>', () => {
    const { config, warnings } = resolveConfig({ cluster: { instance_id: 'node-a' }, security: { secret: 'x'.repeat(32) } }, { HFS_REDIS_URL: 'redis://127.0.0.1:6379/0', HFS_DATA_DIR: '/srv/hfs' });
    assert.equal(isClusterMode(config), true);
    assert.equal(stateDirOf(config), '/srv/hfs/instances/node-a');
    assert.equal(ownSubdir(config, '/srv/hfs/incoming'), '/srv/hfs/incoming/node-a');
    assert.deepEqual(warnings, []);
  });

  it('an explicit instance_dir (e.g. a local disk) is used as is', () => {
    const { config } = resolveConfig({ redis: { url: 'redis://h' }, cluster: { instance_id: 'b', instance_dir: '/var/lib/hfs-local' } }, {});
    assert.equal(stateDirOf(config), '/var/lib/hfs-local');
  });

  it('bad values fail with the key path and the reason', () => {
    const issues = (raw: Record<string, unknown>, env = {}) => {
      try {
        resolveConfig(raw, env);
        return [];
      } catch (err) {
        assert.ok(err instanceof ConfigError);
        return err.issues.map((i) => `${i.path}: ${i.message}`);
      }
    };
    assert.match(issues({}, { HFS_REDIS_URL: 'localhost:6379' })[0]!, /^redis\.url \(from HFS_REDIS_URL\): must be a redis:\/\//);
    assert.match(issues({ redis: { key_prefix: 'a{b}' } })[0]!, /^redis\.key_prefix: /);
    assert.match(issues({ cluster: { instance_id: 'a/b' } })[0]!, /^cluster\.instance_id: /);
    assert.match(issues({ redis: { lock_ttl: '10' } })[0]!, /^redis\.lock_ttl: /);
  });

  it('warns about keys whose single-node meaning does not carry over', () => {
    const { warnings } = resolveConfig({ redis: { url: 'redis://h' }, queue_resilience: { queue_recovery_enabled: false, persistent_queue: false } }, {});
    assert.deepEqual(warnings.map((w) => w.path).sort(), ['queue_resilience.persistent_queue', 'queue_resilience.queue_recovery_enabled', 'security.secret']);
  });
});
