import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { isCacherError } from '../../src/errors.ts';
import type { LockedCrate, SkippedPackage } from '../../src/registry/lockfile.ts';
import { parseLockfile } from '../../src/registry/lockfile.ts';

function fixture(name: string): string {
  return readFileSync(new URL(`fixtures/${name}`, import.meta.url), 'utf8');
}

const BZ = '0e7e28dc03e805e7bfc3abe492b53bccd223b1563699526b05ab05d9a0a6b977';
const CC = '355b1bbfc96725cdce8f4a2708fda310a80e6d13315aec4e5eed2a75fe8032ce';
const PK = 'd43373514e2748955ef38438fa1f8e0dab50abe4b9ba218e1714db3aac04cf1b';
const SE = '8b917c4b6163bc82ef4aff025c6f5f4d54205232c4595f39b7b43008256a6cb7';
const SD = 'f84ba28fa88c8cce1c643e86230df2b68ce7cebe198f2c765757efd8a37a8ddd';
const CRATES_IO = 'registry+https://github.com/rust-lang/crates.io-index';

const COMMON_REGISTRY: LockedCrate[] = [
  { name: 'bzip2-sys', version: '0.1.13+1.0.8', checksum: BZ },
  { name: 'cc', version: '1.0.83', checksum: CC },
  { name: 'pkg-config', version: '0.3.30', checksum: PK },
];
const APP: SkippedPackage = { name: 'app', version: '0.1.0', kind: 'path' };
const DEP1: SkippedPackage = { name: 'dep1', version: '0.5.0', kind: 'git' };
const LOCAL: SkippedPackage = { name: 'local-util', version: '0.1.0', kind: 'path' };
const OTHER: SkippedPackage = { name: 'other-reg-crate', version: '2.0.0', kind: 'other-registry' };

const FORMATS: [string, string, 1 | 2 | 3 | 4, LockedCrate[], SkippedPackage[]][] = [
  [
    'reads a V1 lockfile, taking checksums from [metadata] and <none> as no checksum',
    'Cargo.v1.lock',
    1,
    [...COMMON_REGISTRY, { name: 'serde', version: '1.0.219' }],
    [APP, DEP1, LOCAL],
  ],
  [
    'reads a V2 lockfile, recognised by its inline checksums',
    'Cargo.v2.lock',
    2,
    [...COMMON_REGISTRY, { name: 'serde', version: '1.0.219', checksum: SE }],
    [APP, DEP1, LOCAL],
  ],
  [
    'reads a V3 lockfile and skips a crate from another git registry',
    'Cargo.v3.lock',
    3,
    [...COMMON_REGISTRY, { name: 'serde', version: '1.0.219', checksum: SE }],
    [APP, DEP1, LOCAL, OTHER],
  ],
  [
    'reads a V4 lockfile, counting both crates.io source ids as crates.io',
    'Cargo.v4.lock',
    4,
    [
      ...COMMON_REGISTRY,
      { name: 'serde', version: '1.0.219', checksum: SE },
      { name: 'serde_derive', version: '1.0.219', checksum: SD },
    ],
    [APP, DEP1, LOCAL, OTHER],
  ],
];

describe('parseLockfile on real lockfile formats', () => {
  for (const [behaviour, file, version, registry, skipped] of FORMATS) {
    test(behaviour, () => {
      const contents = parseLockfile(fixture(file));
      assert.equal(contents.version, version);
      assert.deepEqual(contents.registry, registry);
      assert.deepEqual(contents.skipped, skipped);
    });
  }

  test('reads a lockfile with CRLF line endings the same way', () => {
    const text = fixture('Cargo.v3.lock');
    assert.deepEqual(parseLockfile(text.replaceAll('\n', '\r\n')), parseLockfile(text));
  });

  test('reads a lockfile that starts with a byte order mark', () => {
    const text = fixture('Cargo.v4.lock');
    assert.deepEqual(parseLockfile(`\uFEFF${text}`), parseLockfile(text));
  });
});

/** One `[[package]]` table, ending in a newline; `fields` follow `version` as cargo orders them. */
function pkg(name: string, version: string, ...fields: string[]): string {
  return ['[[package]]', `name = "${name}"`, `version = "${version}"`, ...fields, ''].join('\n');
}
/** Tables separated by a blank line, as cargo writes them. */
const lock = (...tables: string[]) => tables.join('\n');
const v4 = (...tables: string[]) => lock('version = 4\n', ...tables);
const deps = (...refs: string[]) => `dependencies = [\n${refs.map((r) => ` "${r}",\n`).join('')}]`;
const checksum = (hex: string) => `checksum = "${hex}"`;
const fromCratesIo = `source = "${CRATES_IO}"`;
const fromSparse = 'source = "sparse+https://index.crates.io/"';
const metadataChecksum = (id: string, hex: string) =>
  `[metadata]\n"checksum ${id} (${CRATES_IO})" = "${hex}"\n`;

describe('parseLockfile format detection by content', () => {
  const b = pkg('b', '1.0.0', fromCratesIo);
  const cases: [string, string, number][] = [
    ['reads an empty file as V1 with nothing in it', '', 1],
    [
      'reads a file without version, checksums or short references as V1',
      lock(pkg('a', '0.1.0', deps(`b 1.0.0 (${CRATES_IO})`)), b),
      1,
    ],
    [
      'reads a dependency given by name alone as V2, even without checksums',
      lock(pkg('a', '0.1.0', deps('b')), b),
      2,
    ],
    [
      'reads a dependency on a registry package without its source as V2',
      lock(pkg('a', '0.1.0', deps('b 1.0.0')), b),
      2,
    ],
    [
      'reads a dependency on a path package without a source as V1',
      lock(pkg('a', '0.1.0', deps('b 1.0.0')), pkg('b', '1.0.0')),
      1,
    ],
    ['reads a single package ending in one newline as V2, as cargo does', pkg('a', '0.1.0'), 2],
    ['reads a single package ending in two newlines as V1', `${pkg('a', '0.1.0')}\n`, 1],
    ['reads version = 3 as V3', lock('version = 3\n', pkg('a', '0.1.0')), 3],
    ['reads version = 4 as V4', v4(pkg('a', '0.1.0')), 4],
  ];
  for (const [behaviour, text, version] of cases) {
    test(behaviour, () => {
      assert.equal(parseLockfile(text).version, version);
    });
  }
});

describe('parseLockfile checksums', () => {
  test('discards every checksum when [metadata] ones sit beside inline ones, as cargo does', () => {
    const contents = parseLockfile(
      lock(
        pkg('a', '1.0.0', fromCratesIo, checksum(SE)),
        pkg('b', '1.0.0', fromCratesIo),
        metadataChecksum('b 1.0.0', CC),
      ),
    );
    assert.equal(contents.version, 2);
    assert.deepEqual(contents.registry, [
      { name: 'a', version: '1.0.0' },
      { name: 'b', version: '1.0.0' },
    ]);
  });

  test('discards [metadata] checksums in a V3 lockfile', () => {
    const text = lock(
      'version = 3\n',
      pkg('b', '1.0.0', fromCratesIo),
      metadataChecksum('b 1.0.0', CC),
    );
    assert.deepEqual(parseLockfile(text).registry, [{ name: 'b', version: '1.0.0' }]);
  });

  test('takes no checksum from a <none> [metadata] value on a crates.io package', () => {
    const text = lock(pkg('b', '1.0.0', fromCratesIo), metadataChecksum('b 1.0.0', '<none>'));
    assert.deepEqual(parseLockfile(text).registry, [{ name: 'b', version: '1.0.0' }]);
  });

  test('ignores a [metadata] checksum for a package the lockfile does not list', () => {
    const text = lock(pkg('b', '1.0.0', fromCratesIo), metadataChecksum('zzz 1.0.0', CC));
    assert.deepEqual(parseLockfile(text).registry, [{ name: 'b', version: '1.0.0' }]);
  });

  test('ignores [metadata] keys that are not checksums', () => {
    const text = lock(pkg('b', '1.0.0', fromCratesIo, checksum(CC)), '[metadata]\nnote = "x"\n');
    assert.deepEqual(parseLockfile(text).registry, [{ name: 'b', version: '1.0.0', checksum: CC }]);
  });
});

describe('parseLockfile package kinds and duplicates', () => {
  test('treats a legacy [root] table as a path package', () => {
    const root = '[root]\nname = "app"\nversion = "0.1.0"\n';
    assert.deepEqual(parseLockfile(lock(root, pkg('b', '1.0.0', fromCratesIo))).skipped, [APP]);
  });

  test('does not fetch unused patches', () => {
    const unused = `[[patch.unused]]\nname = "c"\nversion = "1.0.0"\n${fromCratesIo}\n`;
    const text = v4(pkg('b', '1.0.0', fromCratesIo), unused);
    assert.deepEqual(parseLockfile(text).registry, [{ name: 'b', version: '1.0.0' }]);
  });

  test('skips a path package whose name only cargo allows locally', () => {
    assert.deepEqual(parseLockfile(v4(pkg('日本', '0.1.0'))).skipped, [
      { name: '日本', version: '0.1.0', kind: 'path' },
    ]);
  });

  test('lists a crate pinned twice once, keeping the checksum it has', () => {
    const text = v4(pkg('b', '1.0.0', fromCratesIo), pkg('b', '1.0.0', fromSparse, checksum(CC)));
    assert.deepEqual(parseLockfile(text).registry, [{ name: 'b', version: '1.0.0', checksum: CC }]);
  });

  test('lists two versions of one crate separately', () => {
    const text = v4(pkg('b', '1.0.0', fromCratesIo), pkg('b', '2.0.0', fromCratesIo));
    assert.equal(parseLockfile(text).registry.length, 2);
  });

  test('lists a skipped package pinned twice once', () => {
    const git = 'source = "git+https://github.com/example/dep1#abc"';
    const text = v4(pkg('dep1', '0.5.0', git), pkg('dep1', '0.5.0', git));
    assert.deepEqual(parseLockfile(text).skipped, [DEP1]);
  });
});

const MALFORMED: [string, string, RegExp][] = [
  ['malformed TOML, with its line', 'version = 4\n[[package]\n', /not valid TOML at line 2/],
  ['an unknown lockfile version', lock('version = 5\n', pkg('a', '0.1.0')), /version 5/],
  ['version = 2, which cargo never writes', 'version = 2\n', /version 2/],
  ['a version that is not a number', 'version = "4"\n', /version "4"/],
  ['package that is not an array', 'package = "x"\n', /"package" is not an array/],
  ['a package without a name', '[[package]]\nversion = "1.0.0"\n', /package #1 has no "name"/],
  ['a package with an invalid version', pkg('serde', '1.0'), /"serde" has an invalid version/],
  [
    'a crates.io package with an invalid name',
    pkg('serde/../x', '1.0.0', fromCratesIo),
    /package "serde\/\.\.\/x" 1\.0\.0 has an invalid crate name/,
  ],
  [
    'a crates.io package with a malformed checksum',
    pkg('serde', '1.0.0', fromCratesIo, checksum('abc')),
    /package "serde" 1\.0\.0 has an invalid checksum "abc"/,
  ],
  [
    'a source with an unknown protocol',
    pkg('serde', '1.0.0', 'source = "ftp://example.com/x"'),
    /package "serde" 1\.0\.0 has an unsupported source protocol/,
  ],
  [
    'a dependency string with a malformed source',
    pkg('a', '0.1.0', deps('b 1.0.0 registry')),
    /package "a" 0\.1\.0, dependency "b 1\.0\.0 registry"/,
  ],
  [
    'a [metadata] value that is not a string',
    lock(pkg('a', '0.1.0'), '[metadata]\nx = 1\n'),
    /\[metadata\] "x" is not a string/,
  ],
  [
    'one crate pinned with two different checksums',
    v4(pkg('b', '1.0.0', fromCratesIo, checksum(CC)), pkg('b', '1.0.0', fromSparse, checksum(SE))),
    /package "b" 1\.0\.0 is listed twice with different checksums/,
  ],
];

describe('parseLockfile errors', () => {
  for (const [what, text, message] of MALFORMED) {
    test(`rejects ${what} with CARGO_CACHER_BAD_REQUEST`, () => {
      assert.throws(
        () => parseLockfile(text),
        (err: unknown) =>
          isCacherError(err, 'CARGO_CACHER_BAD_REQUEST') && message.test(err.message),
      );
    });
  }

  test('keeps the TOML parser error as the cause', () => {
    assert.throws(
      () => parseLockfile('[[package]\n'),
      (err: unknown) => isCacherError(err) && err.cause instanceof Error,
    );
  });
});
