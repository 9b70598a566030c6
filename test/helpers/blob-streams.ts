/**
 * @module
 * Helpers for blob store tests: generated streams, collecting and listing, and a Buffer memory
 * meter for "does not hold the whole blob" assertions.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { BlobStore } from '../../src/storage/blob-store.ts';

/** Hex sha256. */
export function sha256(body: Buffer): string {
  return createHash('sha256').update(body).digest('hex');
}

/** Reads a stream to its end. */
export async function collect(stream: Readable | undefined): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream ?? []) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Every key below `prefix`, sorted. */
export async function listKeys(store: BlobStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const blob of store.list(prefix)) keys.push(blob.key);
  return keys.sort();
}

/**
 * `total` bytes in `chunk`-sized pieces, made on demand (slices of `from` when given);
 * `onMidway` runs at three quarters.
 */
export function generate(
  total: number,
  chunk: number,
  onMidway?: () => Promise<void>,
  from?: Buffer,
): Readable {
  async function* chunks() {
    for (let sent = 0; sent < total; sent += chunk) {
      if (sent === (total / 4) * 3) await onMidway?.();
      const size = Math.min(chunk, total - sent);
      yield from ? from.subarray(sent, sent + size) : Buffer.alloc(size, (sent / chunk) & 0xff);
    }
  }
  return Readable.from(chunks(), { objectMode: false, highWaterMark: chunk });
}

/**
 * Measures Buffer memory still reachable, relative to now. `gc()` comes from V8 at runtime (no
 * `--expose-gc` on the command line); ArrayBuffers are freed by a background sweeper, hence the
 * pause between two collections.
 */
export async function startMemoryMeter(): Promise<() => Promise<number>> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const reachable = async () => {
    gc();
    await sleep(20);
    gc();
    return process.memoryUsage().arrayBuffers;
  };
  const baseline = await reachable();
  return async () => (await reachable()) - baseline;
}
