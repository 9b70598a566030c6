/**
 * Tiered caching with real cargo: fake crates.io ← parent cargo-cacher ← child cargo-cacher ←
 * cargo. The child's upstream is the parent's sparse index (`-s http://parent/index/`) and its
 * downloads go through the parent's `dl`, read from the parent's config.json.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, type TestContext, test } from 'node:test';
import { promisify } from 'node:util';
import { crateKey } from '../../src/registry/crate-id.ts';
import { type CargoSandbox, makeCargoSandbox } from '../helpers/cargo-sandbox.ts';
import type { FakeCrateSpec } from '../helpers/fake-upstream.ts';
import { startFakeUpstream } from '../helpers/fake-upstream.ts';
import { httpGet } from '../helpers/http-get.ts';
import { type RunningProxy, startProxy } from '../helpers/proxy.ts';

const execFileAsync = promisify(execFile);

const CRATES: FakeCrateSpec[] = [
  { name: 'tier-a', version: '0.1.0' },
  { name: 'tier-b', version: '0.1.0', deps: [{ name: 'tier-a', req: '0.1' }] },
  { name: 'tier-plus', version: '1.0.0+build.7' },
  { name: 'tier-only-parent', version: '0.4.0' },
];

/** A program that calls into each crate named, so the build fails unless each was linked. */
function mainRs(calls: string[]): string {
  return `fn main() {\n    println!("{}", [${calls.join(', ')}].join(" "));\n}\n`;
}

async function cargoAvailable(t: TestContext): Promise<boolean> {
  try {
    await execFileAsync('cargo', ['--version']);
    return true;
  } catch (err) {
    if (process.env.CI === 'true') {
      assert.fail(`cargo is required on CI but cannot run: ${(err as Error).message}`);
    }
    t.skip('cargo is not installed');
    return false;
  }
}

async function sandbox(
  t: TestContext,
  proxy: RunningProxy,
  deps: Record<string, string>,
  calls: string[],
): Promise<CargoSandbox> {
  const box = await makeCargoSandbox({
    registry: proxy.sparseRegistry,
    deps,
    mainRs: mainRs(calls),
  });
  t.after(() => box.remove());
  return box;
}

async function fetchBuildRun(box: CargoSandbox): Promise<string> {
  await box.cargo(['generate-lockfile']);
  await box.cargo(['fetch']);
  await box.cargo(['build', '--offline']);
  return (await box.cargo(['run', '--offline', '--quiet'])).stdout.trim();
}

async function stored(proxy: RunningProxy, name: string, version: string): Promise<boolean> {
  return (await proxy.deps.store.stat(crateKey({ name, version }))) !== undefined;
}

describe('tiered caching', () => {
  test('cargo works through a child whose upstream is a parent, and with crates.io gone the child still serves what the parent has', async (t) => {
    if (!(await cargoAvailable(t))) return;
    const upstream = await startFakeUpstream({ crates: CRATES });
    t.after(() => upstream.close());
    // TTL 0 on both tiers: every index read goes up the chain, so the test sees each hop.
    const parent = await startProxy({ upstream, settings: { indexTtlMs: 0 } });
    t.after(() => parent.close());
    const child = await startProxy({
      settings: { sparseUpstream: `${parent.url}/index/`, indexTtlMs: 0 },
    });
    t.after(() => child.close());

    // The child's config.json sends cargo to the child; the parent's sends the child to the parent.
    const childConfig = JSON.parse(
      (await httpGet(`${child.url}/index/config.json`)).body.toString(),
    );
    assert.equal(childConfig.dl, `${child.url}/api/v1/crates`);
    const parentConfig = JSON.parse(
      (await httpGet(`${parent.url}/index/config.json`)).body.toString(),
    );
    assert.equal(parentConfig.dl, `${parent.url}/api/v1/crates`);

    const first = await sandbox(t, child, { 'tier-b': '0.1', 'tier-plus': '1.0.0' }, [
      'tier_b::dep_tier_a()',
      'tier_plus::name()',
    ]);
    assert.equal(await fetchBuildRun(first), 'tier-a-0.1.0 tier-plus-1.0.0+build.7');
    for (const [name, version] of [
      ['tier-a', '0.1.0'],
      ['tier-b', '0.1.0'],
      ['tier-plus', '1.0.0+build.7'],
    ] as const) {
      assert.ok(await stored(child, name, version), `${name} in the child`);
      assert.ok(await stored(parent, name, version), `${name} in the parent`);
      assert.equal(upstream.count(`/dl/${name}/`), 1, `${name} fetched from crates.io once`);
    }

    // Someone at the central site uses a crate the branch office never asked for.
    const warm = await httpGet(`${parent.url}/api/v1/crates/tier-only-parent/0.4.0/download`);
    assert.equal(warm.status, 200);
    assert.equal(await stored(child, 'tier-only-parent', '0.4.0'), false);

    await upstream.stop();
    const second = await sandbox(
      t,
      child,
      { 'tier-b': '0.1', 'tier-plus': '1.0.0', 'tier-only-parent': '0.4' },
      ['tier_b::dep_tier_a()', 'tier_plus::name()', 'tier_only_parent::name()'],
    );
    assert.equal(
      await fetchBuildRun(second),
      'tier-a-0.1.0 tier-plus-1.0.0+build.7 tier-only-parent-0.4.0',
    );
    assert.ok(await stored(child, 'tier-only-parent', '0.4.0'), 'fetched from the parent');
  });
});
