//! `kiln run "prompt"`: one turn of the agent in a terminal or in CI. Text output puts the
//! model's answer on stdout and the activity (tool calls, notices, a command's output) on
//! stderr; `--format json` writes one JSON object per line on stdout (session, ACP-shaped
//! updates, result; see protocol/cli.md).
//!
//! Permissions: `--auto` allows what stays inside the workspace; without it kiln asks on
//! the terminal, and with no terminal an Ask is denied with a message saying how to allow
//! it. Exit status: 0 end_turn, 1 error, 2 a denied permission stopped the task, 130
//! cancelled (Ctrl-C cancels cleanly, a second Ctrl-C exits at once).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use futures::future::BoxFuture;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::Format;
use crate::agent::audit::AuditLog;
use crate::agent::checkpoint::{Checkpoints, Kind as CheckpointKind};
use crate::agent::update::{NoticeLevel, ToolContent, ToolStatus};
use crate::agent::{
    self, Agent, NewSession, Outcome, PermissionRequest, Policy, Port, Prompt, Session,
    SessionHandle, StopReason, Update, mode, store,
};
use crate::config::{self, ModelRef, Severity};
use crate::llm::{Client, RetryPolicy, Target, UserPart};
use crate::text::diff::{Diff, RenderOptions, render_unified};
use crate::tools::{DiskFiles, Files};

pub struct RunCommand {
    pub prompt: Option<String>,
    pub model: Option<String>,
    pub mode: Option<String>,
    pub dir: Option<PathBuf>,
    pub auto: bool,
    pub format: Format,
    pub continue_last: bool,
    pub session: Option<String>,
    pub files: Vec<PathBuf>,
    pub log_dir: Option<PathBuf>,
    pub max_requests: u32,
    /// `kiln loop`: the test command that decides whether the changes stay.
    pub test: Option<String>,
    /// `kiln loop --retries`: how many times a failure goes back to the model.
    pub retries: u32,
}

pub const EXIT_OK: i32 = 0;
pub const EXIT_ERROR: i32 = 1;
pub const EXIT_DENIED: i32 = 2;
pub const EXIT_CANCELLED: i32 = 130;

pub fn run(cmd: RunCommand) -> i32 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("kiln: cannot start: {err}");
            return EXIT_ERROR;
        }
    };
    let code = runtime.block_on(run_async(cmd));
    // A terminal question may still be waiting on stdin in a blocking thread: do not wait
    // for it on the way out.
    runtime.shutdown_background();
    code
}

/// The workspace root: `--dir` or the current directory, made absolute.
pub fn workspace_root(dir: Option<&Path>) -> Result<PathBuf, String> {
    let dir = dir
        .map(Path::to_path_buf)
        .unwrap_or_else(super::workspace_dir);
    dir.canonicalize()
        .map_err(|e| format!("cannot use {} as the workspace: {e}", dir.display()))
}

/// The session file `--session ID` or `--continue` names.
pub fn find_session(sessions_dir: &Path, id: Option<&str>, root: &Path) -> Result<PathBuf, String> {
    let files = store::list(sessions_dir);
    match id {
        Some(id) => {
            let exact = sessions_dir.join(format!("{id}.jsonl"));
            if exact.is_file() {
                return Ok(exact);
            }
            let matches: Vec<&PathBuf> = files
                .iter()
                .filter(|p| {
                    p.file_stem()
                        .is_some_and(|s| s.to_string_lossy().starts_with(id))
                })
                .collect();
            match matches.as_slice() {
                [one] => Ok((*one).clone()),
                [] => Err(format!(
                    "no session {id} in {} (`kiln sessions list` shows them)",
                    root.display()
                )),
                _ => Err(format!(
                    "{id} names {} sessions; give more of the id",
                    matches.len()
                )),
            }
        }
        None => files.into_iter().next().ok_or_else(|| {
            format!(
                "there is no session to continue in {}; start one with kiln run \"…\"",
                root.display()
            )
        }),
    }
}

async fn run_async(cmd: RunCommand) -> i32 {
    let out = Output::new(cmd.format);
    let root = match workspace_root(cmd.dir.as_deref()) {
        Ok(root) => root,
        Err(err) => return out.fail(&err),
    };
    let Some(text) = cmd
        .prompt
        .clone()
        .or_else(read_stdin_prompt)
        .filter(|t| !t.trim().is_empty())
    else {
        return out.fail(
            "no prompt: give it as an argument (kiln run \"fix the failing test\") or on stdin",
        );
    };
    let loaded = config::load_for(&root);
    for diag in &loaded.diagnostics {
        out.notice(
            if diag.severity == Severity::Error {
                NoticeLevel::Error
            } else {
                NoticeLevel::Warning
            },
            &format!("config {diag}"),
        );
    }
    let config = loaded.config;
    let client = match Client::new(RetryPolicy::default()) {
        Ok(c) => c,
        Err(err) => return out.fail(&format!("cannot set up HTTP: {err:#}")),
    };
    let data_dir = store::data_dir();
    let sessions_dir = data_dir.as_ref().map(|d| store::sessions_dir(d, &root));
    let resume = if cmd.continue_last || cmd.session.is_some() {
        let Some(dir) = &sessions_dir else {
            return out.fail("no data directory to keep sessions in (set KILN_DATA_DIR)");
        };
        match find_session(dir, cmd.session.as_deref(), &root) {
            Ok(path) => match store::load(&path) {
                Ok(loaded) => Some((path, loaded)),
                Err(err) => return out.fail(&format!("cannot read {}: {err}", path.display())),
            },
            Err(err) => return out.fail(&err),
        }
    } else {
        None
    };

    let target = match pick_model(
        &client,
        &config,
        cmd.model.as_deref(),
        resume.as_ref().and_then(|(_, l)| l.model.as_deref()),
    )
    .await
    {
        Ok(t) => t,
        Err(err) => return out.fail(&err),
    };
    let port = Arc::new(CliPort {
        out: out.clone(),
        interactive: std::io::stdin().is_terminal()
            && std::io::stderr().is_terminal()
            && cmd.format == Format::Text,
        root: root.clone(),
    });
    let (mut agent, problems) = Agent::new(config, client, port);
    for p in problems {
        out.notice(NoticeLevel::Warning, &format!("config {p}"));
    }
    let mode_slug = cmd
        .mode
        .clone()
        .or_else(|| resume.as_ref().map(|(_, l)| l.mode.clone()))
        .unwrap_or_else(|| mode::DEFAULT_MODE.to_owned());
    if mode::find(&agent.modes, &mode_slug).is_none() {
        return out.fail(&mode::unknown(&agent.modes, &mode_slug));
    }
    let mut attachments = Vec::new();
    for file in &cmd.files {
        match attachment(&root, file, target.model.attachment) {
            Ok(part) => attachments.push(part),
            Err(err) => return out.fail(&err),
        }
    }

    agent.audit_dir = match &cmd.log_dir {
        Some(dir) if dir.as_os_str() == "none" => None,
        Some(dir) => Some(if dir.is_absolute() {
            dir.clone()
        } else {
            root.join(dir)
        }),
        None => Some(root.join(".kiln/logs")),
    };
    agent.max_turn_requests = cmd.max_requests.max(1);
    agent.sessions_dir = sessions_dir.clone();
    agent.global_dir = config::global_dir();
    agent.checkpoints_dir = data_dir.clone();
    let agent = Arc::new(agent);
    let (mut policy, problems) = Policy::from_config(&agent.config);
    for p in problems {
        out.notice(NoticeLevel::Warning, &format!("config {p}"));
    }
    policy.auto = cmd.auto;
    let new = NewSession {
        root: root.clone(),
        mode: mode_slug,
        target: target.clone(),
        policy,
    };
    let resumed = resume.is_some();
    let made = match resume {
        Some((path, loaded)) => Session::resume(&agent, &path, loaded, new),
        None => Session::create(&agent, new),
    };
    let (session, problems) = match made {
        Ok(made) => made,
        Err(err) => return out.fail(&format!("{err:#}")),
    };
    for p in problems {
        out.notice(NoticeLevel::Warning, &p);
    }
    out.session(&session, resumed);
    let loop_checkpoint = match (&cmd.test, &data_dir) {
        (None, _) => None,
        (Some(_), None) => {
            return out
                .fail("kiln loop needs a data directory for its checkpoint (set KILN_DATA_DIR)");
        }
        (Some(_), Some(data)) => match Checkpoints::open(data, &root).and_then(|cp| {
            let c = cp.snapshot(
                CheckpointKind::Manual,
                &format!("before kiln loop: {}", text.lines().next().unwrap_or("")),
                Some(&session.id),
            )?;
            Ok((cp, c.id))
        }) {
            Ok(taken) => Some(taken),
            Err(err) => {
                return out.fail(&format!(
                    "kiln loop cannot take its checkpoint, so it could not roll back: {err}"
                ));
            }
        },
    };
    let audit = AuditLog::new(agent.audit_dir.clone(), &session.id);
    let handle = SessionHandle::spawn(agent.clone(), session);
    // Also stops `kiln loop` between turns and during its test, with the rollback.
    let interrupted = CancellationToken::new();
    let interrupts = tokio::spawn(watch_interrupts(
        handle.clone(),
        out.clone(),
        interrupted.clone(),
    ));
    let mut prompt = Prompt {
        text,
        attachments,
        context: agent::PromptContext::default(),
    };
    let mut attempt = 0u32;
    let code = loop {
        let result = handle.prompt(prompt).await;
        let (Some(test), Some((cp, before))) = (&cmd.test, &loop_checkpoint) else {
            break out.result(&handle.id, &result);
        };
        if result.stop != Ok(StopReason::EndTurn) || result.denied.is_some() {
            let code = out.result(&handle.id, &result);
            out.rollback(cp, before, "the task did not finish");
            break code;
        }
        attempt += 1;
        let tested = tokio::select! {
            tested = run_test(test, &root) => Some(tested),
            _ = interrupted.cancelled() => None,
        };
        let Some((passed, exit_code, output)) = tested else {
            out.rollback(cp, before, "cancelled");
            break EXIT_CANCELLED;
        };
        audit.record("loop_test", json!({ "command": test, "attempt": attempt, "exit_code": exit_code, "passed": passed }));
        out.test(test, attempt, exit_code, &output);
        if passed {
            break out.result(&handle.id, &result);
        }
        if attempt > cmd.retries || interrupted.is_cancelled() {
            let why = if interrupted.is_cancelled() {
                "cancelled"
            } else {
                "the tests still fail"
            };
            out.rollback(cp, before, why);
            out.result_with(&handle.id, &result, Some(EXIT_ERROR));
            break if interrupted.is_cancelled() {
                EXIT_CANCELLED
            } else {
                EXIT_ERROR
            };
        }
        prompt = Prompt {
            text: format!(
                "The test command `{test}` failed (exit status {}). Its output:\n\n{}\n\nFind the cause and fix it.",
                exit_code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "none: killed".into()),
                crate::tools::truncate_middle(&output, 20_000)
            ),
            ..Prompt::default()
        };
    };
    interrupts.abort();
    code
}

/// Runs the test command in the workspace; (passed, exit code, output).
async fn run_test(command: &str, root: &Path) -> (bool, Option<i32>, String) {
    let output = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(root)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await;
    match output {
        Ok(out) => {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            (out.status.success(), out.status.code(), text)
        }
        Err(err) => (false, None, format!("cannot run sh: {err}")),
    }
}

/// First Ctrl-C cancels the turn; a second one exits at once.
async fn watch_interrupts(handle: SessionHandle, out: Output, interrupted: CancellationToken) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    out.notice(
        NoticeLevel::Warning,
        "cancelling… (Ctrl-C again to quit at once)",
    );
    handle.cancel();
    interrupted.cancel();
    if tokio::signal::ctrl_c().await.is_ok() {
        std::process::exit(EXIT_CANCELLED);
    }
}

fn read_stdin_prompt() -> Option<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return None;
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut stdin.lock(), &mut text).ok()?;
    Some(text)
}

/// `--model`, else the resumed session's model, else kiln's default choice.
pub(crate) async fn pick_model(
    client: &Client,
    config: &config::Config,
    asked: Option<&str>,
    resumed: Option<&str>,
) -> Result<Target, String> {
    if let Some(name) = asked {
        let model = ModelRef::parse(name).ok_or_else(|| {
            format!("--model {name:?}: expected provider/model, e.g. anthropic/claude-sonnet-4-5 (`kiln models` lists them)")
        })?;
        return Target::from_config(config, &model).ok_or_else(|| {
            let providers: Vec<&str> = config.providers.keys().map(String::as_str).collect();
            format!(
                "--model {name}: there is no provider {:?}; the providers are {} (`kiln models` lists the models)",
                model.provider,
                providers.join(", ")
            )
        });
    }
    if let Some(target) = resumed
        .and_then(ModelRef::parse)
        .and_then(|m| Target::from_config(config, &m))
    {
        return Ok(target);
    }
    crate::llm::resolve::resolve(client, config)
        .await
        .map(|r| r.target)
        .map_err(|no_model| no_model.to_string())
}

/// `-f FILE`: images as image parts (for models that take them), text as a file block;
/// `-f -` is standard input (`git diff | kiln run -f - "review this"`).
fn attachment(root: &Path, file: &Path, images_ok: bool) -> Result<UserPart, String> {
    if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut text)
            .map_err(|e| format!("-f -: cannot read standard input as text: {e}"))?;
        return Ok(UserPart::Text(format!(
            "<stdin>\n{}\n</stdin>",
            text.trim_end_matches('\n')
        )));
    }
    let path = if file.is_absolute() {
        file.to_path_buf()
    } else {
        super::workspace_dir().join(file)
    };
    let bytes = std::fs::read(&path).map_err(|e| format!("-f {}: {e}", file.display()))?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let media_type = match ext.as_str() {
        "png" => Some("image/png"),
        "jpg" | "jpeg" => Some("image/jpeg"),
        "gif" => Some("image/gif"),
        "webp" => Some("image/webp"),
        _ => None,
    };
    if let Some(media_type) = media_type {
        if !images_ok {
            return Err(format!(
                "-f {}: the model does not accept images (its entry says attachment: false); pick one that does with --model",
                file.display()
            ));
        }
        return Ok(UserPart::Image {
            media_type: media_type.to_owned(),
            data: base64::engine::general_purpose::STANDARD.encode(&bytes),
        });
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        format!(
            "-f {}: not UTF-8 text and not a png/jpeg/gif/webp image",
            file.display()
        )
    })?;
    Ok(UserPart::Text(format!(
        "<file path=\"{}\">\n{}\n</file>",
        crate::tools::display_path(root, &path),
        text.trim_end_matches('\n')
    )))
}

/// Where the run's output goes; shared by the port and the command.
#[derive(Clone)]
struct Output {
    format: Format,
    state: Arc<Mutex<TextState>>,
}

#[derive(Default)]
struct TextState {
    /// The last thing written to stdout did not end a line.
    stdout_open: bool,
    /// The last thing written to stderr did not end a line.
    stderr_open: bool,
    in_thought: bool,
}

impl Output {
    fn new(format: Format) -> Output {
        Output {
            format,
            state: Arc::new(Mutex::new(TextState::default())),
        }
    }

    fn json_line(&self, value: serde_json::Value) {
        let mut line = serde_json::to_vec(&value).unwrap_or_default();
        line.push(b'\n');
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(&line);
        let _ = stdout.flush();
    }

    fn state(&self) -> std::sync::MutexGuard<'_, TextState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A line of activity on stderr (starting a new line when needed).
    fn activity(&self, text: &str) {
        let mut st = self.state();
        let mut err = std::io::stderr().lock();
        if st.stderr_open || st.stdout_open {
            let _ = err.write_all(b"\n");
            st.stderr_open = false;
        }
        if st.stdout_open {
            let _ = std::io::stdout().flush();
            st.stdout_open = false;
            // The answer goes on after the activity on a new line of its own.
            let _ = std::io::stdout().write_all(b"\n");
        }
        let _ = writeln!(err, "{text}");
        st.in_thought = false;
    }

    fn notice(&self, level: NoticeLevel, message: &str) {
        match self.format {
            Format::Json => self.json_line(json!({
                "type": "session_update",
                "update": crate::frontend::updates::session_update(&Update::Notice { level, message: message.to_owned() }),
            })),
            Format::Text => self.activity(&format!("kiln: {}: {message}", level.as_str())),
        }
    }

    fn fail(&self, message: &str) -> i32 {
        match self.format {
            Format::Json => {
                self.json_line(json!({ "type": "result", "stopReason": null, "error": message }))
            }
            Format::Text => {
                self.activity(&format!("kiln: {message}"));
            }
        }
        EXIT_ERROR
    }

    fn session(&self, session: &Session, resumed: bool) {
        match self.format {
            Format::Json => self.json_line(json!({
                "type": "session",
                "sessionId": session.id,
                "resumed": resumed,
                "cwd": session.root,
                "mode": session.mode,
                "model": session.target.model_ref().to_string(),
                "file": session.file_path(),
            })),
            Format::Text => self.activity(&format!(
                "› {} session {} · {} · {} mode",
                if resumed { "continuing" } else { "new" },
                session.id,
                session.target.model_ref(),
                session.mode
            )),
        }
    }

    fn update(&self, session_id: &str, update: &Update) {
        if self.format == Format::Json {
            self.json_line(json!({
                "type": "session_update",
                "sessionId": session_id,
                "update": crate::frontend::updates::session_update(update),
            }));
            return;
        }
        match update {
            Update::AgentMessage(text) => {
                let mut st = self.state();
                if st.stderr_open {
                    let _ = std::io::stderr().write_all(b"\n");
                    st.stderr_open = false;
                }
                let mut stdout = std::io::stdout().lock();
                let _ = stdout.write_all(text.as_bytes());
                let _ = stdout.flush();
                st.stdout_open = !text.ends_with('\n');
            }
            Update::AgentThought(text) => {
                let mut st = self.state();
                let mut err = std::io::stderr().lock();
                if !st.in_thought {
                    if st.stderr_open || st.stdout_open {
                        let _ = err.write_all(b"\n");
                    }
                    let _ = err.write_all("thinking: ".as_bytes());
                    st.in_thought = true;
                }
                let _ = err.write_all(text.as_bytes());
                st.stderr_open = !text.ends_with('\n');
            }
            Update::ToolCall(call) => self.activity(&format!("› {}", call.title)),
            Update::ToolCallUpdate(up) => {
                if let Some(chunk) = &up.output_chunk {
                    let mut st = self.state();
                    let _ = std::io::stderr().write_all(chunk.as_bytes());
                    st.stderr_open = !chunk.ends_with('\n');
                }
                match up.status {
                    Some(ToolStatus::Failed) => {
                        let text = up.content.iter().flatten().find_map(|c| match c {
                            ToolContent::Text(t) => Some(t.as_str()),
                            _ => None,
                        });
                        let first = text.and_then(|t| t.lines().next()).unwrap_or("failed");
                        self.activity(&format!("  ✗ {first}"));
                    }
                    Some(ToolStatus::Cancelled) => self.activity("  ✗ cancelled"),
                    _ => {}
                }
            }
            Update::Plan(items) => {
                let lines: Vec<String> = items
                    .iter()
                    .map(|i| {
                        let mark = match i.status {
                            crate::tools::todo::Status::Completed => "[x]",
                            crate::tools::todo::Status::InProgress => "[~]",
                            crate::tools::todo::Status::Pending => "[ ]",
                        };
                        format!("  {mark} {}", i.content)
                    })
                    .collect();
                self.activity(&format!("› plan\n{}", lines.join("\n")));
            }
            Update::Notice { level, message } => self.notice(*level, message),
            Update::CurrentMode(mode) => self.activity(&format!("› mode: {mode}")),
            Update::UserMessage(_) | Update::Usage(_) => {}
        }
    }

    /// A `kiln loop` test run.
    fn test(&self, command: &str, attempt: u32, exit_code: Option<i32>, output: &str) {
        match self.format {
            Format::Json => self.json_line(json!({ "type": "test", "command": command, "attempt": attempt, "exitCode": exit_code, "passed": exit_code == Some(0), "output": output })),
            Format::Text => {
                let verdict = if exit_code == Some(0) { "passed".to_owned() } else { format!("failed (exit status {})", exit_code.map(|c| c.to_string()).unwrap_or_else(|| "none".into())) };
                let shown = if exit_code == Some(0) { String::new() } else { format!("\n{}", crate::tools::truncate_middle(output, 8_000).trim_end()) };
                self.activity(&format!("› test {attempt}: `{command}` {verdict}{shown}"));
            }
        }
    }

    /// Restores the loop's checkpoint and says so.
    fn rollback(&self, cp: &Checkpoints, before: &str, why: &str) {
        let result = cp.restore(before, None, None);
        match (self.format, &result) {
            (Format::Json, Ok(r)) => self.json_line(json!({ "type": "rollback", "checkpoint": before, "reason": why, "written": r.written, "removed": r.removed })),
            (Format::Json, Err(err)) => self.json_line(json!({ "type": "rollback", "checkpoint": before, "reason": why, "error": err.to_string() })),
            (Format::Text, Ok(r)) => self.activity(&format!(
                "› {why}: the workspace is back at checkpoint {} ({} file(s) restored, {} removed)",
                crate::agent::checkpoint::short(before),
                r.written.len(),
                r.removed.len()
            )),
            (Format::Text, Err(err)) => self.activity(&format!("kiln: {why}, and the rollback failed: {err}")),
        }
    }

    fn result(&self, session_id: &str, result: &agent::TurnResult) -> i32 {
        self.result_with(session_id, result, None)
    }

    /// The result line; `exit` overrides the exit status the turn alone would give
    /// (`kiln loop` whose tests failed).
    fn result_with(&self, session_id: &str, result: &agent::TurnResult, exit: Option<i32>) -> i32 {
        let code = match (&result.stop, &result.denied) {
            (_, Some(_)) => EXIT_DENIED,
            (Ok(StopReason::EndTurn), None) => EXIT_OK,
            (Ok(StopReason::Cancelled), None) => EXIT_CANCELLED,
            _ => EXIT_ERROR,
        };
        let code = exit.unwrap_or(code);
        let u = &result.usage;
        match self.format {
            Format::Json => self.json_line(json!({
                "type": "result",
                "sessionId": session_id,
                "stopReason": result.stop.as_ref().ok().map(|s| s.as_str()),
                "error": result.stop.as_ref().err(),
                "denied": result.denied,
                "exitCode": code,
                "usage": {
                    "requests": u.requests,
                    "toolCalls": u.tool_calls,
                    "inputTokens": u.input_tokens,
                    "outputTokens": u.output_tokens,
                    "cacheReadTokens": u.cache_read_tokens,
                },
            })),
            Format::Text => {
                if let Err(err) = &result.stop {
                    self.activity(&format!("kiln: error: {err}"));
                }
                if let Some(denied) = &result.denied {
                    self.activity(&format!("kiln: stopped: permission denied: {denied}"));
                }
                let stop = match &result.stop {
                    Ok(StopReason::MaxTurnRequests) => {
                        "stopped: the request cap was reached (raise it with --max-requests)"
                            .to_owned()
                    }
                    Ok(StopReason::MaxTokens) => {
                        "stopped: the model hit its output limit".to_owned()
                    }
                    Ok(StopReason::Refusal) => "stopped: the model refused".to_owned(),
                    Ok(s) => s.as_str().to_owned(),
                    Err(_) => "error".to_owned(),
                };
                self.activity(&format!(
                    "› {stop} · {} request{} · {} tool call{} · {} in / {} out tokens · continue with: kiln run --session {session_id} \"…\"",
                    u.requests,
                    if u.requests == 1 { "" } else { "s" },
                    u.tool_calls,
                    if u.tool_calls == 1 { "" } else { "s" },
                    u.input_tokens,
                    u.output_tokens
                ));
            }
        }
        code
    }
}

struct CliPort {
    out: Output,
    interactive: bool,
    root: PathBuf,
}

impl Port for CliPort {
    fn update(&self, session_id: &str, update: Update) {
        self.out.update(session_id, &update);
    }

    fn files(&self, _session_id: &str) -> Arc<dyn Files> {
        Arc::new(DiskFiles)
    }

    fn request_permission(&self, request: PermissionRequest) -> BoxFuture<'static, Outcome> {
        if !self.interactive {
            let why = if request.reason.is_empty() {
                String::new()
            } else {
                format!(" ({})", request.reason)
            };
            return Box::pin(async move {
                Outcome::Unanswerable(format!(
                    "{}{why} needs approval and there is no terminal to ask on; rerun with --auto to allow edits and commands inside the workspace, or allow it in kiln.jsonc \"permission\"",
                    request.tool_call.title
                ))
            });
        }
        let mut text = String::new();
        // (display name, diff) of each file change, for the per-hunk review.
        let mut files: Vec<(String, Diff)> = Vec::new();
        for content in &request.content {
            match content {
                ToolContent::Diff {
                    path,
                    old_text,
                    new_text,
                } => {
                    let name = crate::tools::display_path(&self.root, path);
                    let diff =
                        crate::agent::proposal::diff_of(old_text.as_deref(), new_text.as_deref());
                    text.push_str(&render_unified(
                        &diff,
                        &RenderOptions {
                            old_path: &name,
                            new_path: &name,
                            color: true,
                        },
                    ));
                    files.push((name, diff));
                }
                ToolContent::Text(t) => {
                    text.push_str(t);
                    text.push('\n');
                }
            }
        }
        let reason = if request.reason.is_empty() {
            String::new()
        } else {
            format!(" ({})", request.reason)
        };
        let n_hunks: usize = files.iter().map(|(_, d)| d.hunks.len()).sum();
        let hunks_option = if n_hunks > 1 {
            "  [h] hunk by hunk"
        } else {
            ""
        };
        self.out.activity(&format!(
            "{text}? allow {}{reason}\n  [y] yes once  [a] always (this session)  [A] always, saved to kiln.jsonc{hunks_option}  [n] no  [N] never (this session); text after n is told to the model",
            request.tool_call.title
        ));
        let out = self.out.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || ask_terminal(&out, &files, n_hunks > 1))
                .await
                .unwrap_or(Outcome::RejectOnce { feedback: None })
        })
    }
}

/// One answer line from the terminal: its first character and the text after it.
fn read_answer() -> Option<(String, Option<String>)> {
    eprint!("> ");
    let mut line = String::new();
    match std::io::stdin().read_line(&mut line) {
        Ok(0) | Err(_) => return None,
        Ok(_) => {}
    }
    let line = line.trim_end_matches(['\n', '\r']);
    let (answer, rest) = line.split_at(line.chars().next().map(char::len_utf8).unwrap_or(0));
    Some((
        answer.to_owned(),
        Some(rest.trim().to_owned()).filter(|f| !f.is_empty()),
    ))
}

fn ask_terminal(out: &Output, files: &[(String, Diff)], by_hunk: bool) -> Outcome {
    loop {
        let Some((answer, feedback)) = read_answer() else {
            return Outcome::RejectOnce { feedback: None };
        };
        match answer.as_str() {
            "y" | "Y" => return Outcome::AllowOnce,
            "a" => return Outcome::AllowAlways,
            "A" => return Outcome::AllowAlwaysSave,
            "h" | "H" if by_hunk => return ask_hunks(out, files),
            "n" => return Outcome::RejectOnce { feedback },
            "N" => return Outcome::RejectAlways { feedback },
            _ if by_hunk => eprintln!("answer y, a, A, h, n or N"),
            _ => eprintln!("answer y, a, A, n or N"),
        }
    }
}

/// Each hunk on its own: y keeps it, n drops it; text after n is told to the model.
fn ask_hunks(out: &Output, files: &[(String, Diff)]) -> Outcome {
    let mut accepted = Vec::new();
    let mut notes = Vec::new();
    let total: usize = files.iter().map(|(_, d)| d.hunks.len()).sum();
    let mut n = 0;
    for (name, diff) in files {
        for hunk in &diff.hunks {
            n += 1;
            let one = Diff {
                hunks: vec![hunk.clone()],
                context: diff.context,
            };
            out.activity(&format!(
                "{}? hunk {n} of {total} in {name}: [y] keep  [n] drop",
                render_unified(
                    &one,
                    &RenderOptions {
                        old_path: name,
                        new_path: name,
                        color: true
                    }
                )
            ));
            loop {
                let Some((answer, feedback)) = read_answer() else {
                    return Outcome::RejectOnce { feedback: None };
                };
                match answer.as_str() {
                    "y" | "Y" => accepted.push(hunk.id),
                    "n" | "N" => notes.extend(feedback.map(|f| format!("hunk {n}: {f}"))),
                    _ => {
                        eprintln!("answer y or n");
                        continue;
                    }
                }
                break;
            }
        }
    }
    let feedback = (!notes.is_empty()).then(|| notes.join("; "));
    if accepted.is_empty() {
        return Outcome::RejectOnce { feedback };
    }
    Outcome::AcceptHunks {
        hunks: accepted,
        feedback,
    }
}
