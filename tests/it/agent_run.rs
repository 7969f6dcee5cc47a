//! `kiln run` end to end: the real binary in a scratch workspace, its provider a scripted
//! server on 127.0.0.1 that streams OpenAI-compatible replies. Each test asserts what the
//! person would check: the files at the end, the updates in order, the audit log, the
//! exit status, and what kiln sent back to the model.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::llm_server::{End, Recorded, Reply, ScriptedServer};
use crate::support::script::{self, call, raw_call, tool_results};
use crate::support::workspace;

const KEY: &str = "sk-test-never-printed-4242";

pub(crate) struct Setup {
    /// Runs the scripted server.
    _rt: tokio::runtime::Runtime,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) server: ScriptedServer,
}

impl Setup {
    pub(crate) fn new(fixture: &str, replies: Vec<Reply>) -> Setup {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let server = rt.block_on(ScriptedServer::start(replies));
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("project")).unwrap();
        workspace::write(&dir.path().join("project"), fixture);
        Setup {
            _rt: rt,
            dir,
            server,
        }
    }

    pub(crate) fn project(&self) -> PathBuf {
        self.dir.path().join("project")
    }

    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
        cmd.args(args)
            .current_dir(self.project())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path().join("home"))
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("KILN_DATA_DIR", self.dir.path().join("data"))
            .env("KILN_ENDPOINT", self.server.base_url())
            .env("KILN_MODEL", "scripted-coder")
            .env("KILN_API_KEY", KEY)
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = self.command(args).output().unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains(KEY), "the API key was printed:\n{all}");
        out
    }

    pub(crate) fn requests(&self) -> Vec<Value> {
        self.server
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/chat/completions"))
            .map(Recorded::json)
            .collect()
    }

    fn audit_events(&self, event: &str) -> Vec<Value> {
        self.audit()
            .into_iter()
            .filter(|e| e["event"] == event)
            .collect()
    }

    fn audit(&self) -> Vec<Value> {
        let dir = self.project().join(".kiln/logs");
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            if entry.path().extension().is_some_and(|e| e == "jsonl") {
                let text = std::fs::read_to_string(entry.path()).unwrap();
                out.extend(
                    text.lines()
                        .map(|l| serde_json::from_str::<Value>(l).unwrap()),
                );
            }
        }
        out
    }
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `(sessionUpdate, toolCallId/status)` of each update, for order checks; text chunks
/// are merged.
fn shape(lines: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in lines {
        let kind = line["type"].as_str().unwrap();
        if kind != "session_update" {
            out.push(kind.to_owned());
            continue;
        }
        let u = &line["update"];
        let name = u["sessionUpdate"].as_str().unwrap();
        let entry = match name {
            "tool_call" => format!(
                "tool_call {} {}",
                u["toolCallId"].as_str().unwrap(),
                u["kind"].as_str().unwrap()
            ),
            "tool_call_update" => match u["status"].as_str() {
                Some(status) => format!("update {} {status}", u["toolCallId"].as_str().unwrap()),
                None if u["_meta"]["kiln"]["outputChunk"].is_string() => {
                    format!("output {}", u["toolCallId"].as_str().unwrap())
                }
                None => format!("content {}", u["toolCallId"].as_str().unwrap()),
            },
            other => other.to_owned(),
        };
        if out.last() != Some(&entry) {
            out.push(entry);
        }
    }
    out
}

/// The tool results kiln sent in a request, by call id.
const PROJECT: &str = r#"//- /src/lib.rs
pub fn total(items: &[u32]) -> u32 {
    items.iter().sum()
}
//- /src/report.rs
use crate::total;

pub fn report(items: &[u32]) -> String {
    format!("total = {}", total(items))
}
//- /README.md
A tiny crate.
"#;

#[test]
fn a_task_reads_greps_edits_two_files_and_runs_a_command() {
    let s = Setup::new(
        PROJECT,
        vec![
            script::tools(&[
                call("c1", "read", json!({ "path": "src/lib.rs" })),
                call("c2", "grep", json!({ "pattern": "total\\(" })),
            ]),
            script::tools(&[
                call(
                    "c3",
                    "edit",
                    json!({ "path": "src/lib.rs", "old_string": "pub fn total(", "new_string": "pub fn sum_all(" }),
                ),
                call(
                    "c4",
                    "edit",
                    json!({ "path": "src/report.rs", "old_string": "use crate::total;", "new_string": "use crate::sum_all;", "replace_all": false }),
                ),
            ]),
            script::tools(&[call(
                "c5",
                "bash",
                json!({ "command": "grep -c sum_all src/lib.rs src/report.rs; sed -i 's/total(items)/sum_all(items)/' src/report.rs", "description": "check the rename" }),
            )]),
            script::text("Renamed `total` to `sum_all` in both files."),
        ],
    );
    let out = s.run(&[
        "run",
        "--auto",
        "--format",
        "json",
        "rename total to sum_all",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(
        shape(&lines),
        [
            "session",
            "usage_update",
            "tool_call c1 read",
            "update c1 in_progress",
            "update c1 completed",
            "tool_call c2 search",
            "update c2 in_progress",
            "update c2 completed",
            "usage_update",
            "tool_call c3 edit",
            "update c3 in_progress",
            "update c3 completed",
            "tool_call c4 edit",
            "update c4 in_progress",
            "update c4 completed",
            "usage_update",
            "tool_call c5 execute",
            "update c5 in_progress",
            "output c5",
            "update c5 completed",
            "agent_message_chunk",
            "usage_update",
            "result",
        ]
    );
    let result = lines.last().unwrap();
    assert_eq!(result["stopReason"], "end_turn");
    assert_eq!(result["usage"]["requests"], 4);
    assert_eq!(result["usage"]["toolCalls"], 5);

    insta::assert_snapshot!("agent-run-files", workspace::read(&s.project()));

    // What went back to the model: the file's numbered lines, the grep hits, the command.
    let requests = s.requests();
    assert_eq!(requests.len(), 4);
    let result_of = |request: &Value, id: &str| {
        tool_results(request)
            .into_iter()
            .find(|(call, _)| call == id)
            .unwrap_or_else(|| panic!("no result for {id}"))
            .1
    };
    let second = [result_of(&requests[1], "c1"), result_of(&requests[1], "c2")];
    assert!(
        second[0].contains("   1│pub fn total(items: &[u32]) -> u32 {"),
        "{}",
        second[0]
    );
    assert!(
        second[1].contains("src/report.rs") && second[1].contains("src/lib.rs"),
        "{}",
        second[1]
    );
    let third = result_of(&requests[2], "c3");
    assert!(third.contains("src/lib.rs: +1 −1"), "{third}");
    let fourth = result_of(&requests[3], "c5");
    assert!(
        fourth.contains("src/lib.rs:1") && fourth.contains("src/report.rs:1"),
        "{fourth}"
    );
    assert_eq!(requests[0]["tools"].as_array().unwrap().len(), 9);
    assert!(
        requests[0]["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("code mode")
    );

    // The audit log has every step, in order.
    let events: Vec<String> = s
        .audit()
        .iter()
        .map(|e| match e["event"].as_str().unwrap() {
            "tool_call" => format!("tool_call {}", e["tool"].as_str().unwrap()),
            "permission" => format!(
                "permission {} {}",
                e["decision"].as_str().unwrap(),
                e["by"].as_str().unwrap()
            ),
            "file_change" => format!(
                "file_change {} +{} -{}",
                e["path"].as_str().unwrap(),
                e["added"],
                e["removed"]
            ),
            "command" => format!("command exit {}", e["exit_code"]),
            other => other.to_owned(),
        })
        .collect();
    assert_eq!(
        events,
        [
            "prompt",
            "tool_call read",
            "permission allow auto",
            "tool_call grep",
            "permission allow auto",
            "tool_call edit",
            "permission allow auto",
            "checkpoint",
            "file_change src/lib.rs +1 -1",
            "checkpoint",
            "tool_call edit",
            "permission allow auto",
            "file_change src/report.rs +1 -1",
            "checkpoint",
            "tool_call bash",
            "permission allow auto",
            "command exit 0",
            "turn_end",
        ]
    );

    let stats = s.run(&["stats", "--format", "json"]);
    let stats: Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(
        stats["toolCalls"],
        json!({ "bash": 1, "edit": 2, "grep": 1, "read": 1 })
    );
    assert_eq!(stats["fileChanges"]["count"], 2);
    assert_eq!(stats["turns"], json!({ "end_turn": 1 }));
}

#[test]
fn without_a_terminal_or_auto_an_edit_is_denied_and_nothing_changes() {
    let s = Setup::new(
        PROJECT,
        vec![script::tools(&[call(
            "c1",
            "edit",
            json!({ "path": "src/lib.rs", "old_string": "total", "new_string": "sum" }),
        )])],
    );
    let before = workspace::read(&s.project());
    let out = s.run(&["run", "fix it"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("rerun with --auto"), "{err}");
    assert_eq!(workspace::read(&s.project()), before);
    assert_eq!(s.requests().len(), 1, "the turn stops at the denial");
}

#[test]
fn invalid_tool_json_is_told_to_the_model_which_recovers() {
    let s = Setup::new(
        "//- /notes.txt\nalpha\nbeta\n",
        vec![
            script::tools(&[raw_call(
                "bad",
                "edit",
                r#"{"path": "notes.txt", "old_string": "beta", "new_string": "gam"#,
            )]),
            script::tools(&[call(
                "good",
                "edit",
                json!({ "path": "notes.txt", "old_string": "beta", "new_string": "gamma" }),
            )]),
            script::text("Fixed."),
        ],
    );
    let out = s.run(&["run", "--auto", "--format", "json", "rename beta"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(s.project().join("notes.txt")).unwrap(),
        "alpha\ngamma\n"
    );
    let shapes = shape(&json_lines(&out));
    assert!(
        shapes.contains(&"update bad failed".to_owned()),
        "{shapes:?}"
    );
    let requests = s.requests();
    let results = tool_results(&requests[1]);
    assert_eq!(results[0].0, "bad");
    assert!(results[0].1.contains("not valid JSON"), "{}", results[0].1);
}

#[test]
fn architect_mode_may_edit_markdown_but_not_code() {
    let s = Setup::new(
        PROJECT,
        vec![
            script::tools(&[call(
                "c1",
                "edit",
                json!({ "path": "src/lib.rs", "old_string": "total", "new_string": "sum" }),
            )]),
            script::tools(&[call(
                "c2",
                "write",
                json!({ "path": "docs/plan.md", "content": "# Plan\n\nRename total.\n" }),
            )]),
            script::text("Wrote the plan."),
        ],
    );
    let before_lib = std::fs::read_to_string(s.project().join("src/lib.rs")).unwrap();
    let out = s.run(&[
        "run",
        "--auto",
        "--mode",
        "architect",
        "--format",
        "json",
        "plan the rename",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(s.project().join("src/lib.rs")).unwrap(),
        before_lib
    );
    assert_eq!(
        std::fs::read_to_string(s.project().join("docs/plan.md")).unwrap(),
        "# Plan\n\nRename total.\n"
    );
    let requests = s.requests();
    let denied = &tool_results(&requests[1])[0].1;
    assert!(
        denied.contains("architect mode may only edit files matching"),
        "{denied}"
    );
    let tools: Vec<&str> = requests[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert!(
        !tools.contains(&"bash"),
        "architect has no command tools: {tools:?}"
    );
}

#[test]
fn compaction_summarises_older_messages_when_the_window_fills() {
    let big: String = (0..400)
        .map(|i| format!("line {i} of a long file with words in it\n"))
        .collect();
    let s = Setup::new(
        &format!(
            "//- /big.txt\n{big}//- /kiln.jsonc\n{{ \"compaction\": {{ \"threshold_percent\": 50 }}, \"provider\": {{ \"custom\": {{ \"models\": {{ \"scripted-coder\": {{ \"limit\": {{ \"context\": 8000, \"output\": 1000 }} }} }} }} }} }}\n"
        ),
        vec![
            script::tools_no_usage(&[call("c1", "read", json!({ "path": "big.txt" }))]),
            script::tools_no_usage(&[call("c2", "list", json!({}))]),
            script::text_no_usage("SUMMARY: the person asked to study big.txt; it was read."),
            script::text_no_usage("Done."),
        ],
    );
    let out = s.run(&["run", "--auto", "--format", "json", "study big.txt"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = json_lines(&out);
    let notices: Vec<&str> = lines
        .iter()
        .filter(|l| l["update"]["sessionUpdate"] == "_kiln_notice")
        .map(|l| l["update"]["message"].as_str().unwrap())
        .collect();
    assert!(
        notices
            .iter()
            .any(|n| n.starts_with("compacting the conversation")),
        "{notices:?}"
    );
    let requests = s.requests();
    assert_eq!(requests.len(), 4);
    let summary_request = requests[2]["messages"].to_string();
    assert!(
        summary_request.contains("line 399 of a long file"),
        "the summariser sees the old messages"
    );
    let after = &requests[3];
    let text = after["messages"].to_string();
    assert!(
        text.contains("[Summary of the earlier conversation]")
            && text.contains("SUMMARY: the person asked"),
        "{text}"
    );
    assert!(
        !text.contains("line 399 of a long file"),
        "the big read was replaced by the summary"
    );
    // The kept part is valid: the last call still has its result.
    assert_eq!(
        tool_results(after)
            .iter()
            .map(|r| r.0.as_str())
            .collect::<Vec<_>>(),
        ["c2"]
    );
}

/// Reads the child's stdout until a line satisfies `pred` (bounded by a deadline).
fn wait_for_line(child: &mut Child, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("timed out; saw {seen:?}"));
        let value: Value = serde_json::from_str(&line).unwrap();
        let done = pred(&value);
        seen.push(value);
        if done {
            // Keep draining in the background so the child never blocks on a full pipe.
            std::thread::spawn(move || while rx.recv().is_ok() {});
            return seen;
        }
    }
}

/// Starts `kiln run --auto --format json PROMPT` and waits until the scripted command has
/// printed `started` and written its shell's pid to pid.txt; returns the child and that pid.
fn run_until_command_started(s: &Setup, prompt: &str) -> (Child, i32) {
    let mut child = s
        .command(&["run", "--auto", "--format", "json", prompt])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_line(&mut child, |v| {
        v["update"]["_meta"]["kiln"]["outputChunk"]
            .as_str()
            .is_some_and(|c| c.contains("started"))
    });
    let pid = wait_file(&s.project().join("pid.txt"))
        .trim()
        .parse()
        .unwrap();
    (child, pid)
}

fn pid_alive(pid: i32) -> bool {
    unsafe { libc::kill(pid, 0) == 0 }
}

fn wait_gone(pid: i32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if !pid_alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn wait_file(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ctrl_c_mid_command_kills_it_and_the_session_goes_on() {
    let s = Setup::new(
        "//- /a.txt\na\n",
        vec![
            script::tools(&[call(
                "c1",
                "bash",
                json!({ "command": "echo $$ > pid.txt; echo started; sleep 30; echo never > after.txt" }),
            )]),
            script::text("Picking up where we left off."),
        ],
    );
    let (mut child, pid) = run_until_command_started(&s, "run the slow thing");
    let started = Instant::now();
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "cancel took {:?}",
        started.elapsed()
    );
    assert!(
        wait_gone(pid),
        "the command's shell {pid} outlived the cancel"
    );
    assert!(!s.project().join("after.txt").exists());

    let out = s.run(&["run", "--continue", "--auto", "--format", "json", "go on"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines[0]["resumed"], true);
    let last = s.requests().pop().unwrap();
    let results = tool_results(&last);
    assert_eq!(results.len(), 1);
    assert!(
        results[0].1.contains("cancelled by the person"),
        "{results:?}"
    );
    let users: Vec<String> = last["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "user")
        .map(|m| m["content"].to_string())
        .collect();
    assert!(
        users[0].contains("run the slow thing") && users[1].contains("go on"),
        "{users:?}"
    );
}

#[test]
fn kill_9_mid_turn_then_continue_loads_the_session_intact() {
    let s = Setup::new(
        "//- /a.txt\na\n",
        vec![
            script::tools(&[call("r1", "read", json!({ "path": "a.txt" }))]),
            script::tools(&[call(
                "c1",
                "bash",
                json!({ "command": "echo $$ > pid.txt; echo started; sleep 30" }),
            )]),
            script::text("Resumed."),
        ],
    );
    let (mut child, pid) = run_until_command_started(&s, "first task");
    child.kill().unwrap();
    child.wait().unwrap();
    unsafe { libc::killpg(pid, libc::SIGKILL) };

    let out = s.run(&[
        "run",
        "--continue",
        "--auto",
        "--format",
        "json",
        "second task",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let last = s.requests().pop().unwrap();
    let results = tool_results(&last);
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(
        results[0].1.contains("│a"),
        "the completed read survived: {results:?}"
    );
    assert!(results[1].1.contains("cut off"), "{results:?}");
    // The repaired result was written to the session file, so replays agree.
    let data = s.dir.path().join("data/sessions");
    let folder = std::fs::read_dir(&data)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let file = std::fs::read_dir(&folder)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(file).unwrap();
    assert_eq!(
        text.matches("this tool call was cut off").count(),
        1,
        "{text}"
    );

    let list = s.run(&["sessions", "list", "--format", "json"]);
    let list: Value = serde_json::from_slice(&list.stdout).unwrap();
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["title"], "first task");
    let id = sessions[0]["id"].as_str().unwrap();
    let shown = s.run(&["sessions", "show", &id[..12]]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains("## You\n\nfirst task") && text.contains("Resumed."),
        "{text}"
    );
    let deleted = s.run(&["sessions", "delete", id]);
    assert_eq!(deleted.status.code(), Some(0));
    let list = s.run(&["sessions", "list", "--format", "json"]);
    assert_eq!(
        serde_json::from_slice::<Value>(&list.stdout).unwrap()["sessions"],
        json!([])
    );
}

#[test]
fn with_no_model_anywhere_kiln_says_how_to_get_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["run", "hello"])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("KILN_DATA_DIR", dir.path().join("data"))
        .env("KILN_CONFIG_CONTENT", r#"{ "provider": { "ollama": { "options": { "baseURL": "http://127.0.0.1:9/v1" } }, "lmstudio": { "options": { "baseURL": "http://127.0.0.1:9/v1" } } } }"#)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("kiln found no model")
            && err.contains("ANTHROPIC_API_KEY")
            && err.contains("ollama"),
        "{err}"
    );
}

#[test]
fn a_provider_failure_mid_answer_keeps_the_partial_text_and_exits_1() {
    let s = Setup::new(
        "//- /a.txt\na\n",
        vec![
            Reply::sse_bytes(script::body("I will start by", &[], None).as_bytes(), 40)
                .truncated(8)
                .ending(End::Cut),
        ],
    );
    let out = s.run(&["run", "--format", "json", "do it"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let lines = json_lines(&out);
    let result = lines.last().unwrap();
    assert!(
        result["error"]
            .as_str()
            .unwrap()
            .contains("partial answer is kept"),
        "{result}"
    );
}

#[test]
fn instructions_and_mentions_reach_the_model() {
    let s = Setup::new(
        r#"//- /AGENTS.md
Always run the tests before saying you are done.
//- /.kiln/rules/style.md
Prefer short names.
//- /sub/AGENTS.md
Files in sub/ are generated: do not edit them.
//- /sub/x.txt
generated
//- /src/lib.rs
pub fn one() -> u32 { 1 }
//- /docs/guide.md
# Guide
//- /.env
TOKEN=old
"#,
        vec![
            script::tools(&[call("c1", "read", json!({ "path": "sub/x.txt" }))]),
            script::text("Read it."),
        ],
    );
    let git = |args: &[&str]| {
        let ok = Command::new("git")
            .args(args)
            .current_dir(s.project())
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .output()
            .unwrap();
        assert!(ok.status.success(), "git {args:?}: {ok:?}");
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "init", "--no-gpg-sign"]);
    std::fs::write(
        s.project().join("src/lib.rs"),
        "pub fn one() -> u32 { 2 }\n",
    )
    .unwrap();
    std::fs::write(s.project().join(".env"), "TOKEN=new-secret-value\n").unwrap();

    let out = s.run(&[
        "run",
        "--format",
        "json",
        "look at @src/lib.rs, @docs/ and @git-changes; also @nope.rs",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let requests = s.requests();
    let system = requests[0]["messages"][0]["content"].to_string();
    assert!(
        system.contains("Always run the tests") && system.contains("Prefer short names"),
        "{system}"
    );
    assert!(
        !system.contains("generated: do not edit"),
        "nested AGENTS.md waits until sub/ is touched"
    );
    let user = requests[0]["messages"][1]["content"].to_string();
    assert!(
        user.contains(r#"<file path=\"src/lib.rs\">"#) && user.contains("{ 2 }"),
        "{user}"
    );
    assert!(
        user.contains(r#"<folder path=\"docs\">"#) && user.contains("guide.md"),
        "{user}"
    );
    assert!(
        user.contains("<git-changes>") && user.contains("-pub fn one() -> u32 { 1 }"),
        "{user}"
    );
    assert!(user.contains("@nope.rs: no such file or folder"), "{user}");
    assert!(
        user.contains(" M .env") && !user.contains("new-secret-value"),
        "{user}"
    );
    let notices: Vec<String> = json_lines(&out)
        .iter()
        .filter(|l| l["update"]["sessionUpdate"] == "_kiln_notice")
        .map(|l| l["update"]["message"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        notices,
        ["mention not resolved: @nope.rs: no such file or folder"]
    );
    let read = tool_results(&requests[1]);
    assert!(
        read[0].1.contains("Files in sub/ are generated"),
        "{read:?}"
    );

    let doctor = s.run(&["doctor", "--format", "json"]);
    let doctor: Value = serde_json::from_slice(&doctor.stdout).unwrap();
    assert_eq!(
        doctor["instructions"],
        json!(["AGENTS.md", ".kiln/rules/style.md"])
    );
    assert_eq!(
        doctor["modes"],
        json!(["code", "architect", "ask", "debug"])
    );
}

#[test]
fn on_a_terminal_kiln_asks_and_the_answer_decides() {
    let s = Setup::new(
        "//- /a.txt\nold\n",
        vec![
            script::tools(&[call(
                "c1",
                "edit",
                json!({ "path": "a.txt", "old_string": "old", "new_string": "new" }),
            )]),
            script::tools(&[call(
                "c2",
                "bash",
                json!({ "command": "echo should-not-run > ran.txt" }),
            )]),
            script::text("Edited; you did not want the command."),
        ],
    );
    let (status, output, asked) = on_terminal(
        &s,
        &["run", "fix a.txt"],
        &["y\n", "n do not run commands\n"],
    );
    assert_eq!(status.code(), Some(0), "{output}");
    assert_eq!(asked, 2, "{output}");
    let plain = strip_ansi(&output);
    assert!(
        plain.contains("-old") && plain.contains("+new"),
        "the diff is shown before asking: {output}"
    );
    assert_eq!(
        std::fs::read_to_string(s.project().join("a.txt")).unwrap(),
        "new\n"
    );
    assert!(!s.project().join("ran.txt").exists());
    let last = s.requests().pop().unwrap();
    let results = tool_results(&last);
    assert!(
        results[1]
            .1
            .contains("the person rejected this call and said: do not run commands"),
        "{results:?}"
    );
}

/// Runs kiln under a pseudo-terminal and answers each question (`? allow …`, `? hunk …`)
/// with the next answer; returns the exit status, everything shown, and how many
/// questions were asked.
fn on_terminal(
    s: &Setup,
    args: &[&str],
    answers: &[&str],
) -> (std::process::ExitStatus, String, usize) {
    use std::io::Write as _;
    let mut child = s
        .command(&[])
        .spawn_script(env!("CARGO_BIN_EXE_kiln"), args);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = std::io::Read::read(&mut stdout, &mut buf) {
            if n == 0
                || tx
                    .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                    .is_err()
            {
                return;
            }
        }
    });
    let mut answers = answers.iter();
    let mut output = String::new();
    let mut asked = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Ok(piece) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        output.push_str(&piece);
        let questions = output.matches("? allow").count() + output.matches("? hunk").count();
        while questions > asked {
            asked += 1;
            if let Some(answer) = answers.next() {
                stdin.write_all(answer.as_bytes()).unwrap();
                stdin.flush().unwrap();
            }
        }
    }
    let status = child.wait().unwrap();
    drop(stdin);
    (status, output, asked)
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

trait SpawnScript {
    /// Runs `program args` under `script`, so that it gets a pseudo-terminal.
    fn spawn_script(&mut self, program: &str, args: &[&str]) -> Child;
}

impl SpawnScript for Command {
    fn spawn_script(&mut self, program: &str, args: &[&str]) -> Child {
        let quoted: Vec<String> = std::iter::once(program)
            .chain(args.iter().copied())
            .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
            .collect();
        let mut cmd = Command::new("script");
        cmd.args(["-qfec", &quoted.join(" "), "/dev/null"]);
        cmd.env_clear();
        for (k, v) in self.get_envs() {
            if let Some(v) = v {
                cmd.env(k, v);
            }
        }
        cmd.current_dir(self.get_current_dir().unwrap())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

#[test]
fn a_mode_switch_on_continue_applies_to_the_next_turn() {
    let s = Setup::new(
        PROJECT,
        vec![
            script::text("Hello."),
            script::tools(&[call("c1", "bash", json!({ "command": "touch ran.txt" }))]),
            script::text("I cannot run commands in ask mode."),
        ],
    );
    assert_eq!(s.run(&["run", "--auto", "hi"]).status.code(), Some(0));
    let out = s.run(&[
        "run",
        "--auto",
        "--continue",
        "--mode",
        "ask",
        "--format",
        "json",
        "run touch",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json_lines(&out)[0]["mode"], "ask");
    assert!(!s.project().join("ran.txt").exists());
    let requests = s.requests();
    let denied = &tool_results(&requests[2])[0].1;
    assert!(
        denied.contains("the ask mode does not allow command tools"),
        "{denied}"
    );
    let list = s.run(&["sessions", "list", "--format", "json"]);
    let list: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(list["sessions"][0]["mode"], "ask");
    assert_eq!(list["sessions"][0]["turns"], 2);
}

/// protocol/tools.md is the registry's own rendering; `KILN_UPDATE_DOCS=1` rewrites it.
#[test]
fn docs_tool_reference_matches_the_registry() {
    crate::support::assert_generated(
        "protocol/tools.md",
        &kiln::tools::Registry::builtin().markdown(),
    );
}

#[test]
fn attachments_go_with_the_prompt_and_images_need_a_model_that_takes_them() {
    let s = Setup::new(
        "//- /notes.txt\nbuy milk\n//- /shot.png\nnot really a png\n",
        vec![script::text("Noted.")],
    );
    let out = s.run(&["run", "-f", "notes.txt", "--format", "json", "summarise"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let user = s.requests()[0]["messages"][1]["content"].to_string();
    assert!(
        user.contains(r#"<file path=\"notes.txt\">\nbuy milk\n</file>"#),
        "{user}"
    );
    let out = s.run(&["run", "-f", "shot.png", "what is this?"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("does not accept images"),
        "{}",
        stderr(&out)
    );
    let out = s.run(&["run", "-f", "missing.txt", "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("-f missing.txt"), "{}", stderr(&out));
}

#[test]
fn kiln_tool_runs_one_tool_and_never_applies_changes() {
    let s = Setup::new("//- /a.txt\nold\n", vec![]);
    let out = s.run(&["tool", "grep", r#"{"pattern": "ol."}"#]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("a.txt:1:old"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = s.run(&[
        "tool",
        "edit",
        r#"{"path": "a.txt", "old_string": "old", "new_string": "new"}"#,
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("-old\n+new") && text.contains("not applied"),
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(s.project().join("a.txt")).unwrap(),
        "old\n"
    );
    let out = s.run(&["tool", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("the tools are read, list"),
        "{}",
        stderr(&out)
    );
    let list = s.run(&["tool", "--list", "--format", "json"]);
    let list: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(list["tools"].as_array().unwrap().len(), 9);
}

#[test]
fn commands_never_see_the_provider_keys_and_searches_skip_secret_files() {
    let s = Setup::new(
        "//- /.env\nSTRIPE_SECRET=sk_live_hidden\n//- /config.rs\nlet secret = load(\"STRIPE_SECRET\");\n",
        vec![
            script::tools(&[
                call("c1", "bash", json!({ "command": "env | sort" })),
                call("c2", "grep", json!({ "pattern": "STRIPE_SECRET" })),
            ]),
            script::text("Done."),
        ],
    );
    let out = s
        .command(&["run", "--auto", "--format", "json", "look around"])
        .env("OPENAI_API_KEY", "sk-openai-also-hidden")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let all = String::from_utf8_lossy(&out.stdout);
    assert!(
        !all.contains(KEY) && !all.contains("sk-openai-also-hidden"),
        "a key reached the output"
    );
    let request = s.requests().pop().unwrap();
    let results = tool_results(&request);
    assert!(
        results[0].1.contains("PATH="),
        "the command ran: {}",
        results[0].1
    );
    assert!(
        !results[0].1.contains(KEY) && !results[0].1.contains("OPENAI_API_KEY"),
        "{}",
        results[0].1
    );
    assert!(results[1].1.contains("config.rs:1"), "{}", results[1].1);
    assert!(
        !results[1].1.contains("sk_live_hidden"),
        "grep showed .env: {}",
        results[1].1
    );
}

#[test]
fn stdin_is_the_prompt_or_with_f_dash_an_attachment() {
    use std::io::Write as _;
    let s = Setup::new(
        "//- /a.txt\na\n",
        vec![script::text("One."), script::text("Two.")],
    );
    let run_with_stdin = |args: &[&str], input: &str| {
        let mut child = s
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run_with_stdin(&["run"], "what is in a.txt?\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run_with_stdin(&["run", "-f", "-", "review this"], "-old\n+new\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let requests = s.requests();
    assert!(
        requests[0]["messages"][1]["content"]
            .to_string()
            .contains("what is in a.txt?")
    );
    let second = requests[1]["messages"][1]["content"].to_string();
    assert!(
        second.contains("review this") && second.contains(r#"<stdin>\n-old\n+new\n</stdin>"#),
        "{second}"
    );
}

#[test]
fn permission_rules_in_kiln_jsonc_allow_and_deny_commands_without_a_terminal() {
    let s = Setup::new(
        r#"//- /kiln.jsonc
{
  // CI: tests may run, nothing may be deleted, edits are fine
  "permission": { "edit": "allow", "bash": { "echo *": "allow", "rm *": "deny" } }
}
//- /a.txt
old
"#,
        vec![
            script::tools(&[
                call("c1", "bash", json!({ "command": "echo hi && echo there" })),
                call(
                    "c2",
                    "edit",
                    json!({ "path": "a.txt", "old_string": "old", "new_string": "new" }),
                ),
                call("c3", "bash", json!({ "command": "echo bye; rm a.txt" })),
            ]),
            script::text("Done."),
        ],
    );
    let out = s.run(&["run", "--format", "json", "go"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        std::fs::read_to_string(s.project().join("a.txt")).unwrap(),
        "new\n"
    );
    let results = tool_results(&s.requests()[1]);
    assert!(results[0].1.contains("hi\nthere"), "{results:?}");
    assert!(
        results[2]
            .1
            .contains("permission denied: `rm a.txt` matches the deny rule \"rm *\""),
        "{results:?}"
    );
    let doctor = s.run(&["doctor", "--format", "json"]);
    let doctor: Value = serde_json::from_slice(&doctor.stdout).unwrap();
    assert_eq!(doctor["agentProblems"], json!([]));
}

#[test]
fn kiln_run_checkpoints_its_changes_and_undo_keeps_the_persons_edits() {
    let s = Setup::new(
        "//- /f.txt\nalpha\nbeta\ngamma\ndelta\nepsilon\nzeta\neta\ntheta\n",
        vec![
            script::tools(&[call(
                "c1",
                "edit",
                json!({ "path": "f.txt", "old_string": "alpha", "new_string": "ALPHA" }),
            )]),
            script::tools(&[call(
                "c2",
                "write",
                json!({ "path": "new.txt", "content": "made by the agent\n" }),
            )]),
            script::text("Done."),
        ],
    );
    let out = s.run(&["run", "--auto", "edit things"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let list = s.run(&["checkpoints", "list", "--format", "json"]);
    let list: Value = serde_json::from_slice(&list.stdout).unwrap();
    let kinds: Vec<&str> = list["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["after-change", "after-change", "before-turn"]);
    let before = list["checkpoints"][2]["id"].as_str().unwrap().to_owned();
    // The person edits the same file further down.
    let f = std::fs::read_to_string(s.project().join("f.txt")).unwrap();
    std::fs::write(
        s.project().join("f.txt"),
        f.replace("theta", "theta (mine)"),
    )
    .unwrap();
    let diff = s.run(&["checkpoints", "diff", &before[..10]]);
    let diff = String::from_utf8_lossy(&diff.stdout);
    assert!(
        diff.contains("-alpha") && diff.contains("+ALPHA") && diff.contains("+made by the agent"),
        "{diff}"
    );
    let undo = s.run(&["checkpoints", "undo", &before[..10]]);
    assert_eq!(
        undo.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&undo.stdout)
    );
    assert_eq!(
        std::fs::read_to_string(s.project().join("f.txt")).unwrap(),
        "alpha\nbeta\ngamma\ndelta\nepsilon\nzeta\neta\ntheta (mine)\n"
    );
    assert!(!s.project().join("new.txt").exists());
    let events: Vec<String> = s
        .audit()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(events.iter().filter(|e| *e == "checkpoint").count(), 3);
}

const LOOP_TEST: &str = "grep -q fixed status.txt";

#[test]
fn kiln_loop_keeps_changes_that_pass_the_test() {
    let s = Setup::new(
        "//- /status.txt\nbroken\n",
        vec![
            script::tools(&[call(
                "c1",
                "edit",
                json!({ "path": "status.txt", "old_string": "broken", "new_string": "fixed" }),
            )]),
            script::text("Fixed."),
        ],
    );
    let out = s.run(&["loop", "--auto", "--test", LOOP_TEST, "fix status.txt"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("test 1: `grep -q fixed status.txt` passed"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(s.project().join("status.txt")).unwrap(),
        "fixed\n"
    );
}

#[test]
fn kiln_loop_rolls_everything_back_when_the_test_fails() {
    let s = Setup::new(
        "//- /status.txt\nbroken\n",
        vec![
            script::tools(&[
                call(
                    "c1",
                    "edit",
                    json!({ "path": "status.txt", "old_string": "broken", "new_string": "still broken" }),
                ),
                call(
                    "c2",
                    "write",
                    json!({ "path": "notes/new.txt", "content": "created\n" }),
                ),
            ]),
            script::text("Tried."),
        ],
    );
    let before = workspace::read(&s.project());
    let out = s.run(&[
        "loop",
        "--auto",
        "--format",
        "json",
        "--test",
        "echo checking; grep -q fixed status.txt",
        "fix status.txt",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let lines = json_lines(&out);
    let test = lines.iter().find(|l| l["type"] == "test").unwrap();
    assert_eq!(test["exitCode"], 1);
    assert!(test["output"].as_str().unwrap().contains("checking"));
    let rollback = lines.iter().find(|l| l["type"] == "rollback").unwrap();
    assert_eq!(
        lines.last().unwrap()["exitCode"],
        1,
        "the result line agrees with the exit status"
    );
    assert_eq!(rollback["removed"], json!(["notes/new.txt"]));
    assert_eq!(
        workspace::read(&s.project()),
        before,
        "the workspace is as it was"
    );
    let events = s.audit_events("loop_test");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["passed"], false);
}

#[test]
fn kiln_loop_feeds_a_failure_back_and_passes_on_a_retry() {
    let s = Setup::new(
        "//- /status.txt\nbroken\n",
        vec![
            script::tools(&[call(
                "c1",
                "edit",
                json!({ "path": "status.txt", "old_string": "broken", "new_string": "half fixed" }),
            )]),
            script::text("Tried."),
            script::tools(&[call(
                "c2",
                "edit",
                json!({ "path": "status.txt", "old_string": "half fixed", "new_string": "fixed" }),
            )]),
            script::text("Now really fixed."),
        ],
    );
    let out = s.run(&[
        "loop",
        "--auto",
        "--retries",
        "1",
        "--test",
        "echo needs-fixed >&2; grep -q '^fixed' status.txt",
        "fix status.txt",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(s.project().join("status.txt")).unwrap(),
        "fixed\n"
    );
    let requests = s.requests();
    assert_eq!(requests.len(), 4);
    let retry_prompt = requests[2]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .unwrap()["content"]
        .to_string();
    assert!(
        retry_prompt.contains("failed (exit status 1)") && retry_prompt.contains("needs-fixed"),
        "{retry_prompt}"
    );
}

#[test]
fn on_a_terminal_hunks_can_be_kept_or_dropped_one_by_one() {
    let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
    let new = text
        .replace("line 2\n", "line two\n")
        .replace("line 25\n", "line 25 changed\n");
    let s = Setup::new(
        &format!("//- /f.txt\n{text}"),
        vec![
            script::tools(&[call(
                "c1",
                "write",
                json!({ "path": "f.txt", "content": new }),
            )]),
            script::text("Kept what you wanted."),
        ],
    );
    let (status, output, asked) = on_terminal(
        &s,
        &["run", "rewrite f.txt"],
        &["h\n", "n not this one\n", "y\n"],
    );
    assert_eq!(status.code(), Some(0), "{output}");
    assert_eq!(asked, 3, "{output}");
    assert!(
        strip_ansi(&output).contains("hunk 1 of 2 in f.txt"),
        "{output}"
    );
    assert_eq!(
        std::fs::read_to_string(s.project().join("f.txt")).unwrap(),
        text.replace("line 25\n", "line 25 changed\n")
    );
    let told = tool_results(&s.requests()[1]).remove(0).1;
    assert!(
        told.contains("not applied: f.txt: hunk 1 (old line 2, −1 +1)")
            && told.contains("hunk 1: not this one"),
        "{told}"
    );
}

#[test]
fn the_verification_gate_limits_the_blast_radius_and_reports_failing_checks() {
    let s = Setup::new(
        r#"//- /kiln.jsonc
{ "verify": { "max_changed_lines": 3, "check": { "*.txt": "! grep -n BAD *.txt" } } }
//- /a.txt
fine
"#,
        vec![
            script::tools(&[call(
                "c1",
                "write",
                json!({ "path": "big.txt", "content": "1\n2\n3\n4\n5\n6\n" }),
            )]),
            script::tools(&[call(
                "c2",
                "edit",
                json!({ "path": "a.txt", "old_string": "fine", "new_string": "BAD" }),
            )]),
            script::text("Oops."),
        ],
    );
    let out = s.run(&["run", "--auto", "--format", "json", "go"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!s.project().join("big.txt").exists());
    let requests = s.requests();
    let refused = &tool_results(&requests[1])[0].1;
    assert!(
        refused.contains("over the limit of 3 (verify.max_changed_lines in kiln.jsonc)"),
        "{refused}"
    );
    let checked = &tool_results(&requests[2])[1].1;
    assert!(
        checked.contains("The check `! grep -n BAD *.txt` failed") && checked.contains("1:BAD"),
        "{checked}"
    );
    assert!(checked.contains("kiln checkpoints restore"), "{checked}");
    let checks = s.audit_events("check");
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0]["passed"], false);
}

#[test]
fn always_for_a_command_remembers_its_subcommand_and_can_be_saved() {
    let s = Setup::new(
        "//- /kiln.jsonc\n{\n  // mine\n  \"compaction\": { \"threshold_percent\": 90 }\n}\n",
        vec![
            script::tools(&[call(
                "c1",
                "bash",
                json!({ "command": "git init -q && git status --short" }),
            )]),
            script::tools(&[call("c2", "bash", json!({ "command": "git status" }))]),
            script::tools(&[call("c3", "bash", json!({ "command": "git log" }))]),
            script::text("Done."),
        ],
    );
    let (status, output, asked) = on_terminal(&s, &["run", "look at git"], &["A\n", "n\n"]);
    assert_eq!(status.code(), Some(2), "{output}");
    assert_eq!(
        asked, 2,
        "git status ran without asking, git log asked: {output}"
    );
    let config = std::fs::read_to_string(s.project().join("kiln.jsonc")).unwrap();
    assert!(
        config.contains("// mine")
            && config.contains("\"git init*\": \"allow\"")
            && config.contains("\"git status*\": \"allow\""),
        "{config}"
    );
}
