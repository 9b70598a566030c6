import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import type { JobSnapshot } from '../../src/jobs/job.ts';
import { runCliCommand, startCli } from '../helpers/cli-process.ts';
import { startFakeUpstream } from '../helpers/fake-upstream.ts';
import { httpGet } from '../helpers/http-get.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';
import { waitFor } from '../helpers/wait-for.ts';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await makeTempDir('filtered-mirror-cli');
  t.after(() => removeTempDir(dir));
  return dir;
}

/** Runs the serve command expecting it to refuse to start: one line on stderr, no stack. */
async function refusal(args: string[]): Promise<string> {
  const { code, stderr } = await runCliCommand(['-p', '0', '--listen', '127.0.0.1', ...args]);
  assert.notEqual(code, 0);
  const lines = stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line, got:\n${stderr}`);
  assert.doesNotMatch(stderr, /^\s+at /m);
  return lines[0] ?? '';
}

describe('cargo-cacher -a --mirror-filter', () => {
  test('a filter file with a malformed line: one line naming the file and line, non-zero exit', async (t) => {
    const dir = await tempDir(t);
    const filter = join(dir, 'mirror.txt');
    await writeFile(filter, '# roots\nserde\nserde derive\n');
    const line = await refusal([
      '-i',
      join(dir, 'store'),
      '--no-git',
      '-a',
      '--mirror-filter',
      filter,
    ]);
    assert.equal(line, `cargo-cacher: ${filter}:3: invalid crate name "serde derive"`);
  });

  test('a lock path that does not exist is named with the filter line', async (t) => {
    const dir = await tempDir(t);
    const filter = join(dir, 'mirror.txt');
    await writeFile(filter, 'serde\n./missing/Cargo.lock\n');
    const line = await refusal([
      '-i',
      join(dir, 'store'),
      '--no-git',
      '-a',
      '--mirror-filter',
      filter,
    ]);
    assert.equal(line, `cargo-cacher: ${filter}:2: ${join(dir, 'missing', 'Cargo.lock')}: ENOENT`);
  });

  test('a filter file that does not exist, --mirror-filter without -a, and --mirror-keep 0', async (t) => {
    const dir = await tempDir(t);
    const store = join(dir, 'store');
    const missing = join(dir, 'nope.txt');
    assert.equal(
      await refusal(['-i', store, '--no-git', '-a', '--mirror-filter', missing]),
      `cargo-cacher: --mirror-filter ${missing}: ENOENT`,
    );
    await writeFile(join(dir, 'ok.txt'), 'serde\n');
    assert.match(
      await refusal(['-i', store, '--no-git', '--mirror-filter', join(dir, 'ok.txt')]),
      /--mirror-filter narrows -a\/--all: add -a/,
    );
    assert.match(
      await refusal([
        '-i',
        store,
        '--no-git',
        '-a',
        '--mirror-filter',
        join(dir, 'ok.txt'),
        '--mirror-keep',
        '0',
      ]),
      /--mirror-keep/,
    );
  });

  test('starts with --no-git, mirrors the filter, and reports why', async (t) => {
    const upstream = await startFakeUpstream({
      crates: [
        { name: 'cli-leaf', version: '0.1.0' },
        { name: 'cli-root', version: '1.0.0', deps: [{ name: 'cli-leaf', req: '0.1' }] },
        { name: 'cli-other', version: '1.0.0' },
      ],
    });
    t.after(() => upstream.close());
    const dir = await tempDir(t);
    const filter = join(dir, 'mirror.txt');
    await writeFile(filter, 'cli-root\n');
    const cli = await startCli([
      '-i',
      join(dir, 'store'),
      '-s',
      upstream.indexUrl,
      '--no-git',
      '-a',
      '--mirror-filter',
      filter,
    ]);
    t.after(() => cli.stop());
    let job: JobSnapshot | undefined;
    await waitFor(
      async () => {
        const { jobs } = JSON.parse((await httpGet(`${cli.url}/api/v1/jobs`)).body.toString()) as {
          jobs: JobSnapshot[];
        };
        job = jobs.find((candidate) => candidate.state !== 'running');
        return job !== undefined;
      },
      20_000,
      'the first filtered mirror pass',
    );
    const detail = JSON.parse(
      (await httpGet(`${cli.url}/api/v1/jobs/${job?.id}`)).body.toString(),
    ) as JobSnapshot;
    assert.equal(detail.description, `filtered mirror of ${filter}`);
    assert.deepEqual(
      detail.report?.map((line) => [line.name, line.version, line.status, line.reason]).sort(),
      [
        ['cli-leaf', '0.1.0', 'fetched', `root cli-root (${filter}:1) via cli-root 1.0.0`],
        ['cli-root', '1.0.0', 'fetched', `root cli-root (${filter}:1)`],
      ],
    );
    assert.equal(upstream.count('/dl/cli-other'), 0);
  });
});
