#!/usr/bin/env bash
# Puts a Node.js release line first on PATH for cargo-cacher's development, installing it
# first when needed (scripts/install-node.sh: from the npm registry, cached under
# ~/.cache/cargo-cacher/node/<major>). 24 by default, or 22 (the oldest line supported).
#
#   source scripts/use-node.sh        # this shell now runs node 24 (bash, zsh)
#   source scripts/use-node.sh 22
#   eval "$(scripts/use-node.sh 22)"  # the same from any POSIX shell
#
# It also sets npm_config_nodedir to that node's headers, so a native module built from source
# (say `npm install --no-save better-sqlite3` for bench/sqlite.ts) compiles against the node that
# runs it, without downloading headers. Sourced, it never exits your shell: errors return 1.

# Sourced or run? `return` works only in a sourced file (and in a function).
if (return 0 2>/dev/null); then
  __use_node_sourced=1
else
  __use_node_sourced=0
fi

__use_node_script="${BASH_SOURCE[0]:-${(%):-%x}}"
__use_node_bin="$("$(dirname "$__use_node_script")/install-node.sh" "${1:-24}")"
__use_node_status=$?
if [ "$__use_node_status" -ne 0 ]; then
  unset __use_node_script __use_node_bin
  if [ "$__use_node_sourced" = 1 ]; then
    unset __use_node_sourced __use_node_status
    return 1
  fi
  exit "$__use_node_status"
fi

# Earlier entries of the same cache (<cache>/<major>/bin) leave PATH, so switching back and
# forth neither grows it nor leaves the other line ahead.
__use_node_path="$(printf '%s' "$PATH" | awk -v root="${__use_node_bin%/*/bin}/" '
  BEGIN { RS = ":"; ORS = ":" }
  !(index($0, root) == 1 && substr($0, length(root) + 1) ~ /^[0-9]+\/bin$/)')"
__use_node_path="${__use_node_path%:}"
if [ "$__use_node_sourced" = 1 ]; then
  export PATH="$__use_node_bin:$__use_node_path"
  export npm_config_nodedir="${__use_node_bin%/bin}"
  hash -r 2>/dev/null
  echo "node $(node --version) from $__use_node_bin" >&2
  unset __use_node_sourced __use_node_script __use_node_bin __use_node_status __use_node_path
else
  printf "export PATH='%s:%s'\n" "$__use_node_bin" "$__use_node_path"
  printf "export npm_config_nodedir='%s'\n" "${__use_node_bin%/bin}"
fi
