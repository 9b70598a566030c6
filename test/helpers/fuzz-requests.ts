/**
 * @module
 * Hostile HTTP requests for the fuzz test, generated from a seeded PRNG (prng.ts) so a failure
 * replays with the same seed: paths with traversal in every encoding, NUL bytes, overlong names and
 * invalid versions, odd methods and headers, huge headers, malformed chunked bodies, and git
 * negotiations of garbage (plain and gzipped). Each request is raw bytes, sent as they are.
 */
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';

/** One generated request. */
export interface FuzzRequest {
  /** What it is, for failure messages. */
  label: string;
  bytes: Buffer;
}

const TRAVERSALS = [
  '..',
  '%2e%2e',
  '%2E%2E',
  '.%2e',
  '%252e%252e',
  '..%2f',
  '..%2F',
  '%2e%2e%2f',
  '..%5c',
  '..\\',
  '%c0%ae%c0%ae',
  '..;',
  '%00',
  '..%00',
  '%2f',
  '//',
  '/./',
  '%5c..%5c',
  '....//',
  '..%252f',
  '%u002e%u002e',
  '\u2025',
  '\uff0e\uff0e',
];
const NAMES = ['fake-a', 'fake_a', 'FAKE-A', 'serde', 'a', 'ab', 'abc', 'x'.repeat(64), 'nul'];
const ODD_NAMES = [
  'x'.repeat(65),
  'y'.repeat(300),
  'z'.repeat(5000),
  '-a',
  '_a',
  '1abc',
  'a b',
  'a+b',
  'ünï',
  'ΩΩΩ',
  'a%00b',
  'con',
  'a.b',
  '.git',
  'a/b',
  '%2e',
  '*',
  '',
  ' ',
];
const VERSIONS = ['0.1.0', '1.0.0', '1.0.0+build.5', '0.2.0'];
const ODD_VERSIONS = [
  '1',
  '1.0',
  '01.0.0',
  '1.0.0-',
  '1.0.0+',
  'v1.0.0',
  '1.0.0.0',
  '-1.0.0',
  '1.0.0%00',
  '9'.repeat(400),
  '1.0.0-α',
  '../1.0.0',
  '%2e%2e',
  '1.0.0 ',
];
const METHODS = [
  'GET',
  'GET',
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'PATCH',
  'OPTIONS',
  'TRACE',
  'PROPFIND',
  'CONNECT',
  'BREW',
  'G\u00e9T',
  'get',
];

/** Makes request generators over `random`. */
export function createFuzzer(random: () => number) {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
  const chance = (p: number) => random() < p;
  const name = () => (chance(0.6) ? pick(NAMES) : pick(ODD_NAMES));
  const version = () => (chance(0.5) ? pick(VERSIONS) : pick(ODD_VERSIONS));
  const segment = () =>
    chance(0.35) ? pick(TRAVERSALS) : chance(0.5) ? name() : name().slice(0, 2);
  const junk = (length: number) =>
    Buffer.from(Array.from({ length }, () => Math.floor(random() * 256)));

  function path(): string {
    const templates: (() => string)[] = [
      () => `/index/${segment()}/${segment()}/${name()}`,
      () => `/index/${Array.from({ length: 1 + Math.floor(random() * 5) }, segment).join('/')}`,
      () => `/index/config.json${pick(['', '/..', '%00', '?x=..', '/', '.bak'])}`,
      () => `/api/v1/crates/${name()}/${version()}/download`,
      () => `/api/v1/crates/${segment()}/${segment()}/download`,
      () => `/api/v1/crates/${name()}/${version()}/${pick(['download/..', 'x', '', '%2e%2e'])}`,
      () => `/index/info/refs?service=${pick(['git-upload-pack', 'git-receive-pack', '', '..'])}`,
      () => `/index/${pick(['git-upload-pack', 'git-receive-pack', 'objects/info/packs', 'HEAD'])}`,
      () => `/api/v1/jobs/${pick(['1', '..', '%2e%2e', 'x'.repeat(300), '0'])}`,
      () => pick(['/', '/stats', '/stats.json', '/metrics', '/health', '/api/v1/stats?minutes=-1']),
      () => `/api/v1/stats?minutes=${pick(['1e309', 'NaN', '-5', '99999999', '%00', ''])}`,
      () => `/${segment()}/${segment()}/etc/passwd`,
      () => `/${pick(TRAVERSALS)}${pick(['/', '\\'])}${pick(['etc/passwd', 'sibling/canary.txt'])}`,
      () => pick(['*', '//index//config.json', '/index', '/index/', `/${'a/'.repeat(400)}`]),
      () => `http://evil.example/index/fa/ke/${name()}`,
    ];
    return pick(templates)();
  }

  function headers(): string[] {
    const lines: string[] = [];
    if (chance(0.9))
      lines.push(`Host: ${pick(['127.0.0.1', 'evil.example:80', '[::1]', 'a b', '', '..'])}`);
    if (chance(0.3)) lines.push(`Accept-Encoding: ${pick(['gzip', 'br;q=2, *', 'x'.repeat(500)])}`);
    if (chance(0.2))
      lines.push(`If-None-Match: ${pick(['*', '"x"', 'W/"', '"a", "b"', '\u0001'])}`);
    if (chance(0.2))
      lines.push(`If-Modified-Since: ${pick(['yesterday', 'Thu, 01 Jan 1970 00:00:00 GMT'])}`);
    if (chance(0.1))
      lines.push(`Authorization: ${pick(['Basic !!!', 'Bearer', 'x'.repeat(2000)])}`);
    if (chance(0.2))
      lines.push(
        'Connection: Upgrade, HTTP2-Settings',
        'Upgrade: h2c',
        'HTTP2-Settings: AAMAAABkAAQAAQAAAAIAAAAA',
      );
    if (chance(0.1))
      lines.push(`Git-Protocol: ${pick(['version=2', 'version=99', '\u0000', 'a=b:c'])}`);
    if (chance(0.05)) lines.push(`X-Huge: ${'h'.repeat(20_000 + Math.floor(random() * 80_000))}`);
    if (chance(0.05)) lines.push('Bad Header Without Colon');
    if (chance(0.05)) lines.push('X-Nul: a\u0000b');
    if (chance(0.05)) lines.push(`Range: bytes=${pick(['0-', '-1', '99999999-', 'x'])}`);
    return lines;
  }

  function body(): { headers: string[]; bytes: Buffer } {
    const kind = pick([
      'none',
      'none',
      'junk',
      'gzip-junk',
      'gzip-bad',
      'pkt',
      'chunked-bad',
      'lock',
    ]);
    const type = `Content-Type: ${pick(['application/x-git-upload-pack-request', 'text/plain', 'application/json', 'multipart/form-data; boundary=x'])}`;
    switch (kind) {
      case 'junk': {
        const bytes = junk(Math.floor(random() * 4000));
        return { headers: [type, `Content-Length: ${bytes.length}`], bytes };
      }
      case 'gzip-junk': {
        const bytes = gzipSync(junk(Math.floor(random() * 4000)));
        return {
          headers: [type, 'Content-Encoding: gzip', `Content-Length: ${bytes.length}`],
          bytes,
        };
      }
      case 'gzip-bad': {
        const bytes = Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), junk(200)]);
        return {
          headers: [type, 'Content-Encoding: gzip', `Content-Length: ${bytes.length}`],
          bytes,
        };
      }
      case 'pkt': {
        const bytes = Buffer.from(
          pick([
            '0032want 0000000000000000000000000000000000000000\n00000009done\n',
            'ffff',
            '0000',
            '0004',
            '0014command=ls-refs\n0000',
          ]),
        );
        return { headers: [type, `Content-Length: ${bytes.length}`], bytes };
      }
      case 'chunked-bad': {
        const bytes = Buffer.from(
          pick([
            'zz\r\nabc\r\n0\r\n\r\n',
            '5\r\nab\r\n',
            'ffffffffffffffff\r\n',
            '3\r\nabc',
            '-1\r\n\r\n',
            '3;ext\r\nabc\r\n0\r\n\r\n',
          ]),
        );
        const extra = chance(0.5) ? ['Content-Length: 3'] : [];
        return { headers: [type, 'Transfer-Encoding: chunked', ...extra], bytes };
      }
      case 'lock': {
        const bytes = Buffer.from(
          pick([
            '[[package]]\nname = "fake-a"\nversion = "0.1.0"\n',
            'fake-a=0.1.0',
            '[[package]\n',
            `${'x'.repeat(70)}=1.0.0`,
            '../../x=1.0.0',
          ]),
        );
        return { headers: ['Content-Type: text/plain', `Content-Length: ${bytes.length}`], bytes };
      }
      default:
        return { headers: [], bytes: Buffer.alloc(0) };
    }
  }

  /** One request: usually well-framed HTTP/1.1 with a hostile target, sometimes broken framing. */
  return function next(): FuzzRequest {
    const method = pick(METHODS);
    const target = path();
    if (chance(0.04)) {
      const line = pick([
        `${method} ${target}\r\n\r\n`,
        `${target}\r\n\r\n`,
        '\r\n\r\n',
        `${method} ${target} HTTP/9.9\r\n\r\n`,
        `GET ${target} HTTP/1.1\nHost: x\n\n`,
      ]);
      return {
        label: `broken framing: ${JSON.stringify(line.slice(0, 120))}`,
        bytes: Buffer.from(line, 'latin1'),
      };
    }
    const { headers: bodyHeaders, bytes } =
      method === 'GET' && chance(0.8) ? { headers: [], bytes: Buffer.alloc(0) } : body();
    const head = [
      `${method} ${target} HTTP/1.1`,
      ...headers(),
      ...bodyHeaders,
      'Connection: close',
      '',
      '',
    ];
    return {
      label: `${method} ${target.slice(0, 200)}`,
      bytes: Buffer.concat([Buffer.from(head.join('\r\n'), 'utf8'), bytes]),
    };
  };
}

/** What came back for one raw request. */
export interface RawAnswer {
  /** The status, or 0 when the connection closed without one (acceptable for broken framing). */
  status: number;
  text: string;
}

/** Sends raw bytes on a fresh connection and reads until the server closes or `timeoutMs`. */
export function sendRaw(port: number, bytes: Buffer, timeoutMs = 10_000): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
      resolve({ status, text });
    });
    socket.write(bytes, () => socket.end());
  });
}
