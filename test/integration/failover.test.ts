import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, type TestContext, test } from 'node:test';
import { buildConfig } from '../../src/config.ts';
import { type FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream.ts';
import { httpGet } from '../helpers/http-get.ts';
import { startProxy } from '../helpers/proxy.ts';

const CRATES = [
  { name: 'fake-a', version: '0.1.0' },
  { name: 'fake-b', version: '0.2.0' },
];
const FAST = { retryDelayMs: 20 };

/** Two equivalent upstreams: the same crates, hence the same index lines and checksums. */
async function twoUpstreams(t: TestContext): Promise<[FakeUpstream, FakeUpstream]> {
  const first = await startFakeUpstream({ crates: CRATES });
  const second = await startFakeUpstream({ crates: CRATES });
  t.after(() => first.close());
  t.after(() => second.close());
  assert.equal(
    first.crate('fake-a', '0.1.0').checksum,
    second.crate('fake-a', '0.1.0').checksum,
    'the fake packs crates deterministically',
  );
  return [first, second];
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

describe('several upstreams', () => {
  test('-s and -u take comma-separated lists, tried in order', () => {
    const config = buildConfig({
      sparseUpstream: 'http://a.example/index, http://b.example/index/',
      crateUpstream: 'http://a.example/dl,http://b.example/dl',
    });
    assert.deepEqual(config.sparseUpstreams, [
      'http://a.example/index/',
      'http://b.example/index/',
    ]);
    assert.equal(config.sparseUpstream, 'http://a.example/index/');
    assert.deepEqual(config.crateUpstreams, ['http://a.example/dl', 'http://b.example/dl']);
  });

  test('the index comes from the second sparse upstream when the first is down', async (t) => {
    const [first, second] = await twoUpstreams(t);
    await first.stop();
    const proxy = await startProxy({
      settings: { sparseUpstream: `${first.indexUrl},${second.indexUrl}`, resilience: FAST },
    });
    t.after(() => proxy.close());
    const index = await httpGet(`${proxy.url}/index/fa/ke/fake-a`);
    assert.equal(index.status, 200);
    assert.equal(index.body.toString(), `${second.crate('fake-a', '0.1.0').indexLine}\n`);
    const crate = await httpGet(`${proxy.url}/api/v1/crates/fake-a/0.1.0/download`);
    assert.equal(crate.status, 200);
    assert.equal(second.count('/index/fa/ke/fake-a'), 1);
  });

  test('a crate from the first source that fails its checksum is refused; the second one is stored', async (t) => {
    const [first, second] = await twoUpstreams(t);
    first.setFault({ kind: 'corrupt' }, 'crate');
    const proxy = await startProxy({
      upstream: first,
      captureLogs: true,
      settings: { crateUpstream: `${first.url}/dl,${second.url}/dl`, resilience: FAST },
    });
    t.after(() => proxy.close());
    const crate = await httpGet(`${proxy.url}/api/v1/crates/fake-a/0.1.0/download`);
    assert.equal(crate.status, 200);
    assert.equal(sha256(crate.body), first.crate('fake-a', '0.1.0').checksum);
    assert.equal(first.count('/dl/'), 1, 'a bad checksum is not retried on the same source');
    assert.equal(second.count('/dl/'), 1);
    assert.ok(proxy.logs.some((line) => /failed verification/.test(line.msg)));
    const again = await httpGet(`${proxy.url}/api/v1/crates/fake-a/0.1.0/download`);
    assert.equal(again.headers['x-cache-status'], 'HIT');
    assert.deepEqual(again.body, crate.body);
  });

  test('crates come from the second source when the first is down', async (t) => {
    const [first, second] = await twoUpstreams(t);
    const proxy = await startProxy({
      upstream: second,
      settings: { crateUpstream: `${first.url}/dl,${second.url}/dl`, resilience: FAST },
    });
    t.after(() => proxy.close());
    await first.stop();
    const crate = await httpGet(`${proxy.url}/api/v1/crates/fake-b/0.2.0/download`);
    assert.equal(crate.status, 200);
    assert.equal(sha256(crate.body), second.crate('fake-b', '0.2.0').checksum);
  });

  test('when every source is corrupt: 502 naming the checksum, and nothing stored', async (t) => {
    const [first, second] = await twoUpstreams(t);
    first.setFault({ kind: 'corrupt' }, 'crate');
    second.setFault({ kind: 'corrupt' }, 'crate');
    const proxy = await startProxy({
      upstream: first,
      settings: { crateUpstream: `${first.url}/dl,${second.url}/dl`, resilience: FAST },
    });
    t.after(() => proxy.close());
    const crate = await httpGet(`${proxy.url}/api/v1/crates/fake-a/0.1.0/download`);
    assert.equal(crate.status, 502);
    assert.match(crate.body.toString(), /CARGO_CACHER_CHECKSUM_MISMATCH/);
    assert.equal(await proxy.deps.crates.has({ name: 'fake-a', version: '0.1.0' }), false);
  });
});
