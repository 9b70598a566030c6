import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  classifyWriteFailure,
  STORAGE_RETRY_MS,
  StorageWriteGuard,
} from '../../src/cache/storage-guard.ts';
import { Errors } from '../../src/errors.ts';
import { createLogger } from '../../src/logger.ts';

/** An error as node:fs raises it. */
function fsError(code: string, syscall = 'open', path = '/srv/crates/tmp/x.tmp'): Error {
  return Object.assign(new Error(`${code}: failed, ${syscall} '${path}'`), {
    code,
    syscall,
    path,
  });
}

/** A failed object storage call, as S3BlobStore wraps it. */
function s3Error(cause: unknown): Error {
  return Errors.CARGO_CACHER_STORAGE('cannot store crates/x in object storage: …', { cause });
}

describe('classifyWriteFailure', () => {
  test('a full disk or quota is "full", also as a cause', () => {
    assert.deepEqual(classifyWriteFailure(fsError('ENOSPC', 'write')), {
      kind: 'full',
      code: 'ENOSPC',
      path: '/srv/crates/tmp/x.tmp',
    });
    const wrapped = Errors.CARGO_CACHER_STORAGE('x', { cause: { code: 'EDQUOT' } });
    assert.deepEqual(classifyWriteFailure(wrapped), { kind: 'full', code: 'EDQUOT' });
  });

  test('any other errno of a write is "unwritable", with the file it names', () => {
    for (const code of [
      'EACCES',
      'EPERM',
      'EROFS',
      'EIO',
      'EMFILE',
      'ENOENT',
      'EFBIG',
      'ENOTDIR',
    ]) {
      assert.deepEqual(
        classifyWriteFailure(fsError(code, 'rename', '/srv/crates/crates/fa')),
        { kind: 'unwritable', code, path: '/srv/crates/crates/fa' },
        code,
      );
    }
    const wrapped = Errors.CARGO_CACHER_STORAGE('cannot store', { cause: fsError('EROFS') });
    assert.equal(classifyWriteFailure(wrapped)?.code, 'EROFS');
  });

  test('a refused object storage put is "unwritable", named by the SDK error', () => {
    const denied = Object.assign(new Error('Access Denied'), {
      name: 'AccessDenied',
      $metadata: { httpStatusCode: 403 },
    });
    assert.deepEqual(classifyWriteFailure(s3Error(denied)), {
      kind: 'unwritable',
      code: 'AccessDenied',
    });
    // The bucket's endpoint being down is storage's failure too, though its errno is a network's.
    assert.equal(
      classifyWriteFailure(s3Error(fsError('ECONNREFUSED', 'connect')))?.code,
      'ECONNREFUSED',
    );
    assert.equal(classifyWriteFailure(s3Error(new Error('?')))?.code, 'CARGO_CACHER_STORAGE');
  });

  test('failures of the upstream body or of the bytes are not storage failures', () => {
    const notStorage: [string, unknown][] = [
      ['a reset upstream socket', fsError('ECONNRESET', 'read')],
      ['a timed out upstream', fsError('ETIMEDOUT', 'read')],
      ['undici', Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' })],
      ['undici in object storage', s3Error({ code: 'UND_ERR_BODY_TIMEOUT' })],
      ['a premature close', { code: 'ERR_STREAM_PREMATURE_CLOSE' }],
      ['a checksum mismatch', Errors.CARGO_CACHER_CHECKSUM_MISMATCH('sha256 differs')],
      ['a body over the limit', Errors.CARGO_CACHER_BODY_TOO_LARGE('too large')],
      ['an upstream timeout', Errors.CARGO_CACHER_UPSTREAM_TIMEOUT('t')],
      ['a plain error', new Error('plain')],
      ['nothing', undefined],
    ];
    for (const [what, err] of notStorage) assert.equal(classifyWriteFailure(err), undefined, what);
  });
});

function guardWithLog() {
  const clock = { ms: 1_000_000 };
  const lines: { level: number; msg: string; code?: string; key?: string; path?: string }[] = [];
  const log = createLogger({
    level: 'info',
    format: 'json',
    destination: {
      write: (line: string) => lines.push(JSON.parse(line)),
    } as unknown as NodeJS.WritableStream,
  });
  return { clock, lines, guard: new StorageWriteGuard(log, () => clock.ms) };
}

describe('StorageWriteGuard', () => {
  test('blocks storing for a minute, logs once a minute, and a store ends the episode', () => {
    const { clock, lines, guard } = guardWithLog();
    assert.deepEqual(guard.health(), { writable: true });
    const key = 'crates/fa/ke/fake-a/fake-a-0.1.0.crate';
    assert.ok(guard.report(fsError('EACCES', 'mkdir', '/srv/crates/crates/fa'), key));
    assert.ok(guard.blocked);
    assert.equal(guard.reason, 'storage not writable');
    guard.passedThrough();
    guard.report(fsError('EACCES'), 'index/fa/ke/fake-a');
    const warned = () => lines.filter((line) => /storage not writable/.test(line.msg));
    assert.equal(warned().length, 1, 'one line, not one per failure or request');
    assert.equal(
      warned()[0]?.msg.split(':')[0],
      `storage not writable (EACCES storing ${key} at /srv/crates/crates/fa)`,
    );
    assert.equal(warned()[0]?.code, 'EACCES');
    assert.equal(guard.health().writable, false);
    assert.match(guard.health().problem ?? '', /^storage not writable: EACCES storing index\//);

    clock.ms += STORAGE_RETRY_MS;
    assert.ok(!guard.blocked, 'one store is tried again after a minute');
    assert.ok(guard.episode);
    guard.passedThrough();
    assert.equal(warned().length, 2, 'logged again a minute later');
    guard.stored();
    assert.ok(!guard.episode);
    assert.equal(guard.reason, undefined);
    assert.deepEqual(guard.health(), { writable: true });
    assert.ok(lines.some((line) => /storage takes writes again/.test(line.msg)));
  });

  test('a full disk keeps its own wording', () => {
    const { lines, guard } = guardWithLog();
    guard.report(fsError('ENOSPC', 'write'), 'crates/x');
    assert.equal(guard.reason, 'storage full');
    assert.ok(lines.some((line) => /^storage is full \(ENOSPC storing crates\/x/.test(line.msg)));
    assert.match(guard.health().problem ?? '', /^storage is full: ENOSPC/);
    guard.stored();
    assert.ok(lines.some((line) => /storage has space again/.test(line.msg)));
  });

  test('a failure that is not storage changes nothing', () => {
    const { lines, guard } = guardWithLog();
    assert.equal(guard.report(fsError('ECONNRESET', 'read'), 'crates/x'), undefined);
    assert.ok(!guard.blocked);
    assert.ok(!guard.episode);
    assert.deepEqual(lines, []);
  });
});
