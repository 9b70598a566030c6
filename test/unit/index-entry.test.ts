import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { CrateVersion } from '../../src/registry/index-entry.ts';
import {
  findVersion,
  parseIndexFile,
  parseIndexLine,
  versionOfLine,
} from '../../src/registry/index-entry.ts';

const SUM_A = 'a'.repeat(64);
const SUM_B = 'b'.repeat(64);
const SUM_C = '0123456789abcdef'.repeat(4);

function line(fields: Record<string, unknown>): string {
  return JSON.stringify({ deps: [], features: {}, ...fields });
}

const FILE = [
  line({ name: 'Inflector', vers: '0.11.3', cksum: SUM_A }),
  line({ name: 'Inflector', vers: '0.11.4', cksum: SUM_B, yanked: true }),
  line({ name: 'Inflector', vers: '0.11.4+build.1', cksum: SUM_C, yanked: false }),
  '',
].join('\n');

const YANKED_CASES: [string, unknown, boolean][] = [
  ['treats a missing yanked field as not yanked', undefined, false],
  ['treats yanked: false as not yanked', false, false],
  ['treats yanked: true as yanked', true, true],
  ['treats a non-boolean yanked as not yanked', 'true', false],
];

const MALFORMED_LINES: [string, string][] = [
  ['an empty line', ''],
  ['a blank line', '   '],
  ['a line that is not JSON', '{"name": "a",'],
  ['a JSON value that is not an object', '"serde"'],
  ['JSON null', 'null'],
  ['a line without a name', line({ vers: '1.0.0', cksum: SUM_A })],
  ['a line without vers', line({ name: 'a', cksum: SUM_A })],
  ['a line without cksum', line({ name: 'a', vers: '1.0.0' })],
  ['a line whose name is not a string', line({ name: 1, vers: '1.0.0', cksum: SUM_A })],
  ['a checksum that is too short', line({ name: 'a', vers: '1.0.0', cksum: 'a'.repeat(63) })],
  ['a checksum that is too long', line({ name: 'a', vers: '1.0.0', cksum: 'a'.repeat(65) })],
  ['a checksum that is not hex', line({ name: 'a', vers: '1.0.0', cksum: 'g'.repeat(64) })],
  ['an uppercase checksum', line({ name: 'a', vers: '1.0.0', cksum: 'A'.repeat(64) })],
];

describe('parseIndexLine', () => {
  test('reads name, version, checksum and yanked from a line', () => {
    const expected: CrateVersion = {
      name: 'Inflector',
      version: '0.11.4',
      checksum: SUM_B,
      yanked: true,
    };
    assert.deepEqual(
      parseIndexLine(line({ name: 'Inflector', vers: '0.11.4', cksum: SUM_B, yanked: true })),
      expected,
    );
  });

  for (const [behaviour, yanked, expected] of YANKED_CASES) {
    test(behaviour, () => {
      assert.equal(
        parseIndexLine(line({ name: 'a', vers: '1.0.0', cksum: SUM_A, yanked }))?.yanked,
        expected,
      );
    });
  }

  test('accepts a line ending in a carriage return', () => {
    assert.equal(
      parseIndexLine(`${line({ name: 'a', vers: '1.0.0', cksum: SUM_A })}\r`)?.name,
      'a',
    );
  });

  for (const [what, text] of MALFORMED_LINES) {
    test(`returns undefined for ${what}`, () => {
      assert.equal(parseIndexLine(text), undefined);
    });
  }
});

describe('parseIndexFile', () => {
  test('reads every line of a file in order', () => {
    assert.deepEqual(
      parseIndexFile(FILE).map((entry) => entry.version),
      ['0.11.3', '0.11.4', '0.11.4+build.1'],
    );
  });

  test('reads a Buffer the same as a string', () => {
    assert.deepEqual(parseIndexFile(Buffer.from(FILE, 'utf8')), parseIndexFile(FILE));
  });

  test('skips malformed lines and keeps the ones around them', () => {
    const text = [
      line({ name: 'a', vers: '1.0.0', cksum: SUM_A }),
      'not json at all',
      line({ name: 'a', vers: '1.0.1', cksum: 'short' }),
      line({ name: 'a', vers: '1.0.2', cksum: SUM_C }),
    ].join('\n');
    assert.deepEqual(
      parseIndexFile(text).map((entry) => entry.version),
      ['1.0.0', '1.0.2'],
    );
  });

  test('returns nothing for an empty file', () => {
    assert.deepEqual(parseIndexFile(''), []);
  });
});

describe('findVersion', () => {
  test('finds a version by its exact string', () => {
    assert.deepEqual(findVersion(FILE, '0.11.3'), {
      name: 'Inflector',
      version: '0.11.3',
      checksum: SUM_A,
      yanked: false,
    });
  });

  test('tells a version with build metadata from the same version without it', () => {
    assert.equal(findVersion(FILE, '0.11.4')?.checksum, SUM_B);
    assert.equal(findVersion(FILE, '0.11.4+build.1')?.checksum, SUM_C);
  });

  test('reports a yanked version as yanked', () => {
    assert.equal(findVersion(FILE, '0.11.4')?.yanked, true);
    assert.equal(findVersion(FILE, '0.11.4+build.1')?.yanked, false);
  });

  const missing: [string, string][] = [
    ['a version that is not in the file', '0.11.5'],
    ['build metadata that is not in the file', '0.11.3+build.1'],
    ['a version prefix', '0.11'],
  ];
  for (const [what, version] of missing) {
    test(`returns undefined for ${what}`, () => {
      assert.equal(findVersion(FILE, version), undefined);
    });
  }
});

describe('versionOfLine', () => {
  const CK = 'b'.repeat(64);
  const CASES: [string, string, string | undefined][] = [
    ['crates.io form', `{"name":"a","vers":"1.2.3","deps":[],"cksum":"${CK}"}`, '1.2.3'],
    [
      'a feature value holding the text of a vers key',
      `{"name":"a","features":{"x":["\\"vers\\":\\"9.9.9\\""]},"vers":"1.0.0","cksum":"${CK}"}`,
      '1.0.0',
    ],
    [
      'a feature named vers',
      `{"name":"a","features":{"vers":[]},"vers":"2.0.0","cksum":"${CK}"}`,
      '2.0.0',
    ],
    [
      'spaces around the colon',
      `{"name":"a", "vers" : "3.0.0-rc.1", "cksum":"${CK}"}`,
      '3.0.0-rc.1',
    ],
    ['build metadata', `{"name":"a","vers":"1.0.0+build.5","cksum":"${CK}"}`, '1.0.0+build.5'],
    ['no version', `{"name":"a","cksum":"${CK}"}`, undefined],
    ['not JSON', '{broken', undefined],
    ['a blank line', '', undefined],
  ];
  for (const [what, line, expected] of CASES) {
    test(what, () => {
      assert.equal(versionOfLine(line), expected);
    });
  }
});
