import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type CommandResult, finished } from '../helpers/cli-process.ts';
import { Gate, startFakeUpstream } from '../helpers/fake-upstream.ts';
import { httpGet } from '../helpers/http-get.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = join(REPO, 'src', 'cli', 'main.ts');
/** tsx's loader by URL, so the CLI also starts from a cwd without node_modules. */
const TSX = import.meta.resolve('tsx');

/** Every flag the issue names; `--help` must list each one. */
const FLAGS = [
  '-p',
  '--listen',
  '-i',
  '-s',
  '-u',
  '-e',
  '--index-ttl',
  '-r',
  '-g',
  '--no-git',
  '-a',
  '-f',
  '-t',
  '--offline',
  '-d',
  '--log-format',
  '--upstream-connect-timeout',
  '--upstream-timeout',
  '--upstream-body-timeout',
  '--max-crate-size',
  '--auth-token-file',
  '--client-header-timeout',
  '--client-body-timeout',
  '--client-idle-timeout',
  '--client-send-timeout',
  '--max-connections',
  '--max-connections-per-ip',
];

type Finished = CommandResult;

/** Spawns the CLI; the child is killed when the test ends if it is still running. */
function spawnCli(t: TestContext, args: string[], cwd = REPO): ChildProcess {
  const child = spawn(process.execPath, ['--import', TSX, MAIN, ...args], {
    cwd,
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return child;
}

async function runCli(t: TestContext, args: string[]): Promise<Finished> {
  return finished(spawnCli(t, args));
}

interface Started {
  child: ChildProcess;
  url: string;
  /** The startup log line, parsed. */
  startup: { msg: string; storage: string; sparseUpstream: string };
  exit: Promise<Finished>;
}

/** Starts a serving CLI and waits for its startup line. */
async function startCli(t: TestContext, args: string[], cwd?: string): Promise<Started> {
  const child = spawnCli(t, ['-p', '0', '--listen', '127.0.0.1', '--no-git', ...args], cwd);
  const exit = finished(child);
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const startupLine = new Promise<Started['startup'] & { listen: string }>((resolve, reject) => {
    lines.on('line', (line) => {
      let record: Started['startup'] & { listen?: string };
      try {
        record = JSON.parse(line);
      } catch {
        return; // not a log line
      }
      if (record.listen !== undefined) resolve(record as Started['startup'] & { listen: string });
    });
    exit.then(
      (result) => reject(new Error(`the CLI exited before listening: ${result.stderr}`)),
      reject,
    );
  });
  const startup = await startupLine;
  return { child, url: `http://${startup.listen}`, startup, exit };
}

/** Resolves when the CLI logs a line matching `pattern`. */
function logged(child: ChildProcess, pattern: RegExp): Promise<void> {
  return new Promise((resolve) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      if (pattern.test(line)) resolve();
    });
  });
}

describe('cli: information', { timeout: 120_000 }, () => {
  test('--help lists every flag', async (t) => {
    const { code, stdout } = await runCli(t, ['--help']);
    assert.equal(code, 0);
    for (const flag of FLAGS) {
      const listed = new RegExp(`(^|[\\s,])${flag}([\\s,]|$)`, 'm');
      assert.match(stdout, listed, `${flag} is listed`);
    }
    // Durations read as seconds when bare, so their defaults must not show milliseconds.
    assert.match(stdout, /--index-ttl[\s\S]*?\(default: 60s\)/);
    assert.match(stdout, /--refresh[\s\S]*?\(default: 600s\)/);
    assert.match(stdout, /--client-idle-timeout[\s\S]*?\(default: 5s\)/);
  });

  test("--version prints package.json's version", async (t) => {
    const pkg = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as {
      version: string;
    };
    const { code, stdout } = await runCli(t, ['--version']);
    assert.equal(code, 0);
    assert.equal(stdout.trim(), pkg.version);
  });
});

describe('cli: bad values', { timeout: 240_000 }, () => {
  const cases: [string, string[]][] = [
    ['a port out of range', ['-p', '99999']],
    ['an unknown duration unit', ['--index-ttl', '5x']],
    ['zero threads', ['-t', '0']],
    ['a non-http sparse URL', ['-s', 'ftp://x']],
    ['an unknown flag', ['--no-such-flag']],
    ['a misspelt flag', ['--prot', '8080']],
    ['an unknown log format', ['--log-format', 'xml']],
    ['an unknown way to list withheld versions', ['--withheld-as', 'hidden']],
    ['a per-address connection cap of zero', ['--max-connections-per-ip', '0']],
    [
      'a header timeout longer than the body timeout',
      ['--client-header-timeout', '1m', '--no-git'],
    ],
    ['a storage dir below a file', ['-i', '/etc/passwd/sub', '-p', '0', '--no-git']],
  ];
  test('a deny file with a malformed line: one line naming the file and line, non-zero exit', async (t) => {
    const dir = await makeTempDir('cli-deny');
    t.after(() => removeTempDir(dir));
    const deny = join(dir, 'deny');
    await writeFile(deny, '# denied\nproc-macro1\narrayref@not-a-version!\n');
    const storage = join(dir, 'store');
    const { code, stderr } = await runCli(t, [
      '-i',
      storage,
      '-p',
      '0',
      '--no-git',
      '--deny',
      deny,
    ]);
    assert.notEqual(code, 0);
    const lines = stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, `one line, got:\n${stderr}`);
    assert.match(lines[0] ?? '', new RegExp(`${deny}:3: `));
  });

  for (const [what, args] of cases) {
    test(`exits non-zero with one line and no stack trace for ${what}`, async (t) => {
      const { code, stderr } = await runCli(t, args);
      assert.notEqual(code, 0);
      const lines = stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, `one line, got:\n${stderr}`);
      assert.ok((lines[0] ?? '').length > 0);
      assert.doesNotMatch(stderr, /^\s+at /m);
    });
  }
});

describe('cli: serving', { timeout: 120_000 }, () => {
  test('logs where it listens, stores and fetches from, and serves /health', async (t) => {
    const upstream = await startFakeUpstream({ crates: [{ name: 'fake-a', version: '0.1.0' }] });
    t.after(() => upstream.close());
    const dir = await makeTempDir('cli-serve');
    t.after(() => removeTempDir(dir));
    const storage = join(dir, 'store');
    const cli = await startCli(t, ['-i', storage, '-s', upstream.indexUrl]);
    assert.ok(cli.startup.msg.includes(storage), cli.startup.msg);
    assert.ok(cli.startup.msg.includes(upstream.indexUrl), cli.startup.msg);
    const health = await httpGet(`${cli.url}/health`);
    assert.equal(health.status, 200);
    assert.equal((JSON.parse(health.body.toString()) as { storage: string }).storage, storage);
    const file = await httpGet(`${cli.url}/index/fa/ke/fake-a`);
    assert.equal(file.status, 200);
    cli.child.kill('SIGTERM');
    const exited = await cli.exit;
    assert.equal(exited.code, 0, exited.stderr);
    assert.equal(exited.signal, null);
  });

  test('resolves a relative -i against the working directory', async (t) => {
    const upstream = await startFakeUpstream();
    t.after(() => upstream.close());
    const dir = await makeTempDir('cli-relative');
    t.after(() => removeTempDir(dir));
    const cli = await startCli(t, ['-i', 'relative/store', '-s', upstream.indexUrl], dir);
    const expected = resolve(dir, 'relative/store');
    assert.equal(cli.startup.storage, expected);
    assert.ok((await stat(expected)).isDirectory());
    const health = JSON.parse((await httpGet(`${cli.url}/health`)).body.toString());
    assert.equal(health.storage, expected);
    cli.child.kill('SIGTERM');
    assert.equal((await cli.exit).code, 0);
  });

  test('finishes an in-flight download on SIGTERM before exiting 0', async (t) => {
    const upstream = await startFakeUpstream({ crates: [{ name: 'fake-a', version: '0.1.0' }] });
    t.after(() => upstream.close());
    const dir = await makeTempDir('cli-sigterm');
    t.after(() => removeTempDir(dir));
    const cli = await startCli(t, ['-i', dir, '-s', upstream.indexUrl]);
    // The download is held half-sent until the CLI has taken the SIGTERM.
    const gate = new Gate();
    upstream.setFault({ kind: 'gate', gate }, 'crate');
    const download = httpGet(`${cli.url}/api/v1/crates/fake-a/0.1.0/download`);
    await gate.arrived(1);
    const shuttingDown = logged(cli.child, /shutting down/);
    cli.child.kill('SIGTERM');
    await shuttingDown;
    gate.open();
    const response = await download;
    assert.equal(response.status, 200);
    assert.equal(response.complete, true);
    assert.deepEqual(response.body, upstream.crate('fake-a', '0.1.0').bytes);
    const exited = await cli.exit;
    assert.equal(exited.code, 0, exited.stderr);
    await assert.rejects(httpGet(`${cli.url}/health`), { code: 'ECONNREFUSED' });
  });
});
