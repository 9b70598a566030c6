import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  DOWNLOAD_ROUTE_BASE,
  parseRegistryConfig,
  rewriteRegistryConfig,
} from '../../src/registry/registry-config.ts';

const CRATES_IO = '{"dl":"https://static.crates.io/crates","api":"https://crates.io"}';
const PROXY = 'https://mirror.example';
const PROXY_DL = `${PROXY}${DOWNLOAD_ROUTE_BASE}`;

describe('parseRegistryConfig', () => {
  test("reads crates.io's config.json", () => {
    assert.deepEqual(parseRegistryConfig(CRATES_IO), {
      dl: 'https://static.crates.io/crates',
      api: 'https://crates.io',
    });
  });

  test('reads a Buffer the same as a string', () => {
    assert.deepEqual(parseRegistryConfig(Buffer.from(CRATES_IO)), parseRegistryConfig(CRATES_IO));
  });

  test('keeps auth-required and keys it does not know', () => {
    const config = parseRegistryConfig('{"dl":"https://x/dl","auth-required":true,"extra":[1]}');
    assert.equal(config['auth-required'], true);
    assert.deepEqual(config.extra, [1]);
  });

  const rejected: [string, string, RegExp | ErrorConstructor][] = [
    ['text that is not JSON', '{"dl":', SyntaxError],
    ['a JSON array', '["https://x/dl"]', /not a JSON object/],
    ['JSON null', 'null', /not a JSON object/],
    ['a JSON string', '"https://x/dl"', /not a JSON object/],
    ['an object without dl', '{"api":"https://x"}', /no "dl" string/],
    ['an empty dl', '{"dl":""}', /no "dl" string/],
    ['a dl that is not a string', '{"dl":42}', /no "dl" string/],
  ];
  for (const [what, body, expected] of rejected) {
    test(`rejects ${what}`, () => {
      assert.throws(() => parseRegistryConfig(body), expected);
    });
  }
});

describe('rewriteRegistryConfig', () => {
  test('points dl and api at the proxy', () => {
    const rewritten = rewriteRegistryConfig(parseRegistryConfig(CRATES_IO), PROXY);
    assert.deepEqual(rewritten, { dl: PROXY_DL, api: PROXY });
  });

  test('keeps every other key and the key order', () => {
    const body = (dl: string, api: string) =>
      `{"api":"${api}","dl":"${dl}","auth-required":false,"x":{"y":1}}`;
    const upstream = parseRegistryConfig(body('https://static.crates.io/crates', 'https://x'));
    assert.equal(JSON.stringify(rewriteRegistryConfig(upstream, PROXY)), body(PROXY_DL, PROXY));
  });

  test('adds no api when upstream has none (or an empty one)', () => {
    for (const upstream of ['{"dl":"https://x/dl"}', '{"dl":"https://x/dl","api":""}']) {
      const rewritten = rewriteRegistryConfig(parseRegistryConfig(upstream), PROXY);
      assert.equal(rewritten.dl, PROXY_DL);
      assert.ok(!rewritten.api, upstream);
    }
  });

  test('leaves the upstream config untouched', () => {
    const upstream = parseRegistryConfig(CRATES_IO);
    rewriteRegistryConfig(upstream, PROXY);
    assert.equal(upstream.dl, 'https://static.crates.io/crates');
    assert.equal(upstream.api, 'https://crates.io');
  });

  test('serves downloads below /api/v1/crates', () => {
    assert.equal(DOWNLOAD_ROUTE_BASE, '/api/v1/crates');
  });
});
