import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { contentSecurityPolicy, loadDashboard } from '../../src/server/routes/dashboard.ts';

describe('dashboard page', () => {
  const page = loadDashboard();

  test('is one self-contained file: no script, style, font or image from anywhere', () => {
    assert.doesNotMatch(page.html, /<script[^>]+src=/i);
    assert.doesNotMatch(page.html, /<link[^>]+rel="?stylesheet/i);
    assert.doesNotMatch(page.html, /@import|@font-face|url\(/i);
    // Absolute URLs only as the SVG namespace, which is a name, not a request.
    const absolute = [
      ...page.html.matchAll(/(?:https?:)?\/\/[A-Za-z0-9.-]+\.[A-Za-z]{2,}[^\s"'`)]*/g),
    ]
      .map((match) => match[0])
      .filter((url) => url !== 'http://www.w3.org/2000/svg');
    assert.deepEqual(absolute, []);
  });

  test('its policy allows exactly its own inline script and style', () => {
    const script = /<script>([\s\S]*?)<\/script>/.exec(page.html)?.[1] ?? '';
    const hash = createHash('sha256').update(script).digest('base64');
    assert.match(
      page.csp,
      new RegExp(`script-src 'sha256-${hash.replace(/[+/=]/g, '\\$&')}'(;|$)`),
    );
    assert.match(page.csp, /default-src 'none'/);
    assert.match(page.csp, /connect-src 'self'/);
    assert.doesNotMatch(page.csp, /unsafe-inline|unsafe-eval|\*/);
  });

  test('the policy lists one hash per inline block', () => {
    const csp = contentSecurityPolicy('<style>a{}</style><script>1</script><script>2</script>');
    assert.equal(csp.match(/script-src ([^;]*)/)?.[1]?.split(' ').length, 2);
    assert.equal(csp.match(/style-src ([^;]*)/)?.[1]?.split(' ').length, 1);
  });

  test('carries the test ids the end-to-end test reads', () => {
    for (const id of [
      'hit-ratio',
      'bytes-saved',
      'total-requests',
      'cache-size',
      'config-sparse',
      'config-git',
      'jobs',
      'top-crates',
      'recent-events',
      'git-index',
      'upstream-health',
    ]) {
      assert.match(page.html, new RegExp(`data-testid="${id}"`), id);
    }
  });
});
