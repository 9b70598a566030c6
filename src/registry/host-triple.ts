/**
 * @module
 * The target triple of the machine cargo-cacher runs on, as rustup names it: the default of
 * `--rustup-targets`. Pure: the platform facts are passed in.
 */

/** What the triple is made from (Node's `process.platform`, `process.arch`, and glibc or not). */
export interface PlatformFacts {
  platform: string;
  arch: string;
  /** False on a musl Linux (Alpine). */
  glibc: boolean;
}

const ARCHES: Record<string, string> = {
  x64: 'x86_64',
  arm64: 'aarch64',
  ia32: 'i686',
  riscv64: 'riscv64gc',
  ppc64: 'powerpc64le',
  s390x: 's390x',
};

/** rustup's triple for the platform, e.g. `x86_64-unknown-linux-gnu`. */
export function hostTriple(facts: PlatformFacts): string {
  const arch = ARCHES[facts.arch] ?? facts.arch;
  switch (facts.platform) {
    case 'darwin':
      return `${arch}-apple-darwin`;
    case 'win32':
      return `${arch}-pc-windows-msvc`;
    case 'freebsd':
      return `${arch}-unknown-freebsd`;
    default:
      return `${arch}-unknown-linux-${facts.glibc ? 'gnu' : 'musl'}`;
  }
}

let current: string | undefined;

/** The triple of this process's machine (worked out once: the glibc check writes a report). */
export function currentHostTriple(): string {
  current ??= hostTriple({
    platform: process.platform,
    arch: process.arch,
    glibc: process.platform !== 'linux' || glibcRuntime() !== undefined,
  });
  return current;
}

/** The glibc version Node runs on; `undefined` on musl. */
function glibcRuntime(): string | undefined {
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } };
  return report?.header?.glibcVersionRuntime;
}
