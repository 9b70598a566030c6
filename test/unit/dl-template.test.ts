import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { DownloadTarget } from '../../src/registry/dl-template.ts';
import { expandDlTemplate } from '../../src/registry/dl-template.ts';

const CHECKSUM = 'e7b3a1f0c2d4e6f8a0b2c4d6e8f0a2b4c6d8e0f2a4b6c8d0e2f4a6b8c0d2e4f6';
const serde: DownloadTarget = { name: 'serde', version: '1.0.219', checksum: CHECKSUM };
const inflector: DownloadTarget = { name: 'Inflector', version: '0.11.4', checksum: CHECKSUM };

const EXPANSIONS: [string, string, DownloadTarget, string][] = [
  [
    'replaces {crate} with the name exactly as in the index line',
    'https://dl.example/{crate}',
    inflector,
    'https://dl.example/Inflector',
  ],
  ['replaces {version}', 'https://dl.example/{version}', serde, 'https://dl.example/1.0.219'],
  [
    'replaces {prefix} with the original-case prefix',
    'https://dl.example/{prefix}',
    inflector,
    'https://dl.example/In/fl',
  ],
  [
    'replaces {lowerprefix} with the lowercased prefix',
    'https://dl.example/{lowerprefix}',
    inflector,
    'https://dl.example/in/fl',
  ],
  [
    'replaces {sha256-checksum} with the checksum',
    'https://dl.example/{sha256-checksum}',
    serde,
    `https://dl.example/${CHECKSUM}`,
  ],
  [
    'replaces every marker in one template, each as often as it occurs',
    'https://dl.example/{prefix}/{lowerprefix}/{crate}/{version}/{crate}?h={sha256-checksum}',
    inflector,
    `https://dl.example/In/fl/in/fl/Inflector/0.11.4/Inflector?h=${CHECKSUM}`,
  ],
  [
    'uses the short prefixes of 1-, 2- and 3-letter names',
    'https://dl.example/{prefix}/{crate}',
    { name: 'Url', version: '1.0.0', checksum: CHECKSUM },
    'https://dl.example/3/U/Url',
  ],
  [
    'builds the crates.io static URL from its template form',
    'https://static.crates.io/crates/{crate}/{crate}-{version}.crate',
    serde,
    'https://static.crates.io/crates/serde/serde-1.0.219.crate',
  ],
  [
    'appends /{crate}/{version}/download when the template has no marker',
    'https://crates.io/api/v1/crates',
    serde,
    'https://crates.io/api/v1/crates/serde/1.0.219/download',
  ],
  [
    'appends to a marker-less template ending in a slash as it is, as cargo does',
    'https://crates.io/api/v1/crates/',
    serde,
    'https://crates.io/api/v1/crates//serde/1.0.219/download',
  ],
  [
    'keeps the original case of the name when appending',
    'http://127.0.0.1:28731/dl',
    inflector,
    'http://127.0.0.1:28731/dl/Inflector/0.11.4/download',
  ],
  [
    'sends + in build metadata as %2B in a template',
    'https://static.crates.io/crates/{crate}/{crate}-{version}.crate',
    { name: 'bzip2-sys', version: '0.1.13+1.0.8', checksum: CHECKSUM },
    'https://static.crates.io/crates/bzip2-sys/bzip2-sys-0.1.13%2B1.0.8.crate',
  ],
  [
    'sends + in build metadata as %2B when appending',
    'https://crates.io/api/v1/crates',
    { name: 'bzip2-sys', version: '0.1.13+1.0.8', checksum: CHECKSUM },
    'https://crates.io/api/v1/crates/bzip2-sys/0.1.13%2B1.0.8/download',
  ],
];

describe('expandDlTemplate', () => {
  for (const [behaviour, template, target, expected] of EXPANSIONS) {
    test(behaviour, () => {
      assert.equal(expandDlTemplate(template, target), expected);
    });
  }
});
