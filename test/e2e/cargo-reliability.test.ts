import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { promisify } from 'node:util';
import { makeCargoSandbox } from '../helpers/cargo-sandbox.ts';
import { startFakeUpstream } from '../helpers/fake-upstream.ts';
import { startProxy } from '../helpers/proxy.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';

const execFileAsync = promisify(execFile);
const CRATES = [{ name: 'rel-a', version: '0.1.0' }];

/** cargo is on every machine here: on CI a missing one fails the run instead of skipping. */
async function cargoAvailable(t: TestContext): Promise<boolean> {
  try {
    await execFileAsync('cargo', ['--version']);
    return true;
  } catch (err) {
    if (process.env.CI === 'true')
      assert.fail(`cargo is required on CI: ${(err as Error).message}`);
    t.skip('cargo is not installed');
    return false;
  }
}

describe('real cargo against a failing upstream', () => {
  test('prints our actionable detail when upstream is down and nothing is cached', async (t) => {
    if (!(await cargoAvailable(t))) return;
    const upstream = await startFakeUpstream({ crates: CRATES });
    t.after(() => upstream.close());
    const proxy = await startProxy({ upstream, settings: { resilience: { retryDelayMs: 10 } } });
    t.after(() => proxy.close());
    await upstream.stop();
    const box = await makeCargoSandbox({
      registry: proxy.sparseRegistry,
      deps: { 'rel-a': '0.1' },
    });
    t.after(() => box.remove());
    await assert.rejects(box.cargo(['generate-lockfile']), (err: Error) => {
      assert.match(err.message, /upstream 127\.0\.0\.1:\d+ unreachable: connection refused/);
      assert.match(err.message, /check the network and -s\/-u/);
      return true;
    });
  });
});

describe('real cargo with access control', () => {
  async function world(t: TestContext) {
    const dir = await makeTempDir('auth-e2e');
    t.after(() => removeTempDir(dir));
    const tokenFile = join(dir, 'tokens');
    await writeFile(tokenFile, 'cargo-secret-42 read\n');
    const upstream = await startFakeUpstream({ crates: CRATES });
    t.after(() => upstream.close());
    const proxy = await startProxy({ upstream, settings: { authTokenFile: tokenFile } });
    t.after(() => proxy.close());
    const box = await makeCargoSandbox({
      registry: proxy.sparseRegistry,
      deps: { 'rel-a': '0.1' },
      registryName: 'mirror',
    });
    t.after(() => box.remove());
    return { box, proxy };
  }

  test('resolves, downloads and builds with the token from CARGO_REGISTRIES_MIRROR_TOKEN', async (t) => {
    if (!(await cargoAvailable(t))) return;
    const { box } = await world(t);
    box.env.CARGO_REGISTRIES_MIRROR_TOKEN = 'cargo-secret-42';
    await box.cargo(['generate-lockfile']);
    await box.cargo(['fetch']);
    await box.cargo(['build', '--offline']);
  });

  test('fails with our message when the token is wrong', async (t) => {
    if (!(await cargoAvailable(t))) return;
    const { box } = await world(t);
    box.env.CARGO_REGISTRIES_MIRROR_TOKEN = 'not-the-token';
    await assert.rejects(box.cargo(['generate-lockfile']), /401|token/);
  });
});
