import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { configReference, REFERENCE_END, REFERENCE_START } from '../../src/cli/config-doc.ts';
import { configKeys, envName } from '../../src/cli/config-keys.ts';
import { CONFIG_SECTIONS, SECTIONS } from '../../src/cli/config-sections.ts';
import { buildProgram } from '../../src/cli/main.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

describe('config keys: one per serve flag', () => {
  test('every long flag of the serve command has a section (add a row to src/cli/config-sections.ts)', () => {
    const missing = configKeys(buildProgram())
      .filter((key) => key.section === undefined)
      .map((key) => key.flag);
    assert.deepEqual(missing, [], `flags without a section in config-sections.ts: ${missing}`);
  });

  test('every row of config-sections.ts names a serve flag, in a known section', () => {
    const flags = new Set(configKeys(buildProgram()).map((key) => key.name));
    const stale = Object.keys(CONFIG_SECTIONS).filter((name) => !flags.has(name));
    assert.deepEqual(stale, [], `rows for flags that do not exist: ${stale}`);
    for (const section of Object.values(CONFIG_SECTIONS)) assert.ok(SECTIONS.includes(section));
  });

  test('the environment variable is CARGO_CACHER_ and the long name, one per key', () => {
    assert.equal(envName('max-size'), 'CARGO_CACHER_MAX_SIZE');
    assert.equal(envName('no-git'), 'CARGO_CACHER_NO_GIT');
    const keys = configKeys(buildProgram());
    assert.equal(new Set(keys.map((key) => key.env)).size, keys.length);
    const byName = new Map(keys.map((key) => [key.name, key]));
    assert.equal(byName.get('index-ttl')?.env, 'CARGO_CACHER_INDEX_TTL');
    assert.equal(byName.get('index-ttl')?.section, 'index');
    assert.equal(byName.get('prefetch')?.kind, 'list');
    assert.equal(byName.get('no-git')?.kind, 'negated');
    assert.equal(byName.get('git')?.kind, 'value');
    assert.equal(byName.get('debug')?.kind, 'counter');
    assert.equal(byName.get('offline')?.kind, 'boolean');
    assert.equal(byName.has('config'), false, '--config names the file: no key');
    assert.equal(byName.has('version'), false);
  });
});

describe('docs/CONFIG.md', () => {
  test('lists every key, generated from the flags (npx tsx scripts/config-doc.ts)', async () => {
    const doc = await readFile(`${REPO}docs/CONFIG.md`, 'utf8');
    const start = doc.indexOf(REFERENCE_START);
    const end = doc.indexOf(REFERENCE_END);
    assert.ok(start >= 0 && end > start, 'docs/CONFIG.md has the reference markers');
    const inDoc = doc.slice(start + REFERENCE_START.length, end).trim();
    const keys = configKeys(buildProgram());
    for (const key of keys) {
      assert.ok(
        inDoc.includes(`| \`${key.name}\` |`),
        `${key.name} is missing from docs/CONFIG.md`,
      );
      assert.ok(inDoc.includes(key.env), `${key.env} is missing from docs/CONFIG.md`);
    }
    assert.equal(
      inDoc,
      configReference(keys).trim(),
      'docs/CONFIG.md is stale: run npx tsx scripts/config-doc.ts',
    );
  });
});
