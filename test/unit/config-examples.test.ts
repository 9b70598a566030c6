/**
 * Every example in the README and docs also works in the config file: each `cargo-cacher …`
 * command line of a code block is turned into a config file (every flag it uses must have a key
 * in a section), which must give the same settings; and every example config file (a `toml`
 * block that starts with a comment naming `cargo-cacher/config.toml`) must load.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { configKeys } from '../../src/cli/config-keys.ts';
import { resolveServeOptions, type ServeProgram } from '../../src/cli/config-layers.ts';
import { formatValue } from '../../src/cli/config-print.ts';
import { buildProgram } from '../../src/cli/main.ts';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const DOCS = [
  'README.md',
  ...readdirSync(join(REPO, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`),
];

/** Fenced code blocks of a markdown file, with their language. */
function codeBlocks(text: string): { lang: string; body: string }[] {
  return [...text.matchAll(/^```(\w*)\n([\s\S]*?)^```/gm)].map((match) => ({
    lang: match[1] ?? '',
    body: match[2] ?? '',
  }));
}

/** The arguments of every serve command line (`cargo-cacher -…`, `cargo-cacher config …`). */
function serveExamples(): { where: string; args: string[] }[] {
  const examples: { where: string; args: string[] }[] = [];
  for (const doc of DOCS) {
    for (const block of codeBlocks(readFileSync(join(REPO, doc), 'utf8'))) {
      const lines = block.body.replace(/\\\n\s*/g, ' ').split('\n');
      for (const line of lines) {
        const match =
          /^\s*(?:\$ )?(?:sudo )?(?:[A-Z_]+=\S+ )*cargo-cacher((?: config)?(?: --?[\w-].*)?)$/.exec(
            line.replace(/\s+#.*$/, ''),
          );
        if (!match) continue;
        const args = shellWords(match[1] ?? '').filter(
          (arg) => arg !== 'config' && arg !== '--check',
        );
        examples.push({ where: `${doc}: ${line.trim()}`, args });
      }
    }
  }
  return examples;
}

/** Splits a command line into words: spaces, single and double quotes. */
function shellWords(text: string): string[] {
  return [...text.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map(
    (match) => match[1] ?? match[2] ?? match[3] ?? '',
  );
}

let dir: string;
before(async () => {
  dir = await makeTempDir('config-examples');
});
after(() => removeTempDir(dir));

/** Parses `args` alone (no file, no environment): the options and which came from flags. */
function parseFlags(args: string[]) {
  const program = buildProgram() as unknown as ServeProgram;
  program.exitOverride();
  program.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  const { operands, unknown } = program.parseOptions(args);
  assert.deepEqual([...operands, ...unknown], [], 'only flags');
  return program;
}

describe('examples in the README and docs work as config files', () => {
  test('there are examples to check', () => {
    assert.ok(serveExamples().length >= 8, `found ${serveExamples().length}`);
  });

  for (const example of serveExamples()) {
    test(example.where, async () => {
      const program = parseFlags(example.args);
      const keys = configKeys(program);
      const sections = new Map<string, string[]>();
      for (const key of keys) {
        if (program.getOptionValueSource(key.attribute) !== 'cli') continue;
        const value = program.getOptionValue(key.attribute);
        // `--no-git` switches `git` off: its key is no-git, not git.
        if (key.kind === 'negated' ? value !== false : value === false && key.kind === 'value') {
          continue;
        }
        assert.ok(key.section, `${key.flag} has no key in the config file`);
        const text = key.kind === 'negated' ? 'true' : formatValue(key, value, { redact: false });
        assert.ok(text !== undefined, `${key.flag}: no value to write`);
        sections.set(key.section, [...(sections.get(key.section) ?? []), `${key.name} = ${text}`]);
      }
      const file = join(dir, `example-${Math.random().toString(36).slice(2)}.toml`);
      const toml = [...sections].map(([section, lines]) => `[${section}]\n${lines.join('\n')}`);
      await writeFile(file, `${toml.join('\n')}\n`);
      const fromFile = await resolveServeOptions(buildProgram(), ['--config', file], {});
      const fromFlags = program.opts();
      for (const key of keys) {
        if (key.attribute === 'config') continue;
        assert.deepEqual(
          fromFile.options[key.attribute],
          fromFlags[key.attribute],
          `${key.name} differs when written to the file:\n${toml.join('\n')}`,
        );
      }
    });
  }

  test('every example config file loads', async () => {
    const examples = DOCS.flatMap((doc) =>
      codeBlocks(readFileSync(join(REPO, doc), 'utf8'))
        .filter(
          (block) => block.lang === 'toml' && /^#.*cargo-cacher\/config\.toml/.test(block.body),
        )
        .map((block) => ({ doc, body: block.body })),
    );
    assert.ok(examples.length >= 1, 'docs/CONFIG.md has an example config file');
    for (const [index, example] of examples.entries()) {
      const file = join(dir, `doc-example-${index}.toml`);
      await writeFile(file, example.body);
      await resolveServeOptions(buildProgram(), ['--config', file], {}).catch((err: Error) =>
        assert.fail(`${example.doc}: ${err.message}`),
      );
    }
  });
});
