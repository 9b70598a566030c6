/**
 * The toolchain cache over HTTP, against a fake static.rust-lang.org: manifests as verified
 * pairs, revalidated or immutable; archives downloaded once for many clients, stored only when
 * they match; bad paths refused; what is not cached passed through; offline serving.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, type TestContext, test } from 'node:test';
import { toolchainKey } from '../../src/registry/rustup-paths.ts';
import { FakeDistTree, type PublishedRelease } from '../helpers/fake-dist.ts';
import { type FakeDistServer, startFakeDistServer } from '../helpers/fake-dist-server.ts';
import { sha256Hex } from '../helpers/fake-installer.ts';
import { httpGet, httpGetRawPath } from '../helpers/http-get.ts';
import { type RunningProxy, startProxy } from '../helpers/proxy.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';

const TTL_MS = 60_000;
const STABLE = '/dist/channel-rust-stable.toml';

interface World {
  tree: FakeDistTree;
  release: PublishedRelease;
  dist: FakeDistServer;
  proxy: RunningProxy;
  clock: { ms: number };
}

async function startWorld(
  t: TestContext,
  options: { offline?: boolean; upstream?: 'none'; storageDir?: string } = {},
): Promise<World> {
  const tree = new FakeDistTree();
  const release = await tree.publish({ version: '1.99.0', date: '2026-11-26' });
  tree.addRustupInit('1.29.0', 'x86_64-unknown-linux-gnu');
  const dist = await startFakeDistServer(tree);
  t.after(() => dist.close());
  const clock = { ms: Date.parse('2026-12-01T00:00:00Z') };
  const proxy = await startProxy({
    settings: {
      sparseUpstream: undefined,
      offline: options.offline ?? false,
      rustup: { upstream: options.upstream === 'none' ? undefined : dist.url, ttlMs: TTL_MS },
    },
    now: () => clock.ms,
    ...(options.storageDir && { storageDir: options.storageDir }),
  });
  t.after(() => proxy.close());
  return { tree, release, dist, proxy, clock };
}

/** A large archive only its sidecar vouches for (no manifest lists it). */
function addBigArchive(tree: FakeDistTree, bytes: number): { path: string; body: Buffer } {
  const path = '/dist/2026-11-26/llvm-tools-1.99.0-x86_64-unknown-linux-gnu.tar.xz';
  const body = randomBytes(bytes);
  tree.files.set(path, body);
  tree.files.set(`${path}.sha256`, tree.sidecarOf(path));
  return { path, body };
}

function rustcArchive(release: PublishedRelease): string {
  return release.archives.rustc?.[0] as string;
}

describe('toolchain archives', () => {
  test('ten clients at once: one upstream download, each gets the verified bytes; then a HIT', async (t) => {
    const { tree, dist, proxy } = await startWorld(t);
    const big = addBigArchive(tree, 8 * 1024 * 1024);
    const answers = await Promise.all(
      Array.from({ length: 10 }, () => httpGet(`${proxy.url}${big.path}`)),
    );
    for (const answer of answers) {
      assert.equal(answer.status, 200);
      assert.equal(answer.complete, true);
      assert.equal(sha256Hex(answer.body), sha256Hex(big.body));
    }
    assert.equal(dist.count(big.path), 1, 'one download upstream');
    assert.ok(answers.some((answer) => answer.headers['x-cache-status'] === 'MISS'));
    await proxy.deps.toolchains?.idle();
    const hit = await httpGet(`${proxy.url}${big.path}`);
    assert.equal(hit.headers['x-cache-status'], 'HIT');
    assert.equal(hit.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(sha256Hex(hit.body), sha256Hex(big.body));
    assert.equal(dist.count(big.path), 1);
  });

  test('an archive listed by a held manifest is checked against the manifest hash', async (t) => {
    const { tree, release, dist, proxy } = await startWorld(t);
    const path = rustcArchive(release);
    assert.equal((await httpGet(`${proxy.url}${STABLE}`)).status, 200);
    // The sidecar would vouch for a swapped archive; the manifest does not.
    tree.files.set(path, randomBytes(64 * 1024));
    tree.files.set(`${path}.sha256`, tree.sidecarOf(path));
    // A broken response: an error status, a body cut short, or no answer at all.
    const answer = await httpGet(`${proxy.url}${path}`).catch(() => undefined);
    assert.ok(!(answer?.status === 200 && answer.complete), 'never a complete good response');
    assert.equal(proxy.instance.catalogue.has(toolchainKey(path.slice(1))), false);
    assert.equal(dist.count(`${path}.sha256`), 0, 'the manifest was enough');
  });

  test('a corrupt download: a broken response, nothing stored; healthy again, it is stored', async (t) => {
    const { tree, dist, proxy } = await startWorld(t);
    const big = addBigArchive(tree, 2 * 1024 * 1024);
    dist.corrupt(big.path);
    const broken = await httpGet(`${proxy.url}${big.path}`);
    assert.ok(!(broken.status === 200 && broken.complete), `status ${broken.status}`);
    assert.ok(broken.body.length < big.body.length, 'held back before the end');
    const key = toolchainKey(big.path.slice(1));
    assert.equal(proxy.instance.catalogue.has(key), false);
    assert.equal(await proxy.instance.storage.raw.stat(key), undefined);

    dist.heal();
    const good = await httpGet(`${proxy.url}${big.path}`);
    assert.equal(good.status, 200);
    assert.equal(good.complete, true);
    assert.equal(sha256Hex(good.body), sha256Hex(big.body));
    await proxy.deps.toolchains?.idle();
    assert.equal(proxy.instance.catalogue.get(key)?.sha256, sha256Hex(big.body));
  });

  test('an archive nothing vouches for is passed through, not stored', async (t) => {
    const { tree, proxy } = await startWorld(t);
    const path = '/dist/2026-11-26/unlisted-1.0.tar.gz';
    tree.files.set(path, Buffer.from('bytes'));
    const answer = await httpGet(`${proxy.url}${path}`);
    assert.equal(answer.status, 200);
    assert.equal(answer.headers['x-cargo-cacher-not-stored'], 'passed through');
    assert.equal(proxy.instance.catalogue.has(toolchainKey(path.slice(1))), false);
  });
});

describe('channel manifests', () => {
  test('served as a matching pair, revalidated after the TTL, a new release as a new pair', async (t) => {
    const { tree, dist, proxy, clock } = await startWorld(t);
    const sidecar = await httpGet(`${proxy.url}${STABLE}.sha256`);
    assert.equal(sidecar.headers['x-cache-status'], 'MISS');
    const manifest = await httpGet(`${proxy.url}${STABLE}`);
    assert.equal(manifest.headers['x-cache-status'], 'HIT');
    assert.equal(manifest.headers['cache-control'], 'no-cache');
    assert.match(sidecar.body.toString(), new RegExp(`^${sha256Hex(manifest.body)}  `));
    const upstreamBefore = dist.count();

    clock.ms += TTL_MS - 1;
    assert.equal((await httpGet(`${proxy.url}${STABLE}.sha256`)).headers['x-cache-status'], 'HIT');
    assert.equal(dist.count(), upstreamBefore, 'fresh: no upstream request');

    clock.ms += 2;
    const same = await httpGet(`${proxy.url}${STABLE}.sha256`);
    assert.equal(same.headers['x-cache-status'], 'REVALIDATED');
    assert.equal(dist.count(), upstreamBefore + 1, 'only the sidecar was asked for');

    await tree.publish({ version: '1.100.0', date: '2027-01-08' });
    clock.ms += TTL_MS;
    const newSidecar = await httpGet(`${proxy.url}${STABLE}.sha256`);
    assert.equal(newSidecar.headers['x-cache-status'], 'MISS');
    const newManifest = await httpGet(`${proxy.url}${STABLE}`);
    assert.match(newManifest.body.toString(), /date = "2027-01-08"/);
    assert.match(newSidecar.body.toString(), new RegExp(`^${sha256Hex(newManifest.body)}  `));
  });

  test('a manifest that does not match its sidecar is not stored; the last good pair is served stale', async (t) => {
    const { tree, proxy, clock } = await startWorld(t);
    const good = await httpGet(`${proxy.url}${STABLE}`);
    const goodSidecar = await httpGet(`${proxy.url}${STABLE}.sha256`);
    tree.files.set(
      `${STABLE}.sha256`,
      Buffer.from(`${'0'.repeat(64)}  channel-rust-stable.toml\n`),
    );
    clock.ms += TTL_MS + 1;
    const stale = await httpGet(`${proxy.url}${STABLE}.sha256`);
    assert.equal(stale.headers['x-cache-status'], 'STALE');
    assert.deepEqual(stale.body, goodSidecar.body);
    const manifest = await httpGet(`${proxy.url}${STABLE}`);
    assert.deepEqual(manifest.body, good.body);
  });

  test('nothing held and a mismatching pair upstream: an error, nothing stored', async (t) => {
    const { tree, proxy } = await startWorld(t);
    tree.files.set(
      `${STABLE}.sha256`,
      Buffer.from(`${'0'.repeat(64)}  channel-rust-stable.toml\n`),
    );
    const answer = await httpGet(`${proxy.url}${STABLE}`);
    assert.equal(answer.status, 502);
    assert.equal(answer.headers['x-cache-status'], 'ERROR');
    assert.equal(proxy.instance.catalogue.has(toolchainKey(STABLE.slice(1))), false);
  });

  test('upstream down: the last good pair is served stale; a dated manifest never changes', async (t) => {
    const { release, dist, proxy, clock } = await startWorld(t);
    const dated = release.manifestPaths[0] as string;
    assert.match(dated, /^\/dist\/2026-11-26\//);
    assert.equal((await httpGet(`${proxy.url}${dated}`)).headers['x-cache-status'], 'MISS');
    const good = await httpGet(`${proxy.url}${STABLE}`);
    dist.down();
    clock.ms += 10 * TTL_MS;
    const stale = await httpGet(`${proxy.url}${STABLE}`);
    assert.equal(stale.status, 200);
    assert.equal(stale.headers['x-cache-status'], 'STALE');
    assert.deepEqual(stale.body, good.body);
    const datedAgain = await httpGet(`${proxy.url}${dated}`);
    assert.equal(datedAgain.headers['x-cache-status'], 'HIT');
    assert.equal(datedAgain.headers['cache-control'], 'public, max-age=31536000, immutable');
    const unknown = await httpGet(`${proxy.url}/dist/channel-rust-beta.toml`);
    assert.equal(unknown.status, 503);
  });

  test('a channel upstream does not have is a 404, as rustup expects', async (t) => {
    const { proxy } = await startWorld(t);
    const answer = await httpGet(`${proxy.url}/dist/channel-rust-1.5.0.toml.sha256`);
    assert.equal(answer.status, 404);
    assert.equal(answer.headers['x-cache-status'], 'NOT_FOUND');
  });
});

describe('rustup self-update files', () => {
  test('release-stable.toml and rustup-init with its sidecar, stale while upstream is down', async (t) => {
    const { tree, dist, proxy, clock } = await startWorld(t);
    const init = '/rustup/dist/x86_64-unknown-linux-gnu/rustup-init';
    const release = await httpGet(`${proxy.url}/rustup/release-stable.toml`);
    assert.equal(release.status, 200);
    assert.match(release.body.toString(), /version = "1.29.0"/);
    const binary = await httpGet(`${proxy.url}${init}`);
    assert.deepEqual(binary.body, tree.files.get(init));
    const sidecar = await httpGet(`${proxy.url}${init}.sha256`);
    assert.deepEqual(sidecar.body, tree.files.get(`${init}.sha256`));
    assert.ok(proxy.instance.catalogue.has(toolchainKey(init.slice(1))));

    dist.down();
    clock.ms += 10 * TTL_MS;
    for (const path of ['/rustup/release-stable.toml', init, `${init}.sha256`]) {
      const answer = await httpGet(`${proxy.url}${path}`);
      assert.equal(answer.status, 200, path);
      assert.equal(answer.headers['x-cache-status'], 'STALE', path);
    }
  });
});

describe('requests', () => {
  test('paths outside dist/ and rustup/ names are refused before anything is asked', async (t) => {
    const { dist, proxy } = await startWorld(t);
    for (const path of [
      '/dist/../catalogue.sqlite',
      '/dist/%2e%2e/x',
      '/rustup//x',
      '/dist/a%2fb',
    ]) {
      const answer = await httpGetRawPath(proxy.url, path);
      assert.ok(answer.status === 400 || answer.status === 404, `${path}: ${answer.status}`);
    }
    assert.equal(dist.count(), 0);
  });

  test('what is not cached (a signature) is passed through, and upstream 404s too', async (t) => {
    const { tree, proxy } = await startWorld(t);
    tree.files.set(`${STABLE}.asc`, Buffer.from('-----BEGIN PGP SIGNATURE-----\n'));
    const asc = await httpGet(`${proxy.url}${STABLE}.asc`);
    assert.equal(asc.status, 200);
    assert.equal(asc.headers['x-cargo-cacher-not-stored'], 'passed through');
    assert.equal(proxy.instance.catalogue.has(toolchainKey(`${STABLE.slice(1)}.asc`)), false);
    assert.equal((await httpGet(`${proxy.url}/dist/channel-rust-stable.sha256`)).status, 404);
  });

  test('offline, and with no rustup upstream: held files are served, others are 404', async (t) => {
    const storageDir = await makeTempDir('toolchains-offline');
    t.after(() => removeTempDir(storageDir));
    const first = await startWorld(t, { storageDir });
    const path = rustcArchive(first.release);
    await httpGet(`${first.proxy.url}${STABLE}`);
    await httpGet(`${first.proxy.url}${path}`);
    await first.proxy.close();
    for (const options of [{ offline: true }, { upstream: 'none' as const }]) {
      const { dist, proxy } = await startWorld(t, { ...options, storageDir });
      for (const held of [STABLE, `${STABLE}.sha256`, path]) {
        const answer = await httpGet(`${proxy.url}${held}`);
        assert.equal(answer.status, 200, held);
        assert.equal(answer.headers['x-cache-status'], 'HIT', held);
      }
      assert.equal((await httpGet(`${proxy.url}/dist/channel-rust-beta.toml`)).status, 404);
      assert.equal(dist.count(), 0, 'no upstream contact');
      await proxy.close();
    }
  });
});
