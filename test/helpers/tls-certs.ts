/**
 * @module
 * A throw-away certificate authority and a server certificate for 127.0.0.1 and localhost,
 * made with the system `openssl`, so tests (and the benchmark) can run real HTTPS clients that
 * verify the server: cargo with `CARGO_HTTP_CAINFO`, git with `http.sslCAInfo`, undici with `ca`.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** The PEM files {@link makeTestCertificates} wrote. */
export interface TestCertificates {
  /** The CA certificate: what clients trust. */
  caFile: string;
  /** The server certificate (for `--tls-cert`). */
  certFile: string;
  /** The server's private key (for `--tls-key`). */
  keyFile: string;
}

/**
 * The server certificate's extensions. Clients check the address they dialled against
 * subjectAltName (the CN is ignored), so both the IP and the name are listed.
 */
const SERVER_EXTENSIONS = [
  'subjectAltName=IP:127.0.0.1,DNS:localhost',
  'basicConstraints=critical,CA:FALSE',
  'keyUsage=critical,digitalSignature,keyEncipherment',
  'extendedKeyUsage=serverAuth',
].join('\n');

/** Runs `openssl` and fails with its stderr in the message. */
async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await execFileAsync('openssl', args, { cwd });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`openssl ${args[0]} failed: ${stderr}`, { cause: error });
  }
}

/** True when `openssl` can be run. */
export async function hasOpenssl(): Promise<boolean> {
  try {
    await execFileAsync('openssl', ['version']);
    return true;
  } catch {
    return false;
  }
}

/**
 * Writes a CA (valid 2 days) and a server certificate signed by it into `dir`. P-256 keys:
 * quick to make, and every TLS stack here (OpenSSL in Node, curl in cargo, git) accepts them.
 */
export async function makeTestCertificates(dir: string): Promise<TestCertificates> {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(
    ['req', '-x509', ...ec, '-days', '2', '-subj', '/CN=cargo-cacher test CA']
      .concat(['-keyout', 'ca.key', '-out', 'ca.pem'])
      .concat(['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=keyCertSign']),
    dir,
  );
  await openssl(
    ['req', ...ec, '-subj', '/CN=localhost', '-keyout', 'server.key', '-out', 'server.csr'],
    dir,
  );
  await writeFile(join(dir, 'server.ext'), `${SERVER_EXTENSIONS}\n`);
  await openssl(
    ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key'].concat([
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      'server.ext',
      '-out',
      'server.pem',
    ]),
    dir,
  );
  return {
    caFile: join(dir, 'ca.pem'),
    certFile: join(dir, 'server.pem'),
    keyFile: join(dir, 'server.key'),
  };
}
