import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { keepHeldVersions } from '../../src/registry/held-filter.ts';

const CKSUM = 'a'.repeat(64);
const line = (vers: string, extra = '') =>
  `{"name":"zzbar","vers":"${vers}","deps":[],"cksum":"${CKSUM}","features":{},"yanked":false${extra}}`;

function keep(text: string, held: string[]) {
  const result = keepHeldVersions(Buffer.from(text, 'utf8'), new Set(held));
  return { text: result.body.toString('utf8'), versions: result.versions };
}

describe('keepHeldVersions', () => {
  test('keeps only the held versions, in order, byte for byte', () => {
    const text = `${line('0.1.0')}\n${line('0.1.1')}\n${line('0.2.0', ',"pubtime":"2026-01-01T00:00:00Z"')}\n`;
    assert.deepEqual(keep(text, ['0.1.0', '0.2.0']), {
      text: `${line('0.1.0')}\n${line('0.2.0', ',"pubtime":"2026-01-01T00:00:00Z"')}\n`,
      versions: 2,
    });
  });

  test('returns the very same Buffer when every version is held', () => {
    const body = Buffer.from(`${line('0.1.0')}\n${line('0.1.1')}\n`);
    assert.equal(keepHeldVersions(body, new Set(['0.1.0', '0.1.1'])).body, body);
  });

  test('nothing held leaves an empty file with no versions', () => {
    assert.deepEqual(keep(`${line('0.1.0')}\n`, []), { text: '', versions: 0 });
  });

  test('keeps CRLF endings and a last line without a newline', () => {
    assert.equal(
      keep(`${line('0.1.0')}\r\n${line('0.1.1')}\r\n`, ['0.1.1']).text,
      `${line('0.1.1')}\r\n`,
    );
    assert.equal(keep(`${line('0.1.0')}\n${line('0.1.1')}`, ['0.1.1']).text, line('0.1.1'));
  });

  test('drops lines that do not parse and blank lines', () => {
    assert.equal(keep(`{broken\n\n${line('0.1.0')}\n`, ['0.1.0']).text, `${line('0.1.0')}\n`);
  });

  test('matches the exact version string (build metadata and pre-releases are distinct)', () => {
    const text = `${line('1.0.0-rc.1')}\n${line('1.0.0+build')}\n${line('1.0.0')}\n`;
    assert.equal(keep(text, ['1.0.0+build']).text, `${line('1.0.0+build')}\n`);
  });

  test('keeps non-ASCII bytes exact', () => {
    const unicode = line('0.1.0', ',"links":"ünï"');
    const result = keepHeldVersions(
      Buffer.from(`${unicode}\n${line('0.1.1')}\n`),
      new Set(['0.1.0']),
    );
    assert.deepEqual(result.body, Buffer.from(`${unicode}\n`));
  });
});
