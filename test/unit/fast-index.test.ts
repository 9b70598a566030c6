import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import type { IndexLookup } from '../../src/cache/index-cache.ts';
import { createIndexFile, type IndexFile } from '../../src/cache/index-record.ts';
import { IndexVariants } from '../../src/cache/index-variants.ts';
import type { FinishedRequest } from '../../src/observe/records.ts';
import type { AdmissionGate } from '../../src/server/admission.ts';
import { parseTokenFile } from '../../src/server/auth.ts';
import { createFastIndexPath } from '../../src/server/fast-index.ts';
import { gzipEtag } from '../../src/server/http-cache.ts';
import { httpGet } from '../helpers/http-get.ts';

/** What the server answers when the fast path declines, so a test sees who answered. */
const DECLINED = 599;

const PATH = 'fa/st/fast-a';
const SMALL_PATH = '3/s/sml';
const BODY = Buffer.from(
  `${Array.from({ length: 40 }, (_, i) => JSON.stringify({ name: 'fast-a', vers: `1.0.${i}` })).join('\n')}\n`,
);

describe('the fast path for hot index files', () => {
  const hot = new Map<string, IndexFile>();
  const finished: FinishedRequest[] = [];
  const variants = new IndexVariants({
    hot: (path) => hot.get(path),
    get: async (): Promise<IndexLookup> => ({ found: false }),
  });
  // The fast path reads its gate on every request, so tests change it in place.
  const gate: AdmissionGate = { tokens: undefined, closing: () => false };
  const fastPath = createFastIndexPath({
    variants,
    gate,
    observers: [(record) => finished.push(record)],
    log: { debug: () => undefined, warn: () => undefined },
  });
  let server: Server;
  let base = '';

  before(async () => {
    server = createServer((request, response) => {
      if (fastPath(request, response)) return;
      response.writeHead(DECLINED);
      response.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  beforeEach(() => {
    hot.clear();
    hot.set(PATH, createIndexFile(BODY, {}, Date.now()));
    hot.set(SMALL_PATH, createIndexFile(Buffer.from('{"name":"sml"}\n'), {}, Date.now()));
    // The index cache holds upstream's config.json too; only its own route may serve it.
    hot.set('config.json', createIndexFile(Buffer.from('{"dl":"x"}'), {}, Date.now()));
    finished.length = 0;
    gate.tokens = undefined;
    gate.closing = () => false;
  });

  test('answers a hot file byte for byte, with its validators, and reports it', async () => {
    const file = hot.get(PATH) as IndexFile;
    const res = await httpGet(`${base}/index/${PATH}`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, BODY);
    assert.equal(res.headers.etag, file.etag);
    assert.equal(res.headers['last-modified'], file.lastModified);
    assert.equal(res.headers['content-length'], String(BODY.length));
    assert.equal(res.headers['x-cache-status'], 'HIT');
    assert.equal(res.headers['cache-control'], 'no-cache');
    assert.equal(finished.length, 1);
    const [record] = finished;
    assert.equal(record?.kind, 'sparse-index');
    assert.equal(record?.outcome, 'hit');
    assert.equal(record?.status, 200);
    assert.equal(record?.bytesSent, BODY.length);
    assert.equal(record?.url, `/index/${PATH}`);
  });

  test('answers 304, with validators only, when the client validators match', async () => {
    const file = hot.get(PATH) as IndexFile;
    const same = await httpGet(`${base}/index/${PATH}`, { 'if-none-match': file.etag });
    assert.equal(same.status, 304);
    assert.equal(same.body.length, 0);
    // RFC 9110 §15.4.5: the validators and caching fields, no representation metadata.
    assert.equal(same.headers.etag, file.etag);
    assert.equal(same.headers['cache-control'], 'no-cache');
    assert.equal(same.headers['content-type'], undefined);
    assert.equal(same.headers['last-modified'], undefined);
    const other = await httpGet(`${base}/index/${PATH}`, { 'if-none-match': '"other"' });
    assert.equal(other.status, 200);
    assert.deepEqual(
      finished.map((record) => record.status),
      [304, 200],
    );
  });

  test('leaves everything but a GET of a hot, valid index path to fastify', async () => {
    const declined = [
      await httpGet(`${base}/index/${PATH}`, {}, 'HEAD'),
      await httpGet(`${base}/index/no/tt/nothot`),
      await httpGet(`${base}/index/config.json`),
      await httpGet(`${base}/index/FA/ST/FAST-A`),
      await httpGet(`${base}/api/v1/crates/fast-a/1.0.0/download`),
    ];
    for (const res of declined) assert.equal(res.status, DECLINED);
    assert.equal(finished.length, 0);
  });

  test('leaves a closing server to fastify, which answers 503', async () => {
    gate.closing = () => true;
    assert.equal((await httpGet(`${base}/index/${PATH}`)).status, DECLINED);
  });

  test('with a token file, answers only requests with a valid token', async () => {
    gate.tokens = parseTokenFile('reader-token read\nadmin-token admin\n');
    assert.equal((await httpGet(`${base}/index/${PATH}`)).status, DECLINED);
    const wrong = await httpGet(`${base}/index/${PATH}`, { authorization: 'not-a-token' });
    assert.equal(wrong.status, DECLINED);
    const reader = await httpGet(`${base}/index/${PATH}`, { authorization: 'reader-token' });
    assert.equal(reader.status, 200);
    const basic = `Basic ${Buffer.from('user:admin-token').toString('base64')}`;
    assert.equal((await httpGet(`${base}/index/${PATH}`, { authorization: basic })).status, 200);
  });

  test('serves the gzip variant once it has been compressed, and small files as they are', async () => {
    const file = hot.get(PATH) as IndexFile;
    const gzipped = { 'accept-encoding': 'gzip' };
    assert.equal((await httpGet(`${base}/index/${PATH}`, gzipped)).status, DECLINED);
    const compressed = await variants.gzipOf(file);
    const res = await httpGet(`${base}/index/${PATH}`, gzipped);
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-encoding'], 'gzip');
    assert.equal(res.headers.etag, gzipEtag(file.etag));
    assert.deepEqual(res.body, compressed);
    const small = await httpGet(`${base}/index/${SMALL_PATH}`, gzipped);
    assert.equal(small.status, 200);
    assert.equal(small.headers['content-encoding'], undefined);
  });
});
