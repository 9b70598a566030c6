#!/usr/bin/env bash
# Installs a Node.js release line (24 by default, or 22) from the npm registry and prints the
# directory of its `node` binary on stdout; progress goes to stderr.
#
#   PATH="$(scripts/install-node.sh 24):$PATH"
#
# The binaries come from the registry package `node-linux-<arch>@<major>` (bin/node plus the
# headers under include/node), because the registry is the one download source these machines
# reach. Each line is kept in ${XDG_CACHE_HOME:-$HOME/.cache}/cargo-cacher/node/<major> and
# reused while its `bin/node --version` answers v<major>.*; CARGO_CACHER_NODE_CACHE moves the
# cache. The package has no npm: the system's npm runs under whichever node is first on PATH.
# .ci/run and scripts/use-node.sh both install through this script.
set -euo pipefail

major="${1:-24}"
case "$major" in
  '' | *[!0-9]*)
    echo "install-node: the Node.js major version must be a number (24, 22), not \"$major\"" >&2
    exit 2
    ;;
esac

case "$(uname -m)" in
  x86_64 | amd64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *)
    echo "install-node: no node-linux-* registry package for $(uname -m)" >&2
    exit 1
    ;;
esac

cache="${CARGO_CACHER_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cargo-cacher/node}"
dir="$cache/$major"

# True when $1/bin/node runs and is of the wanted major version.
is_wanted_node() {
  local version
  version="$("$1/bin/node" --version 2>/dev/null)" || return 1
  [[ "$version" == "v$major".* ]]
}

if ! is_wanted_node "$dir"; then
  echo "install-node: fetching node-linux-$arch@$major from the npm registry" >&2
  mkdir -p "$cache"
  work="$(mktemp -d "$cache/.install-$major.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  tarball="$(cd "$work" && npm pack "node-linux-$arch@$major" --silent | tail -n 1)"
  tar -xzf "$work/$tarball" -C "$work"
  if ! is_wanted_node "$work/package"; then
    echo "install-node: the package node-linux-$arch@$major holds no working node $major" >&2
    exit 1
  fi
  # Unpacked beside the cache entry and moved in whole: a reader never sees half a node, and a
  # stale or broken entry is replaced. When another install moved its copy in first, that one
  # is kept.
  rm -rf "$dir"
  if ! mv -T "$work/package" "$dir" 2>/dev/null && ! is_wanted_node "$dir"; then
    echo "install-node: could not move node $major into $dir" >&2
    exit 1
  fi
fi

echo "install-node: $("$dir/bin/node" --version) in $dir" >&2
echo "$dir/bin"
