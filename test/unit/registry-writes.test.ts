import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { needsAdmin } from '../../src/server/auth.ts';
import { writeRefusal } from '../../src/server/routes/registry-api.ts';

describe('writeRefusal', () => {
  const cases: [string, RegExp, string][] = [
    ['/api/v1/crates/new', /publish to the upstream registry/, 'GET, HEAD'],
    ['/api/v1/crates/serde/1.0.0/yank', /yank on the upstream registry/, ''],
    ['/api/v1/crates/serde/1.0.0/unyank', /yank on the upstream registry/, ''],
    ['/api/v1/crates/serde/owners', /change owners on the upstream registry/, 'GET, HEAD'],
    ['/api/v1/crates/serde/owners?x=1', /change owners/, 'GET, HEAD'],
    ['/api/v1/crates', /takes no writes/, 'GET, HEAD'],
    ['/api/v1/crates/serde/1.0.0/download', /takes no writes/, 'GET, HEAD'],
    ['/api/v1/crates/a/b/c/d', /takes no writes/, ''],
    ['/api/v1/me/tokens', /takes no writes/, 'GET, HEAD'],
  ];
  for (const [url, where, allow] of cases) {
    test(`${url}: one line saying where the write belongs, Allow "${allow}"`, () => {
      const refusal = writeRefusal(url);
      assert.match(refusal.detail, /^cargo-cacher is a cache, not a registry: /);
      assert.match(refusal.detail, where);
      assert.doesNotMatch(refusal.detail, /\n/);
      assert.equal(refusal.allow, allow);
    });
  }
});

describe('needsAdmin for the registry API', () => {
  const cases: [string, string, boolean][] = [
    ['PUT', '/api/v1/crates/new', false],
    ['DELETE', '/api/v1/crates/serde/1.0.0/yank', false],
    ['PUT', '/api/v1/crates/serde/owners', false],
    ['POST', '/api/v1/crates?x=1', false],
    ['GET', '/api/v1/crates?q=serde', false],
    ['POST', '/api/v1/prefetch', true],
    ['POST', '/api/v1/crates/../prefetch', true],
    ['POST', '/api/v1/crates/%2e%2e/prefetch', true],
    ['POST', '/api/v1/cratesx', true],
  ];
  for (const [method, url, admin] of cases) {
    test(`${method} ${url} ${admin ? 'needs' : 'does not need'} an admin token`, () => {
      assert.equal(needsAdmin(method, url), admin);
    });
  }
});
