import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isCacherError } from '../../src/errors.ts';
import {
  type BundleManifest,
  bundleIndexPath,
  encodeBundleManifest,
  fileIdentity,
  parseBundleManifest,
} from '../../src/registry/bundle-manifest.ts';

const SHA = 'c'.repeat(64);

function manifest(overrides: Partial<BundleManifest> = {}): BundleManifest {
  return {
    format: 'cargo-cacher-bundle',
    version: 1,
    createdAt: '2026-12-02T10:00:00.000Z',
    source: {
      storage: '/var/cache/crates',
      upstream: 'https://crates.io',
      dl: 'https://static.crates.io/crates',
    },
    crates: [
      { name: 'MixedCase', version: '0.3.0', path: 'crates/mi/xe/mixedcase/mixedcase-0.3.0.crate' },
      { name: 'ab', version: '1.0.0+build.5', path: 'crates/2/ab/ab-1.0.0+build.5.crate' },
    ],
    files: [
      { path: 'index/mi/xe/mixedcase', size: 120, sha256: SHA },
      { path: 'index/2/ab', size: 10, sha256: SHA },
      { path: 'crates/mi/xe/mixedcase/mixedcase-0.3.0.crate', size: 300, sha256: SHA },
      { path: 'crates/2/ab/ab-1.0.0+build.5.crate', size: 0, sha256: SHA },
    ],
    ...overrides,
  };
}

/** The message of the error parsing `value` throws (as JSON), or fails when it parses. */
function refusal(value: unknown): string {
  try {
    parseBundleManifest(typeof value === 'string' ? value : JSON.stringify(value));
  } catch (err) {
    assert.ok(isCacherError(err, 'CARGO_CACHER_BAD_REQUEST'), String(err));
    return err.message;
  }
  assert.fail('the manifest was accepted');
}

describe('bundle manifest', () => {
  test('round-trips through its encoding', () => {
    const original = manifest({ since: '2026-11-25T10:00:00.000Z' });
    assert.deepEqual(parseBundleManifest(encodeBundleManifest(original)), original);
  });

  test('is written one file per line', () => {
    const text = encodeBundleManifest(manifest());
    for (const file of manifest().files) {
      assert.ok(
        text.split('\n').some((row) => row.includes(JSON.stringify(file))),
        file.path,
      );
    }
  });

  test('an empty bundle (nothing new since the last one) is a manifest too', () => {
    const empty = manifest({ crates: [], files: [] });
    assert.deepEqual(parseBundleManifest(encodeBundleManifest(empty)), empty);
  });

  test('refuses what is not a bundle manifest, saying why', () => {
    assert.match(refusal('{"format":'), /manifest\.json: not JSON/);
    assert.match(refusal([]), /the manifest is not an object/);
    assert.match(
      refusal({ ...manifest(), format: 'other' }),
      /format is not "cargo-cacher-bundle"/,
    );
    assert.match(refusal({ ...manifest(), version: 2 }), /version 2 is not supported/);
  });

  test('refuses bad times', () => {
    assert.match(
      refusal({ ...manifest(), createdAt: 'yesterday' }),
      /createdAt "yesterday" is not an ISO 8601/,
    );
    assert.match(refusal({ ...manifest(), createdAt: '2026-13-45T99:00:00Z' }), /createdAt/);
    assert.match(refusal({ ...manifest(), since: 5 }), /since is not a string/);
  });

  test('refuses bad file entries, naming the entry', () => {
    const files = manifest().files;
    const withFile = (i: number, change: object) => ({
      ...manifest(),
      files: files.map((file, j) => (j === i ? { ...file, ...change } : file)),
    });
    assert.match(
      refusal(withFile(1, { sha256: 'C'.repeat(64) })),
      /files\[1\]\.sha256 is not a hex sha256/,
    );
    assert.match(refusal(withFile(0, { size: -1 })), /files\[0\]\.size is not a byte count/);
    assert.match(refusal(withFile(0, { size: 1.5 })), /files\[0\]\.size/);
    assert.match(
      refusal(withFile(0, { path: 'config.json' })),
      /files\[0\]\.path "config.json" is neither/,
    );
    assert.match(refusal(withFile(0, { path: 'index/mi/xe/MixedCase' })), /is neither/);
    assert.match(refusal(withFile(0, { path: 'index/../../etc/passwd' })), /is neither/);
  });

  test('refuses paths that are not exactly the key of a valid crate name and version', () => {
    const outside = 'crates/2/../..-1.0.0.crate';
    const bad = {
      ...manifest(),
      crates: [{ name: '..', version: '1.0.0', path: outside }],
      files: [{ path: outside, size: 1, sha256: SHA }],
    };
    assert.match(refusal(bad), /crates\[0\]\.name "\.\." is not a crate name/);
    const wrongPath = {
      ...manifest(),
      crates: [{ name: 'ab', version: '1.0.0', path: 'crates/2/ab/ab-2.0.0.crate' }],
      files: [{ path: 'crates/2/ab/ab-2.0.0.crate', size: 1, sha256: SHA }],
    };
    assert.match(refusal(wrongPath), /crates\[0\]\.path is not the path of ab 1\.0\.0/);
    const badVersion = {
      ...manifest(),
      crates: [{ name: 'ab', version: '1.0', path: 'crates/2/ab/ab-1.0.crate' }],
    };
    assert.match(refusal(badVersion), /crates\[0\]\.version "1\.0" is not a version/);
  });

  test('refuses a manifest whose crates and files disagree', () => {
    const { crates, files } = manifest();
    assert.match(
      refusal({ ...manifest(), files: [...files, files[0]] }),
      /index\/mi\/xe\/mixedcase is listed twice in files/,
    );
    assert.match(
      refusal({ ...manifest(), crates: [...crates, crates[0]] }),
      /MixedCase 0\.3\.0 is listed twice in crates/,
    );
    assert.match(
      refusal({ ...manifest(), files: files.slice(0, 3) }),
      /crates\/2\/ab\/ab-1\.0\.0\+build\.5\.crate of crates is not in files/,
    );
    assert.match(
      refusal({ ...manifest(), crates: crates.slice(0, 1) }),
      /of files is not in crates/,
    );
  });

  test('names the file it read in its errors', () => {
    assert.throws(
      () => parseBundleManifest('[]', '/media/usb/bundle/manifest.json'),
      /^CacherError: \/media\/usb\/bundle\/manifest\.json: /,
    );
  });

  test('index paths and identities', () => {
    assert.equal(bundleIndexPath('Serde'), 'index/se/rd/serde');
    assert.equal(bundleIndexPath('a'), 'index/1/a');
    assert.notEqual(
      fileIdentity({ path: 'index/1/a', sha256: SHA }),
      fileIdentity({ path: 'index/1/a', sha256: 'd'.repeat(64) }),
    );
  });
});
