import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildConfig } from '../../src/config.ts';
import { clientKeyOf } from '../../src/server/client-address.ts';
import { connectionCapFor, resolveClientLimits } from '../../src/server/connection-guard.ts';
import { hasOneHost } from '../../src/server/refusal.ts';

describe('client limits', () => {
  test('IPv4 addresses count one by one; IPv6 ones by their /64', () => {
    assert.equal(clientKeyOf('127.0.0.2'), '127.0.0.2');
    assert.equal(clientKeyOf('::ffff:10.1.2.3'), '10.1.2.3');
    assert.equal(clientKeyOf('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.equal(clientKeyOf('2001:db8:1:2:bbbb:cccc:dddd:eeee'), '2001:db8:1:2::/64');
    assert.notEqual(clientKeyOf('2001:db8:1:3::1'), clientKeyOf('2001:db8:1:2::1'));
    assert.equal(clientKeyOf('::1'), '0:0:0:0::/64');
    assert.equal(clientKeyOf(undefined), 'unknown');
  });

  test('the total cap leaves descriptors for storage, upstreams, git and SQLite', () => {
    assert.equal(connectionCapFor(512), 192);
    assert.equal(connectionCapFor(1024), 384);
    assert.equal(connectionCapFor(65_536), 32_640);
    assert.equal(connectionCapFor(40), 16, 'never below 16');
    assert.equal(resolveClientLimits(buildConfig().clientLimits, 512).maxConnections, 192);
    const given = buildConfig({ clientLimits: { maxConnections: 50 } }).clientLimits;
    assert.equal(resolveClientLimits(given, 512).maxConnections, 50, 'a flag wins');
  });

  test('defaults are documented values, and bad ones are refused in one line', () => {
    const limits = buildConfig().clientLimits;
    assert.deepEqual(limits, {
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      idleTimeoutMs: 5_000,
      sendTimeoutMs: 30_000,
      maxConnections: undefined,
      maxConnectionsPerIp: 256,
    });
    assert.throws(
      () => buildConfig({ clientLimits: { headersTimeoutMs: 60_000 } }),
      /--client-header-timeout must not be longer than --client-body-timeout/,
    );
    assert.throws(() => buildConfig({ clientLimits: { maxConnectionsPerIp: 0 } }), /per-ip/);
  });

  test('one Host header passes; two are refused, whatever their case', () => {
    assert.equal(hasOneHost(['Host', 'a', 'Accept', '*/*']), true);
    assert.equal(hasOneHost(['Accept', '*/*']), true);
    assert.equal(hasOneHost(['Host', 'a', 'hOsT', 'b']), false);
  });
});
