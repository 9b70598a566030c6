/**
 * @module
 * Checks that an external tool the test needs (cargo, git, openssl, chromium) runs. Off CI a
 * missing tool skips the test; on CI (`CI=true`) it fails it: a CI machine without cargo is
 * broken, and a skipped end-to-end test would hide that.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** True when `tool args` runs; otherwise skips the test, or fails it on CI. */
export async function toolAvailable(
  t: TestContext,
  tool: string,
  args: string[] = ['--version'],
): Promise<boolean> {
  try {
    await execFileAsync(tool, args);
    return true;
  } catch (err) {
    if (process.env.CI === 'true') {
      assert.fail(`${tool} is required on CI but cannot run: ${(err as Error).message}`);
    }
    t.skip(`${tool} is not installed`);
    return false;
  }
}

/** {@link toolAvailable} for cargo. */
export function cargoAvailable(t: TestContext): Promise<boolean> {
  return toolAvailable(t, 'cargo');
}
