import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type ClosureResult,
  ClosureWalk,
  describeReason,
  type WithheldVersions,
} from '../../src/registry/closure.ts';
import type { MirrorRoot } from '../../src/registry/mirror-filter.ts';
import { parseRequirement } from '../../src/registry/semver-req.ts';

/** A dependency object as crates.io writes it; `extra` overrides or adds fields. */
function dep(name: string, req: string, extra: Record<string, unknown> = {}) {
  return {
    name,
    req,
    features: [],
    optional: false,
    default_features: true,
    target: null,
    kind: 'normal',
    registry: null,
    ...extra,
  };
}

/** A checksum derived from name and version, so a test can name the one it expects. */
function cksum(name: string, vers: string): string {
  return Buffer.from(`${name}@${vers}`).toString('hex').padEnd(64, '0').slice(0, 64);
}

function line(
  name: string,
  vers: string,
  options: { deps?: unknown[]; yanked?: boolean } = {},
): string {
  return JSON.stringify({
    name,
    vers,
    deps: options.deps ?? [],
    cksum: cksum(name, vers),
    features: {},
    yanked: options.yanked ?? false,
  });
}

/** Index files by lowercase crate name. */
type Registry = Record<string, string[]>;

function crate(name: string): MirrorRoot {
  return { kind: 'crate', name, label: `${name} (f:1)` };
}

function req(name: string, text: string): MirrorRoot {
  return {
    kind: 'crate',
    name,
    requirement: parseRequirement(text),
    label: `${name}@${text} (f:1)`,
  };
}

function locked(name: string, version: string, checksum?: string): MirrorRoot {
  return {
    kind: 'locked',
    name,
    version,
    ...(checksum !== undefined && { checksum }),
    label: `${name} ${version} in Cargo.lock (f:2)`,
  };
}

interface Walked {
  result: ClosureResult;
  /** Every name the walk asked for, in order. */
  asked: string[];
}

/** Runs a walk to the end over an in-memory registry, the way the async driver would. */
function walk(
  registry: Registry,
  roots: MirrorRoot[],
  options: { keep?: number; withheld?: Record<string, WithheldVersions> } = {},
): Walked {
  const closure = new ClosureWalk(roots, { keep: options.keep ?? 1 });
  const asked: string[] = [];
  while (!closure.done) {
    const names = closure.wanted();
    assert.ok(names.length > 0, 'a walk that is not done wants something');
    for (const name of names) {
      asked.push(name);
      const lines = registry[name.toLowerCase()];
      const body = lines && Buffer.from(`${lines.join('\n')}\n`);
      closure.supply(name, body, options.withheld?.[name.toLowerCase()]);
    }
  }
  return { result: closure.result(), asked };
}

function taken(result: ClosureResult): string[] {
  return result.versions.map((v) => `${v.name}@${v.version}`).sort();
}

interface Case {
  what: string;
  registry: Registry;
  roots: MirrorRoot[];
  keep?: number;
  expected: string[];
  /** One regular expression per expected problem, in order. */
  problems?: RegExp[];
  /** Names that must never be asked for. */
  notAsked?: string[];
}

const CASES: Case[] = [
  {
    what: 'a bare name takes the newest version that is not yanked',
    registry: { a: [line('a', '1.0.0'), line('a', '1.1.0'), line('a', '1.2.0', { yanked: true })] },
    roots: [crate('a')],
    expected: ['a@1.1.0'],
  },
  {
    what: 'a bare name passes over pre-releases while there is a release',
    registry: { a: [line('a', '1.0.0'), line('a', '2.0.0-alpha.1')] },
    roots: [crate('a')],
    expected: ['a@1.0.0'],
  },
  {
    what: 'a bare name takes the newest pre-release of a crate with no release',
    registry: { a: [line('a', '0.1.0-alpha.1'), line('a', '0.1.0-beta.2')] },
    roots: [crate('a')],
    expected: ['a@0.1.0-beta.2'],
  },
  {
    what: 'a caret requirement stays below the next major',
    registry: { a: [line('a', '1.0.0'), line('a', '1.4.2'), line('a', '2.0.0')] },
    roots: [req('a', '^1.2')],
    expected: ['a@1.4.2'],
  },
  {
    what: 'versions are compared as semver, not as text',
    registry: { a: [line('a', '1.10.0'), line('a', '1.9.0'), line('a', '1.2.0')] },
    roots: [req('a', '1')],
    expected: ['a@1.10.0'],
  },
  {
    what: 'a 0.x caret and a tilde requirement',
    registry: {
      a: [line('a', '0.2.1'), line('a', '0.2.9'), line('a', '0.3.0')],
      b: [line('b', '1.2.3'), line('b', '1.2.7'), line('b', '1.3.0')],
    },
    roots: [req('a', '0.2'), req('b', '~1.2.3')],
    expected: ['a@0.2.9', 'b@1.2.7'],
  },
  {
    what: 'a range of comparators',
    registry: { a: [line('a', '0.8.5'), line('a', '0.9.1'), line('a', '0.10.0')] },
    roots: [req('a', '>=0.8, <0.10')],
    expected: ['a@0.9.1'],
  },
  {
    what: 'a requirement skips pre-releases unless it names one (cargo)',
    registry: { a: [line('a', '1.0.0'), line('a', '1.1.0-beta.1')] },
    roots: [req('a', '^1')],
    expected: ['a@1.0.0'],
  },
  {
    what: 'a requirement naming a pre-release takes it',
    registry: { a: [line('a', '1.0.0'), line('a', '1.1.0-beta.1'), line('a', '1.1.0-beta.2')] },
    roots: [req('a', '^1.1.0-beta.1')],
    expected: ['a@1.1.0-beta.2'],
  },
  {
    what: 'a dependency requirement skips yanked versions',
    registry: {
      app: [line('app', '1.0.0', { deps: [dep('a', '^1')] })],
      a: [line('a', '1.0.0'), line('a', '1.1.0', { yanked: true })],
    },
    roots: [crate('app')],
    expected: ['a@1.0.0', 'app@1.0.0'],
  },
  {
    what: 'a lock root takes the version it pins, yanked or not, and follows its dependencies',
    registry: {
      a: [line('a', '1.0.0'), line('a', '1.1.0', { yanked: true, deps: [dep('b', '0.1')] })],
      b: [line('b', '0.1.0'), line('b', '0.1.5')],
    },
    roots: [locked('a', '1.1.0', cksum('a', '1.1.0')), locked('b', '0.1.0')],
    expected: ['a@1.1.0', 'b@0.1.0', 'b@0.1.5'],
  },
  {
    what: 'a lock root whose checksum is not the index one is a problem, not taken',
    registry: { a: [line('a', '1.0.0')] },
    roots: [locked('a', '1.0.0', 'f'.repeat(64))],
    expected: [],
    problems: [/^a 1\.0\.0: checksum mismatch: the lock file has f{64}, the index has /],
  },
  {
    what: 'a lock root naming a version the index lacks is a problem',
    registry: { a: [line('a', '1.0.0')] },
    roots: [locked('a', '9.9.9'), crate('a')],
    expected: ['a@1.0.0'],
    problems: [
      /^a 9\.9\.9: this version is not in the index \(root a 9\.9\.9 in Cargo\.lock \(f:2\)\)$/,
    ],
  },
  {
    what: 'a renamed dependency names the crate in "package", never the alias',
    registry: {
      app: [line('app', '1.0.0', { deps: [dep('short', '^0.2', { package: 'real-name' })] })],
      'real-name': [
        line('real-name', '0.2.0'),
        line('real-name', '0.2.3'),
        line('real-name', '0.3.0'),
      ],
    },
    roots: [crate('app')],
    expected: ['app@1.0.0', 'real-name@0.2.3'],
    notAsked: ['short'],
  },
  {
    what: 'target-specific dependencies are followed for every target',
    registry: {
      app: [
        line('app', '1.0.0', {
          deps: [
            dep('winapi', '0.3', { target: 'cfg(windows)' }),
            dep('libc', '0.2', { target: 'cfg(unix)' }),
            dep('wasm-only', '1', { target: 'wasm32-unknown-unknown' }),
          ],
        }),
      ],
      winapi: [line('winapi', '0.3.9')],
      libc: [line('libc', '0.2.150')],
      'wasm-only': [line('wasm-only', '1.0.0')],
    },
    roots: [crate('app')],
    expected: ['app@1.0.0', 'libc@0.2.150', 'wasm-only@1.0.0', 'winapi@0.3.9'],
  },
  {
    what: 'optional dependencies are followed',
    registry: {
      app: [line('app', '1.0.0', { deps: [dep('extra', '1', { optional: true })] })],
      extra: [line('extra', '1.0.0')],
    },
    roots: [crate('app')],
    expected: ['app@1.0.0', 'extra@1.0.0'],
  },
  {
    what: 'dev-dependencies are not followed; build ones are; an absent or null kind is normal',
    registry: {
      app: [
        line('app', '1.0.0', {
          deps: [
            dep('tester', '1', { kind: 'dev' }),
            dep('cc', '1', { kind: 'build' }),
            { name: 'plain', req: '1' },
            dep('nulled', '1', { kind: null }),
          ],
        }),
      ],
      tester: [line('tester', '1.0.0')],
      cc: [line('cc', '1.0.83')],
      plain: [line('plain', '1.0.0')],
      nulled: [line('nulled', '1.0.0')],
    },
    roots: [crate('app')],
    expected: ['app@1.0.0', 'cc@1.0.83', 'nulled@1.0.0', 'plain@1.0.0'],
    notAsked: ['tester'],
  },
  {
    what: 'dependencies on another registry are not followed',
    registry: {
      app: [
        line('app', '1.0.0', {
          deps: [dep('private', '1', { registry: 'https://example.com/index' })],
        }),
      ],
    },
    roots: [crate('app')],
    expected: ['app@1.0.0'],
    notAsked: ['private'],
  },
  {
    what: 'keep=2 takes the two newest of a root, and only the newest of each dependency',
    registry: {
      a: [
        line('a', '1.0.0', { deps: [dep('b', '1')] }),
        line('a', '1.1.0', { deps: [dep('b', '1')] }),
        line('a', '1.2.0', { deps: [dep('b', '1')], yanked: true }),
        line('a', '1.3.0', { deps: [dep('b', '1')] }),
      ],
      b: [line('b', '1.0.0'), line('b', '1.0.1')],
    },
    roots: [crate('a')],
    keep: 2,
    expected: ['a@1.1.0', 'a@1.3.0', 'b@1.0.1'],
  },
  {
    what: 'keep=3 with a requirement counts only matching versions',
    registry: {
      a: ['0.9.0', '1.0.0', '1.1.0', '1.2.0', '2.0.0'].map((v) => line('a', v)),
    },
    roots: [req('a', '^1')],
    keep: 3,
    expected: ['a@1.0.0', 'a@1.1.0', 'a@1.2.0'],
  },
  {
    what: 'keep reaching past what exists takes what there is',
    registry: { a: [line('a', '1.0.0')] },
    roots: [crate('a')],
    keep: 5,
    expected: ['a@1.0.0'],
  },
  {
    what: 'a dependency cycle ends',
    registry: {
      a: [line('a', '1.0.0', { deps: [dep('b', '1')] })],
      b: [line('b', '1.0.0', { deps: [dep('a', '1')] })],
    },
    roots: [crate('a')],
    expected: ['a@1.0.0', 'b@1.0.0'],
  },
  {
    what: 'a crate with no index file is a problem and the rest goes on',
    registry: {
      app: [line('app', '1.0.0', { deps: [dep('ghost', '1'), dep('real', '1')] })],
      real: [line('real', '1.0.0')],
    },
    roots: [crate('app')],
    expected: ['app@1.0.0', 'real@1.0.0'],
    problems: [/^ghost 1: no such crate in the index \(root app \(f:1\) via app 1\.0\.0\)$/],
  },
  {
    what: 'a root that does not exist is a problem',
    registry: {},
    roots: [crate('nothing-here')],
    expected: [],
    problems: [/^nothing-here \(newest\): no such crate in the index/],
  },
  {
    what: 'a requirement nothing matches is a problem',
    registry: {
      app: [line('app', '1.0.0', { deps: [dep('a', '^5')] })],
      a: [line('a', '1.0.0'), line('a', '5.0.0', { yanked: true })],
    },
    roots: [crate('app')],
    expected: ['app@1.0.0'],
    problems: [
      /^a \^5: no version matches that is not yanked \(root app \(f:1\) via app 1\.0\.0\)$/,
    ],
  },
  {
    what: 'a dependency requirement that does not parse is a problem',
    registry: { app: [line('app', '1.0.0', { deps: [dep('a', 'not a req')] })] },
    roots: [crate('app')],
    expected: ['app@1.0.0'],
    problems: [/^a \(newest\): invalid requirement "not a req": /],
    notAsked: ['a'],
  },
  {
    what: 'names differing in case are one crate',
    registry: {
      serde: [line('serde', '1.0.0')],
      app: [line('app', '1.0.0', { deps: [dep('Serde', '1'), dep('serde', '1.0')] })],
    },
    roots: [crate('app'), crate('SERDE')],
    expected: ['app@1.0.0', 'serde@1.0.0'],
  },
  {
    what: 'lines that do not parse, or whose version is not semver, are passed over',
    registry: {
      a: ['{not json', line('a', '1.0'), line('a', '1.0.0'), JSON.stringify({ name: 'a' })],
    },
    roots: [crate('a')],
    expected: ['a@1.0.0'],
  },
];

describe('ClosureWalk', () => {
  for (const c of CASES) {
    test(c.what, () => {
      const { result, asked } = walk(c.registry, c.roots, { keep: c.keep ?? 1 });
      assert.deepEqual(taken(result), c.expected);
      const problems = result.problems.map((problem) => problem.message);
      assert.equal(problems.length, (c.problems ?? []).length, problems.join('\n'));
      (c.problems ?? []).forEach((pattern, i) => {
        assert.match(problems[i] ?? '', pattern);
      });
      for (const name of c.notAsked ?? []) assert.ok(!asked.includes(name), `${name} was asked`);
      const lower = asked.map((name) => name.toLowerCase());
      assert.equal(new Set(lower).size, lower.length, `each index file once: ${asked.join(', ')}`);
      assert.equal(result.indexFiles, asked.length);
    });
  }

  test('says for every version which root pulled it and through which parent', () => {
    const { result } = walk(
      {
        app: [line('app', '1.0.0', { deps: [dep('mid', '1')] })],
        mid: [line('mid', '1.2.0', { deps: [dep('leaf', '0.3')] })],
        leaf: [line('leaf', '0.3.1')],
      },
      [req('app', '^1')],
    );
    const reasons = Object.fromEntries(result.versions.map((v) => [v.name, describeReason(v)]));
    assert.deepEqual(reasons, {
      app: 'root app@^1 (f:1)',
      mid: 'root app@^1 (f:1) via app 1.0.0',
      leaf: 'root app@^1 (f:1) via mid 1.2.0',
    });
    assert.deepEqual(
      result.versions.map((v) => v.checksum),
      [cksum('app', '1.0.0'), cksum('mid', '1.2.0'), cksum('leaf', '0.3.1')],
    );
  });

  test('a version reached from two roots keeps the first reason, breadth first', () => {
    const { result } = walk(
      {
        a: [line('a', '1.0.0', { deps: [dep('deep', '1')] })],
        b: [line('b', '1.0.0', { deps: [dep('shared', '1')] })],
        deep: [line('deep', '1.0.0', { deps: [dep('shared', '1')] })],
        shared: [line('shared', '1.0.0')],
      },
      [crate('a'), crate('b')],
    );
    const shared = result.versions.find((v) => v.name === 'shared');
    assert.equal(shared && describeReason(shared), 'root b (f:1) via b 1.0.0');
  });

  test('a crate reached through many versions and requirements is asked for once', () => {
    const versions = Array.from({ length: 40 }, (_, i) =>
      line('big', `1.${i}.0`, { deps: [dep('common', `>=1.${i % 5}`)] }),
    );
    const { result, asked } = walk(
      { big: versions, common: ['1.0.0', '1.5.0', '2.0.0'].map((v) => line('common', v)) },
      [crate('big')],
      { keep: 40 },
    );
    assert.deepEqual(asked, ['big', 'common']);
    assert.equal(result.versions.filter((v) => v.name === 'big').length, 40);
    assert.deepEqual(
      result.versions.filter((v) => v.name === 'common').map((v) => v.version),
      ['2.0.0'],
    );
  });

  test('withheld versions are passed over by requirements, reported, and never taken', () => {
    const registry = {
      app: [line('app', '1.0.0', { deps: [dep('a', '1')] })],
      a: [line('a', '1.0.0'), line('a', '1.1.0'), line('a', '1.2.0')],
      b: [line('b', '2.0.0')],
    };
    const withheld = {
      a: new Map([
        ['1.2.0', 'denied'],
        ['1.1.0', 'waiting'],
      ]),
      b: new Map([['2.0.0', 'denied']]),
    };
    const { result } = walk(registry, [crate('app'), locked('b', '2.0.0')], { withheld });
    assert.deepEqual(taken(result), ['a@1.0.0', 'app@1.0.0']);
    assert.deepEqual(
      result.withheld.map((v) => [`${v.name}@${v.version}`, v.withheld, describeReason(v)]),
      [
        ['b@2.0.0', 'denied', 'root b 2.0.0 in Cargo.lock (f:2)'],
        ['a@1.2.0', 'denied', 'root app (f:1) via app 1.0.0'],
        ['a@1.1.0', 'waiting', 'root app (f:1) via app 1.0.0'],
      ],
    );
    assert.deepEqual(result.problems, []);
  });

  test('an index file that could not be read makes what needed it a problem', () => {
    const closure = new ClosureWalk([crate('app')], { keep: 1 });
    assert.deepEqual(closure.wanted(), ['app']);
    assert.deepEqual(closure.wanted(), [], 'asked once');
    assert.equal(closure.done, false);
    closure.fail('app', 'upstream unreachable');
    assert.equal(closure.done, true);
    assert.match(
      closure.result().problems[0]?.message ?? '',
      /^app \(newest\): upstream unreachable/,
    );
  });

  test('names asked in one round can be supplied in any order, later ones before earlier', () => {
    const closure = new ClosureWalk([crate('a'), crate('b')], { keep: 1 });
    const names = closure.wanted();
    assert.deepEqual(names, ['a', 'b']);
    closure.supply('b', Buffer.from(`${line('b', '1.0.0')}\n`));
    assert.equal(closure.done, false);
    closure.supply('a', Buffer.from(`${line('a', '1.0.0')}\n`));
    assert.equal(closure.done, true);
    assert.deepEqual(taken(closure.result()), ['a@1.0.0', 'b@1.0.0']);
  });

  test('keep must be a whole number of at least 1', () => {
    for (const keep of [0, -1, 1.5, Number.NaN]) {
      assert.throws(() => new ClosureWalk([], { keep }), RangeError);
    }
    assert.equal(new ClosureWalk([], { keep: 1 }).done, true);
  });
});
