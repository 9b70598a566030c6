import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import { parseTokenFile, roleOf, tokensOf } from '../../src/server/auth.ts';
import { httpGet, type RawResponse } from '../helpers/http-get.ts';
import { startProxy, startUpstreamAndProxy } from '../helpers/proxy.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';

const READ = 'read-token-5f1e2d';
const ADMIN = 'admin-token-9a8b7c';
const TOKEN_FILE = `# who may use the proxy\n${READ} read\n\n${ADMIN}   admin # CI\n`;
const LOCK = 'fake-a=0.1.0\n';

async function setup(t: TestContext) {
  const dir = await makeTempDir('auth');
  t.after(() => removeTempDir(dir));
  const tokenFile = join(dir, 'tokens');
  await writeFile(tokenFile, TOKEN_FILE);
  return startUpstreamAndProxy(t, {
    upstream: { crates: [{ name: 'fake-a', version: '0.1.0' }] },
    captureLogs: 'debug',
    settings: { authTokenFile: tokenFile },
  });
}

function post(url: string, body: string, token?: string): Promise<RawResponse> {
  return fetch(url, {
    method: 'POST',
    body,
    headers: { 'content-type': 'text/plain', ...(token && { authorization: token }) },
  }).then(async (response) => ({
    status: response.status,
    headers: Object.fromEntries(response.headers),
    body: Buffer.from(await response.arrayBuffer()),
    complete: true,
  }));
}

describe('access control: token file', () => {
  test('parses tokens and roles, ignoring comments and blank lines', () => {
    const table = parseTokenFile(TOKEN_FILE);
    assert.equal(roleOf(table, READ), 'read');
    assert.equal(roleOf(table, ADMIN), 'admin');
    assert.equal(roleOf(table, 'nope'), undefined);
    assert.equal(roleOf(table, READ.slice(0, -1)), undefined);
  });

  test('refuses bad lines by number, without echoing them, and an empty file', () => {
    assert.throws(
      () => parseTokenFile('abc read\nsecret-xyz writer\n'),
      (err: Error) => {
        assert.match(err.message, /line 2: expected "<token> read" or "<token> admin"/);
        assert.doesNotMatch(err.message, /secret-xyz/);
        return true;
      },
    );
    assert.throws(() => parseTokenFile('# nobody\n'), /holds no token/);
  });

  test('reads tokens raw (cargo), as Bearer, and as Basic user or password (git)', () => {
    assert.deepEqual(tokensOf('abc'), ['abc']);
    assert.deepEqual(tokensOf('Bearer abc'), ['abc']);
    const basic = `Basic ${Buffer.from('user:abc').toString('base64')}`;
    assert.deepEqual(tokensOf(basic), ['abc', 'user']);
    assert.deepEqual(tokensOf(undefined), []);
  });
});

describe('access control: requests', () => {
  test('/health stays open; everything else needs a token, with the cargo challenge', async (t) => {
    const { proxy } = await setup(t);
    assert.equal((await httpGet(`${proxy.url}/health`)).status, 200);
    const refused = await httpGet(`${proxy.url}/index/config.json`);
    assert.equal(refused.status, 401);
    assert.equal(refused.headers['www-authenticate'], `Cargo login_url="${proxy.url}/"`);
    const body = JSON.parse(refused.body.toString()) as { errors: { detail: string }[] };
    assert.match(body.errors[0]?.detail ?? '', /requires a token/);
    for (const path of ['/index/fa/ke/fake-a', '/api/v1/crates/fake-a/0.1.0/download', '/']) {
      assert.equal((await httpGet(`${proxy.url}${path}`)).status, 401, path);
    }
    const git = await httpGet(`${proxy.url}/index/info/refs?service=git-upload-pack`);
    assert.match(String(git.headers['www-authenticate']), /Basic realm=/);
    const wrong = await httpGet(`${proxy.url}/index/fa/ke/fake-a`, { authorization: 'nope' });
    assert.equal(wrong.status, 401);
    assert.match(wrong.body.toString(), /not valid/);
  });

  test('a read token serves config.json (auth-required), index files and crates', async (t) => {
    const { proxy } = await setup(t);
    const config = await httpGet(`${proxy.url}/index/config.json`, { authorization: READ });
    assert.equal(config.status, 200);
    assert.equal(JSON.parse(config.body.toString())['auth-required'], true);
    const bearer = { authorization: `Bearer ${READ}` };
    assert.equal((await httpGet(`${proxy.url}/index/fa/ke/fake-a`, bearer)).status, 200);
    const crate = await httpGet(`${proxy.url}/api/v1/crates/fake-a/0.1.0/download`, bearer);
    assert.equal(crate.status, 200);
  });

  test('prefetch needs an admin token', async (t) => {
    const { proxy } = await setup(t);
    const url = `${proxy.url}/api/v1/prefetch`;
    assert.equal((await post(url, LOCK)).status, 401);
    const asReader = await post(url, LOCK, READ);
    assert.equal(asReader.status, 403);
    assert.match(asReader.body.toString(), /needs an admin token/);
    assert.equal((await post(url, LOCK, ADMIN)).status, 202);
  });

  test('tokens never reach the log', async (t) => {
    const { proxy } = await setup(t);
    await httpGet(`${proxy.url}/index/fa/ke/fake-a`, { authorization: READ });
    await httpGet(`${proxy.url}/index/fa/ke/fake-a`, { authorization: 'wrong-secret-1234' });
    await post(`${proxy.url}/api/v1/prefetch`, LOCK, READ);
    assert.ok(proxy.logs.length > 0);
    const text = JSON.stringify(proxy.logs);
    for (const secret of [READ, ADMIN, 'wrong-secret-1234']) assert.ok(!text.includes(secret));
  });

  test('a token file that cannot be read stops startup with one line', async (t) => {
    await assert.rejects(
      startProxy({ settings: { authTokenFile: '/nonexistent/tokens' } }),
      /cannot read --auth-token-file \/nonexistent\/tokens/,
    );
    t.diagnostic('startup refused');
  });
});
