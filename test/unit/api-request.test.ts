import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isCacherError } from '../../src/errors.ts';
import {
  type ApiRequest,
  cacheKeyOf,
  parseMetadata,
  parseSearch,
  type SearchParams,
  storageKeyOf,
  upstreamPathOf,
} from '../../src/registry/api-request.ts';
import { isSafeKey } from '../../src/storage/blob-store.ts';

function assertBadRequest(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err) => {
    assert.ok(isCacherError(err, 'CARGO_CACHER_BAD_REQUEST'), String(err));
    assert.equal(err.statusCode, 400);
    assert.match(err.message, message);
    return true;
  });
}

describe('parseSearch', () => {
  const normalised: [string, SearchParams, { query: string; perPage: number; page: number }][] = [
    [
      "cargo's own request",
      { q: 'serde', per_page: '10' },
      { query: 'serde', perPage: 10, page: 1 },
    ],
    [
      'no per_page (crates.io default 10)',
      { q: 'serde' },
      { query: 'serde', perPage: 10, page: 1 },
    ],
    ['case and spacing', { q: '  Serde   JSON ' }, { query: 'serde json', perPage: 10, page: 1 }],
    ['no q at all', {}, { query: '', perPage: 10, page: 1 }],
    ['the largest page size', { q: 'x', per_page: '100' }, { query: 'x', perPage: 100, page: 1 }],
    ['a page', { q: 'x', page: '3' }, { query: 'x', perPage: 10, page: 3 }],
    [
      'other parameters ignored',
      { q: 'x', sort: 'downloads' },
      { query: 'x', perPage: 10, page: 1 },
    ],
  ];
  for (const [what, params, expected] of normalised) {
    test(`reads ${what}`, () => {
      assert.deepEqual(parseSearch(params), { kind: 'search', ...expected });
    });
  }

  const refused: [string, SearchParams, RegExp][] = [
    ['per_page 0', { q: 'x', per_page: '0' }, /per_page must be a whole number from 1 to 100/],
    ['per_page 101', { q: 'x', per_page: '101' }, /per_page/],
    ['per_page that is not a number', { q: 'x', per_page: '10abc' }, /per_page/],
    ['a negative page', { q: 'x', page: '-1' }, /page must be/],
    ['a repeated q', { q: ['a', 'b'] }, /q is given more than once/],
    ['a very long q', { q: 'x'.repeat(201) }, /q is longer than 200/],
  ];
  for (const [what, params, message] of refused) {
    test(`refuses ${what} with 400`, () => {
      assertBadRequest(() => parseSearch(params), message);
    });
  }
});

describe('parseMetadata', () => {
  test('reads the three crate-level reads and a version', () => {
    assert.deepEqual(parseMetadata('Serde', 'crate'), { kind: 'crate', name: 'Serde' });
    assert.deepEqual(parseMetadata('serde', 'versions'), { kind: 'versions', name: 'serde' });
    assert.deepEqual(parseMetadata('serde', 'owners'), { kind: 'owners', name: 'serde' });
    assert.deepEqual(parseMetadata('plus', { version: '1.0.0+build.5' }), {
      kind: 'version',
      name: 'plus',
      version: '1.0.0+build.5',
    });
  });

  for (const name of ['', '../etc', 'a/b', 'naïve', '1abc', 'x'.repeat(65), 'a b', 'a%2Fb']) {
    test(`refuses the name ${JSON.stringify(name)} with 400`, () => {
      assertBadRequest(() => parseMetadata(name, 'crate'), /invalid crate name/);
    });
  }

  for (const version of ['1.0', 'latest', '../1.0.0', '1.0.0/download', '1.0.0?x=1']) {
    test(`refuses the version ${JSON.stringify(version)} with 400`, () => {
      assertBadRequest(() => parseMetadata('serde', { version }), /invalid version/);
    });
  }
});

describe('keys and upstream paths', () => {
  const cases: [ApiRequest, string, string | undefined, string][] = [
    [
      parseSearch({ q: 'Serde JSON', per_page: '5' }),
      'search?q=serde+json&per_page=5',
      undefined,
      '/api/v1/crates?q=serde+json&per_page=5',
    ],
    [
      parseSearch({ q: 'a&b=c', page: '2' }),
      'search?q=a%26b%3Dc&per_page=10&page=2',
      undefined,
      '/api/v1/crates?q=a%26b%3Dc&per_page=10&page=2',
    ],
    [
      parseMetadata('Serde', 'crate'),
      'crate/serde',
      'api/crates/serde/crate.json',
      '/api/v1/crates/Serde',
    ],
    [
      parseMetadata('serde', 'versions'),
      'versions/serde',
      'api/crates/serde/versions.json',
      '/api/v1/crates/serde/versions',
    ],
    [
      parseMetadata('serde', 'owners'),
      'owners/serde',
      'api/crates/serde/owners.json',
      '/api/v1/crates/serde/owners',
    ],
    [
      parseMetadata('plus', { version: '1.0.0+build.5' }),
      'version/plus/1.0.0+build.5',
      'api/crates/plus/versions/1.0.0+build.5.json',
      '/api/v1/crates/plus/1.0.0%2Bbuild.5',
    ],
  ];
  for (const [request, cacheKey, storageKey, path] of cases) {
    test(`${cacheKey}: cache key, storage key and upstream path`, () => {
      assert.equal(cacheKeyOf(request), cacheKey);
      assert.equal(storageKeyOf(request), storageKey);
      assert.equal(upstreamPathOf(request), path);
      if (storageKey !== undefined) assert.ok(isSafeKey(storageKey), storageKey);
    });
  }

  test('one normalised search is one cache key however it is typed', () => {
    const keys = [
      { q: 'serde json', per_page: '10' },
      { q: ' SERDE  json' },
      { q: 'Serde\tJson', per_page: '10', sort: 'alpha' },
    ].map((params) => cacheKeyOf(parseSearch(params)));
    assert.equal(new Set(keys).size, 1);
  });
});
