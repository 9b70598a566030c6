import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { comparePre, parseRequirement, satisfies } from '../../src/registry/semver-req.ts';

/** [requirement, versions it matches, versions it does not match]. */
type Case = [string, string[], string[]];

const CARET: Case[] = [
  ['1.2.3', ['1.2.3', '1.2.4', '1.3.0', '1.99.99'], ['1.2.2', '2.0.0', '0.9.0']],
  ['^1.2.3', ['1.2.3', '1.9.0'], ['1.2.2', '2.0.0']],
  ['^1.2', ['1.2.0', '1.5.7'], ['1.1.9', '2.0.0']],
  ['^1', ['1.0.0', '1.9.9'], ['0.9.9', '2.0.0']],
  ['^0.2.3', ['0.2.3', '0.2.9'], ['0.2.2', '0.3.0', '1.0.0']],
  ['^0.2', ['0.2.0', '0.2.9'], ['0.1.9', '0.3.0']],
  ['^0.0.3', ['0.0.3'], ['0.0.2', '0.0.4', '0.1.0']],
  ['^0.0', ['0.0.0', '0.0.9'], ['0.1.0']],
  ['^0', ['0.0.0', '0.9.9'], ['1.0.0']],
  ['0.3.10', ['0.3.10', '0.3.11'], ['0.3.9', '0.4.0']],
];

const TILDE: Case[] = [
  ['~1.2.3', ['1.2.3', '1.2.9'], ['1.2.2', '1.3.0']],
  ['~1.2', ['1.2.0', '1.2.9'], ['1.1.9', '1.3.0']],
  ['~1', ['1.0.0', '1.9.9'], ['0.9.9', '2.0.0']],
  ['~0.0.3', ['0.0.3', '0.0.4'], ['0.0.2', '0.1.0']],
];

const WILDCARDS: Case[] = [
  ['*', ['0.0.0', '1.2.3', '99.0.0'], []],
  ['x', ['0.1.0'], []],
  ['1.*', ['1.0.0', '1.9.9'], ['0.9.9', '2.0.0']],
  ['1.*.*', ['1.0.0', '1.9.9'], ['2.0.0']],
  ['1.2.*', ['1.2.0', '1.2.9'], ['1.1.0', '1.3.0']],
  ['1.2.x', ['1.2.5'], ['1.3.0']],
  ['1.X', ['1.5.0'], ['2.0.0']],
  ['>=1.*', ['1.0.0', '5.0.0'], ['0.9.9']],
];

const COMPARISONS: Case[] = [
  ['=1.2.3', ['1.2.3'], ['1.2.4', '1.2.2']],
  ['=1.2', ['1.2.0', '1.2.9'], ['1.3.0', '1.1.9']],
  ['=1', ['1.0.0', '1.9.9'], ['2.0.0', '0.9.9']],
  ['>1.2.3', ['1.2.4', '2.0.0'], ['1.2.3', '1.2.2']],
  ['>1.2', ['1.3.0'], ['1.2.9', '1.2.0']],
  ['>1', ['2.0.0'], ['1.9.9']],
  ['>=1.2.3', ['1.2.3', '3.0.0'], ['1.2.2']],
  ['>=1.2', ['1.2.0'], ['1.1.9']],
  ['<1.2.3', ['1.2.2', '0.1.0'], ['1.2.3', '1.3.0']],
  ['<1.2', ['1.1.9'], ['1.2.0']],
  ['<1', ['0.9.9'], ['1.0.0']],
  ['<=1.2.3', ['1.2.3', '1.0.0'], ['1.2.4']],
  ['<=1.2', ['1.2.9'], ['1.3.0']],
  ['<=1', ['1.9.9'], ['2.0.0']],
  ['>=1.2, <1.4', ['1.2.0', '1.3.9'], ['1.1.9', '1.4.0']],
  ['>= 1.2 , < 1.4', ['1.3.0'], ['1.4.0']],
  ['>=1.2.3,<1.2.5', ['1.2.3', '1.2.4'], ['1.2.5']],
  ['^1.2, <1.5, >1.3', ['1.4.0', '1.4.9'], ['1.3.1', '1.3.0', '1.5.0']],
];

const PRE_RELEASES: Case[] = [
  // A pre-release matches only when a comparator names its major.minor.patch with a pre-release.
  ['>=1.0', ['1.0.0', '2.0.0'], ['2.0.0-alpha', '1.0.0-rc.1']],
  ['*', ['1.0.0'], ['1.0.0-alpha']],
  ['1.*', ['1.5.0'], ['1.5.0-beta']],
  [
    '^1.2.3-beta.1',
    ['1.2.3-beta.1', '1.2.3-beta.2', '1.2.3', '1.3.0'],
    ['1.2.3-alpha', '1.3.0-beta.1', '2.0.0'],
  ],
  ['^1.2.3', ['1.2.3'], ['1.2.3-beta', '1.2.4-beta']],
  ['~1.2.3-beta', ['1.2.3-beta', '1.2.3-beta.1', '1.2.4'], ['1.2.3-alpha', '1.2.4-beta']],
  ['=1.2.3-beta', ['1.2.3-beta'], ['1.2.3-beta.1', '1.2.3']],
  [
    '>1.2.3-alpha.1',
    ['1.2.3-alpha.2', '1.2.3-beta', '1.2.3', '1.2.4'],
    ['1.2.3-alpha.1', '1.2.4-alpha'],
  ],
  ['<1.2.3-beta', ['1.2.3-alpha', '1.2.2'], ['1.2.3-beta', '1.2.3', '1.2.2-beta']],
  ['>=1.2.3-alpha, <1.2.3', ['1.2.3-alpha', '1.2.3-rc.1'], ['1.2.3', '1.2.2']],
  ['>=1.0.0-alpha, <2.0.0', ['1.0.0-beta', '1.5.0'], ['1.5.0-beta', '2.0.0-alpha']],
  ['^0.0.3-beta', ['0.0.3-beta', '0.0.3-beta.2', '0.0.3'], ['0.0.4', '0.0.3-alpha']],
];

const BUILD_METADATA: Case[] = [
  ['=1.2.3', ['1.2.3+build.5', '1.2.3+other'], ['1.2.4+build']],
  ['=1.2.3+ignored', ['1.2.3', '1.2.3+anything'], ['1.2.4']],
  ['^1.2.3-beta+meta', ['1.2.3-beta+x', '1.2.3'], ['1.2.3-alpha']],
  ['<1.2.3', ['1.2.2+build'], ['1.2.3+build']],
];

function run(group: string, cases: Case[]): void {
  describe(group, () => {
    for (const [requirement, yes, no] of cases) {
      const parsed = parseRequirement(requirement);
      for (const version of yes) {
        test(`${requirement} matches ${version}`, () => {
          assert.equal(satisfies(parsed, version), true);
        });
      }
      for (const version of no) {
        test(`${requirement} does not match ${version}`, () => {
          assert.equal(satisfies(parsed, version), false);
        });
      }
    }
  });
}

run('caret requirements (the default)', CARET);
run('tilde requirements', TILDE);
run('wildcards', WILDCARDS);
run('comparisons and comma-separated comparators', COMPARISONS);
run('pre-releases', PRE_RELEASES);
run('build metadata', BUILD_METADATA);

describe('satisfies with a version that is not semver', () => {
  for (const version of ['1.2', 'v1.2.3', '', '1.2.3-', '01.2.3', 'latest']) {
    test(`${JSON.stringify(version)} matches nothing`, () => {
      assert.equal(satisfies(parseRequirement('*'), version), false);
      assert.equal(satisfies(parseRequirement('>=0.0.0'), version), false);
    });
  }

  test('numbers beyond 2^53 compare exactly', () => {
    const big = parseRequirement('>=1.9007199254740993.0');
    assert.equal(satisfies(big, '1.9007199254740993.0'), true);
    assert.equal(satisfies(big, '1.9007199254740992.0'), false);
  });
});

describe('parseRequirement', () => {
  test('keeps the text as written, trimmed', () => {
    assert.equal(parseRequirement('  >=1.2, <1.4 ').text, '>=1.2, <1.4');
  });

  test('reads each comparator', () => {
    assert.deepEqual(parseRequirement('>=1.2, <1.4.0-rc.1, 3.*').comparators, [
      { op: '>=', major: 1n, minor: 2n, pre: [] },
      { op: '<', major: 1n, minor: 4n, patch: 0n, pre: ['rc', '1'] },
      { op: '*', major: 3n, pre: [] },
    ]);
  });

  test('a lone wildcard has no comparator', () => {
    assert.deepEqual(parseRequirement('*').comparators, []);
  });

  const INVALID: [string, RegExp][] = [
    ['', /empty version requirement/],
    ['   ', /empty version requirement/],
    ['>=1.0,', /empty comparator/],
    [',1.0', /empty comparator/],
    ['1.0,,2.0', /empty comparator/],
    ['*, <2', /must be the only comparator/],
    ['>=1.0, *', /must be the only comparator/],
    ['>=', /missing version after ">="/],
    ['~', /missing version after "~"/],
    ['>=1.2 <1.4', /expected "," between comparators/],
    ['1.2.3.4', /too many parts/],
    ['v1.2', /invalid major version "v1"/],
    ['1.x.3', /number after a wildcard/],
    ['1.*.3', /number after a wildcard/],
    ['^*', /wildcard major version/],
    ['>=*', /wildcard major version/],
    ['1.*-beta', /needs a full version/],
    ['1.2-beta', /needs a full version/],
    ['01.2.3', /invalid major version "01"/],
    ['1.02', /invalid minor version "02"/],
    ['1.2.03', /invalid patch version "03"/],
    ['1..2', /invalid minor version ""/],
    ['1.2.3-', /invalid pre-release/],
    ['1.2.3-beta..1', /invalid pre-release/],
    ['1.2.3-01', /invalid pre-release/],
    ['1.2.3-be_ta', /invalid pre-release/],
    ['1.2.3+', /invalid build metadata/],
    ['1.2.3+a..b', /invalid build metadata/],
    ['=>1.0', /invalid major version ">1"/],
    ['!=1.0', /invalid major version "!=1"/],
    ['1.0 || 2.0', /expected "," between comparators/],
    [Array.from({ length: 33 }, () => '>=1').join(','), /more than 32 comparators/],
  ];
  for (const [text, message] of INVALID) {
    test(`rejects ${JSON.stringify(text.length > 30 ? `${text.slice(0, 30)}…` : text)}`, () => {
      assert.throws(() => parseRequirement(text), message);
    });
  }

  test('an error message is one line even for a requirement with a carriage return', () => {
    assert.throws(
      () => parseRequirement('1.0\r2'),
      (error: Error) => !/[\r\n]/.test(error.message),
    );
  });
});

describe('comparePre (SemVer 2.0 precedence)', () => {
  // semver.org §11: 1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-alpha.beta < 1.0.0-beta <
  // 1.0.0-beta.2 < 1.0.0-beta.11 < 1.0.0-rc.1 < 1.0.0.
  const ORDERED = ['alpha', 'alpha.1', 'alpha.beta', 'beta', 'beta.2', 'beta.11', 'rc.1', ''];
  const split = (pre: string) => (pre === '' ? [] : pre.split('.'));
  for (let i = 0; i + 1 < ORDERED.length; i++) {
    const lower = ORDERED[i] as string;
    const higher = ORDERED[i + 1] as string;
    test(`${lower} < ${higher || '(release)'}`, () => {
      assert.ok(comparePre(split(lower), split(higher)) < 0);
      assert.ok(comparePre(split(higher), split(lower)) > 0);
    });
  }

  const PAIRS: [string, string, number][] = [
    ['1', 'a', -1],
    ['2', '10', -1],
    ['100', '99', 1],
    ['Z', 'a', -1],
    ['a-b', 'a', 1],
    ['beta.1', 'beta.1', 0],
  ];
  for (const [a, b, sign] of PAIRS) {
    test(`${a} compared with ${b} is ${sign}`, () => {
      assert.equal(Math.sign(comparePre(split(a), split(b))), sign);
    });
  }
});
