/**
 * @module
 * Git smart HTTP, upload-pack only (git's http-protocol.txt, "Smart Clients"), backed by the
 * system `git upload-pack --stateless-rpc`. cargo's default git library (libgit2) speaks only
 * smart HTTP; the git CLI sends `Git-Protocol: version=2`, which is passed on as GIT_PROTOCOL.
 */
import type { ChildProcess } from 'node:child_process';
import { gitEnv, runGit, spawnGit } from './git-command.ts';

/** Content types from http-protocol.txt. */
export const ADVERTISEMENT_TYPE = 'application/x-git-upload-pack-advertisement';
export const REQUEST_TYPE = 'application/x-git-upload-pack-request';
export const RESULT_TYPE = 'application/x-git-upload-pack-result';

/**
 * Only `version=N` keys (and their colon-separated siblings) are passed to git; anything else
 * in the header is dropped rather than handed to a child process.
 */
export function gitProtocolEnv(header: string | string[] | undefined): Record<string, string> {
  const value = Array.isArray(header) ? header.join(':') : header;
  if (!value || !/^[A-Za-z0-9=:._-]{1,200}$/.test(value)) return {};
  return { GIT_PROTOCOL: value };
}

/** True when the client asked for protocol v2. */
export function isProtocolV2(env: Record<string, string>): boolean {
  return /(^|:)version=2(:|$)/.test(env.GIT_PROTOCOL ?? '');
}

/** Encodes one pkt-line. */
function pktLine(text: string): string {
  return `${(text.length + 4).toString(16).padStart(4, '0')}${text}`;
}

/**
 * The `info/refs` answer. For v0 the smart reply starts with `# service=git-upload-pack` and a
 * flush packet; for v2 git's own http-backend leaves that out, and so do we.
 */
export async function advertiseRefs(
  gitDir: string,
  protocol: Record<string, string>,
): Promise<Buffer> {
  const { stdout } = await runGit(
    gitDir,
    ['upload-pack', '--stateless-rpc', '--advertise-refs', gitDir],
    { env: protocol },
  );
  if (isProtocolV2(protocol)) return stdout;
  return Buffer.concat([Buffer.from(`${pktLine('# service=git-upload-pack\n')}0000`), stdout]);
}

/** Starts `git upload-pack --stateless-rpc` for one POST; the caller pipes the body in. */
export function startUploadPack(gitDir: string, protocol: Record<string, string>): ChildProcess {
  return spawnGit(['upload-pack', '--stateless-rpc', gitDir], { ...protocol });
}

export { gitEnv };
