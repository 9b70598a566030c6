/**
 * @module
 * The registry web API of the fake crates.io, below `/api/v1/crates`: search in the Cargo
 * Book's shape (`{"crates":[{"name","max_version","description"}],"meta":{"total"}}`), and the
 * crate metadata endpoints in crates.io's (`{crate, versions}`, `{versions}`, `{version}`,
 * `{users}`), metadata with ETag and Last-Modified (conditional requests answer 304).
 * Unknown crates get crates.io's 404 with a JSON error.
 */
import type { IncomingMessage } from 'node:http';
import { indexReply, type Reply } from './fake-http.ts';
import { makeIndexFile, type PublishedCrate } from './fake-registry.ts';

/** The crates the API knows and their descriptions. */
export interface FakeApiData {
  crates: PublishedCrate[];
  /** Description per crate name; default `A fake crate named <name>`. */
  descriptions?: Record<string, string>;
}

/** Answers `GET /api/v1/crates…`; `rest` are the decoded segments after `crates`. */
export function crateApiReply(
  req: IncomingMessage,
  rest: string[],
  query: URLSearchParams,
  data: FakeApiData,
): Reply {
  if (rest.length === 0) return jsonReply(200, search(query, data));
  const [name = '', what] = rest;
  const versions = data.crates.filter((c) => c.name.toLowerCase() === name.toLowerCase());
  if (versions.length === 0 || rest.length > 2) {
    return jsonReply(404, { errors: [{ detail: `crate \`${name}\` does not exist` }] });
  }
  const body = metadata(versions, what, data);
  if (body === undefined) {
    return jsonReply(404, {
      errors: [{ detail: `crate \`${name}\` does not have a version \`${what}\`` }],
    });
  }
  return indexReply(req, makeIndexFile(JSON.stringify(body)), 'application/json');
}

function search(query: URLSearchParams, data: FakeApiData) {
  const wanted = (query.get('q') ?? '').toLowerCase().replaceAll('_', '-');
  const perPage = Number(query.get('per_page') ?? '10');
  const page = Number(query.get('page') ?? '1');
  const names = [...new Set(data.crates.map((c) => c.name))]
    .filter((name) => name.toLowerCase().replaceAll('_', '-').includes(wanted))
    .sort((a, b) => a.localeCompare(b));
  const shown = names.slice((page - 1) * perPage, page * perPage);
  return {
    crates: shown.map((name) => ({
      name,
      max_version: maxVersion(data.crates.filter((c) => c.name === name)),
      description: describe(name, data),
    })),
    meta: { total: names.length },
  };
}

function metadata(versions: PublishedCrate[], what: string | undefined, data: FakeApiData) {
  const name = (versions[0] as PublishedCrate).name;
  if (what === undefined) {
    const crate = {
      id: name,
      name,
      max_version: maxVersion(versions),
      description: describe(name, data),
    };
    return { crate, versions: versions.map(versionJson) };
  }
  if (what === 'versions') return { versions: versions.map(versionJson) };
  if (what === 'owners') return { users: [{ id: 1, login: 'fake-owner', name: 'Fake Owner' }] };
  const found = versions.find((c) => c.version === what);
  return found && { version: versionJson(found) };
}

function versionJson(crate: PublishedCrate) {
  return {
    crate: crate.name,
    num: crate.version,
    yanked: crate.yanked,
    checksum: crate.checksum,
    dl_path: `/api/v1/crates/${crate.name}/${crate.version}/download`,
  };
}

/** The last published version: the fake publishes in increasing order. */
function maxVersion(versions: PublishedCrate[]): string {
  return (versions.at(-1) as PublishedCrate).version;
}

function describe(name: string, data: FakeApiData): string {
  return data.descriptions?.[name] ?? `A fake crate named ${name}`;
}

function jsonReply(status: number, body: unknown): Reply {
  return {
    status,
    headers: { 'Content-Type': 'application/json; charset=utf-8' },
    body: Buffer.from(JSON.stringify(body)),
  };
}
