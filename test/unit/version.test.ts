import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isValidVersion } from '../../src/registry/version.ts';

const VALID = [
  '0.0.0',
  '1.0.0',
  '10.20.30',
  '1.0.0-alpha',
  '1.0.0-alpha.1',
  '1.0.0-0.3.7',
  '1.0.0-x-y-z.--',
  '1.0.0+build.1',
  '1.0.0+20130313144700',
  '1.0.0-beta+exp.sha.5114f85',
  '0.1.0+1.0.8',
  `1.0.0-${'a'.repeat(122)}`,
];

const INVALID: [string, string][] = [
  ['an empty string', ''],
  ['a version with two parts', '1.0'],
  ['a version with one part', '1'],
  ['a version with four parts', '1.0.0.0'],
  ['a leading v', 'v1.0.0'],
  ['a leading zero in the major part', '01.0.0'],
  ['a leading zero in the minor part', '1.01.0'],
  ['a leading zero in the patch part', '1.0.01'],
  ['a leading zero in a numeric pre-release part', '1.0.0-01'],
  ['an empty pre-release part', '1.0.0-alpha..1'],
  ['an empty pre-release', '1.0.0-'],
  ['empty build metadata', '1.0.0+'],
  ['a path after the version', '1.0.0/../x'],
  ['a space', '1.0.0 '],
  ['a trailing newline', '1.0.0\n'],
  ['a percent-encoded plus', '1.0.0%2Bbuild'],
  ['a version longer than 128 characters', `1.0.0-${'a'.repeat(123)}`],
];

describe('isValidVersion', () => {
  for (const version of VALID) {
    const shown = version.length > 40 ? `a ${version.length}-character version` : version;
    test(`accepts ${shown}`, () => {
      assert.equal(isValidVersion(version), true);
    });
  }

  for (const [what, version] of INVALID) {
    test(`rejects ${what}`, () => {
      assert.equal(isValidVersion(version), false);
    });
  }
});
