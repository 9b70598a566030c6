/**
 * @module
 * `--upstream-ca <pem>`: a private CA (a TLS-inspecting proxy's, an internal registry's) trusted
 * for upstreams in addition to the usual roots, by undici and by git. Giving a TLS client a CA
 * list replaces its default one, so both get the defaults plus the extra CA: undici as a list,
 * git as a bundle file (its `http.sslCAInfo` names one file, which replaces the system bundle).
 */
import { X509Certificate } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import * as tls from 'node:tls';
import { Errors } from '../errors.ts';

/** The extra CA, read once at start. */
export interface UpstreamCa {
  /** The file as given (absolute). */
  file: string;
  /** Its PEM text: one or more certificates. */
  pem: string;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Reads and checks the `--upstream-ca` file: a bad one stops the start with one line. */
export async function readUpstreamCa(file: string): Promise<UpstreamCa> {
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (err) {
    const { code, message } = err as NodeJS.ErrnoException;
    throw Errors.CARGO_CACHER_INVALID_CONFIG(
      `--upstream-ca ${file}: cannot be read (${code ?? message})`,
    );
  }
  const certificates = pem.match(PEM_CERTIFICATE) ?? [];
  if (certificates.length === 0) {
    throw Errors.CARGO_CACHER_INVALID_CONFIG(
      `--upstream-ca ${file}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
    );
  }
  for (const certificate of certificates) {
    try {
      new X509Certificate(certificate);
    } catch (err) {
      throw Errors.CARGO_CACHER_INVALID_CONFIG(
        `--upstream-ca ${file}: a certificate does not parse (${(err as Error).message})`,
      );
    }
  }
  return { file, pem: certificates.join('\n') };
}

/**
 * The CAs Node trusts by default (its bundled roots, plus `NODE_EXTRA_CA_CERTS` and the system
 * store when Node is told to use them; `getCACertificates` exists from Node 22.15), plus `extra`.
 */
export function trustedCas(extra: UpstreamCa): string[] {
  const defaults =
    typeof tls.getCACertificates === 'function'
      ? tls.getCACertificates('default')
      : [...tls.rootCertificates];
  return [...defaults, extra.pem];
}

/** Where git's own default bundle is on the common systems (curl's compiled-in default). */
const SYSTEM_BUNDLES = [
  '/etc/ssl/certs/ca-certificates.crt', // Debian, Ubuntu, Alpine, Arch
  '/etc/pki/tls/certs/ca-bundle.crt', // Fedora, RHEL
  '/etc/ssl/ca-bundle.pem', // openSUSE
  '/etc/ssl/cert.pem', // macOS, BSDs
];

/**
 * Writes the bundle git is pointed at: the system bundle git would have used (or, when none is
 * found, Node's roots) followed by the extra CA. Written to a temporary name and renamed, so a
 * concurrent git never reads half a file.
 */
export async function writeGitCaBundle(path: string, extra: UpstreamCa): Promise<void> {
  const system = await readSystemBundle();
  const roots = system ?? tls.rootCertificates.join('\n');
  const bundle = `${roots.trimEnd()}\n\n# --upstream-ca ${extra.file}\n${extra.pem.trimEnd()}\n`;
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, bundle, { mode: 0o644 });
  await rename(temporary, path);
}

async function readSystemBundle(): Promise<string | undefined> {
  for (const file of SYSTEM_BUNDLES) {
    try {
      return await readFile(file, 'utf8');
    } catch {
      // not this system's layout
    }
  }
  return undefined;
}
