/** [server] tls_certificate / tls_key: both or neither, read into one `tls` value. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, resolveConfig } from '../../src/config/index.js';

describe('[server] TLS keys', () => {
  it('default: no TLS', () => assert.equal(resolveConfig({}, {}).config.server.tls, null));

  it('both set: the two files', () =>
    assert.deepEqual(resolveConfig({ server: { tls_certificate: '/etc/hfs/cert.pem', tls_key: '/etc/hfs/key.pem' } }, {}).config.server.tls, {
      certificateFile: '/etc/hfs/cert.pem',
      keyFile: '/etc/hfs/key.pem',
    }));

  for (const server of [{ tls_certificate: '/etc/hfs/cert.pem' }, { tls_key: '/etc/hfs/key.pem' }]) {
    it(`only ${Object.keys(server)[0]}: refused naming server.tls_key`, () =>
      assert.throws(
        () => resolveConfig({ server }, {}),
        (err: unknown) => err instanceof ConfigError && err.issues.some((i) => i.path === 'server.tls_key' && /set together/.test(i.message)),
      ));
  }
});
