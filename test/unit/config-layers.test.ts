import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { resolveServeOptions } from '../../src/cli/config-layers.ts';
import { buildProgram } from '../../src/cli/main.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';

let dir: string;
before(async () => {
  dir = await makeTempDir('config-layers');
});
after(() => removeTempDir(dir));

let files = 0;
/** Writes a config file and returns its path. */
async function configFile(text: string): Promise<string> {
  files += 1;
  const path = join(dir, `config-${files}.toml`);
  await writeFile(path, text);
  return path;
}

/** The serve options a start with `args`, `env` and the file would have. */
async function resolve(args: string[], env: NodeJS.ProcessEnv = {}) {
  return resolveServeOptions(buildProgram(), ['--config', 'none', ...args], env);
}

async function resolveWithFile(text: string, args: string[] = [], env: NodeJS.ProcessEnv = {}) {
  const path = await configFile(text);
  return resolveServeOptions(buildProgram(), ['--config', path, ...args], env);
}

/** The one-line error a start with this file would stop with. */
async function errorOf(text: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const path = await configFile(text);
  try {
    await resolveServeOptions(buildProgram(), ['--config', path], env);
  } catch (err) {
    return (err as Error).message.replaceAll(path, 'FILE');
  }
  assert.fail('the file was accepted');
}

const SAME_SETTINGS = {
  flags: [
    '-p',
    '9000',
    '--index-ttl',
    '2m',
    '--max-size',
    '20GB',
    '-f',
    '/a/Cargo.lock',
    '-f',
    '/b/Cargo.lock',
    '--offline',
    '--no-git',
    '-dd',
    '--withheld-as',
    'omit',
    '-s',
    'https://one.example/,https://two.example/',
  ],
  env: {
    CARGO_CACHER_PORT: '9000',
    CARGO_CACHER_INDEX_TTL: '2m',
    CARGO_CACHER_MAX_SIZE: '20GB',
    CARGO_CACHER_PREFETCH: '/a/Cargo.lock,/b/Cargo.lock',
    CARGO_CACHER_OFFLINE: 'true',
    CARGO_CACHER_NO_GIT: '1',
    CARGO_CACHER_DEBUG: '2',
    CARGO_CACHER_WITHHELD_AS: 'omit',
    CARGO_CACHER_SPARSE: 'https://one.example/,https://two.example/',
  },
  file: [
    '[server]',
    'port = 9000',
    '[index]',
    'index-ttl = "2m"',
    '[expiry]',
    'max-size = "20GB"',
    '[mirror]',
    'prefetch = ["/a/Cargo.lock", "/b/Cargo.lock"]',
    '[upstream]',
    'offline = true',
    'sparse = ["https://one.example/", "https://two.example/"]',
    '[git]',
    'no-git = true',
    '[log]',
    'debug = 2',
    '[policy]',
    'withheld-as = "omit"',
  ].join('\n'),
};

describe('config layers: flags, environment, file, defaults', () => {
  test('the same settings as flags, environment variables or file keys give the same options', async () => {
    const fromFlags = (await resolve(SAME_SETTINGS.flags)).options;
    const fromEnv = (await resolve([], SAME_SETTINGS.env)).options;
    const fromFile = (await resolveWithFile(SAME_SETTINGS.file)).options;
    delete fromFlags.config;
    delete fromEnv.config;
    delete fromFile.config;
    assert.deepEqual(fromEnv, fromFlags);
    assert.deepEqual(fromFile, fromFlags);
    assert.equal(fromFlags.port, 9000);
    assert.equal(fromFlags.indexTtl, 120_000);
    assert.equal(fromFlags.maxSize, 20e9);
    assert.equal(fromFlags.git, false);
    assert.equal(fromFlags.debug, 2);
  });

  test('flags beat the environment, which beats the file, which beats the defaults', async () => {
    const { options, layers } = await resolveWithFile(
      '[server]\nport = 1111\nlisten = "127.0.0.2"\n[index]\nindex-ttl = "3m"\n',
      ['-p', '3333'],
      { CARGO_CACHER_PORT: '2222', CARGO_CACHER_LISTEN: '127.0.0.3' },
    );
    assert.equal(options.port, 3333);
    assert.equal(options.listen, '127.0.0.3');
    assert.equal(options.indexTtl, 180_000);
    assert.equal(options.threads, 16);
    assert.deepEqual(layers.origins.get('port'), { source: 'flag', where: '--port' });
    assert.deepEqual(layers.origins.get('listen'), {
      source: 'env',
      where: 'CARGO_CACHER_LISTEN',
    });
    assert.match(layers.origins.get('indexTtl')?.where ?? '', /config-\d+\.toml:5$/);
    assert.equal(layers.origins.get('indexTtl')?.source, 'file');
    assert.deepEqual(layers.origins.get('threads'), { source: 'default' });
  });

  test('a repeatable flag on the command line replaces the list of the file, not adds to it', async () => {
    const { options } = await resolveWithFile('[mirror]\nprefetch = ["/from/file"]\n', [
      '-f',
      '/from/flag',
    ]);
    assert.deepEqual(options.prefetch, ['/from/flag']);
  });

  test('CARGO_CACHER_CONFIG names the file; --config none reads none', async () => {
    const path = await configFile('[server]\nport = 4444\n');
    const viaEnv = await resolveServeOptions(buildProgram(), [], { CARGO_CACHER_CONFIG: path });
    assert.equal(viaEnv.options.port, 4444);
    assert.equal(viaEnv.layers.file, path);
    const none = await resolveServeOptions(buildProgram(), ['--config', 'none'], {
      CARGO_CACHER_CONFIG: path,
    });
    assert.equal(none.options.port, 8080);
    assert.equal(none.layers.file, undefined);
  });

  test('no-git = false is the same as leaving it out; a boolean can be switched off by the file', async () => {
    const { options } = await resolveWithFile(
      '[git]\nno-git = false\n[upstream]\noffline = false\n',
    );
    assert.equal(options.git, 'https://github.com/rust-lang/crates.io-index.git');
    assert.equal(options.offline, false);
  });
});

describe('config layers: errors name the file, the line and the key', () => {
  test('an unknown key', async () => {
    assert.equal(
      await errorOf('[server]\nport = 8080\n\n# the listen address\nlisten-addr = "x"\n'),
      'FILE:5: unknown key "listen-addr" in [server]',
    );
    assert.equal(
      await errorOf('[server]\nprot = 8080\n'),
      'FILE:2: unknown key "prot" in [server] (did you mean "port" in [server]?)',
    );
  });

  test('a key in the wrong section, an unknown section, a key outside any section', async () => {
    assert.equal(
      await errorOf('[server]\nindex-ttl = "1m"\n'),
      'FILE:2: unknown key "index-ttl" in [server]: it belongs in [index]',
    );
    assert.equal(
      await errorOf('[server]\nport = 1\n[servers]\nport = 2\n'),
      'FILE:3: unknown section [servers] (sections: server, storage, upstream, index, git, mirror, policy, expiry, tls, auth, log, rustup)',
    );
    assert.equal(
      await errorOf('port = 8080\n'),
      'FILE:1: key "port" outside a section: it belongs in [server]',
    );
  });

  test('a wrong type', async () => {
    assert.equal(
      await errorOf('[server]\nport = true\n'),
      'FILE:2: [server] port: expected a string, got a boolean',
    );
    assert.equal(
      await errorOf('[upstream]\noffline = "yes"\n'),
      'FILE:2: [upstream] offline: expected true or false, got a string',
    );
    assert.equal(
      await errorOf('[mirror]\nprefetch = "/one/Cargo.lock"\n'),
      'FILE:2: [mirror] prefetch: expected an array of strings, got a string',
    );
    assert.equal(
      await errorOf('[log]\ndebug = "lots"\n'),
      'FILE:2: [log] debug: expected a whole number (0 or more), got a string',
    );
  });

  test('a bad value, through the flag own parser', async () => {
    assert.equal(
      await errorOf('[index]\n  "index-ttl" = "soon"\n'),
      'FILE:2: [index] index-ttl: invalid duration "soon" (use 600, 30s, 10m, 1h or "2 hours")',
    );
    assert.equal(
      await errorOf('[server]\nport = 70000\n'),
      'FILE:2: [server] port: a port is a number from 0 to 65535',
    );
    assert.equal(
      await errorOf('[policy]\nwithheld-as = "hidden"\n'),
      'FILE:2: [policy] withheld-as: Allowed choices are yanked, omit',
    );
  });

  test('a TOML syntax error, with its line', async () => {
    assert.match(await errorOf('[server]\nport = \n'), /^FILE:2: /);
  });

  test('a bad environment variable names itself', async () => {
    await assert.rejects(resolve([], { CARGO_CACHER_INDEX_TTL: 'soon' }), {
      message:
        'CARGO_CACHER_INDEX_TTL: invalid duration "soon" (use 600, 30s, 10m, 1h or "2 hours")',
    });
    await assert.rejects(resolve([], { CARGO_CACHER_OFFLINE: 'maybe' }), {
      message: 'CARGO_CACHER_OFFLINE: expected true or false, got "maybe"',
    });
  });

  test('a key and its negation set in one layer contradict each other', async () => {
    assert.match(
      await errorOf('[git]\ngit = "https://example.com/index.git"\nno-git = true\n'),
      /^FILE:3: \[git\] no-git: contradicts FILE:2 \(git\)$/,
    );
  });

  test('a config file that cannot be read', async () => {
    await assert.rejects(
      resolveServeOptions(buildProgram(), ['--config', join(dir, 'missing.toml')], {}),
      /cannot read config file .*missing\.toml \(ENOENT\)/,
    );
  });
});
