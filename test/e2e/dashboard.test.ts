import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { copyFile, mkdir } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { type Browser, chromium, type Page } from 'playwright-core';
import type { StatsSummary } from '../../src/stats/summary.ts';
import { type FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream.ts';
import { httpGet } from '../helpers/http-get.ts';
import { type RunningProxy, startProxy } from '../helpers/proxy.ts';
import { seedStatsHistory } from '../helpers/stats-history.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';

/** Debian's chromium: a test tool's own browser download does not work on these machines. */
const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
];
/** Where screenshots go (gitignored); `CARGO_CACHER_UPDATE_SCREENSHOTS=1` also refreshes docs/. */
const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url);
const DOCS = new URL('../../docs/', import.meta.url);
const PUBLIC_URL = 'http://crates-cache.internal:8080';

const CRATES = ['serde', 'syn', 'tokio', 'quote', 'anyhow', 'libc'].map((name, i) => ({
  name,
  version: `1.0.${i}`,
  padBytes: 4_000 * (i + 1),
}));

describe('dashboard in a real browser', { concurrency: false }, () => {
  let browser: Browser | undefined;
  let upstream: FakeUpstream;
  let proxy: RunningProxy;
  let dirs: string[] = [];

  before(async () => {
    if (!existsSync(CHROMIUM)) return;
    const storageDir = await makeTempDir('dashboard-store');
    const gitDir = await makeTempDir('dashboard-git');
    dirs = [storageDir, gitDir];
    seedStatsHistory(storageDir);
    upstream = await startFakeUpstream({ crates: CRATES });
    proxy = await startProxy({
      upstream,
      storageDir,
      gitUrl: await upstream.enableGit(gitDir),
      settings: { publicUrl: PUBLIC_URL },
    });
    await makeTraffic(proxy, upstream);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  });

  after(async () => {
    await browser?.close();
    await proxy?.close();
    await upstream?.close();
    for (const dir of dirs) await removeTempDir(dir);
  });

  test('shows the API numbers, asks no other host, and gives a config with the public URL', async (t) => {
    if (!chromiumAvailable(t) || !browser) return;
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    t.after(() => page.close());
    const hosts = new Set<string>();
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (url.protocol !== 'data:') hosts.add(url.host);
    });
    const problems: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    page.on('pageerror', (err) => problems.push(err.message));

    const apiResponse = page.waitForResponse((r) => r.url().endsWith('/api/v1/stats'));
    await page.goto(`${proxy.url}/`);
    const shown = (await (await apiResponse).json()) as StatsSummary;
    await page.waitForSelector('body[data-loaded="true"]');
    const fresh = JSON.parse((await httpGet(`${proxy.url}/api/v1/stats`)).body.toString());
    assert.deepEqual(shown.totals, fresh.totals, 'no traffic between the page and the check');

    await expectFigures(page, shown);
    const topCrates = await page.$$eval('[data-testid="top-crate"]', (rows) =>
      rows.map((row) => [
        row.getAttribute('data-name'),
        Number(row.getAttribute('data-downloads')),
      ]),
    );
    assert.deepEqual(
      topCrates,
      shown.topCrates.map((c) => [c.name, c.downloads]),
    );
    const sparse = await page.textContent('[data-testid="config-sparse"]');
    const git = await page.textContent('[data-testid="config-git"]');
    assert.match(sparse ?? '', /replace-with = "cargo-cacher"/);
    assert.ok(sparse?.includes(`registry = "sparse+${PUBLIC_URL}/index/"`), sparse ?? '');
    assert.ok(git?.includes(`registry = "${PUBLIC_URL}/index"`), git ?? '');
    assert.equal(await page.getAttribute('[data-testid="git-index"]', 'data-value'), 'ready');
    assert.equal(await page.locator('[data-testid="job"]').count(), shown.jobs.length);
    assert.ok(shown.jobs.some((job) => job.state === 'running'));
    assert.equal((await page.locator('[data-testid="event"]').count()) > 0, true);

    assert.deepEqual([...hosts], [new URL(proxy.url).host], 'every request went to the proxy');
    assert.deepEqual(problems, [], 'no script error and no CSP violation');

    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: new URL('dashboard.png', ARTIFACTS).pathname, fullPage: true });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.screenshot({
      path: new URL('dashboard-dark.png', ARTIFACTS).pathname,
      fullPage: true,
    });
    if (process.env.CARGO_CACHER_UPDATE_SCREENSHOTS === '1') {
      await mkdir(DOCS, { recursive: true });
      await copyFile(new URL('dashboard.png', ARTIFACTS), new URL('dashboard.png', DOCS));
    }
  });

  test('fits a phone: no horizontal scrolling, and refreshes itself', async (t) => {
    if (!chromiumAvailable(t) || !browser) return;
    const page = await browser.newPage({
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
    });
    t.after(() => page.close());
    await page.goto(`${proxy.url}/stats`);
    await page.waitForSelector('body[data-loaded="true"]');
    const overflow = (await page.evaluate(
      'document.documentElement.scrollWidth - window.innerWidth',
    )) as number;
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than the phone`);
    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({
      path: new URL('dashboard-phone.png', ARTIFACTS).pathname,
      fullPage: true,
    });

    // The next refresh (every 5 s) shows a download made after the page loaded.
    const previous = Number(
      await page.getAttribute('[data-testid="crate-downloads"]', 'data-value'),
    );
    await download(proxy, upstream, CRATES[0]?.name ?? '', 1);
    // Polled from here: the page's policy forbids the eval that a string waitForFunction uses.
    const downloads = async () =>
      Number(await page.getAttribute('[data-testid="crate-downloads"]', 'data-value'));
    for (let i = 0; (await downloads()) <= previous; i += 1) {
      assert.ok(i < 60, 'the page did not refresh within 15 s');
      await delay(250);
    }
  });
});

describe('dashboard: the Policy panel', () => {
  test('lists a withheld young version with when it is served, and the refused download', async (t) => {
    if (!chromiumAvailable(t)) return;
    const published = new Date(Date.now() - 3_600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const young = await startFakeUpstream({
      crates: [
        { name: 'young-crate', version: '1.0.0' },
        { name: 'young-crate', version: '1.1.0', pubtime: published },
      ],
    });
    t.after(() => young.close());
    const proxy = await startProxy({
      upstream: young,
      settings: { policy: { minPublishAgeMs: 3 * 86_400_000 } },
    });
    t.after(() => proxy.close());
    await httpGet(`${proxy.url}/index/yo/un/young-crate`);
    const refused = await httpGet(`${proxy.url}/api/v1/crates/young-crate/1.1.0/download`);
    assert.equal(refused.status, 403);
    const stats = JSON.parse((await httpGet(`${proxy.url}/api/v1/stats`)).body.toString());
    assert.equal(stats.policy.withheld[0]?.crate, 'young-crate@1.1.0');
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
    t.after(() => browser.close());
    const page = await browser.newPage();
    await page.goto(`${proxy.url}/stats`);
    await page.waitForSelector('body[data-loaded="true"]');
    const entry = (type: string) =>
      page.textContent(
        `[data-testid="policy-entry"][data-type="${type}"][data-crate="young-crate@1.1.0"]`,
      );
    assert.match((await entry('withheld')) ?? '', /young.*served in (2|3) d/s);
    assert.match((await entry('refused')) ?? '', /young/);
    assert.match(
      (await page.textContent('#policy-count')) ?? '',
      /1 withheld · 1 refused · 0 purged/,
    );
  });
});

/** Fails on CI without chromium (a broken machine), skips elsewhere. */
function chromiumAvailable(t: { skip: (message: string) => void }): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (process.env.CI === 'true') assert.fail(`${CHROMIUM} is required on CI (.ci/run installs it)`);
  t.skip(`${CHROMIUM} is not installed (apt-get install chromium)`);
  return false;
}

/** Every headline figure on the page equals the API's. */
async function expectFigures(page: Page, stats: StatsSummary): Promise<void> {
  const value = (id: string) => page.getAttribute(`[data-testid="${id}"]`, 'data-value');
  const text = async (id: string) => (await page.textContent(`[data-testid="${id}"]`))?.trim();
  const t = stats.totals;
  assert.equal(await text('hit-ratio'), `${((t.hitRatio ?? 0) * 100).toFixed(1)}%`);
  const figures: [string, number][] = [
    ['hits', t.hits],
    ['misses', t.misses],
    ['total-requests', t.requests],
    ['crate-downloads', t.crateDownloads],
    ['bytes-saved', t.bytesSaved],
    ['bytes-served', t.bytesSent],
    ['cache-size', stats.cache.bytes],
    ['cache-crates', stats.cache.crates.objects],
    ['cache-index', stats.cache.index.objects],
  ];
  for (const [id, expected] of figures) assert.equal(Number(await value(id)), expected, id);
  assert.equal(await text('total-requests'), t.requests.toLocaleString('en-US'));
  assert.equal(await text('hits'), t.hits.toLocaleString('en-US'));
  assert.equal(await value('upstream-health'), stats.upstream.health);
}

async function download(proxy: RunningProxy, upstream: FakeUpstream, name: string, times: number) {
  const { version } = upstream.crates().find((c) => c.name === name) ?? { version: '' };
  for (let i = 0; i < times; i += 1) {
    const response = await httpGet(`${proxy.url}/api/v1/crates/${name}/${version}/download`);
    assert.equal(response.status, 200);
  }
}

/** Misses, hits, an unknown crate, an upstream failure, a finished and a running job. */
async function makeTraffic(proxy: RunningProxy, upstream: FakeUpstream): Promise<void> {
  const mirror = proxy.deps.git;
  for (let i = 0; mirror && !mirror.ready; i += 1) {
    assert.ok(i < 400, 'the git mirror never became ready');
    await delay(50);
  }
  for (const [i, spec] of CRATES.entries()) await download(proxy, upstream, spec.name, 12 - 2 * i);
  for (const spec of CRATES.slice(0, 3)) {
    const path = spec.name.length > 3 ? `${spec.name.slice(0, 2)}/${spec.name.slice(2, 4)}` : '3/s';
    await httpGet(`${proxy.url}/index/${path}/${spec.name}`);
  }
  await httpGet(`${proxy.url}/api/v1/crates/no-such-crate/1.0.0/download`);
  await upstream.addCrate({ name: 'flaky', version: '0.1.0' });
  upstream.setFault({ kind: 'status', status: 503 }, 'crate');
  await httpGet(`${proxy.url}/api/v1/crates/flaky/0.1.0/download`);
  upstream.setFault(undefined);
  const job = proxy.deps.jobs.create('mirror', 'full mirror of the git index');
  job.expect(1_200);
  for (let i = 0; i < 830; i += 1)
    job.record({
      name: `crate-${i}`,
      version: '1.0.0',
      status: i % 97 === 0 ? 'failed' : 'fetched',
    });
  const prefetch = await httpPost(`${proxy.url}/api/v1/prefetch`, 'serde=1.0.0\nsyn=1.0.1\n');
  assert.equal(prefetch, 202);
  for (let i = 0; proxy.deps.jobs.running().length > 1; i += 1) {
    assert.ok(i < 200, 'the prefetch job never finished');
    await delay(50);
  }
}

async function httpPost(url: string, body: string): Promise<number> {
  const response = await fetch(url, {
    method: 'POST',
    body,
    headers: { 'content-type': 'text/plain' },
  });
  await response.arrayBuffer();
  return response.status;
}
