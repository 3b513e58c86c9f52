import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clientKeyOf } from '../../src/transfer/client-key.js';
import { ClientLimits } from '../../src/transfer/index.js';

describe('clientKeyOf: the key per-client caps count under', () => {
  it('keeps IPv4 addresses and other strings as they are', () => {
    assert.equal(clientKeyOf('198.51.100.7', 64), '198.51.100.7');
    assert.equal(clientKeyOf('unknown', 64), 'unknown');
  });

  it('counts an IPv6 address by its /64, whatever its spelling', () => {
    const key = '2001:db8:1:2::/64';
    for (const a of ['2001:db8:1:2::1', '2001:0DB8:0001:0002:aaaa:bbbb:cccc:dddd', '2001:db8:1:2:ffff:ffff:ffff:ffff']) assert.equal(clientKeyOf(a, 64), key, a);
    assert.notEqual(clientKeyOf('2001:db8:1:3::1', 64), key, 'the next /64 is another client');
    assert.equal(clientKeyOf('::1', 64), '0:0:0:0::/64');
  });

  it('masks to any prefix length; 128 is the exact address', () => {
    assert.equal(clientKeyOf('2001:db8:abcd:12ff::1', 56), '2001:db8:abcd:1200::/56');
    assert.equal(clientKeyOf('2001:db8:abcd:12ff::1', 48), '2001:db8:abcd::/48');
    assert.equal(clientKeyOf('2001:db8::1', 128), '2001:db8:0:0:0:0:0:1');
    assert.notEqual(clientKeyOf('2001:db8::1', 128), clientKeyOf('2001:db8::2', 128));
  });

  it('an IPv4-mapped address (dual-stack socket) is its IPv4 address', () => {
    assert.equal(clientKeyOf('::ffff:198.51.100.7', 64), '198.51.100.7');
    assert.equal(clientKeyOf('::FFFF:c633:6407', 64), '198.51.100.7');
  });

  it('an address with a zone id is kept exact', () => {
    assert.equal(clientKeyOf('fe80::1%eth0', 64), 'fe80::1%eth0');
  });
});

describe('ClientLimits by IPv6 prefix', () => {
  it('bodies and starts of addresses in one /64 count together, another /64 is another client', () => {
    const limits = new ClientLimits({ maxBodies: 2, creationsPerMinute: 2 });
    assert.ok(limits.enterBody('2001:db8::1'));
    assert.ok(limits.enterBody('2001:db8::2'));
    assert.equal(limits.enterBody('2001:db8::3'), null, 'a third address of the same /64');
    assert.ok(limits.enterBody('2001:db8:0:1::1'));
    assert.ok(limits.allowCreation('2001:db8::a', 0).ok);
    assert.ok(limits.allowCreation('2001:db8::b', 0).ok);
    assert.equal(limits.allowCreation('2001:db8::c', 0).ok, false);
  });

  it('ipv6PrefixBits = 128 counts every address alone', () => {
    const limits = new ClientLimits({ maxBodies: 1, creationsPerMinute: 0, ipv6PrefixBits: 128 });
    assert.ok(limits.enterBody('2001:db8::1'));
    assert.ok(limits.enterBody('2001:db8::2'));
  });
});
