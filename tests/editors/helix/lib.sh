# What run.sh and agent.sh share, sourced by both: Helix 25.01 (hx and its libc) from
# Debian trixie, fetched once into .cache/helix with apt-get (private lists and cache,
# /etc/apt untouched), then checked to run. The caller defines cache, say, fail and
# remaining; this sets hx_bin, libdir, loader, HELIX_RUNTIME and hx_version.

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
