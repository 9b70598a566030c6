import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { hostTriple } from '../../src/registry/host-triple.ts';
import {
  archivePathOfUrl,
  manifestPathOfChannel,
  parseRustupPath,
  type RustupPath,
  releaseOfArchive,
} from '../../src/registry/rustup-paths.ts';
import { formatSidecar, parseSidecar } from '../../src/registry/sha256-sidecar.ts';

const HEX = 'ab'.repeat(32);

const KINDS: [string, RustupPath][] = [
  [
    '/dist/channel-rust-stable.toml',
    {
      kind: 'pair',
      role: 'file',
      pair: {
        file: 'dist/channel-rust-stable.toml',
        sidecar: 'dist/channel-rust-stable.toml.sha256',
        mutable: true,
        manifest: true,
      },
    },
  ],
  [
    '/dist/channel-rust-1.90.0.toml.sha256',
    {
      kind: 'pair',
      role: 'sidecar',
      pair: {
        file: 'dist/channel-rust-1.90.0.toml',
        sidecar: 'dist/channel-rust-1.90.0.toml.sha256',
        mutable: true,
        manifest: true,
      },
    },
  ],
  [
    '/dist/2026-11-26/channel-rust-nightly.toml',
    {
      kind: 'pair',
      role: 'file',
      pair: {
        file: 'dist/2026-11-26/channel-rust-nightly.toml',
        sidecar: 'dist/2026-11-26/channel-rust-nightly.toml.sha256',
        mutable: false,
        manifest: true,
      },
    },
  ],
  [
    '/rustup/dist/x86_64-unknown-linux-gnu/rustup-init',
    {
      kind: 'pair',
      role: 'file',
      pair: {
        file: 'rustup/dist/x86_64-unknown-linux-gnu/rustup-init',
        sidecar: 'rustup/dist/x86_64-unknown-linux-gnu/rustup-init.sha256',
        mutable: true,
        manifest: false,
      },
    },
  ],
  [
    '/rustup/archive/1.29.0/x86_64-pc-windows-msvc/rustup-init.exe.sha256',
    {
      kind: 'pair',
      role: 'sidecar',
      pair: {
        file: 'rustup/archive/1.29.0/x86_64-pc-windows-msvc/rustup-init.exe',
        sidecar: 'rustup/archive/1.29.0/x86_64-pc-windows-msvc/rustup-init.exe.sha256',
        mutable: false,
        manifest: false,
      },
    },
  ],
  [
    '/dist/2026-11-26/rustc-1.99.0-x86_64-unknown-linux-gnu.tar.xz',
    { kind: 'archive', path: 'dist/2026-11-26/rustc-1.99.0-x86_64-unknown-linux-gnu.tar.xz' },
  ],
  [
    '/dist/2026-11-26/rust-src-1.99.0.tar.gz',
    { kind: 'archive', path: 'dist/2026-11-26/rust-src-1.99.0.tar.gz' },
  ],
  ['/rustup/release-stable.toml', { kind: 'release', path: 'rustup/release-stable.toml' }],
  [
    '/dist/channel-rust-stable.toml.asc',
    { kind: 'pass-through', path: 'dist/channel-rust-stable.toml.asc' },
  ],
  [
    '/dist/channel-rust-stable.sha256',
    { kind: 'pass-through', path: 'dist/channel-rust-stable.sha256' },
  ],
  [
    '/dist/2026-11-26/rustc-1.99.0-x86_64-unknown-linux-gnu.tar.xz.sha256',
    {
      kind: 'pass-through',
      path: 'dist/2026-11-26/rustc-1.99.0-x86_64-unknown-linux-gnu.tar.xz.sha256',
    },
  ],
  [
    '/dist/rust-1.99.0-x86_64-pc-windows-msvc.msi',
    { kind: 'pass-through', path: 'dist/rust-1.99.0-x86_64-pc-windows-msvc.msi' },
  ],
  [
    '/dist/channel-rust-stable.toml?x=1',
    {
      kind: 'pair',
      role: 'file',
      pair: {
        file: 'dist/channel-rust-stable.toml',
        sidecar: 'dist/channel-rust-stable.toml.sha256',
        mutable: true,
        manifest: true,
      },
    },
  ],
];

describe('rustup dist paths', () => {
  for (const [path, expected] of KINDS) {
    test(`${path} is ${expected.kind}`, () => {
      assert.deepEqual(parseRustupPath(path), expected);
    });
  }

  const BAD = [
    '/dist/../catalogue.sqlite',
    '/dist/%2e%2e/x',
    '/dist//channel-rust-stable.toml',
    '/dist/./channel-rust-stable.toml',
    '/rustup/..',
    '/index/config.json',
    '/dist',
    '/dist/',
    `/dist/${'a'.repeat(600)}`,
    '/dist/a/b/c/d/e/f/g',
    '/dist/x y',
    '/dist/x\\..\\y',
  ];
  for (const path of BAD) {
    test(`${JSON.stringify(path)} is refused with 400`, () => {
      assert.throws(() => parseRustupPath(path), { code: 'CARGO_CACHER_BAD_REQUEST' });
    });
  }
});

describe('channels and archive URLs', () => {
  const CHANNELS: [string, string][] = [
    ['stable', 'dist/channel-rust-stable.toml'],
    ['beta', 'dist/channel-rust-beta.toml'],
    ['1.90.0', 'dist/channel-rust-1.90.0.toml'],
    ['1.90', 'dist/channel-rust-1.90.toml'],
    ['nightly-2026-11-01', 'dist/2026-11-01/channel-rust-nightly.toml'],
    ['stable-2026-11-26', 'dist/2026-11-26/channel-rust-stable.toml'],
  ];
  for (const [channel, path] of CHANNELS) {
    test(`channel ${channel} is ${path}`, () => assert.equal(manifestPathOfChannel(channel), path));
  }
  for (const channel of ['', '../x', 'stable/../x', 'a b']) {
    test(`channel ${JSON.stringify(channel)} is refused`, () => {
      assert.throws(() => manifestPathOfChannel(channel), { code: 'CARGO_CACHER_INVALID_CONFIG' });
    });
  }
  test('archive URLs become dist paths; other hosts, other paths and garbage do not', () => {
    const url =
      'https://static.rust-lang.org/dist/2026-11-26/cargo-1.99.0-x86_64-unknown-linux-gnu.tar.xz';
    assert.equal(
      archivePathOfUrl(url),
      'dist/2026-11-26/cargo-1.99.0-x86_64-unknown-linux-gnu.tar.xz',
    );
    assert.equal(
      archivePathOfUrl('https://mirror.example/dist/2026-11-26/a.tar.gz'),
      'dist/2026-11-26/a.tar.gz',
    );
    assert.equal(archivePathOfUrl('https://x.example/other/2026-11-26/a.tar.gz'), undefined);
    assert.equal(archivePathOfUrl('https://x.example/dist/2026-11-26/../../a.tar.gz'), undefined);
    assert.equal(archivePathOfUrl('not a url'), undefined);
  });
});

describe('.sha256 sidecars', () => {
  test('read as static.rust-lang.org writes them, with or without a binary mark', () => {
    assert.equal(parseSidecar(`${HEX}  channel-rust-stable.toml\n`), HEX);
    assert.equal(parseSidecar(`${HEX.toUpperCase()} *rustup-init\n`), HEX);
    assert.equal(parseSidecar(HEX), HEX);
    assert.equal(parseSidecar(formatSidecar(HEX, 'x.tar.xz')), HEX);
  });
  test('anything else is not a sidecar', () => {
    for (const text of ['', 'not found', `${HEX}0  x`, `${HEX.slice(2)}  x`, `<html>${HEX}`]) {
      assert.equal(parseSidecar(text), undefined, text);
    }
  });
});

describe('host triple', () => {
  const CASES: [Parameters<typeof hostTriple>[0], string][] = [
    [{ platform: 'linux', arch: 'x64', glibc: true }, 'x86_64-unknown-linux-gnu'],
    [{ platform: 'linux', arch: 'arm64', glibc: false }, 'aarch64-unknown-linux-musl'],
    [{ platform: 'darwin', arch: 'arm64', glibc: true }, 'aarch64-apple-darwin'],
    [{ platform: 'win32', arch: 'x64', glibc: true }, 'x86_64-pc-windows-msvc'],
  ];
  for (const [facts, triple] of CASES) {
    test(`${facts.platform} ${facts.arch} is ${triple}`, () =>
      assert.equal(hostTriple(facts), triple));
  }
});

describe('the release of an archive', () => {
  const CASES: [string, string | undefined][] = [
    ['dist/2026-11-26/rustc-1.99.0-x86_64-unknown-linux-gnu.tar.xz', '1.99.0 (2026-11-26)'],
    ['dist/2026-11-26/rust-std-1.99.0-aarch64-apple-darwin.tar.gz', '1.99.0 (2026-11-26)'],
    ['dist/2026-11-26/rust-src-1.99.0.tar.xz', '1.99.0 (2026-11-26)'],
    ['dist/2026-11-01/rustc-nightly-x86_64-unknown-linux-gnu.tar.xz', 'nightly (2026-11-01)'],
    ['dist/2026-11-01/llvm-tools-nightly-x86_64-unknown-linux-gnu.tar.xz', 'nightly (2026-11-01)'],
    [
      'dist/2026-11-26/cargo-1.100.0-beta.3-x86_64-unknown-linux-gnu.tar.xz',
      '1.100.0-beta.3 (2026-11-26)',
    ],
    ['dist/2026-11-26/unlisted.tar.gz', undefined],
    ['dist/channel-rust-stable.toml', undefined],
  ];
  for (const [path, release] of CASES) {
    test(`${path} is ${release}`, () => assert.equal(releaseOfArchive(path), release));
  }
});
