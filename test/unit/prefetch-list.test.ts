import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { isCacherError } from '../../src/errors.ts';
import type { LockedCrate } from '../../src/registry/lockfile.ts';
import { parseLockfile } from '../../src/registry/lockfile.ts';
import { parsePrefetchInput, parsePrefetchList } from '../../src/registry/prefetch-list.ts';

function fixture(name: string): string {
  return readFileSync(new URL(`fixtures/${name}`, import.meta.url), 'utf8');
}

const LISTS: [string, string, LockedCrate[]][] = [
  ['reads one name=version line', 'serde=1.0.219', [{ name: 'serde', version: '1.0.219' }]],
  [
    'reads several lines in order',
    'serde=1.0.219\ncc=1.0.83\n',
    [
      { name: 'serde', version: '1.0.219' },
      { name: 'cc', version: '1.0.83' },
    ],
  ],
  [
    'tolerates spaces around = and around the line',
    '  serde = 1.0.219  \n\tcc\t=\t1.0.83',
    [
      { name: 'serde', version: '1.0.219' },
      { name: 'cc', version: '1.0.83' },
    ],
  ],
  [
    'skips blank lines and whole-line comments',
    '# crates for the CI image\n\n   \nserde=1.0.219\n  # indented comment\n',
    [{ name: 'serde', version: '1.0.219' }],
  ],
  [
    'drops trailing comments',
    'serde=1.0.219 # pinned for MSRV\ncc=1.0.83#no space',
    [
      { name: 'serde', version: '1.0.219' },
      { name: 'cc', version: '1.0.83' },
    ],
  ],
  [
    'keeps build metadata in a version',
    'bzip2-sys=0.1.13+1.0.8',
    [{ name: 'bzip2-sys', version: '0.1.13+1.0.8' }],
  ],
  ['keeps the case of a name', 'Inflector=0.11.4', [{ name: 'Inflector', version: '0.11.4' }]],
  [
    'reads CRLF line endings',
    'serde=1.0.219\r\ncc=1.0.83\r\n',
    [
      { name: 'serde', version: '1.0.219' },
      { name: 'cc', version: '1.0.83' },
    ],
  ],
  [
    'lists a repeated crate once, ignoring the case of its name',
    'serde=1.0.219\nSerde=1.0.219\nserde=1.0.218',
    [
      { name: 'serde', version: '1.0.219' },
      { name: 'serde', version: '1.0.218' },
    ],
  ],
  ['returns nothing for an empty list', '', []],
  ['returns nothing for a list of comments', '# nothing yet\n', []],
];

const INVALID_LISTS: [string, string, RegExp][] = [
  ['a line without =', 'serde=1.0.0\nserde 1.0.0', /line 2: expected "name=version"/],
  ['an invalid crate name', '\n\n../x=1.0.0', /line 3: invalid crate name "\.\.\/x"/],
  ['an empty name', '=1.0.0', /line 1: invalid crate name ""/],
  ['an empty version', 'serde=', /line 1: invalid version ""/],
  ['a version requirement', 'serde=^1.0', /line 1: invalid version "\^1\.0"/],
  ['a quoted version', 'serde = "1.0.0"', /line 1: invalid version "\\"1\.0\.0\\""/],
  ['a second =', 'serde=1.0.0=2', /line 1: invalid version "1\.0\.0=2"/],
];

describe('parsePrefetchList', () => {
  for (const [behaviour, text, expected] of LISTS) {
    test(behaviour, () => {
      assert.deepEqual(parsePrefetchList(text), expected);
    });
  }

  for (const [what, text, message] of INVALID_LISTS) {
    test(`rejects ${what} with CARGO_CACHER_BAD_REQUEST naming the line`, () => {
      assert.throws(
        () => parsePrefetchList(text),
        (err: unknown) =>
          isCacherError(err, 'CARGO_CACHER_BAD_REQUEST') && message.test(err.message),
      );
    });
  }
});

describe('parsePrefetchInput on lockfiles', () => {
  for (const version of [1, 2, 3, 4] as const) {
    test(`recognises a V${version} Cargo.lock by its content`, () => {
      const text = fixture(`Cargo.v${version}.lock`);
      const { registry, skipped } = parseLockfile(text);
      assert.deepEqual(parsePrefetchInput(text), {
        format: `lockfile-v${version}`,
        registry,
        skipped,
      });
    });
  }

  test('recognises a Cargo.lock without its header comment', () => {
    const text = fixture('Cargo.v4.lock').replace(/^#.*\n#.*\n/, '');
    assert.equal(parsePrefetchInput(text).format, 'lockfile-v4');
  });

  test('recognises a legacy lockfile that starts with [root]', () => {
    const text = '[root]\nname = "app"\nversion = "0.1.0"\n';
    assert.match(parsePrefetchInput(text).format, /^lockfile-v[12]$/);
  });

  test('recognises a lockfile with a version line and no packages', () => {
    assert.deepEqual(parsePrefetchInput('version = 4\n'), {
      format: 'lockfile-v4',
      registry: [],
      skipped: [],
    });
  });
});

describe('parsePrefetchInput on lists', () => {
  test('reads anything else as a name=version list', () => {
    assert.deepEqual(parsePrefetchInput('# mirror these\nserde = 1.0.219\nversion = 1.0.0\n'), {
      format: 'list',
      registry: [
        { name: 'serde', version: '1.0.219' },
        { name: 'version', version: '1.0.0' },
      ],
      skipped: [],
    });
  });

  test('reports a broken lockfile as a lockfile error, not as a list error', () => {
    assert.throws(
      () => parsePrefetchInput('[[package]]\nname = "serde"\n'),
      (err: unknown) =>
        isCacherError(err, 'CARGO_CACHER_BAD_REQUEST') && /Cargo\.lock/.test(err.message),
    );
  });
});
