import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { S3Leases } from '../../src/storage/s3-lease.ts';

type Conditions = 'honoured' | 'ignored' | 'refused' | 'broken';

/** An in-memory bucket that treats `If-None-Match`/`If-Match` on puts as `conditions` says. */
function fakeS3(conditions: Conditions): S3Client {
  const objects = new Map<string, { body: string; etag: string }>();
  let etags = 0;
  const fail = (status: number) =>
    Object.assign(new Error(`HTTP ${status}`), { $metadata: { httpStatusCode: status } });
  const send = async (command: unknown) => {
    await Promise.resolve();
    if (conditions === 'broken') throw fail(500);
    if (command instanceof PutObjectCommand) {
      const { Key, Body, IfNoneMatch, IfMatch } = command.input;
      const key = Key ?? '';
      const conditional = IfNoneMatch !== undefined || IfMatch !== undefined;
      if (conditional && conditions === 'refused') throw fail(501);
      if (conditions === 'honoured') {
        const existing = objects.get(key);
        if (IfNoneMatch === '*' && existing) throw fail(412);
        if (IfMatch !== undefined && existing?.etag !== IfMatch) throw fail(412);
      }
      etags += 1;
      objects.set(key, { body: String(Body), etag: `"${etags}"` });
      return {};
    }
    if (command instanceof GetObjectCommand) {
      const found = objects.get(command.input.Key ?? '');
      if (!found) throw fail(404);
      return { ETag: found.etag, Body: { transformToString: async () => found.body } };
    }
    if (command instanceof DeleteObjectCommand) {
      objects.delete(command.input.Key ?? '');
      return {};
    }
    throw new Error('unexpected command');
  };
  return { send } as unknown as S3Client;
}

function leases(client: S3Client, settleMs: number): S3Leases {
  return new S3Leases({
    client,
    bucket: 'crates',
    prefix: 'p/',
    timing: { ttlMs: 60_000, waitMs: 3_000, pollMs: 10, settleMs },
  });
}

describe('S3Leases', () => {
  for (const conditions of ['honoured', 'ignored', 'refused'] as const) {
    test(`one of two concurrent claimants wins when the store's conditions are ${conditions}`, async () => {
      const client = fakeS3(conditions);
      // With honoured conditions the store decides the race: no settling pause is taken.
      const settleMs = conditions === 'honoured' ? 60_000 : 20;
      const [a, b] = [leases(client, settleMs), leases(client, settleMs)];
      let published = false;
      const exists = async () => published;
      const claims = [a.acquire('crates/k', exists), b.acquire('crates/k', exists)];
      const winner = await Promise.race(claims);
      assert.equal(winner.published, false, 'the winner fetches');
      published = true;
      await winner.release();
      const outcomes = await Promise.all(claims);
      assert.deepEqual(outcomes.map((o) => o.published).sort(), [false, true]);
    });
  }

  test('a released claim without a blob passes to the waiter', async () => {
    const client = fakeS3('honoured');
    const [a, b] = [leases(client, 10), leases(client, 10)];
    const exists = async () => false;
    const first = await a.acquire('crates/k', exists);
    const waiting = b.acquire('crates/k', exists);
    await first.release();
    const second = await waiting;
    assert.equal(second.published, false);
    // The second claimant holds it now: a third one waits.
    let thirdDone = false;
    const third = a.acquire('crates/k', exists).then((lease) => {
      thirdDone = true;
      return lease;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(thirdDone, false);
    await second.release();
    assert.equal((await third).published, false);
  });

  test('a store that fails every request never fails the caller: it fetches itself', async () => {
    const lease = await leases(fakeS3('broken'), 10).acquire('crates/k', async () => false);
    assert.equal(lease.published, false);
    await lease.release();
  });
});
