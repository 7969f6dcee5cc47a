#!/usr/bin/env bash
# Runs the vscode-jsonrpc protocol test against the kiln binary named by KILN_BIN, e.g.
#   KILN_BIN=target/debug/kiln tests/clients/node/run.sh
set -euo pipefail

if [[ -z "${KILN_BIN:-}" ]]; then
  echo "run.sh: KILN_BIN is not set; point it at the kiln binary (e.g. KILN_BIN=target/debug/kiln)" >&2
  exit 2
fi
# Resolve a relative KILN_BIN against the caller's directory before changing directory.
case "$KILN_BIN" in
  /*) ;;
  *) KILN_BIN="$PWD/$KILN_BIN" ;;
esac
if [[ ! -x "$KILN_BIN" ]]; then
  echo "run.sh: KILN_BIN=$KILN_BIN is not an executable file" >&2
  exit 2
fi
export KILN_BIN

cd "$(dirname "${BASH_SOURCE[0]}")"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "run.sh: node and npm are required (Node.js 18 or newer)" >&2
  exit 2
fi
if [[ ! -d node_modules ]]; then
  npm ci --no-audit --no-fund
fi

exec node lsp_client_test.mjs
