//! The agent as a library, the way the editor frontends use it: an in-process `Port` that
//! records updates and answers permission questions, sessions driven through their
//! handles against scripted providers (OpenAI-compatible and Anthropic).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use kiln::agent::mentions::{Problem, Selection};
use kiln::agent::{
    Agent, NewSession, Outcome, PermissionRequest, Policy, Port, Prompt, PromptContext, Session,
    SessionHandle, StopReason, Update,
};
use kiln::config::{self, ModelRef};
use kiln::llm::{Client, RetryPolicy, Target};
use kiln::tools::{DiskFiles, Files};
use serde_json::{Value, json};

use crate::support::MapEnv;
use crate::support::llm_server::{Piece, Reply, ScriptedServer};
use crate::support::script::{self, call};
use crate::support::workspace;

/// Records every update with its session and time; answers permission requests with
/// `answer` and records what was asked.
struct RecordingPort {
    updates: Mutex<Vec<(String, Update, Instant)>>,
    asked: Mutex<Vec<PermissionRequest>>,
    answer: Box<dyn Fn(&PermissionRequest) -> Outcome + Send + Sync>,
}

impl RecordingPort {
    fn new(answer: Outcome) -> Arc<RecordingPort> {
        RecordingPort::answering(move |_| answer.clone())
    }

    /// Answers each request with what `answer` says (which may also act, like a person
    /// editing the file while being asked).
    fn answering(
        answer: impl Fn(&PermissionRequest) -> Outcome + Send + Sync + 'static,
    ) -> Arc<RecordingPort> {
        Arc::new(RecordingPort {
            updates: Mutex::new(Vec::new()),
            asked: Mutex::new(Vec::new()),
            answer: Box::new(answer),
        })
    }
}

impl Port for RecordingPort {
    fn update(&self, session_id: &str, update: Update) {
        self.updates
            .lock()
            .unwrap()
            .push((session_id.to_owned(), update, Instant::now()));
    }
    fn request_permission(&self, request: PermissionRequest) -> BoxFuture<'static, Outcome> {
        let answer = (self.answer)(&request);
        self.asked.lock().unwrap().push(request);
        Box::pin(async move { answer })
    }
    fn files(&self, _session_id: &str) -> Arc<dyn Files> {
        Arc::new(DiskFiles)
    }
}

/// An agent whose providers are `(name, api, server)`; models are `name/m`.
fn agent(
    providers: &[(&str, &str, &ScriptedServer)],
    port: Arc<RecordingPort>,
    data: &Path,
) -> Arc<Agent> {
    let mut section = serde_json::Map::new();
    for (name, api, server) in providers {
        section.insert(
            (*name).to_owned(),
            json!({ "type": api, "options": { "baseURL": server.base_url(), "apiKey": "test-key", "max_retries": 0 }, "models": { "m": { "limit": { "context": 100000, "output": 4096 } } } }),
        );
    }
    let content = json!({ "provider": section }).to_string();
    let env = MapEnv::new(&[("KILN_CONFIG_CONTENT", &content)]);
    let loaded = config::load(&config::LoadOptions {
        project_dir: PathBuf::from("/nonexistent-project"),
        global_dir: None,
        env: &env,
    });
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let (mut agent, problems) = Agent::new(
        loaded.config,
        Client::new(RetryPolicy::default()).unwrap(),
        port,
    );
    assert!(problems.is_empty(), "{problems:?}");
    agent.max_turn_requests = 20;
    agent.sessions_dir = Some(data.join("sessions"));
    Arc::new(agent)
}

fn start(agent: &Arc<Agent>, root: &Path, model: &str, policy: Policy) -> SessionHandle {
    let target = Target::from_config(&agent.config, &ModelRef::parse(model).unwrap()).unwrap();
    let (session, problems) = Session::create(
        agent,
        NewSession {
            root: root.to_path_buf(),
            mode: "code".into(),
            target,
            policy,
        },
    )
    .unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    SessionHandle::spawn(agent.clone(), session)
}

fn slow_text(text: &str, pause: Duration) -> Reply {
    let body = script::body(text, &[], Some((10, 5)));
    let pieces = body
        .split_inclusive("\n\n")
        .map(|chunk| Piece {
            bytes: chunk.as_bytes().to_vec(),
            pause,
        })
        .collect();
    Reply::Stream {
        pieces,
        end: crate::support::llm_server::End::Complete,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_run_concurrently_and_a_slow_one_blocks_nobody() {
    let dir = tempfile::tempdir().unwrap();
    workspace::write(dir.path(), "//- /a.txt\nalpha\n");
    let slow = ScriptedServer::start(vec![slow_text(
        "one two three four five six seven eight",
        Duration::from_millis(150),
    )])
    .await;
    let fast = ScriptedServer::start(vec![
        script::tools(&[call("r1", "read", json!({ "path": "a.txt" }))]),
        script::text("It says alpha."),
    ])
    .await;
    let port = RecordingPort::new(Outcome::AllowOnce);
    let agent = agent(
        &[
            ("slow", "openai-compatible", &slow),
            ("fast", "openai-compatible", &fast),
        ],
        port.clone(),
        dir.path(),
    );
    let a = start(&agent, dir.path(), "slow/m", Policy::default());
    let b = start(&agent, dir.path(), "fast/m", Policy::default());
    let started = Instant::now();
    let (ra, rb) = tokio::join!(
        a.prompt(Prompt {
            text: "count slowly".into(),
            ..Prompt::default()
        }),
        async {
            let r = b
                .prompt(Prompt {
                    text: "what is in a.txt?".into(),
                    ..Prompt::default()
                })
                .await;
            (r, started.elapsed())
        }
    );
    let (rb, fast_done) = rb;
    assert_eq!(ra.stop, Ok(StopReason::EndTurn));
    assert_eq!(rb.stop, Ok(StopReason::EndTurn));
    assert!(
        started.elapsed() > Duration::from_millis(1000),
        "the slow stream really was slow"
    );
    assert!(
        fast_done < Duration::from_millis(600),
        "the fast session waited for the slow one: {fast_done:?}"
    );
    let updates = port.updates.lock().unwrap();
    let text_of = |id: &str| -> String {
        updates
            .iter()
            .filter(|(s, _, _)| s == id)
            .filter_map(|(_, u, _)| match u {
                Update::AgentMessage(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(text_of(&a.id), "one two three four five six seven eight");
    assert_eq!(text_of(&b.id), "It says alpha.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selection_and_problems_from_the_editor_reach_the_model() {
    let dir = tempfile::tempdir().unwrap();
    workspace::write(dir.path(), "//- /src/lib.rs\nfn f() -> u32 { \"x\" }\n");
    let server = ScriptedServer::start(vec![script::text("The function returns a string.")]).await;
    let port = RecordingPort::new(Outcome::AllowOnce);
    let agent = agent(
        &[("p", "openai-compatible", &server)],
        port.clone(),
        dir.path(),
    );
    let s = start(&agent, dir.path(), "p/m", Policy::default());
    let context = PromptContext {
        selection: Some(Selection {
            path: dir.path().join("src/lib.rs"),
            start_line: 1,
            end_line: 1,
            text: "fn f() -> u32 { \"x\" }".into(),
        }),
        problems: vec![Problem {
            path: dir.path().join("src/lib.rs"),
            line: 1,
            severity: "error".into(),
            message: "mismatched types: expected `u32`, found `&str`".into(),
        }],
        terminal: None,
    };
    let result = s
        .prompt(Prompt {
            text: "why does @selection fail? see @problems and @terminal".into(),
            context,
            ..Prompt::default()
        })
        .await;
    assert_eq!(result.stop, Ok(StopReason::EndTurn));
    let body = server.requests()[0].json();
    let user = body["messages"][1]["content"].to_string();
    assert!(
        user.contains(r#"<selection path=\"src/lib.rs\" lines=\"1-1\">"#),
        "{user}"
    );
    assert!(
        user.contains("src/lib.rs:1: error: mismatched types"),
        "{user}"
    );
    assert!(
        user.contains("@terminal: the client sent no terminal output"),
        "{user}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anthropic_model_runs_tools_and_gets_their_results_back() {
    let dir = tempfile::tempdir().unwrap();
    workspace::write(dir.path(), "//- /a.txt\nold\n");
    let server = ScriptedServer::start(vec![
        Reply::sse_bytes(
            script::anthropic_body(
                "Let me fix it.",
                &[call(
                    "toolu_1",
                    "edit",
                    json!({ "path": "a.txt", "old_string": "old", "new_string": "new" }),
                )],
            )
            .as_bytes(),
            50,
        ),
        Reply::sse_bytes(script::anthropic_body("Done.", &[]).as_bytes(), 50),
    ])
    .await;
    let port = RecordingPort::new(Outcome::AllowOnce);
    let agent = agent(
        &[("claude", "anthropic", &server)],
        port.clone(),
        dir.path(),
    );
    let s = start(&agent, dir.path(), "claude/m", Policy::default());
    let result = s
        .prompt(Prompt {
            text: "fix a.txt".into(),
            ..Prompt::default()
        })
        .await;
    assert_eq!(result.stop, Ok(StopReason::EndTurn), "{result:?}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("a.txt")).unwrap(),
        "new\n"
    );
    // The person was asked, with the diff.
    let asked = port.asked.lock().unwrap();
    assert_eq!(asked.len(), 1);
    assert!(
        matches!(&asked[0].content[0], kiln::agent::update::ToolContent::Diff { new_text: Some(t), .. } if t == "new\n")
    );
    let second = server.requests()[1].json();
    let messages = second["messages"].as_array().unwrap();
    let tool_use = &messages[1]["content"];
    assert!(
        tool_use.to_string().contains(r#""type":"tool_use""#)
            && tool_use.to_string().contains("toolu_1"),
        "{tool_use}"
    );
    let result: &Value = &messages[2]["content"][0];
    assert_eq!(result["type"], "tool_result");
    assert_eq!(result["tool_use_id"], "toolu_1");
    assert!(
        result["content"].to_string().contains("a.txt: +1 −1"),
        "{result}"
    );
    assert!(
        !result
            .get("is_error")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    );
    assert_eq!(result_usage(&port), (400, 40));
}

/// The turn's token totals from the last usage update.
fn result_usage(port: &RecordingPort) -> (u64, u64) {
    port.updates
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find_map(|(_, u, _)| match u {
            Update::Usage(u) => Some((u.input_tokens, u.output_tokens)),
            _ => None,
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_with_feedback_goes_on_and_a_file_changed_meanwhile_is_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    workspace::write(dir.path(), "//- /a.txt\nold\n");
    let server = ScriptedServer::start(vec![
        script::tools(&[call("c1", "bash", json!({ "command": "rm -rf build" }))]),
        script::tools(&[call(
            "c2",
            "edit",
            json!({ "path": "a.txt", "old_string": "old", "new_string": "new" }),
        )]),
        script::text("Stopped."),
    ])
    .await;
    // Rejects the command with feedback; for the edit, the person edits the file while
    // being asked (the port writes it), then allows: kiln must refuse to overwrite.
    let path = dir.path().join("a.txt");
    let recording = RecordingPort::answering(move |request| {
        if request.tool_call.kind == kiln::tools::Kind::Edit {
            std::fs::write(&path, "typed by the person\n").unwrap();
            Outcome::AllowOnce
        } else {
            Outcome::RejectOnce {
                feedback: Some("never delete build/".into()),
            }
        }
    });
    let agent = agent(
        &[("p", "openai-compatible", &server)],
        recording.clone(),
        dir.path(),
    );
    let s = start(&agent, dir.path(), "p/m", Policy::default());
    let result = s
        .prompt(Prompt {
            text: "clean up and fix".into(),
            ..Prompt::default()
        })
        .await;
    assert_eq!(result.stop, Ok(StopReason::EndTurn));
    assert_eq!(
        result.denied, None,
        "a rejection with feedback does not stop the turn"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("a.txt")).unwrap(),
        "typed by the person\n"
    );
    let tools = script::tool_contents(&server.requests()[2].json());
    assert!(
        tools[0].contains("the person rejected this call and said: never delete build/"),
        "{tools:?}"
    );
    assert!(tools[1].contains("changed since it was read"), "{tools:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_person_accepts_one_hunk_and_the_model_is_told_what_was_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
    workspace::write(dir.path(), &format!("//- /f.txt\n{text}"));
    let new = text
        .replace("line 2\n", "line two\n")
        .replace("line 25\n", "line twenty-five\n");
    let server = ScriptedServer::start(vec![
        script::tools(&[call(
            "c1",
            "write",
            json!({ "path": "f.txt", "content": new }),
        )]),
        script::text("Done."),
    ])
    .await;
    // Accepts the first hunk of the first diff it is shown.
    let recording = RecordingPort::answering(|request| {
        let first = request.content.iter().find_map(|c| match c {
            kiln::agent::update::ToolContent::Diff {
                old_text, new_text, ..
            } => kiln::agent::proposal::diff_of(old_text.as_deref(), new_text.as_deref())
                .hunks
                .first()
                .map(|h| h.id),
            _ => None,
        });
        Outcome::AcceptHunks {
            hunks: first.into_iter().collect(),
            feedback: Some("keep line 25".into()),
        }
    });
    let agent = agent(
        &[("p", "openai-compatible", &server)],
        recording.clone(),
        dir.path(),
    );
    let s = start(&agent, dir.path(), "p/m", Policy::default());
    let result = s
        .prompt(Prompt {
            text: "rename lines".into(),
            ..Prompt::default()
        })
        .await;
    assert_eq!(result.stop, Ok(StopReason::EndTurn));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("f.txt")).unwrap(),
        text.replace("line 2\n", "line two\n")
    );
    let told = script::tool_contents(&server.requests()[1].json()).remove(0);
    assert!(
        told.contains("not applied: f.txt: hunk 2 (old line 25, −1 +1)")
            && told.contains("They said: keep line 25"),
        "{told}"
    );
    // The diff sent for review carries the hunks and the patch under _meta.kiln.
    let reviewed = recording
        .updates
        .lock()
        .unwrap()
        .iter()
        .find_map(|(_, u, _)| match u {
            Update::ToolCallUpdate(up) if up.status.is_none() && up.content.is_some() => {
                Some(up.content.clone().unwrap())
            }
            _ => None,
        })
        .unwrap();
    let wire = kiln::frontend::updates::tool_content(&reviewed[0]);
    assert_eq!(wire["_meta"]["kiln"]["hunks"].as_array().unwrap().len(), 2);
    assert!(
        wire["_meta"]["kiln"]["patch"]
            .as_str()
            .unwrap()
            .contains("+line twenty-five")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_swapped_for_a_symlink_out_of_the_workspace_after_approval_is_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    workspace::write(&ws, "//- /a.txt\nold\n//- /link_target.txt\ninside\n");
    std::os::unix::fs::symlink(ws.join("link_target.txt"), ws.join("inner_link")).unwrap();
    let outside = dir.path().join("precious.txt");
    std::fs::write(&outside, "old\n").unwrap();
    let server = ScriptedServer::start(vec![
        script::tools(&[call("c1", "edit", json!({ "path": "a.txt", "old_string": "old", "new_string": "new" }))]),
        script::tools(&[call("c2", "edit", json!({ "path": "inner_link", "old_string": "inside", "new_string": "changed through the link" }))]),
        script::text("Done."),
    ])
    .await;
    // Allows, but first replaces a.txt with a symlink to a file outside the workspace.
    let (swapped, target) = (ws.join("a.txt"), outside.clone());
    let recording = RecordingPort::answering(move |request| {
        if request.tool_call.title.contains("a.txt") {
            std::fs::remove_file(&swapped).unwrap();
            std::os::unix::fs::symlink(&target, &swapped).unwrap();
        }
        Outcome::AllowOnce
    });
    let agent = agent(
        &[("p", "openai-compatible", &server)],
        recording.clone(),
        dir.path(),
    );
    let s = start(&agent, &ws, "p/m", Policy::default());
    let result = s
        .prompt(Prompt {
            text: "edit".into(),
            ..Prompt::default()
        })
        .await;
    assert_eq!(result.stop, Ok(StopReason::EndTurn));
    assert_eq!(
        std::fs::read_to_string(&outside).unwrap(),
        "old\n",
        "the file outside was written"
    );
    let told = script::tool_contents(&server.requests()[2].json());
    assert!(
        told[0].contains("now leads outside the workspace"),
        "{told:?}"
    );
    // A symlink inside the workspace stays a symlink; its target changes.
    assert!(
        std::fs::symlink_metadata(ws.join("inner_link"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("link_target.txt")).unwrap(),
        "changed through the link\n"
    );
}
