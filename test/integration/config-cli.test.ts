/**
 * `cargo-cacher config` and the config layers through the real command line: the same settings
 * given as flags, environment variables or file keys print the same configuration; sources are
 * printed; secrets are not; a bad file stops a start with one line naming file, line and key.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type CommandResult, finished } from '../helpers/cli-process.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = join(REPO, 'src', 'cli', 'main.ts');
const TSX = import.meta.resolve('tsx');

/** `cargo-cacher <args>` with exactly `env` (and PATH, HOME) as its environment. */
function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CommandResult> {
  const child = spawn(process.execPath, ['--import', TSX, MAIN, ...args], {
    cwd: REPO,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return finished(child, 60_000);
}

/** The printed configuration without the source comments. */
function values(output: string): string {
  return output
    .split('\n')
    .filter((line) => !line.startsWith('# config file:'))
    .map((line) => line.replace(/\s+# (flag|env|file|default)\b.*$/, ''))
    .join('\n');
}

/** The source comment of a key's line. */
function sourceOf(output: string, key: string): string | undefined {
  const line = output.split('\n').find((candidate) => candidate.startsWith(`${key} = `));
  return line?.replace(/^.*\s# /, '');
}

let dir: string;
before(async () => {
  dir = await makeTempDir('config-cli');
});
after(() => removeTempDir(dir));

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

describe('cargo-cacher config', () => {
  test('the same settings by flag, by environment and by file print the same configuration', async () => {
    const flags = [
      '-p',
      '9100',
      '--listen',
      '127.0.0.1',
      '--index-ttl',
      '90s',
      '--max-size',
      '500MB',
      '--pin',
      '/pins/a.lock',
      '--pin',
      '/pins/b.lock',
      '--no-git',
      '-d',
      '--upstream-timeout',
      '1m',
    ];
    const env = {
      CARGO_CACHER_PORT: '9100',
      CARGO_CACHER_LISTEN: '127.0.0.1',
      CARGO_CACHER_INDEX_TTL: '90s',
      CARGO_CACHER_MAX_SIZE: '500MB',
      CARGO_CACHER_PIN: '/pins/a.lock,/pins/b.lock',
      CARGO_CACHER_NO_GIT: 'true',
      CARGO_CACHER_DEBUG: '1',
      CARGO_CACHER_UPSTREAM_TIMEOUT: '1m',
    };
    const config = await file(
      'same.toml',
      [
        '[server]',
        'port = 9100',
        'listen = "127.0.0.1"',
        '[index]',
        'index-ttl = "90s"',
        '[expiry]',
        'max-size = "500MB"',
        'pin = ["/pins/a.lock", "/pins/b.lock"]',
        '[git]',
        'no-git = true',
        '[log]',
        'debug = 1',
        '[upstream]',
        'upstream-timeout = 60',
        '',
      ].join('\n'),
    );
    const byFlag = await run(['config', '--config', 'none', ...flags]);
    const byEnv = await run(['config', '--config', 'none'], env);
    const byFile = await run(['config', '--config', config]);
    for (const result of [byFlag, byEnv, byFile]) assert.equal(result.code, 0, result.stderr);
    assert.equal(values(byEnv.stdout), values(byFlag.stdout));
    assert.equal(values(byFile.stdout), values(byFlag.stdout));
    assert.match(byFlag.stdout, /^index-ttl = "90s"/m);
    assert.match(byFlag.stdout, /^upstream-timeout = "1m"/m);
    assert.match(byFlag.stdout, /^pin = \["\/pins\/a\.lock", "\/pins\/b\.lock"\]/m);
    assert.equal(sourceOf(byFlag.stdout, 'port'), 'flag --port');
    assert.equal(sourceOf(byFlag.stdout, 'no-git'), 'flag --no-git');
    assert.equal(sourceOf(byEnv.stdout, 'max-size'), 'env CARGO_CACHER_MAX_SIZE');
    assert.equal(sourceOf(byFile.stdout, 'pin'), `file ${config}:8`);
    assert.equal(sourceOf(byFile.stdout, 'threads'), 'default');
  });

  test('precedence: flag over environment over file over default, each with its source', async () => {
    const config = await file(
      'precedence.toml',
      '[server]\nport = 1111\nlisten = "127.0.0.2"\npublic-url = "http://from.file"\n',
    );
    const result = await run(['config', '--config', config, '--port', '3333'], {
      CARGO_CACHER_PORT: '2222',
      CARGO_CACHER_LISTEN: '127.0.0.3',
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^port = 3333\s+# flag --port$/m);
    assert.match(result.stdout, /^listen = "127\.0\.0\.3"\s+# env CARGO_CACHER_LISTEN$/m);
    assert.match(
      result.stdout,
      /^public-url = "http:\/\/from\.file"\s+# file .*precedence\.toml:4$/m,
    );
    assert.match(result.stdout, /^threads = 16\s+# default$/m);
    assert.match(result.stdout, new RegExp(`^# config file: ${config}$`, 'm'));
  });

  test('credentials in URLs are redacted; the token file is printed as its path', async () => {
    const result = await run(
      ['config', '--config', 'none', '-u', 'https://builder:s3cret@dl.example/crates'],
      { CARGO_CACHER_AUTH_TOKEN_FILE: '/etc/cargo-cacher/tokens' },
    );
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^upstream = "https:\/\/builder:\*\*\*@dl\.example\/crates"/m);
    assert.match(result.stdout, /^auth-token-file = "\/etc\/cargo-cacher\/tokens"/m);
    assert.doesNotMatch(result.stdout, /s3cret/);
  });

  test('--check: exit 0 when valid, 1 with one line naming file, line and key when not', async () => {
    const good = await file('good.toml', '[server]\nport = 8081\n');
    const ok = await run(['config', '--check', '--config', good]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, `configuration OK (config file: ${good})\n`);

    const cases: [string, string][] = [
      ['[server]\nport = 8080\nbogus = 1\n', ':3: unknown key "bogus" in [server]'],
      [
        '[upstream]\noffline = "no"\n',
        ':2: [upstream] offline: expected true or false, got a string',
      ],
      [
        '[expiry]\n\nexpire-after = "90 fortnights"\n',
        ':3: [expiry] expire-after: unknown duration unit "fortnights" in "90 fortnights"',
      ],
    ];
    for (const [index, [text, expected]] of cases.entries()) {
      const bad = await file(`bad-${index}.toml`, text);
      const result = await run(['config', '--check', '--config', bad]);
      assert.equal(result.code, 1);
      assert.equal(result.stdout, '');
      assert.equal(result.stderr, `cargo-cacher: ${bad}${expected}\n`);
    }
    // Settings that are fine one by one but not together are checked too.
    const together = await run(['config', '--check', '--config', 'none', '--mirror-filter', 'f']);
    assert.equal(together.code, 1);
    assert.match(together.stderr, /^cargo-cacher: --mirror-filter narrows -a\/--all: add -a\n$/);
  });

  test('a bad config file stops the server before it listens, with one line', async () => {
    const bad = await file('serve-bad.toml', '[index]\nindex-ttl = "soon"\n');
    const result = await run(['--config', bad, '-p', '0', '--listen', '127.0.0.1']);
    assert.equal(result.code, 2);
    assert.equal(
      result.stderr,
      `cargo-cacher: ${bad}:2: [index] index-ttl: invalid duration "soon" (use 600, 30s, 10m, 1h or "2 hours")\n`,
    );
    assert.equal(result.stdout, '');
  });
});
