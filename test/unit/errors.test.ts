import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ErrorCode } from '../../src/errors.ts';
import { CacherError, Errors, isCacherError } from '../../src/errors.ts';

const entries = Object.entries(Errors) as [ErrorCode, (typeof Errors)[ErrorCode]][];

describe('Errors', () => {
  // Pinned on purpose, as fastify pins its error count: a new code means touching this test
  // (and docs/ERRORS.md).
  test('has exactly 19 codes', () => {
    assert.equal(entries.length, 19);
  });

  test('has no two entries with the same code', () => {
    const codes = entries.map(([, factory]) => factory.code);
    assert.equal(new Set(codes).size, codes.length);
  });
});

describe('each error code', () => {
  for (const [key, factory] of entries) {
    describe(key, () => {
      test('is keyed by its own code', () => {
        assert.equal(factory.code, key);
      });

      test('has a code starting with CARGO_CACHER_', () => {
        assert.match(factory.code, /^CARGO_CACHER_[A-Z0-9_]+$/);
      });

      test('makes a CacherError with its code, the message and an HTTP error status', () => {
        const err = factory('something went wrong');
        assert.ok(err instanceof CacherError);
        assert.ok(err instanceof Error);
        assert.equal(err.name, 'CacherError');
        assert.equal(err.code, key);
        assert.equal(err.message, 'something went wrong');
        assert.ok(err.statusCode >= 400 && err.statusCode <= 599, `status ${err.statusCode}`);
      });

      test('keeps the cause it is given', () => {
        const cause = Object.assign(new Error('socket hang up'), { code: 'UND_ERR_SOCKET' });
        assert.equal(factory('wrapped', { cause }).cause, cause);
      });

      test('has no cause when none is given', () => {
        assert.equal(Object.hasOwn(factory('plain'), 'cause'), false);
      });
    });
  }
});

describe('CacherError', () => {
  test('keeps retryAfter for the Retry-After header', () => {
    assert.equal(Errors.CARGO_CACHER_GIT_NOT_READY('cloning', { retryAfter: 30 }).retryAfter, 30);
  });

  test('has no retryAfter when none is given', () => {
    assert.equal(Errors.CARGO_CACHER_GIT_NOT_READY('cloning').retryAfter, undefined);
  });

  test('keeps a falsy cause', () => {
    assert.equal(Errors.CARGO_CACHER_STORAGE('disk', { cause: 0 }).cause, 0);
  });
});

describe('isCacherError', () => {
  const notFound = Errors.CARGO_CACHER_NOT_FOUND('no such crate');
  const cases: [string, unknown, ErrorCode | undefined, boolean][] = [
    ['recognises a CacherError', notFound, undefined, true],
    ['recognises a CacherError with the code asked for', notFound, 'CARGO_CACHER_NOT_FOUND', true],
    ['rejects a CacherError with another code', notFound, 'CARGO_CACHER_BAD_REQUEST', false],
    ['rejects a plain Error', new Error('x'), undefined, false],
    [
      'rejects a plain object that looks like one',
      { code: 'CARGO_CACHER_NOT_FOUND', statusCode: 404 },
      'CARGO_CACHER_NOT_FOUND',
      false,
    ],
    ['rejects undefined', undefined, undefined, false],
  ];
  for (const [behaviour, err, code, expected] of cases) {
    test(behaviour, () => {
      assert.equal(isCacherError(err, code), expected);
    });
  }
});
