/**
 * @module
 * cargo-cacher's own version, read once from package.json (works from src/ and dist/ alike).
 */
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

/** The package version, e.g. `0.1.0`. */
export const VERSION: string = pkg.version;

/** The `User-Agent` sent upstream: crates.io asks for an identifying one. */
export const USER_AGENT = `cargo-cacher/${VERSION} (+https://github.com/cargo-cacher/cargo-cacher)`;
