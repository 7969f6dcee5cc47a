# What run.sh and agent.sh share, sourced by both after they set repo_root, limit,
# deadline, cache and test_name (the prefix of every line they print); they may define
# more_diagnostics (printed on failure) and more_cleanup (run on exit).
#
# It sets up the run's state, say/remaining/fail, the cleanup trap (kills tmux, kiln if it
# outlives Helix, removes the temporary folder unless HELIX_TEST_KEEP=1), checks KILN_BIN
# and the tools, and gets Helix 25.01 (hx and its libc) from Debian trixie, fetched once
# into .cache/helix with apt-get (private lists and cache, /etc/apt untouched), then
# checked to run: hx_bin, libdir, loader, HELIX_RUNTIME and hx_version.
# Then the helpers both drive Helix with: screen, wait_until, log_has, log_count,
# screen_has, key and find_kiln_pid (they need tmux_sock and, for key, key_delay).

tmp=""
tmux_sock=""
kiln_pid=""
failed=0
hx_should_run=1

say() { echo "$test_name: $*"; }

remaining() {
  local left=$((deadline - SECONDS))
  ((left > 0)) || left=1
  echo "$left"
}

diagnostics() {
  [[ -n "$tmp" ]] || return 0
  if [[ -n "$tmux_sock" && -S "$tmux_sock" ]]; then
    echo "----- Helix screen (tmux capture-pane)" >&2
    tmux -S "$tmux_sock" capture-pane -p -t kiln-hx >&2 2>/dev/null || echo "(no tmux pane)" >&2
  fi
  if [[ -f "$tmp/hx.status" ]]; then
    echo "----- hx exited with status $(cat "$tmp/hx.status")" >&2
  fi
  if [[ -f "$tmp/kiln.log" ]]; then
    echo "----- kiln log, last 40 lines (long lines cut at 400 characters)" >&2
    tail -n 40 "$tmp/kiln.log" | cut -c 1-400 >&2
  else
    echo "----- no kiln log at $tmp/kiln.log (kiln did not start?)" >&2
  fi
  if [[ -f "$tmp/xdg/cache/helix/helix.log" ]]; then
    echo "----- Helix log, last 20 lines" >&2
    tail -n 20 "$tmp/xdg/cache/helix/helix.log" | cut -c 1-400 >&2
  fi
  if declare -F more_diagnostics >/dev/null; then more_diagnostics; fi
}

cleanup() {
  local status=$?
  # Clean up even when output goes to a closed pipe (run.sh | head) or a command fails.
  set +e
  trap '' PIPE
  if ((status != 0 || failed)); then
    diagnostics
  fi
  if [[ -n "$tmux_sock" && -S "$tmux_sock" ]]; then
    tmux -S "$tmux_sock" kill-server 2>/dev/null || true
  fi
  # hx gets SIGHUP from tmux and kiln then sees its stdin close; if kiln is still there after
  # a moment, stop it (only that process, by the id recorded when hx started it).
  if [[ -n "$kiln_pid" ]]; then
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      kill -0 "$kiln_pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$kiln_pid" 2>/dev/null; then
      echo "$test_name: kiln (pid $kiln_pid) outlived Helix; stopping it" >&2
      kill "$kiln_pid" 2>/dev/null || true
    fi
  fi
  if declare -F more_cleanup >/dev/null; then more_cleanup; fi
  if [[ -n "$tmp" && "${HELIX_TEST_KEEP:-}" == 1 ]]; then
    echo "$test_name: kept $tmp" >&2
  elif [[ -n "$tmp" ]]; then
    rm -rf "$tmp"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
  failed=1
  echo "$test_name: FAILED: $*" >&2
  exit 1
}

# --- prerequisites ---------------------------------------------------------------------------

[[ -n "${KILN_BIN:-}" ]] || fail "set KILN_BIN to the kiln binary (e.g. KILN_BIN=target/debug/kiln)"
[[ -x "$KILN_BIN" ]] || fail "KILN_BIN is not an executable file: $KILN_BIN"
kiln_bin="$(cd "$(dirname "$KILN_BIN")" && pwd)/$(basename "$KILN_BIN")"
for tool in tmux python3 apt-get dpkg-deb; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool is required (tmux: apt-get install -y tmux)"
done

case "$(uname -m)" in
  x86_64) triplet=x86_64-linux-gnu ;;
  aarch64) triplet=aarch64-linux-gnu ;;
  *) fail "no recipe for Helix on $(uname -m)" ;;
esac

# --- Helix from Debian trixie, cached in .cache/helix ----------------------------------------

hx_bin="$cache/hx/usr/lib/hx/hx"
libdir="$cache/libc/usr/lib/$triplet"

fetch_helix() {
  say "fetching hx and libc6 from Debian trixie into $cache"
  mkdir -p "$cache"
  # Keep the cache out of git even where .cache/ is not ignored.
  [[ -f "$cache/.gitignore" ]] || printf '*\n' >"$cache/.gitignore"
  local apt="$cache/apt"
  rm -rf "$apt" "$cache/hx.new" "$cache/libc.new"
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/debs"

  # Reuse the machine's Debian mirror and keyring.
  local uri="" keyring=""
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    uri="$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)"
    keyring="$(awk '/^Signed-By:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)"
  fi
  if [[ -z "$uri" && -f /etc/apt/sources.list ]]; then
    uri="$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' /etc/apt/sources.list)"
  fi
  uri="${uri:-http://deb.debian.org/debian}"
  keyring="${keyring:-/usr/share/keyrings/debian-archive-keyring.gpg}"
  echo "deb [signed-by=$keyring] $uri trixie main" >"$apt/sources.list"

  local opts=(
    -o "Dir::Etc::SourceList=$apt/sources.list"
    -o "Dir::Etc::SourceParts=/nonexistent"
    -o "Dir::State::Lists=$apt/lists"
    -o "Dir::Cache=$apt/cache"
    -o "APT::Sandbox::User=$(id -un)"
  )
  timeout "$(remaining)" apt-get -q "${opts[@]}" update >"$apt/update.log" 2>&1 || {
    cat "$apt/update.log" >&2
    fail "apt-get update for Debian trixie failed or timed out ($uri)"
  }
  (cd "$apt/debs" && timeout "$(remaining)" apt-get -q "${opts[@]}" download hx libc6) >"$apt/download.log" 2>&1 || {
    cat "$apt/download.log" >&2
    fail "apt-get download hx libc6 (trixie) failed or timed out"
  }
  dpkg-deb -x "$apt"/debs/hx_*.deb "$cache/hx.new"
  dpkg-deb -x "$apt"/debs/libc6_*.deb "$cache/libc.new"
  rm -rf "$cache/hx" "$cache/libc"
  mv "$cache/hx.new" "$cache/hx"
  mv "$cache/libc.new" "$cache/libc"
  (cd "$apt/debs" && ls) >"$cache/packages.txt"
  rm -rf "$apt"
}

# Tests may run this script in parallel: one fetch at a time, the others wait and reuse it.
mkdir -p "$(dirname "$cache")"
(
  flock 9
  if [[ ! -x "$hx_bin" || ! -d "$libdir" ]]; then
    fetch_helix
  fi
) 9>"$cache.lock" || exit 1
loader="$(ls "$libdir"/ld-linux*.so.* 2>/dev/null | head -n 1)"
[[ -n "$loader" ]] || fail "no dynamic loader in $libdir; delete $cache and run again"
export HELIX_RUNTIME="$cache/hx/usr/lib/hx/runtime"
hx_version="$("$loader" --library-path "$libdir" "$hx_bin" --version 2>&1)" ||
  fail "hx does not run: $hx_version"

# --- helpers for driving Helix in tmux (session kiln-hx) ----------------------------------------

screen() { tmux -S "$tmux_sock" capture-pane -p -t kiln-hx; }

# wait_until DESCRIPTION SECONDS COMMAND...: polls COMMAND every 50 ms.
wait_until() {
  local what="$1" secs="$2"
  shift 2
  local left=$((deadline - SECONDS))
  ((left > 0)) || fail "the time limit (${limit}s, HELIX_TEST_TIMEOUT) ran out while waiting for $what"
  ((secs < left)) || secs="$left"
  local end=$((SECONDS + secs))
  until "$@"; do
    ((SECONDS < end)) || fail "timed out after ${secs}s waiting for $what (time limit ${limit}s)"
    if ((hx_should_run)) && [[ -f "$tmp/hx.status" ]]; then
      fail "Helix exited (status $(cat "$tmp/hx.status")) while waiting for $what"
    fi
    sleep 0.05
  done
}

log_has() { [[ -f "$tmp/kiln.log" ]] && grep -qF -- "$1" "$tmp/kiln.log"; }
log_count() { grep -cF -- "$1" "$tmp/kiln.log" 2>/dev/null || true; }
screen_has() { screen 2>/dev/null | grep -qF -- "$1"; }

# key NAME...: tmux key names (Escape, Enter, BSpace) or single Helix command keys.
key() {
  local k
  for k in "$@"; do
    [[ "$k" == ";" ]] && k='\;' # a lone ";" separates tmux commands
    tmux -S "$tmux_sock" send-keys -t kiln-hx "$k"
    sleep "$key_delay"
  done
}

# find_kiln_pid: launch.sh -> hx -> kiln; remembers kiln's process id, to check that it
# exits with Helix.
find_kiln_pid() {
  local pid child
  children() { ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' ' || true; }
  for pid in $(children "$(cat "$tmp/hx.pid")"); do
    for child in $(children "$pid"); do
      if [[ "$(readlink -f "/proc/$child/exe" 2>/dev/null)" == "$(readlink -f "$kiln_bin")" ]]; then
        kiln_pid="$child"
      fi
    done
  done
  [[ -n "$kiln_pid" ]] || fail "kiln is logging, but no kiln process runs under hx"
}
