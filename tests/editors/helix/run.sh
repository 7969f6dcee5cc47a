#!/usr/bin/env bash
# Drives a real Helix (Debian trixie's hx 25.01) in tmux with kiln as its language server,
# edits a file with multi-byte text and CRLF line endings, saves it, and checks that kiln's
# copy of the buffer (the size and FNV-1a hash kiln logs on didSave) equals the bytes Helix
# wrote to disk.
#
#   KILN_BIN=target/debug/kiln tests/editors/helix/run.sh
#
# KILN_BIN (required): the kiln binary to test.
# HELIX_TEST_TIMEOUT: the time limit in seconds for the whole run (default 60, fetch included).
# HELIX_TEST_KEY_DELAY: seconds between typed keys (default 0.04). Helix 25.01 sends each
#   didChange from its own spawned task, so keys that arrive in one burst can reach the server
#   out of order (kiln puts them back in version order). HELIX_TEST_KEY_DELAY=0 sends each
#   text run in one burst, to exercise that.
# HELIX_TEST_KEEP=1: keep the temporary folder (workspace, configuration, kiln.log).
#
# Helix is not in Debian 12: the first run downloads trixie's hx and libc6 with apt-get
# (private lists and cache, /etc/apt untouched) into .cache/helix/ in this repository, and
# runs hx through trixie's dynamic loader. Needs tmux, python3, apt-get, dpkg-deb.
set -euo pipefail
export LC_ALL=C.UTF-8 # bash must see characters, not bytes, in the typed text

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
limit="${HELIX_TEST_TIMEOUT:-60}"
deadline=$((SECONDS + limit))
key_delay="${HELIX_TEST_KEY_DELAY:-0.04}"
cache="$repo_root/.cache/helix"

test_name="tests/editors/helix"

source "$repo_root/tests/editors/helix/lib.sh"

# --- workspace and configuration -------------------------------------------------------------

tmp="$(mktemp -d "${TMPDIR:-/tmp}/kiln-helix-test.XXXXXX")"
tmux_sock="$tmp/tmux.sock"
mkdir -p "$tmp/ws" "$tmp/xdg/config/helix" "$tmp/xdg/cache" "$tmp/xdg/data" "$tmp/xdg/state"

# A Rust file: Helix knows the language without any grammar installed. CRLF line endings,
# multi-byte text in 2-, 3- and 4-byte UTF-8 sequences, and no final newline (Helix adds one
# when it saves, as an edit that kiln must see too).
printf 'fn main() {\r\n    let s = "h\xc3\xa9llo w\xc3\xb6rld";\r\n    // \xf0\x9f\x98\x80 emoji and \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\r\n    println!("{}", s);\r\n}' >"$tmp/ws/main.rs"
cp "$tmp/ws/main.rs" "$tmp/original.rs"
# Cargo.toml marks the project root for Rust: Helix then sends it as rootUri and workspace
# folder (without a marker, Helix 25.01 sends no root URI and no workspace folders).
printf '[package]\nname = "scratch"\nversion = "0.1.0"\nedition = "2021"\n' >"$tmp/ws/Cargo.toml"

python3 - "$tmp/xdg/config/helix/languages.toml" "$kiln_bin" "$tmp/kiln.log" <<'EOF'
import json, sys
path, kiln, log = sys.argv[1:]
q = json.dumps  # a JSON string is a valid TOML basic string
with open(path, "w") as f:
    f.write(f"""# Written by tests/editors/helix/run.sh
[language-server.kiln]
command = {q(kiln)}
args = ["lsp"]
environment = {{ KILN_LOG_LEVEL = "trace", KILN_LOG = {q(log)} }}

[[language]]
name = "rust"
language-servers = ["kiln"]
""")
EOF

cat >"$tmp/launch.sh" <<EOF
#!/bin/sh
cd "$tmp/ws" || exit 97
export XDG_CONFIG_HOME="$tmp/xdg/config" XDG_CACHE_HOME="$tmp/xdg/cache"
export XDG_DATA_HOME="$tmp/xdg/data" XDG_STATE_HOME="$tmp/xdg/state"
export HELIX_RUNTIME="$HELIX_RUNTIME"
echo \$\$ >"$tmp/hx.pid"
"$loader" --library-path "$libdir" "$hx_bin" main.rs
echo \$? >"$tmp/hx.status"
EOF
chmod +x "$tmp/launch.sh"

# --- helpers for driving Helix ---------------------------------------------------------------


# type_text TEXT: literal text, one character at a time (see HELIX_TEST_KEY_DELAY).
type_text() {
  local text="$1" c i
  if [[ "$key_delay" == 0 ]]; then
    # Only a trailing ";" ends a tmux command; "\;" there is a literal semicolon.
    [[ "$text" == *";" ]] && text="${text%;}\\;"
    tmux -S "$tmux_sock" send-keys -t kiln-hx -l -- "$text"
    return
  fi
  for ((i = 0; i < ${#text}; i++)); do
    c="${text:i:1}"
    # A lone ";" separates tmux commands; "\;" is a literal semicolon.
    [[ "$c" == ";" ]] && c='\;'
    tmux -S "$tmux_sock" send-keys -t kiln-hx -l -- "$c"
    sleep "$key_delay"
  done
}

insert_mode() { wait_until "Helix to enter insert mode" 5 screen_has " INS "; }
normal_mode() {
  # Escape alone: directly followed by another key it would read as Alt+key.
  tmux -S "$tmux_sock" send-keys -t kiln-hx Escape
  wait_until "Helix to return to normal mode" 5 screen_has " NOR "
  sleep 0.05
}

# --- the session -----------------------------------------------------------------------------

say "$hx_version, kiln: $kiln_bin"
tmux -S "$tmux_sock" -f /dev/null new-session -d -s kiln-hx -x 120 -y 30 "$tmp/launch.sh"

wait_until "kiln to answer initialize (position encoding in $tmp/kiln.log)" 15 log_has "position encoding "
wait_until "Helix to open main.rs in kiln (didOpen)" 10 log_has "notification textDocument/didOpen"
wait_until "Helix to show main.rs" 5 screen_has " NOR "
find_kiln_pid

# 1. A new first line with 2-, 3- and 4-byte characters.
key O; insert_mode
type_text "// café 😀 日本 ✓"
normal_mode
# 2. Append to line 3 (let s = …).
key j j A; insert_mode
type_text " /* ñ 🎉 */"
normal_mode
# 3. Open a line below (Helix copies the indentation; auto-pairs handle the quotes).
key o; insert_mode
type_text 'let x = "Ωmega 🦀";'
normal_mode
# 4. Delete the 2-byte é on line 3: back up, go to the line start, find é, collapse the
#    selection to it (;) and delete it (d).
key k g h f é ";" d
# 5. Delete the comment line with 😀 and 日本語 (x selects the line, d deletes it), then undo.
key j j x d
sleep 0.1
key u
# 6. Delete the 😀 on the first line.
key g g f 😀 ";" d
# 7. On the last line: append, then backspace over the CJK characters and retype.
key g e A; insert_mode
type_text " // fin 日本"
key BSpace BSpace
type_text "終"
key Enter # Helix continues the comment on the new line
type_text "👋 CRLF"
normal_mode

changes_before_save="$(log_count "notification textDocument/didChange")"
saves_before="$(log_count " saved at version ")"
tmux -S "$tmux_sock" send-keys -t kiln-hx ":w"
sleep 0.1
tmux -S "$tmux_sock" send-keys -t kiln-hx Enter
wait_until "kiln to log the didSave (saved at version)" 10 \
  bash -c '(( $(grep -cF " saved at version " "$1" || true) > $2 ))' _ "$tmp/kiln.log" "$saves_before"
wait_until "Helix to report the write" 5 screen_has "written"

# --- checks ----------------------------------------------------------------------------------

python3 - "$tmp/kiln.log" "$tmp/ws/main.rs" "$tmp/original.rs" "$changes_before_save" "$tmp/ws" <<'EOF' || fail "the checks above failed"
import json, os, re, sys

log_path, saved_path, original_path, changes_before_save, workspace = sys.argv[1:]
log = open(log_path, encoding="utf-8", errors="replace").read()
saved = open(saved_path, "rb").read()
original = open(original_path, "rb").read()
problems = []

def fnv1a(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h

# Position encoding: Helix offers utf-8 first; kiln should take it.
m = re.search(r"position encoding (\S+), roots (.*)$", log, re.M)
if not m:
    problems.append("kiln did not log its position encoding")
else:
    if m.group(1).rstrip(",") != "utf-8":
        problems.append(f"expected position encoding utf-8, kiln chose {m.group(1)}")
    if m.group(2) != json.dumps([os.path.realpath(workspace)]):
        problems.append(f"expected kiln's roots to be the workspace {workspace}, got {m.group(2)}")

# didChange notifications, and the order of their versions on the wire.
changes = log.count("notification textDocument/didChange")
if changes < 20:
    problems.append(f"only {changes} didChange notifications reached kiln (expected one per edit, 20 or more)")
versions = []
for line in log.splitlines():
    i = line.find('incoming msg={')
    if i < 0 or '"textDocument/didChange"' not in line:
        continue
    try:
        versions.append(json.loads(line[i + len("incoming msg="):])["params"]["textDocument"]["version"])
    except (ValueError, KeyError):
        pass
inversions = [(a, b) for a, b in zip(versions, versions[1:]) if b <= a]
if inversions:
    # kiln puts changes back in version order; the hash check below proves it did.
    shown = ", ".join(f"{a} then {b}" for a, b in inversions[:5])
    print(f"note: Helix sent didChange versions out of order ({shown}); kiln reordered them")

# kiln's copy at save time against the bytes Helix wrote.
saves = re.findall(r"saved at version (-?\d+); kiln's copy: (\d+) bytes, fnv1a ([0-9a-f]{16})", log)
if not saves:
    problems.append("no 'saved at version' line in kiln's log")
else:
    version, size, digest = saves[-1]
    mine = f"{fnv1a(saved):016x}"
    print(f"kiln at save: version {version}, {size} bytes, fnv1a {digest}")
    print(f"file on disk: {len(saved)} bytes, fnv1a {mine}")
    if int(size) != len(saved) or digest != mine:
        problems.append(
            f"kiln's copy differs from the saved file: kiln {size} bytes fnv1a {digest}, "
            f"file {len(saved)} bytes fnv1a {mine}")
for warning in re.findall(r"^.* (?:WARN|ERROR) .*$", log, re.M):
    problems.append(f"kiln logged: {warning[:300]}")

# The edits happened as intended (so the comparison above covers them).
text = saved.decode("utf-8", errors="replace")
expect = {
    "the file changed": saved != original,
    "first line '// café 日本 ✓' (😀 deleted)": text.startswith("// café  日本 ✓\r\n"),
    "é deleted from héllo": '"hllo wörld"; /* ñ 🎉 */\r\n' in text,
    "new line with Ωmega 🦀": '    let x = "Ωmega 🦀";\r\n' in text,
    "the deleted comment line is back after undo": "    // 😀 emoji and 日本語\r\n" in text,
    "backspace over 日本 then 終": "} // fin 終\r\n" in text,
    "a new last line with 👋 (Enter in insert mode)": "👋 CRLF\r\n" in text,
    "CRLF line endings only": b"\n" not in saved.replace(b"\r\n", b"") and b"\r" not in saved.replace(b"\r\n", b""),
    "a final newline (added by Helix on save)": saved.endswith(b"\r\n"),
}
for what, ok in expect.items():
    if not ok:
        problems.append(f"unexpected saved text ({what} missing)")
if problems:
    print("saved file:", repr(text), file=sys.stderr)
    for p in problems:
        print(f"  - {p}", file=sys.stderr)
    sys.exit(1)
print(f"{changes} didChange notifications ({changes_before_save} before :w), "
      "position encoding utf-8")
EOF

# --- quit --------------------------------------------------------------------------------------

hx_should_run=0
tmux -S "$tmux_sock" send-keys -t kiln-hx ":q!"
sleep 0.1
tmux -S "$tmux_sock" send-keys -t kiln-hx Enter
wait_until "Helix to quit after :q!" 10 test -f "$tmp/hx.status"
[[ "$(cat "$tmp/hx.status")" == 0 ]] || fail "hx exited with status $(cat "$tmp/hx.status")"
kiln_gone() { ! kill -0 "$kiln_pid" 2>/dev/null; }
wait_until "kiln to exit after Helix quit" 5 kiln_gone
kiln_pid=""
say "passed with $hx_version in $((SECONDS))s"
