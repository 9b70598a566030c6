import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  crateNameFromIndexPath,
  dirPrefix,
  indexPath,
  isValidCrateName,
} from '../../src/registry/crate-name.ts';

describe('isValidCrateName', () => {
  const valid = ['a', 'serde', 'serde_json', 'serde-json', 'Inflector', 'a1', `a${'b'.repeat(63)}`];
  for (const name of valid) {
    test(`accepts ${JSON.stringify(name)}`, () => {
      assert.equal(isValidCrateName(name), true);
    });
  }

  const invalid: [string, string][] = [
    ['the empty string', ''],
    ['a 65-character name', `a${'b'.repeat(64)}`],
    ['a name starting with a digit', '1serde'],
    ['a name starting with -', '-serde'],
    ['a name starting with _', '_serde'],
    ['a parent-directory name', '..'],
    ['a name with a slash', 'a/b'],
    ['a name with an encoded slash', 'a%2Fb'],
    ['a name with a NUL byte', 'a\0b'],
    ['a non-ASCII name', 'séria'],
    ['a name with a space', 'a b'],
    ['a name with a trailing newline', 'serde\n'],
  ];
  for (const [what, name] of invalid) {
    test(`rejects ${what}`, () => {
      assert.equal(isValidCrateName(name), false);
    });
  }
});

describe('indexPath', () => {
  // cargo's own vectors, from `make_dep_path`'s tests in cargo-util `registry.rs`.
  const vectors: [string, string][] = [
    ['a', '1/a'],
    ['ab', '2/ab'],
    ['abc', '3/a/abc'],
    ['Abc', '3/a/abc'],
    ['AbCd', 'ab/cd/abcd'],
    ['serde', 'se/rd/serde'],
    ['aBcDe', 'ab/cd/abcde'],
  ];
  for (const [name, path] of vectors) {
    test(`puts ${name} at ${path}`, () => {
      assert.equal(indexPath(name), path);
    });
  }
});

describe('dirPrefix', () => {
  const vectors: [string, string][] = [
    ['a', '1'],
    ['Ab', '2'],
    ['Abc', '3/A'],
    ['AbCd', 'Ab/Cd'],
    ['serde', 'se/rd'],
  ];
  for (const [name, prefix] of vectors) {
    test(`keeps the case of ${name} in its prefix ${prefix}`, () => {
      assert.equal(dirPrefix(name), prefix);
    });
  }
});

describe('crateNameFromIndexPath', () => {
  const accepted: [string, string][] = [
    ['1/a', 'a'],
    ['2/ab', 'ab'],
    ['3/a/abc', 'abc'],
    ['se/rd/serde', 'serde'],
    ['se/rd/serde_json', 'serde_json'],
    ['se/rd/serde-json', 'serde-json'],
    ['a-/b_/a-b_c', 'a-b_c'],
  ];
  for (const [path, name] of accepted) {
    test(`reads ${path} as the crate ${name}`, () => {
      assert.equal(crateNameFromIndexPath(path), name);
    });
  }

  const rejected: [string, string][] = [
    ['the prefix directories do not match the name', 'se/xx/serde'],
    ['the one-letter directory of a 3-letter name is wrong', '3/b/abc'],
    ['the length directory is wrong', '2/abc'],
    ['a 4-letter name has no prefix directories', 'abcd'],
    ['there is an extra segment in front', 'x/se/rd/serde'],
    ['there is an extra segment after the name', 'se/rd/serde/x'],
    ['there is a leading slash', '/se/rd/serde'],
    ['there is a trailing slash', 'se/rd/serde/'],
    ['the path climbs out with ..', '../..'],
    ['the path hides .. in the middle', 'se/../se/rd/serde'],
    ['the path is empty', ''],
    ['the path is not lowercase, as cargo always asks', 'SE/RD/Serde'],
    ['the prefix directory is not lowercase', '3/A/abc'],
    ['the last segment is not a crate name', '2/.x'],
  ];
  for (const [why, path] of rejected) {
    test(`rejects ${JSON.stringify(path)} because ${why}`, () => {
      assert.equal(crateNameFromIndexPath(path), undefined);
    });
  }
});
