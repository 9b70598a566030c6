import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Policy, PolicyDecision, PolicyVersion } from '../../src/registry/policy.ts';
import {
  decide,
  EMPTY_POLICY,
  filterIndexFile,
  isEmptyPolicy,
  parseAllowYoung,
  parseDenyList,
} from '../../src/registry/policy.ts';
import { parsePubtime } from '../../src/registry/pubtime.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = Date.UTC(2026, 7, 20, 12, 0, 0);
const CKSUM = 'a'.repeat(64);

/** An index line as crates.io writes it (compact JSON, `pubtime` last). */
function indexLine(name: string, vers: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    name,
    vers,
    deps: [],
    cksum: CKSUM,
    features: {},
    yanked: false,
    ...extra,
  });
}

/** crates.io's pubtime format for a time `ms` before {@link NOW}. */
function pubtimeAgo(ms: number): string {
  return new Date(NOW - ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function policy(overrides: Partial<Policy>): Policy {
  return { ...EMPTY_POLICY, ...overrides };
}

describe('parsePubtime', () => {
  const VALID: [string, string, number][] = [
    ['crates.io form', '2025-04-24T12:34:56Z', Date.UTC(2025, 3, 24, 12, 34, 56)],
    ['fractional seconds', '2025-04-24T12:34:56.789Z', Date.UTC(2025, 3, 24, 12, 34, 56, 789)],
    ['one fractional digit', '2025-04-24T12:34:56.5Z', Date.UTC(2025, 3, 24, 12, 34, 56, 500)],
    [
      'microseconds, truncated',
      '2025-04-24T12:34:56.999999Z',
      Date.UTC(2025, 3, 24, 12, 34, 56, 999),
    ],
    ['a positive offset', '2025-04-24T14:34:56+02:00', Date.UTC(2025, 3, 24, 12, 34, 56)],
    ['a negative offset', '2025-04-24T07:04:56-05:30', Date.UTC(2025, 3, 24, 12, 34, 56)],
    ['offset -00:00', '2025-04-24T12:34:56-00:00', Date.UTC(2025, 3, 24, 12, 34, 56)],
    ['lowercase t and z', '2025-04-24t12:34:56z', Date.UTC(2025, 3, 24, 12, 34, 56)],
    ['an offset crossing midnight', '2025-04-25T01:00:00+03:00', Date.UTC(2025, 3, 24, 22, 0, 0)],
    ['29 February of a leap year', '2024-02-29T00:00:00Z', Date.UTC(2024, 1, 29)],
    ['29 February 2000', '2000-02-29T00:00:00Z', Date.UTC(2000, 1, 29)],
    ['a leap second', '2016-12-31T23:59:60Z', Date.UTC(2017, 0, 1)],
    ['the epoch', '1970-01-01T00:00:00Z', 0],
  ];
  for (const [what, value, expected] of VALID) {
    test(`reads ${what}: ${value}`, () => {
      assert.equal(parsePubtime(value), expected);
    });
  }

  const INVALID: [string, unknown][] = [
    ['absent', undefined],
    ['null', null],
    ['a number', 1745498096],
    ['an object', { pubtime: '2025-04-24T12:34:56Z' }],
    ['an empty string', ''],
    ['a date only', '2025-04-24'],
    ['no time zone', '2025-04-24T12:34:56'],
    ['a space for T', '2025-04-24 12:34:56Z'],
    ['month 13', '2025-13-01T00:00:00Z'],
    ['month 0', '2025-00-10T00:00:00Z'],
    ['day 0', '2025-04-00T00:00:00Z'],
    ['31 April', '2025-04-31T00:00:00Z'],
    ['29 February of a common year', '2025-02-29T00:00:00Z'],
    ['29 February 1900', '1900-02-29T00:00:00Z'],
    ['hour 24', '2025-04-24T24:00:00Z'],
    ['minute 60', '2025-04-24T12:60:00Z'],
    ['second 61', '2025-04-24T12:00:61Z'],
    ['offset hour 24', '2025-04-24T12:00:00+24:00'],
    ['offset without a colon', '2025-04-24T12:00:00+0200'],
    ['an empty fraction', '2025-04-24T12:34:56.Z'],
    ['a two-digit year', '25-04-24T12:34:56Z'],
    ['trailing text', '2025-04-24T12:34:56Z junk'],
    ['leading space', ' 2025-04-24T12:34:56Z'],
    ['an absurdly long fraction', `2025-04-24T12:34:56.${'1'.repeat(80)}Z`],
  ];
  for (const [what, value] of INVALID) {
    test(`returns undefined for ${what}`, () => {
      assert.equal(parsePubtime(value), undefined);
    });
  }
});

describe('parseDenyList', () => {
  test('reads names, exact versions and requirements; skips comments and blank lines', () => {
    const rules = parseDenyList(
      [
        '# compromised on 2026-08-20',
        'proc-macro1',
        '',
        '   ',
        'arrayref@0.3.10   # the bad release',
        'Foo_Bar@>=1.2, <1.4',
        '\tappend-only-vec @ 0.1.9\r',
      ].join('\n'),
      'deny.txt',
    );
    assert.deepEqual(
      rules.map((rule) => [rule.name, rule.text, rule.location, rule.versions?.text]),
      [
        ['proc-macro1', 'proc-macro1', 'deny.txt:2', undefined],
        ['arrayref', 'arrayref@0.3.10', 'deny.txt:5', '=0.3.10'],
        ['foo_bar', 'Foo_Bar@>=1.2, <1.4', 'deny.txt:6', '>=1.2, <1.4'],
        ['append-only-vec', 'append-only-vec @ 0.1.9', 'deny.txt:7', '=0.1.9'],
      ],
    );
  });

  test('an empty file, or one with only comments, denies nothing', () => {
    assert.deepEqual(parseDenyList('', 'deny.txt'), []);
    assert.deepEqual(parseDenyList('# nothing yet\n\n#\n', 'deny.txt'), []);
  });

  test('ignores a byte order mark', () => {
    assert.equal(parseDenyList('\uFEFFserde\n', 'deny.txt')[0]?.name, 'serde');
  });

  const MALFORMED: [string, string, string][] = [
    ['a bad name', 'ok\n\nnot a name', 'deny.txt:3: invalid crate name "not a name"'],
    ['a name with a dot', 'foo.bar', 'deny.txt:1: invalid crate name "foo.bar"'],
    ['a name starting with a digit', '1foo', 'deny.txt:1: invalid crate name "1foo"'],
    ['a missing name', '@1.0.0', 'deny.txt:1: missing crate name before "@"'],
    ['a missing version', 'serde@  # oops', 'deny.txt:1: missing version after "@"'],
    [
      'a bad requirement',
      '# header\nserde@>=1.x.3',
      'deny.txt:2: invalid version requirement ">=1.x.3": number after a wildcard in "1.x.3"',
    ],
    [
      'two comparators without a comma',
      'foo@>=1.2 <1.4',
      'deny.txt:1: invalid version requirement ">=1.2 <1.4": expected "," between comparators in ">=1.2 <1.4"',
    ],
    [
      'a requirement with a stray comma',
      'foo@>=1.2,',
      'deny.txt:1: invalid version requirement ">=1.2,": empty comparator (stray comma?)',
    ],
    [
      'two @',
      'foo@1.0.0@2',
      'deny.txt:1: invalid version requirement "1.0.0@2": invalid patch version "0@2" in "1.0.0@2"',
    ],
  ];
  for (const [what, text, message] of MALFORMED) {
    test(`reports ${what} with its line number`, () => {
      assert.throws(() => parseDenyList(text, 'deny.txt'), { message });
    });
  }

  test('an error message is one line', () => {
    assert.throws(
      () => parseDenyList('foo@1.0\r2.0', '/etc/cargo-cacher/deny.txt'),
      (error: Error) =>
        error.message.startsWith('/etc/cargo-cacher/deny.txt:1: ') && !/[\r\n]/.test(error.message),
    );
  });
});

describe('parseAllowYoung', () => {
  test('reads names and exact versions, with comments', () => {
    const rules = parseAllowYoung(
      '# urgent fixes\nrustls@0.23.28 # CVE fix\nTokio\n',
      'allow-young.txt',
    );
    assert.deepEqual(
      rules.map((rule) => [rule.name, rule.text, rule.location, rule.versions?.text]),
      [
        ['rustls', 'rustls@0.23.28', 'allow-young.txt:2', '=0.23.28'],
        ['tokio', 'Tokio', 'allow-young.txt:3', undefined],
      ],
    );
  });

  const MALFORMED: [string, string, string][] = [
    [
      'a requirement',
      'serde\nfoo@^1.0',
      'allow.txt:2: invalid version "^1.0" (expected one version, like 1.2.3)',
    ],
    [
      'a partial version',
      'foo@1.2',
      'allow.txt:1: invalid version "1.2" (expected one version, like 1.2.3)',
    ],
    ['a bad name', '\n\n\nfoo bar@1.0.0', 'allow.txt:4: invalid crate name "foo bar"'],
    ['a missing version', 'foo@', 'allow.txt:1: missing version after "@"'],
  ];
  for (const [what, text, message] of MALFORMED) {
    test(`reports ${what} with its line number`, () => {
      assert.throws(() => parseAllowYoung(text, 'allow.txt'), { message });
    });
  }
});

describe('isEmptyPolicy', () => {
  const CASES: [string, Policy, boolean][] = [
    ['the empty policy', EMPTY_POLICY, true],
    ['a zero cooldown', policy({ minPublishAgeMs: 0 }), true],
    ['only exemptions', policy({ allowYoung: parseAllowYoung('foo', 'a') }), true],
    ['a cooldown', policy({ minPublishAgeMs: DAY }), false],
    ['a deny rule', policy({ deny: parseDenyList('foo', 'd') }), false],
  ];
  for (const [what, value, expected] of CASES) {
    test(`${what}: ${expected}`, () => {
      assert.equal(isEmptyPolicy(value), expected);
    });
  }
});

describe('decide', () => {
  const full = policy({
    minPublishAgeMs: 3 * DAY,
    deny: parseDenyList('proc-macro1\narrayref@0.3.10\nfoo@>=1.2, <1.4\nyoung@2.0.0', 'deny.txt'),
    allowYoung: parseAllowYoung('rustls@0.23.28\nurgent\nyoung', 'allow.txt'),
  });
  const young = NOW - HOUR;
  const old = NOW - 4 * DAY;
  const version = (name: string, v: string, extra: Partial<PolicyVersion> = {}): PolicyVersion => ({
    name,
    version: v,
    yanked: false,
    pubtime: old,
    ...extra,
  });
  const denied = (rule: string): PolicyDecision => ({ kind: 'denied', rule });
  const tooYoung = (pubtime: number): PolicyDecision => ({
    kind: 'young',
    pubtime,
    availableAt: pubtime + 3 * DAY,
  });
  const SERVE: PolicyDecision = { kind: 'serve' };

  const CASES: [string, PolicyVersion, PolicyDecision][] = [
    ['an old version', version('serde', '1.0.0'), SERVE],
    ['a denied crate', version('proc-macro1', '1.0.107'), denied('proc-macro1')],
    [
      'a denied crate named in another case',
      version('Proc-Macro1', '1.0.0'),
      denied('proc-macro1'),
    ],
    ['- and _ are different names', version('proc_macro1', '1.0.107'), SERVE],
    ['a denied exact version', version('arrayref', '0.3.10'), denied('arrayref@0.3.10')],
    ['the version next to it', version('arrayref', '0.3.11'), SERVE],
    [
      'a denied version with build metadata',
      version('arrayref', '0.3.10+b'),
      denied('arrayref@0.3.10'),
    ],
    ['a version in a denied range', version('foo', '1.3.5'), denied('foo@>=1.2, <1.4')],
    ['a version below the range', version('foo', '1.1.0'), SERVE],
    ['a pre-release in the range', version('foo', '1.3.0-rc.1'), SERVE],
    [
      'a denied yanked version',
      version('arrayref', '0.3.10', { yanked: true }),
      denied('arrayref@0.3.10'),
    ],
    [
      'a denied young version',
      version('proc-macro1', '2.0.0', { pubtime: young }),
      denied('proc-macro1'),
    ],
    [
      'deny wins over allow-young',
      version('young', '2.0.0', { pubtime: young }),
      denied('young@2.0.0'),
    ],
    ['a young version', version('serde', '1.0.1', { pubtime: young }), tooYoung(young)],
    [
      'a young version, in the future',
      version('serde', '1.0.2', { pubtime: NOW + HOUR }),
      tooYoung(NOW + HOUR),
    ],
    ['a young yanked version', version('serde', '1.0.1', { pubtime: young, yanked: true }), SERVE],
    ['a version without pubtime', version('serde', '1.0.1', { pubtime: undefined }), SERVE],
    ['an exempt version', version('rustls', '0.23.28', { pubtime: young }), SERVE],
    ['another version of it', version('rustls', '0.23.29', { pubtime: young }), tooYoung(young)],
    ['a crate exempt as a whole', version('URGENT', '9.9.9', { pubtime: young }), SERVE],
    ['a version exactly of age', version('serde', '1.0.3', { pubtime: NOW - 3 * DAY }), SERVE],
    [
      'a version one ms short',
      version('serde', '1.0.3', { pubtime: NOW - 3 * DAY + 1 }),
      tooYoung(NOW - 3 * DAY + 1),
    ],
  ];
  for (const [what, input, expected] of CASES) {
    test(what, () => {
      assert.deepEqual(decide(full, input, NOW), expected);
    });
  }

  test('without a cooldown a young version is served', () => {
    const denyOnly = policy({ deny: parseDenyList('evil', 'deny.txt') });
    assert.deepEqual(decide(denyOnly, version('serde', '1.0.1', { pubtime: young }), NOW), SERVE);
    assert.deepEqual(decide(EMPTY_POLICY, version('evil', '1.0.0'), NOW), SERVE);
  });
});

describe('filterIndexFile, withheld lines omitted', () => {
  const cooldown = policy({
    minPublishAgeMs: 3 * DAY,
    deny: parseDenyList('demo@0.2.0', 'deny.txt'),
    withheldAs: 'omit',
  });
  const old = indexLine('demo', '0.1.0', { pubtime: pubtimeAgo(10 * DAY) });
  const denied = indexLine('demo', '0.2.0', { pubtime: pubtimeAgo(5 * DAY) });
  const young = indexLine('demo', '0.3.0', { pubtime: pubtimeAgo(HOUR) });
  const younger = indexLine('demo', '0.3.1', { pubtime: pubtimeAgo(30 * 60_000) });
  const noPubtime = indexLine('demo', '0.0.1');
  const yankedYoung = indexLine('demo', '0.2.5', { pubtime: pubtimeAgo(HOUR), yanked: true });

  function filter(text: string, value: Policy = cooldown) {
    const result = filterIndexFile(Buffer.from(text, 'utf8'), value, NOW);
    return { ...result, text: result.body.toString('utf8') };
  }

  test('drops denied and young lines and keeps the others in order', () => {
    const result = filter(`${noPubtime}\n${old}\n${denied}\n${yankedYoung}\n${young}\n`);
    assert.equal(result.text, `${noPubtime}\n${old}\n${yankedYoung}\n`);
    assert.deepEqual(result.withheld, [
      { name: 'demo', version: '0.2.0', decision: { kind: 'denied', rule: 'demo@0.2.0' } },
      {
        name: 'demo',
        version: '0.3.0',
        decision: { kind: 'young', pubtime: NOW - HOUR, availableAt: NOW - HOUR + 3 * DAY },
      },
    ]);
  });

  test('changesAt is the earliest time a young version comes of age', () => {
    const result = filter(`${old}\n${younger}\n${young}\n${denied}\n`);
    assert.equal(result.changesAt, NOW - HOUR + 3 * DAY);
  });

  test('changesAt is undefined when only denied versions are withheld', () => {
    const result = filter(`${old}\n${denied}\n`);
    assert.equal(result.withheld.length, 1);
    assert.equal(result.changesAt, undefined);
  });

  test('a young version is served once it has come of age', () => {
    const text = `${old}\n${young}\n`;
    const later = filterIndexFile(Buffer.from(text), cooldown, NOW - HOUR + 3 * DAY);
    assert.equal(later.body.toString(), text);
    assert.equal(later.changesAt, undefined);
  });

  test('keeps CRLF line endings byte for byte', () => {
    const result = filter(`${old}\r\n${young}\r\n${noPubtime}\r\n`);
    assert.equal(result.text, `${old}\r\n${noPubtime}\r\n`);
  });

  test('keeps a last line without a final newline', () => {
    assert.equal(filter(`${young}\n${old}`).text, old);
    assert.equal(filter(`${old}\n${young}\n${noPubtime}`).text, `${old}\n${noPubtime}`);
  });

  test('dropping the last line keeps the newline that ends the line before it', () => {
    assert.equal(filter(`${old}\n${young}`).text, `${old}\n`);
  });

  test('keeps unparseable, blank and whitespace lines as they are', () => {
    const junk = ['{not json', '', '   ', '{"name":"demo"}', '[1,2]', `${old}garbage`];
    const text = `${junk.join('\n')}\n${young}\n\n`;
    assert.equal(filter(text).text, `${junk.join('\n')}\n\n`);
  });

  test('keeps non-ASCII bytes exact', () => {
    const unicode = indexLine('demo', '0.1.1', { features: { ünï: ['dep:ö'] } });
    const text = `${unicode}\n${young}\n${old}\n`;
    const result = filterIndexFile(Buffer.from(text), cooldown, NOW);
    assert.deepEqual(result.body, Buffer.from(`${unicode}\n${old}\n`));
  });

  test('everything withheld leaves an empty body', () => {
    const result = filter(`${young}\n${denied}\n`);
    assert.equal(result.body.length, 0);
    assert.equal(result.withheld.length, 2);
  });

  test('nothing withheld returns the very same Buffer', () => {
    const body = Buffer.from(`${noPubtime}\n${old}\n${yankedYoung}\n`);
    const result = filterIndexFile(body, cooldown, NOW);
    assert.equal(result.body, body);
    assert.deepEqual(result.withheld, []);
    assert.equal(result.changesAt, undefined);
  });

  test('an empty policy returns the very same Buffer without reading it', () => {
    const body = Buffer.from(`${young}\n${denied}\n`);
    assert.equal(filterIndexFile(body, EMPTY_POLICY, NOW).body, body);
  });

  test('an empty body stays empty', () => {
    const body = Buffer.alloc(0);
    assert.equal(filterIndexFile(body, cooldown, NOW).body, body);
  });

  test('allow-young keeps an exempt young version', () => {
    const exempt = policy({ ...cooldown, allowYoung: parseAllowYoung('demo@0.3.0', 'a') });
    const result = filter(`${old}\n${young}\n${younger}\n`, exempt);
    assert.equal(result.text, `${old}\n${young}\n`);
    assert.deepEqual(
      result.withheld.map((entry) => entry.version),
      ['0.3.1'],
    );
  });

  test('deny rules match the name in any case', () => {
    const upper = indexLine('Demo', '0.2.0', { pubtime: pubtimeAgo(5 * DAY) });
    const result = filter(`${upper}\n${old}\n`);
    assert.deepEqual(result.withheld[0]?.name, 'Demo');
    assert.equal(result.text, `${old}\n`);
  });

  test('reads pubtime written with spaces, as a feature name, and after an escaped string', () => {
    const spaced = `{"name":"demo","vers":"0.4.0","deps":[],"cksum":"${CKSUM}","yanked":false,"pubtime" : "${pubtimeAgo(HOUR)}"}`;
    const featureToo = indexLine('demo', '0.4.1', {
      features: { pubtime: [] },
      pubtime: pubtimeAgo(HOUR),
    });
    const featureOnly = indexLine('demo', '0.4.2', { features: { pubtime: [] } });
    const quoted = indexLine('demo', '0.4.3', {
      features: { x: ['"pubtime":"2000-01-01T00:00:00Z"'] },
      pubtime: pubtimeAgo(HOUR),
    });
    const nonString = indexLine('demo', '0.4.4', { pubtime: null });
    const result = filter([spaced, featureToo, featureOnly, quoted, nonString, ''].join('\n'));
    assert.deepEqual(
      result.withheld.map((entry) => entry.version),
      ['0.4.0', '0.4.1', '0.4.3'],
    );
    assert.equal(result.text, `${featureOnly}\n${nonString}\n`);
  });

  test('a deny-only policy filters without reading pubtime', () => {
    const denyOnly = policy({ deny: parseDenyList('demo@>=0.3', 'deny.txt'), withheldAs: 'omit' });
    const result = filter(`${old}\n${young}\n${younger}\n`, denyOnly);
    assert.equal(result.text, `${old}\n`);
    assert.deepEqual(
      result.withheld.map((entry) => entry.decision),
      [
        { kind: 'denied', rule: 'demo@>=0.3' },
        { kind: 'denied', rule: 'demo@>=0.3' },
      ],
    );
  });

  test('a 500-version file is filtered line by line', () => {
    const lines = Array.from({ length: 500 }, (_, i) =>
      indexLine('demo', `1.0.${i}`, { pubtime: pubtimeAgo((500 - i) * HOUR) }),
    );
    const result = filter(`${lines.join('\n')}\n`);
    // The cooldown is 72 hours: versions published 72 hours ago or earlier are served.
    assert.equal(result.withheld.length, 71);
    assert.equal(result.text, `${lines.slice(0, 429).join('\n')}\n`);
    assert.equal(result.changesAt, NOW - 71 * HOUR + 3 * DAY);
  });
});

describe('filterIndexFile, withheld lines marked yanked (the default)', () => {
  const cooldown = policy({
    minPublishAgeMs: 3 * DAY,
    deny: parseDenyList('demo@0.2.0\ndemo@0.2.5', 'deny.txt'),
  });
  const old = indexLine('demo', '0.1.0', { pubtime: pubtimeAgo(10 * DAY) });
  const denied = indexLine('demo', '0.2.0', { pubtime: pubtimeAgo(5 * DAY) });
  const deniedYanked = indexLine('demo', '0.2.5', { pubtime: pubtimeAgo(5 * DAY), yanked: true });
  const young = indexLine('demo', '0.3.0', { pubtime: pubtimeAgo(HOUR) });
  const marked = (line: string) => line.replace('"yanked":false', '"yanked":true');

  function filter(text: string, value: Policy = cooldown) {
    const result = filterIndexFile(Buffer.from(text, 'utf8'), value, NOW);
    return { ...result, text: result.body.toString('utf8') };
  }

  test('marks denied and young lines yanked; every other byte is upstream', () => {
    const result = filter(`${old}\r\n${denied}\n${young}\n${old}`);
    assert.equal(result.text, `${old}\r\n${marked(denied)}\n${marked(young)}\n${old}`);
    assert.deepEqual(
      result.withheld.map((entry) => [entry.version, entry.decision.kind]),
      [
        ['0.2.0', 'denied'],
        ['0.3.0', 'young'],
      ],
    );
    assert.equal(result.changesAt, NOW - HOUR + 3 * DAY);
    assert.equal(JSON.parse(marked(young)).yanked, true);
  });

  test('a denied line already yanked is reported and served unchanged', () => {
    const body = Buffer.from(`${old}\n${deniedYanked}\n`);
    const result = filterIndexFile(body, cooldown, NOW);
    assert.equal(result.body, body);
    assert.deepEqual(result.withheld[0]?.decision, { kind: 'denied', rule: 'demo@0.2.5' });
  });

  test('flips only the top-level key: a dependency and a feature named yanked are untouched', () => {
    const tricky = indexLine('demo', '0.3.1', {
      deps: [{ name: 'yanked', req: '^1', features: ['yanked'] }],
      features: { yanked: ['dep:yanked'] },
      pubtime: pubtimeAgo(HOUR),
    });
    const result = filter(`${tricky}\n`);
    const served = JSON.parse(result.text);
    assert.equal(served.yanked, true);
    assert.deepEqual({ ...served, yanked: false }, JSON.parse(tricky));
    assert.equal(result.text, `${marked(tricky)}\n`);
  });

  test('"yanked" : false written with spaces is marked in place', () => {
    const spaced = young.replace('"yanked":false', '"yanked" : false');
    assert.equal(filter(`${spaced}\n`).text, `${spaced.replace('false', 'true')}\n`);
  });

  test('a withheld line without a yanked key is left out rather than rewritten', () => {
    const bare = JSON.stringify({ name: 'demo', vers: '0.2.0', deps: [], cksum: CKSUM });
    assert.equal(filter(`${old}\n${bare}\n`).text, `${old}\n`);
  });

  test('nothing withheld returns the very same Buffer', () => {
    const body = Buffer.from(`${old}\n${deniedYanked.replace('0.2.5', '0.2.6')}\n`);
    assert.equal(filterIndexFile(body, cooldown, NOW).body, body);
  });
});
