import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { archivesForProfile, parseChannelManifest } from '../../src/registry/channel-manifest.ts';

const H = (c: string) => c.repeat(64);
const ROOT = 'https://static.rust-lang.org/dist/2026-11-26';

const MANIFEST = `
manifest-version = "2"
date = "2026-11-26"

[pkg.rust]
version = "1.99.0 (abc 2026-11-26)"
[pkg.rust.target.x86_64-unknown-linux-gnu]
available = true
url = "${ROOT}/rust-1.99.0-x86_64-unknown-linux-gnu.tar.gz"
hash = "${H('0')}"

[pkg.rustc]
version = "1.99.0 (abc 2026-11-26)"
[pkg.rustc.target.x86_64-unknown-linux-gnu]
available = true
url = "${ROOT}/rustc-1.99.0-x86_64-unknown-linux-gnu.tar.gz"
hash = "${H('1')}"
xz_url = "${ROOT}/rustc-1.99.0-x86_64-unknown-linux-gnu.tar.xz"
xz_hash = "${H('2')}"
[pkg.rustc.target.aarch64-apple-darwin]
available = true
url = "${ROOT}/rustc-1.99.0-aarch64-apple-darwin.tar.gz"
hash = "${H('3')}"
[pkg.rustc.target.riscv64gc-unknown-none-elf]
available = false

[pkg.rust-std.target.x86_64-unknown-linux-gnu]
available = true
url = "${ROOT}/rust-std-1.99.0-x86_64-unknown-linux-gnu.tar.gz"
hash = "${H('4')}"
[pkg.rust-src.target."*"]
available = true
url = "${ROOT}/rust-src-1.99.0.tar.gz"
hash = "${H('5')}"
[pkg.rust-docs-new.target.x86_64-unknown-linux-gnu]
available = true
url = "${ROOT}/rust-docs-1.99.0-x86_64-unknown-linux-gnu.tar.gz"
hash = "${H('6')}"

[renames.rust-docs]
to = "rust-docs-new"

[profiles]
minimal = ["rustc", "rust-std"]
default = ["rustc", "rust-std", "rust-docs"]
complete = ["rustc", "rust-std", "rust-docs", "rust-src", "rls"]
`;

describe('channel manifests', () => {
  const manifest = parseChannelManifest(MANIFEST);

  test('every archive named, gz and xz, by dist path with its hash', () => {
    assert.equal(manifest.date, '2026-11-26');
    assert.equal(manifest.rustVersion, '1.99.0 (abc 2026-11-26)');
    assert.equal(manifest.hashes.size, 7);
    assert.equal(
      manifest.hashes.get('dist/2026-11-26/rustc-1.99.0-x86_64-unknown-linux-gnu.tar.xz'),
      H('2'),
    );
    assert.equal(manifest.hashes.get('dist/2026-11-26/rust-src-1.99.0.tar.gz'), H('5'));
  });

  test('a profile for a target: xz when offered, renames followed, unknown components left out', () => {
    const paths = (profile: string, targets: string[]) =>
      archivesForProfile(manifest, profile, targets).map((a) => a.path.split('/').at(-1));
    assert.deepEqual(paths('minimal', ['x86_64-unknown-linux-gnu']), [
      'rustc-1.99.0-x86_64-unknown-linux-gnu.tar.xz',
      'rust-std-1.99.0-x86_64-unknown-linux-gnu.tar.gz',
    ]);
    assert.deepEqual(paths('complete', ['x86_64-unknown-linux-gnu']), [
      'rustc-1.99.0-x86_64-unknown-linux-gnu.tar.xz',
      'rust-std-1.99.0-x86_64-unknown-linux-gnu.tar.gz',
      'rust-docs-1.99.0-x86_64-unknown-linux-gnu.tar.gz',
      'rust-src-1.99.0.tar.gz',
    ]);
    assert.deepEqual(paths('minimal', ['aarch64-apple-darwin', 'riscv64gc-unknown-none-elf']), [
      'rustc-1.99.0-aarch64-apple-darwin.tar.gz',
    ]);
    const [first] = archivesForProfile(manifest, 'minimal', ['x86_64-unknown-linux-gnu']);
    assert.equal(first?.sha256, H('2'));
  });

  test('an unknown profile is a configuration error', () => {
    assert.throws(() => archivesForProfile(manifest, 'huge', ['x86_64-unknown-linux-gnu']), {
      code: 'CARGO_CACHER_INVALID_CONFIG',
    });
  });

  test('not TOML, or not a v2 manifest: refused', () => {
    for (const text of ['<html>', 'manifest-version = "1"\ndate = "x"', 'date = "2026-11-26"']) {
      assert.throws(() => parseChannelManifest(text), { code: 'CARGO_CACHER_UPSTREAM_INVALID' });
    }
  });
});
