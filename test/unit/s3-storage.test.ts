import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { s3SettingsFromFlags } from '../../src/cli/storage-options.ts';
import { parseS3Url } from '../../src/storage/s3-location.ts';
import { createResumableStream } from '../../src/storage/s3-read-stream.ts';

describe('parseS3Url', () => {
  const VALID: [string, { bucket: string; prefix: string }][] = [
    ['s3://crates', { bucket: 'crates', prefix: '' }],
    ['s3://crates/', { bucket: 'crates', prefix: '' }],
    ['s3://crates/cache', { bucket: 'crates', prefix: 'cache/' }],
    ['s3://crates/cache/', { bucket: 'crates', prefix: 'cache/' }],
    ['s3://my.bucket-1/site/eu-west', { bucket: 'my.bucket-1', prefix: 'site/eu-west/' }],
  ];
  for (const [url, expected] of VALID) {
    test(`reads ${url}`, () => assert.deepEqual(parseS3Url(url), expected));
  }

  const INVALID = [
    'crates',
    'http://crates/x',
    's3://',
    's3://Crates',
    's3://ab',
    's3://crates/../x',
    's3://crates/a b',
    's3://crates/a//b',
  ];
  for (const url of INVALID) {
    test(`refuses ${url}`, () => {
      assert.throws(() => parseS3Url(url), { code: 'CARGO_CACHER_INVALID_CONFIG' });
    });
  }
});

describe('s3SettingsFromFlags', () => {
  test('no --storage means the filesystem store', () => {
    assert.equal(s3SettingsFromFlags({}), undefined);
  });

  test('collects the S3 flags', () => {
    assert.deepEqual(
      s3SettingsFromFlags({
        storage: 's3://crates/eu',
        s3Endpoint: 'http://minio:9000',
        s3Region: 'eu-west-1',
        s3PathStyle: true,
      }),
      {
        bucket: 'crates',
        prefix: 'eu/',
        endpoint: 'http://minio:9000',
        region: 'eu-west-1',
        pathStyle: true,
      },
    );
  });

  test('refuses --s3-* flags without --storage, and a non-http endpoint', () => {
    assert.throws(() => s3SettingsFromFlags({ s3Endpoint: 'http://minio:9000' }), {
      code: 'CARGO_CACHER_INVALID_CONFIG',
    });
    assert.throws(() => s3SettingsFromFlags({ storage: 's3://crates', s3Endpoint: 'minio:9000' }), {
      code: 'CARGO_CACHER_INVALID_CONFIG',
    });
  });
});

describe('createResumableStream', () => {
  const BODY = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz');

  /** A body that sends `bytes` of BODY from `offset`, then fails like a reset connection. */
  function breakingBody(offset: number, bytes: number): Readable {
    async function* chunks() {
      yield BODY.subarray(offset, offset + bytes);
      throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    }
    return Readable.from(chunks(), { objectMode: false });
  }

  async function collect(stream: Readable): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  test('continues from the byte reached after a reset, with ranged reads', async () => {
    const offsets: number[] = [];
    const stream = createResumableStream(breakingBody(0, 10), BODY.length, async (offset) => {
      offsets.push(offset);
      return offset < 20 ? breakingBody(offset, 10) : Readable.from([BODY.subarray(offset)]);
    });
    assert.deepEqual(await collect(stream), BODY);
    assert.deepEqual(offsets, [10, 20]);
  });

  test('a body that ends short counts as broken too', async () => {
    const stream = createResumableStream(
      Readable.from([BODY.subarray(0, 5)]),
      BODY.length,
      async (offset) => Readable.from([BODY.subarray(offset)]),
    );
    assert.deepEqual(await collect(stream), BODY);
  });

  test('gives up after three resumes and passes the error on', async () => {
    let reopened = 0;
    const stream = createResumableStream(breakingBody(0, 1), BODY.length, async (offset) => {
      reopened += 1;
      return breakingBody(offset, 1);
    });
    await assert.rejects(collect(stream), { code: 'ECONNRESET' });
    assert.equal(reopened, 3);
  });

  test('a failed reopen (the object changed: If-Match) fails the stream', async () => {
    const stream = createResumableStream(breakingBody(0, 4), BODY.length, async () => {
      throw Object.assign(new Error('PreconditionFailed'), { code: 'PRECONDITION' });
    });
    await assert.rejects(collect(stream), { code: 'PRECONDITION' });
  });

  test('destroying the stream destroys the body being read', async () => {
    const body = new Readable({ read() {} });
    body.push(BODY.subarray(0, 4));
    const stream = createResumableStream(body, BODY.length, async () => body);
    for await (const _chunk of stream) break;
    assert.equal(body.destroyed, true);
  });
});
