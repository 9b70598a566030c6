/**
 * contrib/systemd/cargo-cacher.service passes `systemd-analyze verify` (Debian's systemd
 * package; .ci/run installs it), which needs no running systemd. verify fails a unit whose
 * ExecStart= program does not exist, and /usr/bin/cargo-cacher exists only once installed, so
 * the copy verified here runs this repository's bin/cargo-cacher instead; everything else is
 * verified as shipped. Unknown or misspelt directives are only warnings to verify (exit code 0),
 * so any output at all fails the test.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DEFAULTS } from '../../src/config.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const UNIT = join(REPO, 'contrib', 'systemd', 'cargo-cacher.service');

/** verify's exit code and everything it printed, for a copy of `text` as cargo-cacher.service. */
async function verify(text: string): Promise<{ code: number; output: string }> {
  const dir = await makeTempDir('systemd-unit');
  try {
    const copy = join(dir, 'cargo-cacher.service');
    await writeFile(copy, text);
    try {
      const { stdout, stderr } = await run('systemd-analyze', ['verify', copy], { cwd: dir });
      return { code: 0, output: stdout + stderr };
    } catch (err) {
      const failure = err as { code?: number | string; stdout?: string; stderr?: string };
      if (failure.code === 'ENOENT') {
        assert.fail('systemd-analyze is missing: apt-get install systemd (.ci/run does)');
      }
      return {
        code: Number(failure.code),
        output: (failure.stdout ?? '') + (failure.stderr ?? ''),
      };
    }
  } finally {
    await removeTempDir(dir);
  }
}

/** The unit with ExecStart= running this repository's CLI (see the module comment). */
async function testableUnit(): Promise<string> {
  const text = await readFile(UNIT, 'utf8');
  assert.match(
    text,
    /^ExecStart=\/usr\/bin\/cargo-cacher --config \/etc\/cargo-cacher\/config\.toml$/m,
  );
  return text.replace(
    /^ExecStart=\/usr\/bin\/cargo-cacher /m,
    `ExecStart=${join(REPO, 'bin', 'cargo-cacher')} `,
  );
}

describe('contrib/systemd/cargo-cacher.service', () => {
  test('systemd-analyze verify accepts it without a warning', async () => {
    const result = await verify(await testableUnit());
    assert.deepEqual(result, { code: 0, output: '' });
  });

  test('verify is strict enough to fail: a misspelt directive and a missing program are caught', async () => {
    const unit = await testableUnit();
    const misspelt = await verify(unit.replace('ProtectHome=yes', 'ProtectHomes=yes'));
    assert.match(misspelt.output, /Unknown key 'ProtectHomes'/);
    const missing = await verify(
      unit.replace(/^ExecStart=\S+/m, 'ExecStart=/nonexistent/cargo-cacher'),
    );
    assert.notEqual(missing.code, 0);
  });

  test('a dedicated user, a state directory, hardening, reload by SIGHUP, readiness and a stop bound', async () => {
    const text = await readFile(UNIT, 'utf8');
    for (const line of [
      'User=cargo-cacher',
      'StateDirectory=cargo-cacher',
      'ReadWritePaths=/var/lib/cargo-cacher',
      'ProtectSystem=strict',
      'ProtectHome=yes',
      'NoNewPrivileges=yes',
      'PrivateTmp=yes',
      'PrivateDevices=yes',
      'ProtectKernelTunables=yes',
      'ProtectControlGroups=yes',
      'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX',
      'LockPersonality=yes',
      'MemoryDenyWriteExecute=no',
      'CapabilityBoundingSet=',
      'ExecReload=/bin/kill -HUP $MAINPID',
      'Type=exec',
    ]) {
      assert.ok(text.split('\n').includes(line), `the unit lacks ${line}`);
    }
    assert.match(text, /^ExecStartPost=.*\/dev\/tcp\/127\.0\.0\.1\/\$\{CARGO_CACHER_PORT\}/m);
    const stopSeconds = Number(/^TimeoutStopSec=(\d+)$/m.exec(text)?.[1]);
    assert.ok(
      stopSeconds * 1000 > DEFAULTS.shutdownTimeoutMs,
      'systemd waits out --shutdown-timeout',
    );
  });
});
