import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { join, relative } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { type CargoSandbox, lockedPackages, makeCargoSandbox } from '../helpers/cargo-sandbox.ts';
import type { FakeCrateSpec, FakeUpstream } from '../helpers/fake-upstream.ts';
import { startFakeUpstream } from '../helpers/fake-upstream.ts';
import { type RunningProxy, startProxy } from '../helpers/proxy.ts';
import { cargoAvailable } from '../helpers/tools.ts';

/** c depends on b depends on a; plus a mixed-case name and a version with build metadata. */
const CRATES: FakeCrateSpec[] = [
  { name: 'e2e-a', version: '0.1.0' },
  { name: 'e2e-b', version: '0.1.0', deps: [{ name: 'e2e-a', req: '0.1' }] },
  { name: 'e2e-c', version: '0.2.0', deps: [{ name: 'e2e-b', req: '0.1' }] },
  { name: 'MixedCase', version: '0.3.0' },
  { name: 'plus', version: '1.0.0+build.5' },
];
const DEPS = { 'e2e-c': '0.2', MixedCase: '0.3', plus: '1.0.0' };
/** Calls into every dependency, so the build fails unless each one really was linked. */
const MAIN_RS = [
  '#![allow(non_snake_case)]',
  'fn main() {',
  '    println!("{} {} {}", e2e_c::dep_e2e_b(), MixedCase::name(), plus::name());',
  '}',
  '',
].join('\n');
/** What the program prints: e2e-b via e2e-c, then the two others. */
const EXPECTED_OUTPUT = 'e2e-b-0.1.0 MixedCase-0.3.0 plus-1.0.0+build.5';
/** How a replaced crates.io is recorded in Cargo.lock (cargo-protocol.md §4). */
const CRATES_IO_SOURCE = 'registry+https://github.com/rust-lang/crates.io-index';

interface World {
  upstream: FakeUpstream;
  proxy: RunningProxy;
}

/** The fake upstream and a proxy that revalidates every index file (TTL 0). */
async function startWorld(t: TestContext): Promise<World> {
  const upstream = await startFakeUpstream({ crates: CRATES });
  t.after(() => upstream.close());
  const proxy = await startProxy({ upstream, settings: { indexTtlMs: 0 } });
  t.after(() => proxy.close());
  return { upstream, proxy };
}

async function sandbox(t: TestContext, proxy: RunningProxy): Promise<CargoSandbox> {
  const made = await makeCargoSandbox({
    registry: proxy.sparseRegistry,
    deps: DEPS,
    mainRs: MAIN_RS,
  });
  t.after(() => made.remove());
  return made;
}

/** generate-lockfile, fetch, then an offline build and run that prints what it linked. */
async function resolveFetchBuild(box: CargoSandbox): Promise<void> {
  await box.cargo(['generate-lockfile']);
  await box.cargo(['fetch']);
  await box.cargo(['build', '--offline']);
  const run = await box.cargo(['run', '--offline', '--quiet']);
  assert.equal(run.stdout.trim(), EXPECTED_OUTPUT);
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
    .sort();
}

describe('cargo through the sparse index', () => {
  test('resolves, fetches and builds, and again from the cache with upstream down', async (t) => {
    if (!(await cargoAvailable(t))) return;
    const { upstream, proxy } = await startWorld(t);

    const first = await sandbox(t, proxy);
    await resolveFetchBuild(first);

    const locked = await lockedPackages(first);
    assert.deepEqual(locked.map((pkg) => pkg.name).sort(), [
      'MixedCase',
      'e2e-a',
      'e2e-b',
      'e2e-c',
      'plus',
    ]);
    for (const pkg of locked) {
      assert.equal(pkg.source, CRATES_IO_SOURCE);
      assert.equal(pkg.checksum, upstream.crate(pkg.name, pkg.version).checksum, pkg.name);
    }
    const stored = await listFiles(join(proxy.storageDir, 'crates'));
    for (const { name, version } of CRATES) {
      const file = `${name.toLowerCase()}-${version}.crate`;
      assert.ok(
        stored.some((path) => path.endsWith(`/${file}`)),
        `${file} in ${stored.join(', ')}`,
      );
    }
    assert.equal(upstream.count('/dl/'), CRATES.length, 'each crate was downloaded once');

    await upstream.stop();

    // A second machine: fresh CARGO_HOME, nothing cached but the proxy.
    const second = await sandbox(t, proxy);
    await resolveFetchBuild(second);
    assert.deepEqual(await lockedPackages(second), locked, 'the same resolution');

    // A third one that brings run 1's Cargo.lock: only downloads, all from the proxy.
    const third = await sandbox(t, proxy);
    await writeFile(
      join(third.projectDir, 'Cargo.lock'),
      await readFile(join(first.projectDir, 'Cargo.lock')),
    );
    await third.cargo(['fetch', '--locked']);
    await third.cargo(['build', '--offline', '--locked']);
  });

  test('works with HTTP multiplexing on, when cargo sends Upgrade: h2c', async (t) => {
    if (!(await cargoAvailable(t))) return;
    const { proxy } = await startWorld(t);
    const upgrades: string[] = [];
    proxy.app.server.on('request', (request: IncomingMessage) => {
      if (request.headers.upgrade !== undefined) upgrades.push(request.headers.upgrade);
    });
    const box = await sandbox(t, proxy);
    // cargo-sandbox turns multiplexing off; this test wants cargo's default.
    delete box.env.CARGO_HTTP_MULTIPLEXING;
    await resolveFetchBuild(box);
    assert.ok(upgrades.length > 0, 'cargo asked to upgrade to h2c');
    assert.ok(upgrades.every((value) => value === 'h2c'));
  });

  test('over plain HTTP with cargo defaults, cold crates download on two connections', async (t) => {
    if (!(await cargoAvailable(t))) return;
    // Sixteen crates that are slow to come from upstream. cargo (curl) opens its second
    // connection only when a queued download finds the first with a response under way, which
    // a miss answered as headers, then body, shows (routes/crates.ts).
    const specs = Array.from({ length: 16 }, (_, i) => ({ name: `par-${i}`, version: '1.0.0' }));
    const upstream = await startFakeUpstream({ crates: specs });
    t.after(() => upstream.close());
    const proxy = await startProxy({ upstream });
    t.after(() => proxy.close());
    const made = await makeCargoSandbox({
      registry: proxy.sparseRegistry,
      deps: Object.fromEntries(specs.map((spec) => [spec.name, '1'])),
    });
    t.after(() => made.remove());
    delete made.env.CARGO_HTTP_MULTIPLEXING;
    await made.cargo(['generate-lockfile']);
    upstream.setFault({ kind: 'slow', delayMs: 40 }, 'crate');
    let connections = 0;
    proxy.app.server.on('connection', () => {
      connections++;
    });
    await made.cargo(['fetch']);
    const downloads = upstream.count((request) => request.path.endsWith('/download'));
    assert.equal(downloads, specs.length);
    assert.ok(connections >= 2, `cargo used ${connections} connection(s) for the downloads`);
  });
});
