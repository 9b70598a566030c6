/**
 * @module
 * A test dist tree in the shape of static.rust-lang.org: v2 channel manifests (`[pkg.*]` with
 * per-target `available`/`url`/`hash` and, when xz is on, `xz_url`/`xz_hash`; `[profiles]`;
 * `[renames]`), small real rust-installer archives (a `rustc` and a `cargo` that are shell
 * scripts printing the release's version, a `rust-std`, `rust-docs` and a `rust-src`), `.sha256`
 * sidecars for every file, and rustup's self-update files. {@link startFakeDistServer} serves it.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { stringify } from 'smol-toml';
import { buildInstaller, type InstallerFile, sha256Hex } from './fake-installer.ts';

const execFileAsync = promisify(execFile);

/** The prefix real manifests name archives by; rustup swaps it for `RUSTUP_DIST_SERVER`. */
export const STATIC_ROOT = 'https://static.rust-lang.org';

/** One release to publish. */
export interface FakeRelease {
  /** `1.99.0`. */
  version: string;
  /** `2026-11-26`: the dist directory of its archives and the manifest's `date`. */
  date: string;
  /** Default `stable`. */
  channel?: 'stable' | 'beta' | 'nightly';
  /** Targets the packages are built for; default the host. */
  targets?: string[];
  /** Also `.tar.xz` archives, named by `xz_url` (rustup then takes them). Default false. */
  xz?: boolean;
}

/** What a publish put in the tree. */
export interface PublishedRelease {
  version: string;
  date: string;
  /** What `rustc --version` of this toolchain prints. */
  rustcVersion: string;
  /** `/dist/channel-rust-stable.toml` and the other names this manifest is published under. */
  manifestPaths: string[];
  /** Every archive path, by package: `{ rustc: ['/dist/2026-11-26/rustc-…tar.gz', …] }`. */
  archives: Record<string, string[]>;
}

/** Packages of a fake release: the component of each, and whether it is per target. */
const PACKAGES = [
  { pkg: 'rustc', perTarget: true },
  { pkg: 'cargo', perTarget: true },
  { pkg: 'rust-std', perTarget: true },
  { pkg: 'rust-docs', perTarget: true },
  { pkg: 'rust-src', perTarget: false },
] as const;

type PackageName = (typeof PACKAGES)[number]['pkg'];

const PROFILES = {
  minimal: ['rustc', 'cargo', 'rust-std'],
  default: ['rustc', 'cargo', 'rust-std', 'rust-docs'],
  complete: ['rustc', 'cargo', 'rust-std', 'rust-docs', 'rust-src'],
};

/** A dist tree: URL path (`/dist/…`) → bytes. */
export class FakeDistTree {
  readonly files = new Map<string, Buffer>();

  /** Publishes a release: archives, its dated manifest, and the channel names pointing at it. */
  async publish(release: FakeRelease): Promise<PublishedRelease> {
    const channel = release.channel ?? 'stable';
    const targets = release.targets ?? [await hostTriple()];
    const rustcVersion = `rustc ${release.version} (test ${release.date})`;
    const pkg: Record<string, unknown> = {};
    const archives: Record<string, string[]> = {};
    for (const { pkg: name, perTarget } of PACKAGES) {
      const entries: Record<string, unknown> = {};
      for (const target of perTarget ? targets : ['*']) {
        const built = await this.#buildArchive(release, name, target);
        entries[target] = built.entry;
        archives[name] = [...(archives[name] ?? []), ...built.paths];
      }
      pkg[name] = { version: `${release.version} (test ${release.date})`, target: entries };
    }
    pkg.rust = this.#combined(release, targets, archives);
    const manifest = stringify({
      'manifest-version': '2',
      date: release.date,
      pkg,
      renames: { 'rust-docs-preview': { to: 'rust-docs' } },
      profiles: PROFILES,
    });
    const manifestPaths = channelNames(channel, release).map((name) => `/dist/${name}`);
    for (const path of manifestPaths) this.#putWithSidecar(path, Buffer.from(manifest));
    return { version: release.version, date: release.date, rustcVersion, manifestPaths, archives };
  }

  /** rustup's self-update files: `release-stable.toml` and rustup-init for `target`. */
  addRustupInit(version: string, target: string): void {
    this.files.set(
      '/rustup/release-stable.toml',
      Buffer.from(stringify({ 'schema-version': '1', version })),
    );
    const binary = randomBytes(4096);
    this.#putWithSidecar(`/rustup/dist/${target}/rustup-init`, binary);
    this.#putWithSidecar(`/rustup/archive/${version}/${target}/rustup-init`, binary);
  }

  /** The `.sha256` sidecar of a file, as static.rust-lang.org writes it. */
  sidecarOf(path: string): Buffer {
    const body = this.files.get(path);
    if (!body) throw new Error(`no file ${path}`);
    return Buffer.from(`${sha256Hex(body)}  ${path.split('/').at(-1)}\n`);
  }

  #putWithSidecar(path: string, body: Buffer): void {
    this.files.set(path, body);
    this.files.set(`${path}.sha256`, this.sidecarOf(path));
  }

  async #buildArchive(release: FakeRelease, pkg: PackageName, target: string) {
    const suffix = target === '*' ? '' : `-${target}`;
    const baseName = `${pkg}-${release.version}${suffix}`;
    const component = pkg === 'rust-std' ? `rust-std-${target}` : pkg;
    const built = await buildInstaller(
      { baseName, component, files: filesOf(pkg, release, target) },
      release.xz === true,
    );
    const base = `/dist/${release.date}/${baseName}`;
    this.#putWithSidecar(`${base}.tar.gz`, built.gz);
    const entry: Record<string, unknown> = {
      available: true,
      url: `${STATIC_ROOT}${base}.tar.gz`,
      hash: sha256Hex(built.gz),
    };
    const paths = [`${base}.tar.gz`];
    if (built.xz) {
      this.#putWithSidecar(`${base}.tar.xz`, built.xz);
      entry.xz_url = `${STATIC_ROOT}${base}.tar.xz`;
      entry.xz_hash = sha256Hex(built.xz);
      paths.push(`${base}.tar.xz`);
    }
    return { entry, paths };
  }

  /** The `rust` package: its combined installer and the components and extensions it lists. */
  #combined(release: FakeRelease, targets: string[], archives: Record<string, string[]>) {
    const entries: Record<string, unknown> = {};
    for (const target of targets) {
      // The combined installer is named `rust-…`; its content does not matter to rustup, which
      // installs components one by one: it holds rustc here.
      const rustc = `/dist/${release.date}/rustc-${release.version}-${target}.tar.gz`;
      const base = `/dist/${release.date}/rust-${release.version}-${target}.tar.gz`;
      this.#putWithSidecar(base, this.files.get(rustc) as Buffer);
      archives.rust = [...(archives.rust ?? []), base];
      const component = (name: string, of = target) => ({ pkg: name, target: of });
      entries[target] = {
        available: true,
        url: `${STATIC_ROOT}${base}`,
        hash: sha256Hex(this.files.get(base) as Buffer),
        components: [component('rustc'), component('cargo'), component('rust-std')],
        extensions: [component('rust-docs'), component('rust-src', '*')],
      };
    }
    return { version: `${release.version} (test ${release.date})`, target: entries };
  }
}

/** The file names a release's manifest is published under. */
function channelNames(channel: string, release: FakeRelease): string[] {
  const dated = `${release.date}/channel-rust-${channel}.toml`;
  if (channel !== 'stable') return [dated, `channel-rust-${channel}.toml`];
  const minor = release.version.split('.').slice(0, 2).join('.');
  return [
    dated,
    `channel-rust-${release.version}.toml`,
    `channel-rust-${minor}.toml`,
    'channel-rust-stable.toml',
  ];
}

function filesOf(pkg: PackageName, release: FakeRelease, target: string): InstallerFile[] {
  const script = (line: string) => `#!/bin/sh\necho '${line}'\n`;
  switch (pkg) {
    case 'rustc':
      return [
        {
          path: 'bin/rustc',
          content: script(`rustc ${release.version} (test ${release.date})`),
          executable: true,
        },
      ];
    case 'cargo':
      return [
        {
          path: 'bin/cargo',
          content: script(`cargo ${release.version} (test ${release.date})`),
          executable: true,
        },
      ];
    case 'rust-std':
      return [{ path: `lib/rustlib/${target}/lib/libstd-test.rlib`, content: 'not a library\n' }];
    case 'rust-docs':
      return [{ path: 'share/doc/rust/html/index.html', content: '<p>docs</p>\n' }];
    case 'rust-src':
      return [{ path: 'lib/rustlib/src/rust/library/lib.rs', content: '// source\n' }];
  }
}

let host: Promise<string> | undefined;

/** The host triple, as `rustc -vV` reports it (rustup installs for it). */
export function hostTriple(): Promise<string> {
  host ??= execFileAsync('rustc', ['-vV']).then(
    ({ stdout }) => /^host: (\S+)$/m.exec(stdout)?.[1] ?? 'x86_64-unknown-linux-gnu',
    () => 'x86_64-unknown-linux-gnu',
  );
  return host;
}
