import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isCacherError } from '../../src/errors.ts';
import {
  type FilterEntry,
  isPathLine,
  lockedRoots,
  parseMirrorFilter,
} from '../../src/registry/mirror-filter.ts';

const SOURCE = '/etc/mirror/filter.txt';

/** The filter as plain data: crates and paths apart, each in file order. */
function summary(entries: FilterEntry[]) {
  return {
    crates: entries.flatMap((root) =>
      root.kind === 'crate' ? [[root.name, root.requirement?.text, root.label]] : [],
    ),
    paths: entries.flatMap((path) =>
      path.kind === 'path' ? [[path.path, path.text, path.location]] : [],
    ),
  };
}

describe('parseMirrorFilter', () => {
  const VALID: [string, string, ReturnType<typeof summary>][] = [
    [
      'a bare name: the newest version',
      'serde\n',
      { crates: [['serde', undefined, `serde (${SOURCE}:1)`]], paths: [] },
    ],
    [
      'a requirement in cargo syntax, kept as written',
      'serde@1\ntokio@~1.38\n',
      {
        crates: [
          ['serde', '1', `serde@1 (${SOURCE}:1)`],
          ['tokio', '~1.38', `tokio@~1.38 (${SOURCE}:2)`],
        ],
        paths: [],
      },
    ],
    [
      'several comparators and spaces around "@"',
      'rand @ >=0.8, <0.10\n',
      { crates: [['rand', '>=0.8, <0.10', `rand@>=0.8, <0.10 (${SOURCE}:1)`]], paths: [] },
    ],
    [
      'an exact version',
      'serde@=1.0.200',
      { crates: [['serde', '=1.0.200', `serde@=1.0.200 (${SOURCE}:1)`]], paths: [] },
    ],
    [
      'comments, blank lines, CRLF line ends and a byte order mark',
      '\uFEFF# roots\r\n\r\n  serde  # the serializer\r\n\t\n',
      { crates: [['serde', undefined, `serde (${SOURCE}:3)`]], paths: [] },
    ],
    [
      'a relative directory, resolved against the filter file',
      './projects\n',
      { crates: [], paths: [['/etc/mirror/projects', './projects', `${SOURCE}:1`]] },
    ],
    [
      'a lock file by its name',
      'Cargo.lock\n',
      { crates: [], paths: [['/etc/mirror/Cargo.lock', 'Cargo.lock', `${SOURCE}:1`]] },
    ],
    [
      'a path with a slash and an absolute one',
      'apps/web\n/srv/app/Cargo.lock\n',
      {
        crates: [],
        paths: [
          ['/etc/mirror/apps/web', 'apps/web', `${SOURCE}:1`],
          ['/srv/app/Cargo.lock', '/srv/app/Cargo.lock', `${SOURCE}:2`],
        ],
      },
    ],
    [
      'a dot path that goes up',
      '../shared\n',
      { crates: [], paths: [['/etc/shared', '../shared', `${SOURCE}:1`]] },
    ],
    [
      'names and paths mixed, mixed-case names kept',
      'MixedCase\n./a\nserde_json@1.0\n',
      {
        crates: [
          ['MixedCase', undefined, `MixedCase (${SOURCE}:1)`],
          ['serde_json', '1.0', `serde_json@1.0 (${SOURCE}:3)`],
        ],
        paths: [['/etc/mirror/a', './a', `${SOURCE}:2`]],
      },
    ],
    ['only comments', '# nothing yet\n\n', { crates: [], paths: [] }],
  ];
  test('keeps the order of the lines, crates and paths mixed', () => {
    const entries = parseMirrorFilter('b\n./x\na@1\n', SOURCE);
    assert.deepEqual(
      entries.map((entry) => entry.kind),
      ['crate', 'path', 'crate'],
    );
  });

  for (const [what, text, expected] of VALID) {
    test(`reads ${what}`, () => {
      assert.deepEqual(summary(parseMirrorFilter(text, SOURCE)), expected);
    });
  }

  const INVALID: [string, string, RegExp][] = [
    ['a name with a space', 'serde\nserde derive\n', /:2: invalid crate name "serde derive"$/],
    ['a name starting with a digit', '9lives\n', /:1: invalid crate name "9lives"$/],
    ['no name before "@"', '@1.0\n', /:1: missing crate name before "@"$/],
    ['nothing after "@"', 'serde@\n', /:1: missing version requirement after "@"$/],
    [
      'a requirement that does not parse',
      'serde@not-a-req!\n',
      /:1: invalid version requirement "not-a-req!": /,
    ],
    [
      'a number after a wildcard',
      '# x\nserde@1.*.2\n',
      /:2: invalid version requirement "1.\*.2": /,
    ],
    ['a stray comma', 'serde@1,\n', /:1: invalid version requirement "1,": empty comparator/],
    ['a name too long', `${'a'.repeat(65)}\n`, /:1: invalid crate name/],
  ];
  for (const [what, text, message] of INVALID) {
    test(`refuses ${what}, naming the file and line`, () => {
      assert.throws(
        () => parseMirrorFilter(text, SOURCE),
        (err: unknown) => {
          assert.ok(isCacherError(err, 'CARGO_CACHER_INVALID_CONFIG'), String(err));
          assert.ok(err.message.startsWith(`${SOURCE}:`), err.message);
          assert.match(err.message, message);
          assert.doesNotMatch(err.message, /\n/);
          return true;
        },
      );
    });
  }
});

describe('isPathLine', () => {
  const CASES: [string, boolean][] = [
    ['serde', false],
    ['serde@^1', false],
    ['serde@>=1.0, <2', false],
    ['Cargo.lock', true],
    ['other.lock', true],
    ['./app', true],
    ['.', true],
    ['..', true],
    ['apps/web', true],
    ['/srv/app', true],
  ];
  for (const [line, expected] of CASES) {
    test(`${JSON.stringify(line)} is ${expected ? 'a path' : 'a crate'}`, () => {
      assert.equal(isPathLine(line), expected);
    });
  }
});

describe('lockedRoots', () => {
  test('pins each version with its checksum and names the lock file and the filter line', () => {
    const checksum = 'c'.repeat(64);
    const roots = lockedRoots(
      [
        { name: 'serde', version: '1.0.200', checksum },
        { name: 'old', version: '0.1.0' },
      ],
      { file: 'app/Cargo.lock', location: 'mirror.txt:3' },
    );
    assert.deepEqual(roots, [
      {
        kind: 'locked',
        name: 'serde',
        version: '1.0.200',
        checksum,
        label: 'serde 1.0.200 in app/Cargo.lock (mirror.txt:3)',
      },
      {
        kind: 'locked',
        name: 'old',
        version: '0.1.0',
        label: 'old 0.1.0 in app/Cargo.lock (mirror.txt:3)',
      },
    ]);
  });
});
