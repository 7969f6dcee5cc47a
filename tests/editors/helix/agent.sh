#!/usr/bin/env bash
# Drives a real Helix (Debian trixie's hx 25.01) in tmux through kiln's plain LSP path, the
# way a Helix user without any plugin fixes code with kiln:
#
#   1. on the `farewell` line of src/app.js: `x` (select the line), `space a`, pick
#      "kiln: fix this" in the code-action menu (Helix resolves it: codeAction/resolve);
#   2. a scripted model (scripted_llm.py, on 127.0.0.1) answers with an `edit` tool call;
#      kiln turns it into a proposal: .kiln/proposals/1.diff (which Helix shows through
#      window/showDocument) and a Hint diagnostic on the changed line;
#   3. back in src/app.js, on that line: the gutter mark and the diagnostic's text,
#      then `space a`, "kiln: accept proposal 1 (+1 −1)" (the first item);
#   4. the buffer changes through workspace/applyEdit (unsaved: the disk keeps "goodbye"),
#      the proposal's diagnostic and diff file go, the model is told the edit was applied;
#   5. `:w` writes the change; `:q!` quits, and kiln exits with Helix.
#
#   KILN_BIN=target/debug/kiln tests/editors/helix/agent.sh
#
# KILN_BIN (required): the kiln binary to test.
# HELIX_TEST_TIMEOUT: the time limit in seconds for the whole run (default 60, fetch included).
# HELIX_TEST_KEEP=1: keep the temporary folder (workspace, configuration, kiln.log, llm.log).
#
# Helix comes from Debian trixie and is cached in .cache/helix/ exactly as run.sh does it
# (the fetch code below is a copy of run.sh's). Needs tmux, python3, apt-get, dpkg-deb.
# Network: the scripted model listens on 127.0.0.1 only.
set -euo pipefail
export LC_ALL=C.UTF-8

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../../.." && pwd)"
limit="${HELIX_TEST_TIMEOUT:-60}"
deadline=$((SECONDS + limit))
key_delay=0.04
cache="$repo_root/.cache/helix"

test_name="tests/editors/helix/agent"
llm_pid=""

more_diagnostics() {
  [[ -n "$tmp" ]] || return 0
  if [[ -f "$tmp/llm.log" ]]; then
    echo "----- scripted model requests (cut at 300 characters)" >&2
    cut -c 1-300 "$tmp/llm.log" >&2
  else
    echo "----- the scripted model got no request" >&2
  fi
  if [[ -d "$tmp/ws/.kiln/proposals" ]]; then
    echo "----- .kiln/proposals: $(ls "$tmp/ws/.kiln/proposals" | tr '\n' ' ')" >&2
  fi
}

more_cleanup() {
  # The scripted model: started by this script, stopped by its id.
  if [[ -n "$llm_pid" ]]; then
    kill "$llm_pid" 2>/dev/null || true
    wait "$llm_pid" 2>/dev/null || true
  fi
}

source "$here/lib.sh"

# --- helpers for waiting -----------------------------------------------------------------------


# --- workspace, scripted model and configuration ----------------------------------------------

tmp="$(mktemp -d "${TMPDIR:-/tmp}/kiln-helix-agent.XXXXXX")"
tmux_sock="$tmp/tmux.sock"
ws="$tmp/ws"
mkdir -p "$ws/src" "$tmp/xdg/config/helix" "$tmp/xdg/config/kiln" "$tmp/xdg/cache" \
  "$tmp/xdg/data" "$tmp/xdg/state" "$tmp/home" "$tmp/data"

original='const greeting = "hello";
// one
// two
// three
const farewell = "goodbye";
'
printf '%s' "$original" >"$ws/src/app.js"
cp "$ws/src/app.js" "$tmp/original.js"
printf '%s' "${original/\"goodbye\"/\"GOODBYE\"}" >"$tmp/expected.js"
# package.json marks the project root (the roots below): Helix sends it as rootUri.
printf '{ "name": "scratch", "private": true }\n' >"$ws/package.json"

# The scripted model; it also stops by itself a little after the time limit.
python3 "$here/scripted_llm.py" "$tmp/llm.port" "$tmp/llm.log" "$((limit + 15))" \
  </dev/null >"$tmp/llm.out" 2>&1 &
llm_pid=$!
llm_up() { [[ -s "$tmp/llm.port" ]] || { kill -0 "$llm_pid" 2>/dev/null || fail "scripted_llm.py exited: $(cat "$tmp/llm.out")"; false; }; }
wait_until "the scripted model to listen (scripted_llm.py)" 10 llm_up
llm_port="$(cat "$tmp/llm.port")"

python3 - "$tmp/xdg/config/helix/languages.toml" "$kiln_bin" "$tmp/kiln.log" <<'EOF'
import json, sys
path, kiln, log = sys.argv[1:]
q = json.dumps  # a JSON string is a valid TOML basic string
with open(path, "w") as f:
    f.write(f"""# Written by tests/editors/helix/agent.sh
[language-server.kiln]
command = {q(kiln)}
args = ["--log-file", {q(log)}, "lsp"]
environment = {{ KILN_LOG_LEVEL = "trace" }}

[[language]]
name = "javascript"
roots = ["package.json"]
language-servers = ["kiln"]
""")
EOF

# kiln inherits hx's environment: the model, the data and config folders, all inside $tmp.
cat >"$tmp/launch.sh" <<EOF
#!/bin/sh
cd "$ws" || exit 97
export HOME="$tmp/home"
export XDG_CONFIG_HOME="$tmp/xdg/config" XDG_CACHE_HOME="$tmp/xdg/cache"
export XDG_DATA_HOME="$tmp/xdg/data" XDG_STATE_HOME="$tmp/xdg/state"
export HELIX_RUNTIME="$HELIX_RUNTIME"
export KILN_ENDPOINT="http://127.0.0.1:$llm_port/v1" KILN_MODEL=scripted-coder KILN_API_KEY=sk-test
export KILN_DATA_DIR="$tmp/data"
unset KILN_LOG OPENAI_API_KEY ANTHROPIC_API_KEY
echo \$\$ >"$tmp/hx.pid"
"$loader" --library-path "$libdir" "$hx_bin" src/app.js
echo \$? >"$tmp/hx.status"
EOF
chmod +x "$tmp/launch.sh"

# --- helpers for driving Helix ---------------------------------------------------------------

screen_lacks() { ! screen_has "$1"; }
# statusline_has TEXT: the status line (second to last row) shows TEXT.
# The diagnostic mark (●) in the gutter of line 5.
line5_marked() { screen 2>/dev/null | grep -qE '^● +5  const farewell'; }
line5_unmarked() { screen 2>/dev/null | grep -qE '^ +5  const farewell'; }
statusline_has() { screen 2>/dev/null | tail -n 2 | head -n 1 | grep -qF -- "$1"; }


# command TEXT: a typed command (":w"), then Enter.
command_line() {
  tmux -S "$tmux_sock" send-keys -t kiln-hx -l -- "$1"
  sleep 0.1
  tmux -S "$tmux_sock" send-keys -t kiln-hx Enter
}

# The highlighted item of the open menu: Helix's default theme draws it reversed (SGR 7).
menu_selected() {
  tmux -S "$tmux_sock" capture-pane -e -p -t kiln-hx 2>/dev/null | python3 -c '
import re, sys
for line in sys.stdin:
    at = line.find("\x1b[7m")
    while at >= 0:
        rest = line[at + 4:]
        end = rest.find("\x1b[0m")
        item = re.sub(r"\x1b\[[0-9;:]*m", "", rest if end < 0 else rest[:end]).strip()
        if item.startswith("kiln:"):
            print(item)
            sys.exit(0)
        at = line.find("\x1b[7m", at + 4)
'
}
menu_items() { screen | grep -o 'kiln: [^│]*' | sed 's/ *$//'; }
selected_is() { [[ "$(menu_selected)" == "$1" ]]; }
selected_not() { local now; now="$(menu_selected)"; [[ -n "$now" && "$now" != "$1" ]]; }

# pick_action TITLE: in the open code-action menu, move down to TITLE (checking the
# highlighted item on screen each step) and press Enter. Sets picked_downs.
picked_downs=0
pick_action() {
  local title="$1" now
  wait_until "the code-action menu to offer \"$title\"" 10 screen_has "$title"
  wait_until "a highlighted item in the code-action menu" 5 selected_not ""
  picked_downs=0
  while now="$(menu_selected)"; [[ "$now" != "$title" ]]; do
    ((picked_downs < 15)) || fail "\"$title\" never got highlighted in the menu: $(menu_items | tr '\n' '|')"
    key Down
    picked_downs=$((picked_downs + 1))
    wait_until "the menu highlight to move past \"$now\"" 5 selected_not "$now"
  done
  sleep 0.05
  selected_is "$title" || fail "the highlight moved away from \"$title\""
  key Enter
  wait_until "the code-action menu to close" 5 screen_lacks "$title"
}

# --- the session -----------------------------------------------------------------------------

say "$hx_version, kiln: $kiln_bin, scripted model on 127.0.0.1:$llm_port"
tmux -S "$tmux_sock" -f /dev/null new-session -d -s kiln-hx -x 120 -y 30 "$tmp/launch.sh"

wait_until "kiln to start and log the client (client: helix in $tmp/kiln.log)" 15 log_has "client: helix"
wait_until "Helix to open src/app.js in kiln (didOpen)" 10 log_has "notification textDocument/didOpen"
wait_until "Helix to show src/app.js" 5 statusline_has " NOR "
find_kiln_pid
grep -qF "roots [\"$(cd "$ws" && pwd -P)\"]" "$tmp/kiln.log" ||
  fail "kiln did not take the workspace as its root: $(grep -F 'position encoding' "$tmp/kiln.log" | cut -c 1-300)"

# 1. "kiln: fix this" on the farewell line (5gg goes to line 5, x selects it).
key 5 g g x
wait_until "the cursor on line 5 with the line selected" 5 statusline_has " 5:"
key Space a
pick_action "kiln: fix this"
fix_downs="$picked_downs"
t_fix=$SECONDS
wait_until "Helix to send codeAction/resolve" 5 log_has "codeAction/resolve"

# 2. The proposal: the diff file, the message, and Helix showing the diff (showDocument).
diff_file="$ws/.kiln/proposals/1.diff"
proposal_written() { [[ -f "$diff_file" ]] && grep -qxF '+const farewell = "GOODBYE";' "$diff_file"; }
wait_until "the proposal's diff file .kiln/proposals/1.diff" 20 proposal_written
grep -qxF -- '-const farewell = "goodbye";' "$diff_file" || fail "unexpected diff: $(cat "$diff_file")"
wait_until "Helix to show the proposal message" 5 screen_has "kiln proposal 1: Edit src/app.js (+1 −1)"
wait_until "Helix to show the diff (window/showDocument)" 5 statusline_has ".kiln/proposals/1.diff"
t_proposal=$SECONDS

# 3. Back to src/app.js: the Hint diagnostic on line 5: the mark in the gutter, and its text
#    (with its code, "(proposal-1)") in the view's top-right corner, where Helix 25.01 shows
#    the diagnostics under the cursor by default.
command_line ":open src/app.js"
wait_until "Helix to show src/app.js again" 5 statusline_has " src/app.js "
key 5 g g
wait_until "the cursor on line 5" 5 statusline_has " 5:1"
wait_until "the proposal's mark in the gutter of line 5" 5 line5_marked
hint_text='kiln proposal 1, hunk 1/1 (+1 −1): Edit src/app.js'
wait_until "the proposal diagnostic's text on screen" 5 screen_has "$hint_text"

# 4. Accept it: "kiln: accept proposal 1 (+1 −1)", listed first.
key Space a
wait_until "the code-action menu with the proposal's actions" 10 screen_has "kiln: accept hunk 1 of proposal 1"
decide_menu="$(menu_items | tr '\n' '|')"
pick_action "kiln: accept proposal 1 (+1 −1)"
((picked_downs == 0)) || fail "\"kiln: accept proposal 1 (+1 −1)\" was not the first item: $decide_menu"
wait_until "the buffer to change (workspace/applyEdit)" 10 screen_has 'const farewell = "GOODBYE";'
wait_until "Helix to mark src/app.js modified" 5 statusline_has "src/app.js [+]"
wait_until "the proposal's gutter mark to go" 5 line5_unmarked
wait_until "the decided proposal's diff file to go" 5 test ! -e "$diff_file"
cmp -s "$ws/src/app.js" "$tmp/original.js" || fail "the file on disk changed before :w: $(cat "$ws/src/app.js")"
told_model() { [[ -f "$tmp/llm.log" ]] && grep -F '"reply": 2' "$tmp/llm.log" | grep -qF 'applied: src/app.js'; }
wait_until "the model to hear that the edit was applied (second request)" 10 told_model
wait_until "the turn to end (\$/progress end)" 10 log_has '"value":{"kind":"end"'

# What the model was asked: the fix, with the selected line as context.
python3 - "$tmp/llm.log" <<'EOF' || fail "the model's first request lacks the fix or the selected line"
import json, sys
asked = json.dumps(json.loads(open(sys.argv[1]).readline())["last"])
sys.exit(0 if "Fix the problem in `src/app.js` line 5." in asked
         and json.dumps('const farewell = "goodbye";')[1:-1] in asked else 1)
EOF

# 5. Save: the change reaches the disk.
command_line ":w"
saved() { grep -qxF 'const farewell = "GOODBYE";' "$ws/src/app.js"; }
wait_until "Helix to write src/app.js" 5 saved
wait_until "Helix to report the write" 5 screen_has "written"
cmp -s "$ws/src/app.js" "$tmp/expected.js" || fail "unexpected saved file: $(cat "$ws/src/app.js")"
problems="$(grep -E ' (WARN|ERROR) ' "$tmp/kiln.log" | cut -c 1-300 || true)"
[[ -z "$problems" ]] || fail "kiln logged problems: $problems"

# --- quit --------------------------------------------------------------------------------------

hx_should_run=0
command_line ":q!"
wait_until "Helix to quit after :q!" 10 test -f "$tmp/hx.status"
[[ "$(cat "$tmp/hx.status")" == 0 ]] || fail "hx exited with status $(cat "$tmp/hx.status")"
kiln_gone() { ! kill -0 "$kiln_pid" 2>/dev/null; }
wait_until "kiln to exit after Helix quit" 5 kiln_gone
kiln_pid=""
requests="$(grep -c '"method": "POST"' "$tmp/llm.log" || true)"
say "passed with $hx_version in ${SECONDS}s: fix this (${fix_downs} Down) -> proposal in $((t_proposal - t_fix))s -> accepted (first item) -> buffer changed, saved; $requests model requests"
