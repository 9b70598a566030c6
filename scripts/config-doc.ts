/**
 * Rewrites the key reference of docs/CONFIG.md from the serve command's options
 * (src/cli/config-doc.ts). Run after adding or changing a flag:
 *
 *   npx tsx scripts/config-doc.ts
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { configReference, REFERENCE_END, REFERENCE_START } from '../src/cli/config-doc.ts';
import { configKeys } from '../src/cli/config-keys.ts';
import { buildProgram } from '../src/cli/main.ts';

const doc = fileURLToPath(new URL('../docs/CONFIG.md', import.meta.url));
const text = await readFile(doc, 'utf8');
const start = text.indexOf(REFERENCE_START);
const end = text.indexOf(REFERENCE_END);
if (start < 0 || end < start) throw new Error(`${doc} lacks the reference markers`);
const reference = configReference(configKeys(buildProgram()));
await writeFile(
  doc,
  `${text.slice(0, start + REFERENCE_START.length)}\n\n${reference}\n${text.slice(end)}`,
);
console.log(`rewrote the key reference of ${doc}`);
