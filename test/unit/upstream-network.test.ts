import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gitCertificateHint, gitConfigEnv, prepareGitNetwork } from '../../src/git/git-network.ts';
import { upstreamFailure } from '../../src/upstream/http-client.ts';
import { redactUrl, redactUrlsIn } from '../../src/upstream/redact-url.ts';
import {
  describeUpstreamProxy,
  NO_PROXY,
  proxyFor,
  resolveUpstreamProxy,
} from '../../src/upstream/upstream-proxy.ts';

describe('redactUrl', () => {
  const cases: [string, string][] = [
    ['http://user:pass@proxy:3128', 'http://user:***@proxy:3128'],
    ['http://user:pass@proxy:3128/', 'http://user:***@proxy:3128/'],
    ['https://token@github.com/org/index.git', 'https://***@github.com/org/index.git'],
    ['http://proxy:3128', 'http://proxy:3128'],
    ['https://index.crates.io/', 'https://index.crates.io/'],
    ['/srv/git/index.git', '/srv/git/index.git'],
    ['not a url u:p@x', 'not a url u:p@x'],
  ];
  for (const [url, expected] of cases) {
    test(`${url} → ${expected}`, () => assert.equal(redactUrl(url), expected));
  }

  test('URLs quoted in a text lose their credentials, the rest is kept', () => {
    const text =
      "fatal: unable to access 'https://tok@git.corp/x.git/': via http://u:p%40ss@proxy:8080 failed";
    assert.equal(
      redactUrlsIn(text),
      "fatal: unable to access 'https://***@git.corp/x.git/': via http://u:***@proxy:8080 failed",
    );
  });
});

describe('resolveUpstreamProxy', () => {
  const proxy = 'http://proxy.corp:3128';
  test('the flag sets both schemes; NO_PROXY still applies', () => {
    assert.deepEqual(resolveUpstreamProxy(proxy, { NO_PROXY: 'internal.corp', HTTPS_PROXY: 'x' }), {
      http: proxy,
      https: proxy,
      noProxy: 'internal.corp',
      source: 'flag',
    });
  });

  test('"none" ignores the environment', () => {
    assert.deepEqual(resolveUpstreamProxy('none', { HTTPS_PROXY: proxy }), NO_PROXY);
  });

  test('the environment: lower case first, https falling back to the http proxy', () => {
    assert.deepEqual(
      resolveUpstreamProxy(undefined, {
        http_proxy: 'http://lower:1',
        HTTP_PROXY: 'http://upper:1',
        no_proxy: '.corp',
      }),
      { http: 'http://lower:1', https: 'http://lower:1', noProxy: '.corp', source: 'environment' },
    );
    assert.deepEqual(resolveUpstreamProxy(undefined, { HTTPS_PROXY: 'https://s:1' }), {
      http: undefined,
      https: 'https://s:1',
      noProxy: '',
      source: 'environment',
    });
  });

  test('nothing set, or set empty: no proxy', () => {
    assert.deepEqual(resolveUpstreamProxy(undefined, {}), NO_PROXY);
    assert.deepEqual(resolveUpstreamProxy(undefined, { HTTPS_PROXY: ' ' }), NO_PROXY);
  });

  test('a bare host:port means http://host:port', () => {
    assert.equal(resolveUpstreamProxy('proxy.corp:3128').https, 'http://proxy.corp:3128');
  });

  test('a bad proxy URL is refused without repeating its password', () => {
    assert.throws(
      () => resolveUpstreamProxy('socks5://u:hunter2@proxy:1080'),
      (err: Error & { code?: string }) =>
        err.code === 'CARGO_CACHER_INVALID_CONFIG' &&
        err.message.includes('socks5://u:***@proxy:1080') &&
        !err.message.includes('hunter2'),
    );
  });

  test('described for /health with the password hidden', () => {
    const settings = resolveUpstreamProxy('http://u:hunter2@p:1', { NO_PROXY: 'a' });
    assert.deepEqual(describeUpstreamProxy(settings), {
      source: 'flag',
      http: 'http://u:***@p:1',
      https: 'http://u:***@p:1',
      noProxy: 'a',
    });
    assert.deepEqual(describeUpstreamProxy(NO_PROXY), { source: 'none' });
  });
});

describe('proxyFor (undici NO_PROXY rules)', () => {
  const settings = (noProxy: string) => resolveUpstreamProxy('http://p:1', { NO_PROXY: noProxy });
  const cases: [string, string, boolean][] = [
    ['', 'https://index.crates.io/', true],
    ['crates.io', 'https://index.crates.io/', false],
    ['.crates.io', 'https://index.crates.io/', false],
    ['*.crates.io', 'https://static.crates.io/x', false],
    ['index.crates.io', 'https://static.crates.io/x', true],
    ['127.0.0.1', 'http://127.0.0.1:8080/x', false],
    ['127.0.0.1:9000', 'http://127.0.0.1:8080/x', true],
    ['127.0.0.1:8080', 'http://127.0.0.1:8080/x', false],
    ['github.com:443', 'https://github.com/x.git', false],
    ['*', 'https://anything/', false],
    ['a, b  crates.io', 'https://index.crates.io/', false],
  ];
  for (const [noProxy, url, proxied] of cases) {
    test(`NO_PROXY="${noProxy}": ${url} ${proxied ? 'proxied' : 'direct'}`, () => {
      assert.equal(proxyFor(settings(noProxy), url), proxied ? 'http://p:1' : undefined);
    });
  }

  test('local paths (a git index on disk) never go through it', () => {
    assert.equal(proxyFor(settings(''), '/srv/index.git'), undefined);
  });
});

describe('upstreamFailure', () => {
  const url = 'https://index.crates.io/se/rd/serde';
  test('an untrusted certificate: one line naming the host, the reason and --upstream-ca', () => {
    const cause = Object.assign(new Error('self-signed certificate in certificate chain'), {
      code: 'SELF_SIGNED_CERT_IN_CHAIN',
    });
    const err = upstreamFailure(url, cause) as Error & { code: string };
    assert.equal(err.code, 'CARGO_CACHER_UPSTREAM_UNREACHABLE');
    assert.equal(
      err.message,
      'upstream index.crates.io: TLS certificate not trusted: self-signed certificate in ' +
        'certificate chain (SELF_SIGNED_CERT_IN_CHAIN); if a private CA (or a TLS-inspecting ' +
        'proxy) signs it, trust that CA with --upstream-ca <pem>',
    );
  });

  test('a certificate error wrapped by undici (met through a proxy) is found in its cause', () => {
    const inner = Object.assign(new Error("Hostname/IP does not match certificate's altnames"), {
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
    });
    const cause = Object.assign(new Error('secure proxy connection failed', { cause: inner }), {
      code: 'UND_ERR_PRX_TLS',
    });
    const { message } = upstreamFailure(url, cause, undefined, 'http://u:pw@proxy:3128');
    assert.match(message, /ERR_TLS_CERT_ALTNAME_INVALID\) via proxy http:\/\/u:\*\*\*@proxy:3128/);
  });

  test('a proxy asking for credentials, and one refusing the tunnel', () => {
    const via = 'http://u:pw@proxy:3128';
    const auth = new Error('Proxy response (407) !== 200 when HTTP Tunneling');
    assert.equal(
      upstreamFailure(url, auth, undefined, via).message,
      'upstream index.crates.io unreachable: proxy http://u:***@proxy:3128 answered 407 Proxy ' +
        'Authentication Required: check the user and password in its URL',
    );
    const refused = new Error('Proxy response (403) !== 200 when HTTP Tunneling');
    assert.match(
      upstreamFailure(url, refused, undefined, via).message,
      /refused the request with 403/,
    );
  });

  test('a network error through the proxy names it, without its password', () => {
    const cause = Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:3128'), {
      code: 'ECONNREFUSED',
    });
    assert.equal(
      upstreamFailure(url, cause, undefined, 'http://u:pw@proxy:3128').message,
      'upstream index.crates.io unreachable via proxy http://u:***@proxy:3128: connection ' +
        'refused (ECONNREFUSED); check the proxy and -s/-u',
    );
  });
});

describe('git network settings', () => {
  test('config entries become GIT_CONFIG_* variables', () => {
    assert.deepEqual(gitConfigEnv([['http.proxy', 'http://p:1']]), {
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: 'http.proxy',
      GIT_CONFIG_VALUE_0: 'http://p:1',
    });
    assert.deepEqual(gitConfigEnv([]), {});
  });

  test('the git upstream gets the proxy its scheme and NO_PROXY call for', async () => {
    const proxy = resolveUpstreamProxy(undefined, {
      HTTPS_PROXY: 'http://u:pw@p:1',
      NO_PROXY: 'git.internal',
    });
    assert.deepEqual(
      await prepareGitNetwork({ upstreamUrl: 'https://github.com/rust-lang/x.git', proxy }),
      {
        GIT_CONFIG_COUNT: '1',
        GIT_CONFIG_KEY_0: 'http.proxy',
        GIT_CONFIG_VALUE_0: 'http://u:pw@p:1',
        NO_PROXY: 'git.internal',
        no_proxy: 'git.internal',
      },
    );
    assert.deepEqual(
      await prepareGitNetwork({ upstreamUrl: 'https://git.internal/x.git', proxy }),
      { NO_PROXY: 'git.internal', no_proxy: 'git.internal' },
    );
  });

  test("git's certificate failures get the --upstream-ca hint, others do not", () => {
    const openssl =
      "unable to access 'https://h/': SSL certificate problem: unable to get local issuer certificate";
    const gnutls =
      "unable to access 'https://h/': server certificate verification failed. CAfile: none";
    assert.match(String(gitCertificateHint(openssl)), /--upstream-ca/);
    assert.match(String(gitCertificateHint(gnutls)), /--upstream-ca/);
    assert.equal(
      gitCertificateHint("unable to access 'https://h/': Could not resolve host: h"),
      undefined,
    );
  });
});
