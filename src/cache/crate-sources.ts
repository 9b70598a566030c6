/**
 * @module
 * Getting one `.crate` from upstream: from the first of the equivalent download sources (`-u
 * a,b`, else the `dl` of upstream's config.json) that delivers bytes whose sha256 equals the
 * index `cksum`. Normally the bytes are stored first and served from storage; when storage takes
 * no writes (full, read-only, refused) they are passed through to the client, still verified (see
 * {@link createVerifyingStream}).
 */
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Errors } from '../errors.ts';
import type { AppLogger } from '../logger.ts';
import { type CrateId, crateKey, crateLabel } from '../registry/crate-id.ts';
import { expandDlTemplate } from '../registry/dl-template.ts';
import type { CrateVersion } from '../registry/index-entry.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { openCrateDownload, openCrateResponse } from '../upstream/crate-download.ts';
import type { UpstreamGuard } from '../upstream/failover.ts';
import { type HttpClient, headerValue, upstreamFailure } from '../upstream/http-client.ts';
import type { RegistryConfigService } from './registry-config-service.ts';
import {
  classifyWriteFailure,
  createVerifyingStream,
  type StorageWriteGuard,
} from './storage-guard.ts';

/** What the download functions need. */
export interface CrateSourceDeps {
  store: BlobStore;
  registryConfig: RegistryConfigService;
  http: HttpClient;
  maxCrateBytes: number;
  log: AppLogger;
  /** Retries, failover and circuit breakers; without it, one try on the first source. */
  guard?: UpstreamGuard;
  /** Told of every crate store, failed or not, and of every pass-through. */
  storageGuard?: StorageWriteGuard;
}

/** A crate body passed through without being stored. */
export interface PassThroughBody {
  stream: Readable;
  /** Upstream's Content-Length, when it sent one. */
  size: number | undefined;
}

/** Downloads, verifies and stores a crate; the first source that delivers wins. */
export async function downloadAndStore(
  deps: CrateSourceDeps,
  id: CrateId,
  entry: CrateVersion,
): Promise<{ checksum: string; upstreamBytes: number }> {
  return runOnSources(deps, entry, async (url) => {
    const body = await openCrateDownload(deps.http, url, deps.maxCrateBytes);
    try {
      const stored = await deps.store.put(crateKey(id), body, {
        expectedSha256: entry.checksum,
        maxBytes: deps.maxCrateBytes,
      });
      deps.storageGuard?.stored();
      deps.log.info({ crate: crateLabel(id), bytes: stored.size }, 'cached crate');
      return { checksum: entry.checksum, upstreamBytes: stored.size };
    } catch (err) {
      body.destroy();
      // Before the error travels on: the crate cache passes the crate through once it is told.
      deps.storageGuard?.report(err, crateKey(id));
      throw describeStoreFailure(deps, id, url, err);
    }
  });
}

/**
 * Opens a crate from upstream for one client, not stored: the body is checked against the
 * index checksum on its way through, and its last bytes are held back until it matched.
 */
export async function openPassThrough(
  deps: CrateSourceDeps,
  id: CrateId,
  entry: CrateVersion,
): Promise<PassThroughBody> {
  return runOnSources(deps, entry, async (url) => {
    const response = await openCrateResponse(deps.http, url, deps.maxCrateBytes);
    const verify = createVerifyingStream(entry.checksum, deps.maxCrateBytes);
    // Not awaited: the route streams `verify` to the client. A body that breaks off fails
    // `verify` (the client sees the download fail); a client that leaves destroys upstream's.
    pipeline(response.body, verify).catch((err: unknown) => {
      deps.log.debug({ err, crate: crateLabel(id) }, 'pass-through download ended early');
    });
    deps.storageGuard?.passedThrough();
    const length = Number(headerValue(response.headers, 'content-length'));
    return { stream: verify, size: Number.isSafeInteger(length) ? length : undefined };
  });
}

async function runOnSources<T>(
  deps: CrateSourceDeps,
  entry: CrateVersion,
  task: (url: string) => Promise<T>,
): Promise<T> {
  const urls = (await deps.registryConfig.downloadTemplates()).map((template) =>
    expandDlTemplate(template, entry),
  );
  if (!deps.guard) return task(urls[0] as string);
  return deps.guard.run(urls, task);
}

function describeStoreFailure(
  deps: CrateSourceDeps,
  id: CrateId,
  url: string,
  err: unknown,
): unknown {
  const code = (err as { code?: string }).code;
  if (code === 'CARGO_CACHER_BODY_TOO_LARGE') {
    return Errors.CARGO_CACHER_UPSTREAM_INVALID(
      `${crateLabel(id)} from ${url} is larger than the crate size limit (--max-crate-size); not cached`,
    );
  }
  // Our own storage refused it, not upstream (object storage already says so itself).
  const refused = classifyWriteFailure(err);
  if (refused && code !== Errors.CARGO_CACHER_STORAGE.code) {
    return Errors.CARGO_CACHER_STORAGE(`cannot store ${crateLabel(id)}: ${refused.code}`, {
      cause: err,
    });
  }
  if (code === 'CARGO_CACHER_CHECKSUM_MISMATCH') {
    return Errors.CARGO_CACHER_CHECKSUM_MISMATCH(
      `${crateLabel(id)} from ${url} failed verification (${(err as Error).message}); not cached`,
      { cause: err },
    );
  }
  if (code?.startsWith('CARGO_CACHER_')) return err;
  const failure = (deps.http.describeFailure ?? upstreamFailure)(url, err);
  failure.message = `download of ${crateLabel(id)} broke off: ${failure.message}`;
  return failure;
}
