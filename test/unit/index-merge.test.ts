import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { mergeIndexFiles } from '../../src/registry/index-merge.ts';

const cksum = (digit: string) => digit.repeat(64);
/** An index line; `yanked` and `extra` let two copies of one version differ. */
const line = (vers: string, { yanked = false, extra = '', sum = 'a' } = {}) =>
  `{"name":"merge","vers":"${vers}","deps":[],"cksum":"${cksum(sum)}","features":{},"yanked":${yanked}${extra}}`;

function merge(newer: string, older: string) {
  const result = mergeIndexFiles(Buffer.from(newer, 'utf8'), Buffer.from(older, 'utf8'));
  return { text: result.body.toString('utf8'), added: result.addedFromOlder };
}

describe('mergeIndexFiles', () => {
  test('the newer copy wins for a version both list', () => {
    const newer = `${line('0.1.0', { yanked: true })}\n`;
    const older = `${line('0.1.0')}\n`;
    assert.deepEqual(merge(newer, older), { text: newer, added: 0 });
  });

  test('a version only the older copy lists is kept, so no line is lost', () => {
    const newer = `${line('0.1.0')}\n${line('0.3.0')}\n`;
    const older = `${line('0.1.0')}\n${line('0.2.0')}\n`;
    assert.deepEqual(merge(newer, older), {
      text: `${line('0.1.0')}\n${line('0.2.0')}\n${line('0.3.0')}\n`,
      added: 1,
    });
  });

  test('keeps the publish order both copies share', () => {
    // The older copy (a bundle) has 0.2.0 and 0.4.0 the newer one lost; 0.5.0 only the newer has.
    const newer = [line('0.1.0'), line('0.3.0'), line('0.5.0')].join('\n');
    const older = [line('0.1.0'), line('0.2.0'), line('0.3.0'), line('0.4.0')].join('\n');
    const { text } = merge(`${newer}\n`, `${older}\n`);
    assert.equal(
      text,
      `${[line('0.1.0'), line('0.2.0'), line('0.3.0'), line('0.4.0'), line('0.5.0')].join('\n')}\n`,
    );
  });

  test('returns the newer Buffer itself when the older copy adds nothing', () => {
    const newer = Buffer.from(`${line('0.1.0')}\n${line('0.2.0')}`);
    const older = Buffer.from(`${line('0.2.0', { yanked: true })}\n\n`);
    const result = mergeIndexFiles(newer, older);
    assert.equal(result.body, newer);
    assert.equal(result.addedFromOlder, 0);
  });

  test('kept lines are byte-exact: key order, spacing, unicode and unknown fields untouched', () => {
    const odd =
      '{ "vers": "0.2.0", "name": "merge", "cksum": "' +
      cksum('b') +
      '", "desc": "caf\u00e9 \u2603", "v": 2 }';
    const { text } = merge(`${line('0.1.0')}\n`, `${odd}\n`);
    assert.equal(text, `${line('0.1.0')}\n${odd}\n`);
  });

  test('CRLF endings of either copy stay as they were', () => {
    const newer = `${line('0.1.0')}\r\n${line('0.3.0')}\r\n`;
    const older = `${line('0.1.0')}\n${line('0.2.0')}\r\n`;
    assert.equal(
      merge(newer, older).text,
      `${line('0.1.0')}\r\n${line('0.2.0')}\r\n${line('0.3.0')}\r\n`,
    );
  });

  test('a newer copy without a final newline gets one before added lines', () => {
    assert.equal(
      merge(line('0.1.0'), `${line('0.2.0')}\n`).text,
      `${line('0.1.0')}\n${line('0.2.0')}\n`,
    );
  });

  test('unreadable lines of the older copy are kept unless the newer copy has them; blank lines go', () => {
    const broken = '{"name":"merge","vers":"0.9.0"'; // cut short: no version cargo could read
    const otherBroken = 'not json at all';
    const newer = `${line('0.1.0')}\n${broken}\n`;
    const older = `${broken}\n\n   \n${otherBroken}\n${line('0.1.0')}\n`;
    assert.deepEqual(merge(newer, older), {
      text: `${otherBroken}\n${line('0.1.0')}\n${broken}\n`,
      added: 1,
    });
  });

  test('unreadable lines of the newer copy stay where they are', () => {
    const broken = '{"vers":"0.5.0"}';
    const newer = `${broken}\n${line('0.1.0')}\n`;
    assert.equal(
      merge(newer, `${line('0.2.0')}\n`).text,
      `${broken}\n${line('0.1.0')}\n${line('0.2.0')}\n`,
    );
  });

  test('an empty copy on either side gives the other one', () => {
    const file = `${line('0.1.0')}\n${line('0.2.0')}\n`;
    assert.deepEqual(merge('', file), { text: file, added: 2 });
    assert.deepEqual(merge(file, ''), { text: file, added: 0 });
  });

  test('versions are told apart exactly: build metadata and pre-releases are versions of their own', () => {
    const newer = `${line('1.0.0')}\n`;
    const older = `${line('1.0.0+build.1')}\n${line('1.0.0-rc.1')}\n`;
    assert.equal(merge(newer, older).added, 2);
  });
});
