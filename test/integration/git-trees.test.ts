/**
 * The git index trees cargo-cacher writes with plumbing: a filtered copy of upstream's tree
 * (files replaced or removed, the rest untouched) and the index built from held files.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { commitWithFastImport } from '../../src/git/fast-import.ts';
import { filterTree } from '../../src/git/filtered-tree.ts';
import { gitText, runGit } from '../../src/git/git-command.ts';
import { buildLocalIndexCommit } from '../../src/git/local-index.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';

async function bareRepo(t: TestContext): Promise<string> {
  const dir = await makeTempDir('git-trees');
  t.after(() => removeTempDir(dir));
  const gitDir = join(dir, 'index.git');
  await runGit(gitDir, ['init', '--bare', '--quiet']);
  return gitDir;
}

async function files(gitDir: string, rev: string): Promise<Record<string, string>> {
  const paths = (await gitText(gitDir, ['ls-tree', '-r', '--name-only', rev])).split('\n');
  const result: Record<string, string> = {};
  for (const path of paths.filter(Boolean)) {
    result[path] = (await runGit(gitDir, ['cat-file', 'blob', `${rev}:${path}`])).stdout.toString();
  }
  return result;
}

describe('git index trees', () => {
  test('filterTree replaces and removes files and keeps the others byte for byte', async (t) => {
    const gitDir = await bareRepo(t);
    const base = await commitWithFastImport(gitDir, 'refs/heads/master', 'base', [
      { path: 'config.json', body: Buffer.from('{"dl":"x"}\n') },
      { path: '3/a/abc', body: Buffer.from('abc line\n') },
      { path: 'de/f/def', body: Buffer.from('def line\r\n') },
      { path: 'gh/i/ghi', body: Buffer.from('ghi line\n') },
    ]);
    const tree = await filterTree(gitDir, base, (path) => {
      if (path === '3/a/abc') return Buffer.from('abc replaced\n');
      if (path === 'gh/i/ghi') return null;
      return undefined;
    });
    assert.deepEqual(await files(gitDir, tree), {
      'config.json': '{"dl":"x"}\n',
      '3/a/abc': 'abc replaced\n',
      'de/f/def': 'def line\r\n',
    });
  });

  test('filterTree returns the very same tree when nothing changes', async (t) => {
    const gitDir = await bareRepo(t);
    const base = await commitWithFastImport(gitDir, 'refs/heads/master', 'base', [
      { path: '3/a/abc', body: Buffer.from('abc\n') },
    ]);
    const tree = await filterTree(gitDir, base, () => undefined);
    assert.equal(tree, await gitText(gitDir, ['rev-parse', `${base}^{tree}`]));
  });

  test('the index built from held files holds config.json and them, and is reproducible', async (t) => {
    const gitDir = await bareRepo(t);
    const held = async function* () {
      yield { path: 'zz/ba/zzbar', body: Buffer.from('{"name":"zzbar"}\n') };
      yield { path: '2/ab', body: Buffer.from('{"name":"ab"}\n') };
    };
    const config = Buffer.from('{"dl":"http://box/api/v1/crates"}\n');
    const first = await buildLocalIndexCommit(gitDir, config, held());
    assert.deepEqual(await files(gitDir, first), {
      'config.json': '{"dl":"http://box/api/v1/crates"}\n',
      'zz/ba/zzbar': '{"name":"zzbar"}\n',
      '2/ab': '{"name":"ab"}\n',
    });
    assert.equal(await gitText(gitDir, ['rev-list', '--count', first]), '1', 'a root commit');
    assert.equal(await buildLocalIndexCommit(gitDir, config, held()), first, 'same files, same id');
  });
});
