/**
 * @module
 * Whether a module is the program node was started with, so `src/cli/main.ts` runs the command
 * line only then, and tests can import `buildProgram` from it without running anything.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** True when `moduleUrl` (`import.meta.url`) is the script node runs (symlinks resolved). */
export function isMainModule(moduleUrl: string, script = process.argv[1]): boolean {
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(moduleUrl));
  } catch {
    return false;
  }
}
