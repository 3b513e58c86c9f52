import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PerClientCount } from '../../src/transfer/index.js';

describe('PerClientCount (max_connections_per_client, max_bodies_per_client)', () => {
  it('counts per address up to the cap; a refused connection is not counted', () => {
    const c = new PerClientCount(2, 64);
    const a1 = c.enter('192.0.2.1');
    const a2 = c.enter('192.0.2.1');
    assert.ok(a1 && a2);
    assert.equal(c.enter('192.0.2.1'), null);
    assert.ok(c.enter('192.0.2.2'), 'another address has its own count');
    a1();
    assert.ok(c.enter('192.0.2.1'), 'a closed connection frees its place');
    assert.equal(c.enter('192.0.2.1'), null);
  });

  it('leaving twice frees one place only; an idle client is forgotten', () => {
    const c = new PerClientCount(1, 64);
    const leave = c.enter('192.0.2.1')!;
    const other = c.enter('192.0.2.9')!;
    leave();
    leave();
    assert.equal(c.clients, 1);
    assert.ok(c.enter('192.0.2.1'));
    assert.equal(c.enter('192.0.2.1'), null);
    other();
    assert.equal(c.clients, 1);
  });

  it('an IPv6 client counts by its prefix; an IPv4-mapped address as its IPv4 address', () => {
    const c = new PerClientCount(1, 64);
    assert.ok(c.enter('2001:db8:1:2::1'));
    assert.equal(c.enter('2001:db8:1:2::ffff'), null, 'same /64');
    assert.ok(c.enter('2001:db8:1:3::1'), 'another /64');
    assert.ok(c.enter('192.0.2.7'));
    assert.equal(c.enter('::ffff:192.0.2.7'), null);
    const exact = new PerClientCount(1, 128);
    assert.ok(exact.enter('2001:db8::1'));
    assert.ok(exact.enter('2001:db8::2'), 'prefix 128: the exact address');
  });
});
