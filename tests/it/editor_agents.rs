//! The editor frontends' agent paths driven by real client libraries against the scripted
//! model: `kiln lsp`'s `kiln/*` methods from node's `vscode-jsonrpc`, and `kiln acp` from the
//! official ACP SDK (`@agentclientprotocol/sdk`). The node scripts play the editor; these
//! tests set up the workspace and the model, run them, and check what the model was told.

use std::process::Command;

use serde_json::json;

use crate::agent_run::Setup;
use crate::support::script::{self, call};

const APP: &str = r#"//- /src/app.js
const greeting = "hello";
// one
// two
// three
// four
// five
// six
// seven
// eight
const farewell = "goodbye";
"#;

/// The model's rewrite of the buffer (which carries the person's unsaved comment).
const LOUDER: &str = "const greeting /* unsaved */ = \"HELLO\";\n// one\n// two\n// three\n// four\n// five\n// six\n// seven\n// eight\nconst farewell = \"GOODBYE\";\n";

fn run_node(setup: &Setup, script: &str) {
    run_node_with(setup, script, &[]);
}

fn run_node_with(setup: &Setup, script: &str, env: &[(&str, &str)]) {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = repo.join("tests/clients/node");
    assert!(
        dir.join("node_modules").is_dir(),
        "run `npm ci` in tests/clients/node first (or .ci/run, which does)"
    );
    let cmd: Command = setup.command(&[]);
    let out = cmd
        .get_envs()
        .fold(Command::new("node"), |mut c, (k, v)| {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
            c
        })
        .arg(dir.join(script))
        .current_dir(&dir)
        .env("KILN_BIN", env!("CARGO_BIN_EXE_kiln"))
        .env("KILN_WORKSPACE", setup.project())
        .envs(env.iter().copied())
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "{script} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn lsp_rich_path_with_vscode_jsonrpc_applies_an_accepted_hunk_through_the_editor() {
    let setup = Setup::new(
        &format!("{APP}//- /build/keep.txt\nkept\n//- /notes.txt\nnotes\n"),
        vec![
            script::tools(&[call(
                "call_1",
                "write",
                json!({ "path": "src/app.js", "content": LOUDER }),
            )]),
            script::text("Made the greeting louder."),
            script::tools(&[call("call_2", "bash", json!({ "command": "rm -rf build" }))]),
        ],
    );
    run_node(&setup, "lsp_agent_test.mjs");
    let requests = setup.requests();
    assert_eq!(requests.len(), 3, "three model requests");
    let told = script::tool_contents(&requests[1]).remove(0);
    assert!(
        told.contains("keep the farewell as it is")
            && told.contains("not applied: src/app.js: hunk 2"),
        "the model heard what was rejected and why: {told}"
    );
}

#[test]
fn acp_with_the_official_sdk_reviews_writes_through_the_client_and_cancels_a_pending_question() {
    let setup = Setup::new(
        &format!("{APP}//- /build/keep.txt\nkept\n"),
        vec![
            script::tools(&[call(
                "call_1",
                "edit",
                json!({ "path": "src/app.js", "old_string": "\"hello\"", "new_string": "\"HELLO\"" }),
            )]),
            script::text("The greeting is louder now."),
            script::tools(&[call("call_2", "bash", json!({ "command": "rm -rf build" }))]),
        ],
    );
    run_node(&setup, "acp_test.mjs");
    let requests = setup.requests();
    assert_eq!(
        requests.len(),
        3,
        "slash commands and the replay asked the model nothing"
    );
}

#[test]
fn docs_kiln_lsp_schema_matches_the_types() {
    let mut text = serde_json::to_string_pretty(&kiln::frontend::wire::schema()).unwrap();
    text.push('\n');
    crate::support::assert_generated("protocol/schema/kiln.json", &text);
}

#[test]
fn plain_lsp_path_with_helix_capabilities_proposes_as_diagnostics_and_chats_in_a_file() {
    let setup = Setup::new(
        APP,
        vec![
            script::tools(&[call(
                "call_1",
                "edit",
                json!({ "path": "src/app.js", "old_string": "\"goodbye\"", "new_string": "\"GOODBYE\"" }),
            )]),
            script::text("Made the farewell loud."),
            script::tools(&[call("call_2", "bash", json!({ "command": "ls src" }))]),
            script::text("Listed the files."),
            script::text("It greets."),
        ],
    );
    run_node(&setup, "plain_test.mjs");
    let requests = setup.requests();
    assert_eq!(requests.len(), 5);
    let asked = requests[2]["messages"].to_string();
    assert!(
        asked.contains("what is in src?"),
        "the chat question reached the model: {asked}"
    );
}

#[test]
fn acp_without_a_model_says_how_to_get_one_and_keeps_serving() {
    use std::io::{BufRead, BufReader, Write};
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("acp")
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .env("KILN_DATA_DIR", dir.path().join("data"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut ask = |message: serde_json::Value| -> serde_json::Value {
        writeln!(stdin, "{message}").unwrap();
        let id = message["id"].clone();
        loop {
            let line = lines.next().expect("kiln answers").unwrap();
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            if v["id"] == id && v.get("method").is_none() {
                return v;
            }
        }
    };
    let init = ask(
        json!({ "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": { "protocolVersion": 1, "clientCapabilities": {} } }),
    );
    assert_eq!(init["result"]["protocolVersion"], 1, "{init}");
    let cwd = dir.path().to_str().unwrap();
    let new = json!({ "jsonrpc": "2.0", "id": 1, "method": "session/new", "params": { "cwd": cwd, "mcpServers": [] } });
    let refused = ask(new.clone());
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("kiln found no model") && message.contains("ANTHROPIC_API_KEY"),
        "{refused}"
    );
    let again = ask(
        json!({ "jsonrpc": "2.0", "id": 2, "method": "session/list", "params": { "cwd": cwd } }),
    );
    assert_eq!(
        again["result"]["sessions"],
        json!([]),
        "still serving: {again}"
    );
    drop(stdin);
    assert!(
        child.wait().unwrap().success(),
        "a closed stdin ends kiln acp cleanly"
    );
}

/// Issue-5's race on an open buffer: 1,000 seeded interleavings of the person typing
/// while the agent's edit is asked about and applied through the editor
/// (tests/clients/node/lsp_race_test.mjs says what each seed checks).
#[test]
fn typing_while_the_agent_edits_an_open_buffer_never_loses_a_keystroke() {
    let seeds: usize = std::env::var("KILN_RACE_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let mut replies = Vec::new();
    for seed in 1..=seeds {
        replies.push(script::tools(&[call(
            &format!("call_{seed}"),
            "edit",
            json!({ "path": format!("race/{seed}.txt"), "old_string": "MARK", "new_string": "DONE" }),
        )]));
        replies.push(script::text("ok"));
    }
    let setup = Setup::new("//- /race/.keep\n", replies);
    setup.server.forget_bodies();
    run_node_with(
        &setup,
        "lsp_race_test.mjs",
        &[("KILN_RACE_SEEDS", &seeds.to_string())],
    );
}
