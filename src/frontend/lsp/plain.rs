//! The plain LSP path: kiln for clients with no kiln plugin (Helix 25.01, or any LSP
//! client), with nothing but standard LSP.
//!
//! - Code actions on a selection or a diagnostic ("kiln: explain", "kiln: fix this",
//!   "kiln: refactor…", "kiln: ask about selection") start work in the background and
//!   return at once (Helix gives up on a request after 20 s); `$/progress` shows it.
//! - The conversation is the file `.kiln/chat.md`: the person writes below the last
//!   `## You` heading and runs "kiln: send"; the answer streams in through versioned
//!   `workspace/applyEdit`s, inserted above that heading so the person's typing is never
//!   overwritten.
//! - A proposed change is a Hint diagnostic per hunk, a rendered `.kiln/proposals/N.diff`
//!   shown with `window/showDocument`, and code actions to accept it, accept one hunk,
//!   reject it or show its diff.
//! - Other approvals ask with `window/showMessageRequest`; a client that cannot
//!   (MethodNotFound) gets a pending approval with "kiln: allow …" / "kiln: reject …"
//!   code actions instead.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_lsp::{ClientSocket, ErrorCode, ResponseError};
use futures::future::BoxFuture;
use lsp_types::notification as notif;
use lsp_types::request::{self as req, Request as _};
use lsp_types::{
    CodeAction, CodeActionKind, Command, Diagnostic, DiagnosticSeverity, MessageActionItem,
    MessageType, NumberOrString, ProgressParams, ProgressParamsValue, PublishDiagnosticsParams,
    ShowDocumentParams, ShowMessageParams, ShowMessageRequestParams, TextEdit, Url,
    WorkDoneProgress, WorkDoneProgressBegin, WorkDoneProgressCreateParams, WorkDoneProgressEnd,
    WorkDoneProgressReport,
};
use ropey::Rope;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::port::{Edited, edit_open_document};
use super::shared::SharedWorkspace;
use crate::agent::update::{NoticeLevel, ToolContent};
use crate::agent::{Outcome, PermissionRequest, Prompt, PromptContext, Update, apply, proposal};
use crate::frontend::host::Host;
use crate::text::PositionEncoding;
use crate::text::diff::{Diff, HunkId, RenderOptions, render_unified};
use crate::text::position::{CharIdx, to_position};
use crate::workspace::DocKey;

pub const CHAT_FILE: &str = ".kiln/chat.md";
const YOU: &str = "## You";
const CHAT_HEADER: &str = "# kiln chat\n\nWrite below the last \"## You\" heading, then run the code action \"kiln: send\".\n\n## You\n\n";

/// The requests the plain path answers.
pub const REQUESTS: [&str; 3] = [
    req::CodeActionRequest::METHOD,
    req::CodeActionResolveRequest::METHOD,
    req::ExecuteCommand::METHOD,
];

/// The `workspace/executeCommand` commands.
pub const COMMANDS: [&str; 6] = [
    "kiln.prompt",
    "kiln.cancel",
    "kiln.accept",
    "kiln.reject",
    "kiln.undo",
    "kiln.action",
];

#[derive(Clone, Copy, Debug, Default)]
pub struct PlainAbilities {
    pub apply_edit: bool,
    pub progress: bool,
    /// The client resolves code actions (`codeAction/resolve`), so the work starts there.
    pub resolve: bool,
    pub encoding: PositionEncoding,
}

struct PendingProposal {
    title: String,
    files: Vec<ProposalFile>,
    diff_file: PathBuf,
    reply: Option<oneshot::Sender<Outcome>>,
}

struct ProposalFile {
    path: PathBuf,
    uri: Url,
    diff: Diff,
}

struct PendingApproval {
    title: String,
    reply: Option<oneshot::Sender<Outcome>>,
}

#[derive(Default)]
struct State {
    /// The plain-path session of each workspace root.
    sessions: HashMap<PathBuf, String>,
    /// Session id → its root (for the chat file), for the sessions above.
    roots: HashMap<String, PathBuf>,
    proposals: BTreeMap<u32, PendingProposal>,
    approvals: BTreeMap<u32, PendingApproval>,
    next_id: u32,
    /// Session id → its chat writer.
    chats: HashMap<String, mpsc::UnboundedSender<ChatOp>>,
    /// Session id → its progress token, while a turn runs.
    progress: HashMap<String, String>,
    /// Files whose kiln diagnostics are published (so an empty list clears them).
    published: Vec<Url>,
}

pub struct Plain {
    client: ClientSocket,
    workspace: SharedWorkspace,
    abilities: PlainAbilities,
    state: Mutex<State>,
    host: Mutex<Weak<Host>>,
}

enum ChatOp {
    /// Text of the answer: above the last `## You` heading.
    Answer(String),
    /// Text at the very end of the file.
    End(String),
    /// Show the file in the editor, once what came before is written; later text waits
    /// (briefly) for the editor to open it, so nothing is written to the disk behind an
    /// open buffer.
    Show,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Plain {
    pub fn new(
        client: ClientSocket,
        workspace: SharedWorkspace,
        abilities: PlainAbilities,
    ) -> Plain {
        Plain {
            client,
            workspace,
            abilities,
            state: Mutex::new(State::default()),
            host: Mutex::new(Weak::new()),
        }
    }

    pub fn set_host(&self, host: &Arc<Host>) {
        *lock(&self.host) = Arc::downgrade(host);
    }

    fn host(&self) -> Option<Arc<Host>> {
        lock(&self.host).upgrade()
    }

    pub fn is_plain_session(&self, session_id: &str) -> bool {
        lock(&self.state).roots.contains_key(session_id)
    }

    pub fn show(&self, typ: MessageType, message: impl Into<String>) {
        let message = message.into();
        if typ == MessageType::ERROR {
            tracing::error!("{message}");
        }
        let _ = self
            .client
            .notify::<notif::ShowMessage>(ShowMessageParams { typ, message });
    }

    // --- updates of plain sessions ------------------------------------------------------

    /// Shows an update of a plain-path session: the answer in the chat file, tool calls
    /// as quoted lines there and as progress, problems as messages.
    pub fn render(&self, session_id: &str, update: &Update) {
        match update {
            Update::AgentMessage(text) => self.chat(session_id, ChatOp::Answer(text.clone())),
            Update::ToolCall(call) => {
                self.chat(
                    session_id,
                    ChatOp::Answer(format!("\n> {}\n\n", call.title)),
                );
                self.progress_report(session_id, &call.title);
            }
            Update::Notice {
                level: NoticeLevel::Error,
                message,
            } => self.show(MessageType::ERROR, format!("kiln: {message}")),
            Update::Notice { level, message } => {
                let typ = if *level == NoticeLevel::Warning {
                    MessageType::WARNING
                } else {
                    MessageType::INFO
                };
                let _ = self
                    .client
                    .notify::<notif::LogMessage>(lsp_types::LogMessageParams {
                        typ,
                        message: format!("kiln: {message}"),
                    });
            }
            _ => {}
        }
    }

    fn chat(&self, session_id: &str, op: ChatOp) {
        let mut state = lock(&self.state);
        let Some(root) = state.roots.get(session_id).cloned() else {
            return;
        };
        // One writer per session, made on first use (under the lock: never two).
        let tx = state.chats.entry(session_id.to_owned()).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(write_chat(
                self.client.clone(),
                self.workspace.clone(),
                self.abilities,
                root.join(CHAT_FILE),
                rx,
            ));
            tx
        });
        let _ = tx.send(op);
    }

    // --- progress ------------------------------------------------------------------------

    fn progress_begin(self: &Arc<Self>, session_id: &str, title: &str) {
        if !self.abilities.progress {
            return;
        }
        let token = format!("kiln/{session_id}/{}", crate::agent::store::now_ms());
        lock(&self.state)
            .progress
            .insert(session_id.to_owned(), token.clone());
        let client = self.client.clone();
        let title = title.to_owned();
        tokio::spawn(async move {
            let token = NumberOrString::String(token);
            if client
                .request::<req::WorkDoneProgressCreate>(WorkDoneProgressCreateParams {
                    token: token.clone(),
                })
                .await
                .is_err()
            {
                return;
            }
            let _ = client.notify::<notif::Progress>(ProgressParams {
                token,
                value: ProgressParamsValue::WorkDone(WorkDoneProgress::Begin(
                    WorkDoneProgressBegin {
                        title,
                        cancellable: Some(false),
                        message: Some("working…".into()),
                        percentage: None,
                    },
                )),
            });
        });
    }

    fn progress_report(&self, session_id: &str, message: &str) {
        let Some(token) = lock(&self.state).progress.get(session_id).cloned() else {
            return;
        };
        let _ = self.client.notify::<notif::Progress>(ProgressParams {
            token: NumberOrString::String(token),
            value: ProgressParamsValue::WorkDone(WorkDoneProgress::Report(
                WorkDoneProgressReport {
                    message: Some(message.to_owned()),
                    ..WorkDoneProgressReport::default()
                },
            )),
        });
    }

    fn progress_end(&self, session_id: &str, message: &str) {
        let Some(token) = lock(&self.state).progress.remove(session_id) else {
            return;
        };
        let _ = self.client.notify::<notif::Progress>(ProgressParams {
            token: NumberOrString::String(token),
            value: ProgressParamsValue::WorkDone(WorkDoneProgress::End(WorkDoneProgressEnd {
                message: Some(message.to_owned()),
            })),
        });
    }

    // --- turns ---------------------------------------------------------------------------

    /// Starts a prompt in the root's plain session in the background. `question` (when
    /// set) is added to the chat file as the person's entry first.
    fn start_turn(
        self: &Arc<Self>,
        root: PathBuf,
        question: Option<String>,
        prompt: Prompt,
        show_chat: bool,
    ) {
        let Some(host) = self.host() else {
            return;
        };
        let plain = self.clone();
        tokio::spawn(async move {
            let session_id = match plain.session_for(&host, &root).await {
                Ok(id) => id,
                Err(e) => {
                    plain.show(MessageType::ERROR, format!("kiln: {e}"));
                    return;
                }
            };
            if let Some(q) = &question {
                plain.chat(&session_id, ChatOp::End(format!("{}\n\n", q.trim_end())));
            }
            plain.chat(
                &session_id,
                ChatOp::End(format!("## kiln\n\n\n\n{YOU}\n\n")),
            );
            if show_chat {
                plain.chat(&session_id, ChatOp::Show);
            }
            let first_line = prompt.text.lines().next().unwrap_or("").to_owned();
            plain.progress_begin(&session_id, &format!("kiln: {first_line}"));
            let result = host.prompt(&session_id, prompt).await;
            plain.chat(&session_id, ChatOp::Answer("\n".into()));
            let end = match result {
                Ok(r) => match (&r.stop, &r.denied) {
                    (Err(message), _) => {
                        plain.show(MessageType::ERROR, format!("kiln: {message}"));
                        "failed".to_owned()
                    }
                    (Ok(_), Some(denied)) => {
                        plain.show(MessageType::WARNING, format!("kiln stopped: {denied}"));
                        "stopped".to_owned()
                    }
                    (Ok(stop), None) => match stop {
                        crate::agent::StopReason::EndTurn => "done",
                        crate::agent::StopReason::Cancelled => "cancelled",
                        crate::agent::StopReason::MaxTokens => "stopped at the output limit",
                        crate::agent::StopReason::MaxTurnRequests => "stopped at the request limit",
                        crate::agent::StopReason::Refusal => "the model refused",
                    }
                    .to_owned(),
                },
                Err(e) => {
                    plain.show(MessageType::ERROR, format!("kiln: {e}"));
                    "failed".to_owned()
                }
            };
            plain.progress_end(&session_id, &end);
        });
    }

    async fn session_for(&self, host: &Host, root: &Path) -> Result<String, String> {
        if let Some(id) = lock(&self.state).sessions.get(root) {
            return Ok(id.clone());
        }
        let opened = host.new_session(root, None, None).await?;
        for p in &opened.problems {
            self.show(MessageType::WARNING, format!("kiln: {p}"));
        }
        let mut state = lock(&self.state);
        state
            .sessions
            .insert(root.to_path_buf(), opened.session_id.clone());
        state
            .roots
            .insert(opened.session_id.clone(), root.to_path_buf());
        Ok(opened.session_id)
    }

    fn show_document(&self, path: &Path, otherwise: &str) {
        let client = self.client.clone();
        let path = path.to_path_buf();
        let otherwise = otherwise.to_owned();
        tokio::spawn(async move {
            show_or_say(&client, &path, &otherwise).await;
        });
    }

    // --- permission questions ------------------------------------------------------------

    /// Asks the person through the plain path: a proposal for file changes, a message
    /// request (or a pending approval) for the rest.
    pub fn ask(self: &Arc<Self>, request: PermissionRequest) -> BoxFuture<'static, Outcome> {
        let diffs: Vec<(PathBuf, Option<String>, Option<String>)> = request
            .content
            .iter()
            .filter_map(|c| match c {
                ToolContent::Diff {
                    path,
                    old_text,
                    new_text,
                } => Some((path.clone(), old_text.clone(), new_text.clone())),
                ToolContent::Text(_) => None,
            })
            .collect();
        let plain = self.clone();
        if diffs.is_empty() {
            return Box::pin(async move { plain.ask_message(request).await });
        }
        Box::pin(async move { plain.propose(request, diffs).await })
    }

    async fn propose(
        self: Arc<Self>,
        request: PermissionRequest,
        diffs: Vec<(PathBuf, Option<String>, Option<String>)>,
    ) -> Outcome {
        let root = lock(&self.state)
            .roots
            .get(&request.session_id)
            .cloned()
            .or_else(|| {
                diffs
                    .first()
                    .and_then(|d| d.0.parent().map(Path::to_path_buf))
            })
            .unwrap_or_default();
        let files: Vec<ProposalFile> = diffs
            .iter()
            .filter_map(|(path, old, new)| {
                Some(ProposalFile {
                    uri: Url::from_file_path(path).ok()?,
                    path: path.clone(),
                    diff: proposal::diff_of(old.as_deref(), new.as_deref()),
                })
            })
            .collect();
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut state = lock(&self.state);
            state.next_id += 1;
            state.next_id
        };
        let diff_file = root.join(format!(".kiln/proposals/{id}.diff"));
        let patch: String = files
            .iter()
            .map(|f| {
                let name = crate::tools::display_path(&root, &f.path);
                render_unified(
                    &f.diff,
                    &RenderOptions {
                        old_path: &name,
                        new_path: &name,
                        color: false,
                    },
                )
            })
            .collect();
        let (added, removed) = stats(&files);
        let header = format!(
            "# kiln proposal {id}: {} (+{added} −{removed})\n# code actions: accept proposal {id}, accept hunk (under the cursor), reject\n",
            request.tool_call.title
        );
        if let Err(e) = write_file(&diff_file, &format!("{header}{patch}")) {
            tracing::warn!("cannot write {}: {e}", diff_file.display());
        }
        lock(&self.state).proposals.insert(
            id,
            PendingProposal {
                title: request.tool_call.title.clone(),
                files,
                diff_file: diff_file.clone(),
                reply: Some(tx),
            },
        );
        self.publish_diagnostics();
        self.show(
            MessageType::INFO,
            format!(
                "kiln proposal {id}: {} (+{added} −{removed}); accept or reject it with a code action",
                request.tool_call.title
            ),
        );
        let shown = crate::tools::display_path(&root, &diff_file);
        self.show_document(&diff_file, &format!("kiln: the diff is in {shown}"));
        // Resolved by a code action or a command; dropped (the turn was cancelled) → cleaned.
        let guard = Cleanup {
            plain: self.clone(),
            proposal: Some(id),
            approval: None,
        };
        let outcome = rx.await.unwrap_or(Outcome::Cancelled);
        drop(guard);
        outcome
    }

    async fn ask_message(self: Arc<Self>, request: PermissionRequest) -> Outcome {
        let mut message = format!("kiln wants to: {}", request.tool_call.title);
        if !request.reason.is_empty() {
            message.push_str(&format!(" ({})", request.reason));
        }
        let actions = ["Allow once", "Always allow", "Reject"];
        let params = ShowMessageRequestParams {
            typ: MessageType::WARNING,
            message,
            actions: Some(
                actions
                    .iter()
                    .map(|a| MessageActionItem {
                        title: (*a).to_owned(),
                        properties: Default::default(),
                    })
                    .collect(),
            ),
        };
        match self.client.request::<req::ShowMessageRequest>(params).await {
            Ok(Some(item)) => match item.title.as_str() {
                "Allow once" => Outcome::AllowOnce,
                "Always allow" => Outcome::AllowAlways,
                _ => Outcome::RejectOnce { feedback: None },
            },
            Ok(None) => Outcome::RejectOnce { feedback: None },
            // Helix 25.01 answers MethodNotFound: a pending approval with code actions.
            Err(_) => self.pending_approval(request).await,
        }
    }

    async fn pending_approval(self: Arc<Self>, request: PermissionRequest) -> Outcome {
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut state = lock(&self.state);
            state.next_id += 1;
            let id = state.next_id;
            state.approvals.insert(
                id,
                PendingApproval {
                    title: request.tool_call.title.clone(),
                    reply: Some(tx),
                },
            );
            id
        };
        self.show(
            MessageType::WARNING,
            format!(
                "kiln wants to: {}{}. Run the code action \"kiln: allow\" or \"kiln: reject\" (approval {id}).",
                request.tool_call.title,
                if request.reason.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", request.reason)
                }
            ),
        );
        let guard = Cleanup {
            plain: self.clone(),
            proposal: None,
            approval: Some(id),
        };
        let outcome = rx.await.unwrap_or(Outcome::Cancelled);
        drop(guard);
        outcome
    }

    /// Answers a pending proposal; `false` when there is none with that id.
    /// Answers a pending proposal (`approval` false) or approval; an error when it was
    /// already decided or withdrawn.
    fn decide(&self, approval: bool, id: Option<u32>, outcome: Outcome) -> Result<(), String> {
        let reply = {
            let mut state = lock(&self.state);
            let id = id.unwrap_or(0);
            if approval {
                state.approvals.get_mut(&id).and_then(|a| a.reply.take())
            } else {
                state.proposals.get_mut(&id).and_then(|p| p.reply.take())
            }
        };
        match reply.map(|tx| tx.send(outcome)) {
            Some(Ok(())) => Ok(()),
            _ => Err(format!(
                "that {} was already decided (or its turn was cancelled)",
                if approval { "approval" } else { "proposal" }
            )),
        }
    }

    fn forget(&self, proposal: Option<u32>, approval: Option<u32>) {
        let removed = {
            let mut state = lock(&self.state);
            if let Some(id) = approval {
                state.approvals.remove(&id);
            }
            proposal.and_then(|id| state.proposals.remove(&id))
        };
        if let Some(p) = removed {
            let _ = std::fs::remove_file(&p.diff_file);
            self.publish_diagnostics();
        }
    }

    /// One Hint diagnostic per pending hunk, on the lines it replaces.
    fn publish_diagnostics(&self) {
        let (by_uri, stale) = {
            let mut state = lock(&self.state);
            let mut by_uri: BTreeMap<String, (Url, Vec<Diagnostic>)> = BTreeMap::new();
            for (id, p) in &state.proposals {
                for f in &p.files {
                    let n = f.diff.hunks.len();
                    for (k, h) in f.diff.hunks.iter().enumerate() {
                        let (line, end) = changed_lines(h);
                        let start = lsp_types::Position::new(line, 0);
                        let stop = lsp_types::Position::new(end, 0);
                        let entry = by_uri
                            .entry(f.uri.to_string())
                            .or_insert_with(|| (f.uri.clone(), Vec::new()));
                        entry.1.push(Diagnostic {
                            range: lsp_types::Range::new(start, stop),
                            severity: Some(DiagnosticSeverity::HINT),
                            code: Some(NumberOrString::String(format!("proposal-{id}"))),
                            source: Some("kiln".into()),
                            message: format!(
                                "kiln proposal {id}, hunk {}/{n} (+{} −{}): {}",
                                k + 1,
                                h.n_added(),
                                h.n_removed(),
                                p.title
                            ),
                            data: Some(json!({ "proposal": id, "hunk": h.id.to_string() })),
                            ..Diagnostic::default()
                        });
                    }
                }
            }
            let now: Vec<Url> = by_uri.values().map(|(u, _)| u.clone()).collect();
            let stale: Vec<Url> = state
                .published
                .iter()
                .filter(|u| !now.contains(u))
                .cloned()
                .collect();
            state.published = now;
            (by_uri, stale)
        };
        for uri in stale {
            let _ = self
                .client
                .notify::<notif::PublishDiagnostics>(PublishDiagnosticsParams {
                    uri,
                    diagnostics: Vec::new(),
                    version: None,
                });
        }
        for (_, (uri, diagnostics)) in by_uri {
            let _ = self
                .client
                .notify::<notif::PublishDiagnostics>(PublishDiagnosticsParams {
                    uri,
                    diagnostics,
                    version: None,
                });
        }
    }

    // --- code actions and commands -------------------------------------------------------

    /// The code actions for `uri` at `range`: the pending decisions first, then the tasks.
    pub fn code_actions(&self, params: &lsp_types::CodeActionParams) -> Vec<CodeAction> {
        let uri = &params.text_document.uri;
        let range = params.range;
        let path = uri.to_file_path().ok();
        let mut out = Vec::new();
        let state = lock(&self.state);
        for (id, p) in &state.proposals {
            let here = p.files.iter().any(|f| &f.uri == uri)
                || path.as_deref() == Some(p.diff_file.as_path());
            let (added, removed) = stats(&p.files);
            out.push(self.action(
                format!("kiln: accept proposal {id} (+{added} −{removed})"),
                CodeActionKind::QUICKFIX,
                json!({ "action": "accept", "proposal": id }),
                here,
            ));
            if here && let Some(hunk) = self.hunk_at(p, path.as_deref(), range.start.line) {
                out.push(self.action(
                    format!("kiln: accept hunk {} of proposal {id}", hunk.1),
                    CodeActionKind::QUICKFIX,
                    json!({ "action": "acceptHunk", "proposal": id, "hunk": hunk.0.to_string() }),
                    true,
                ));
            }
            out.push(self.action(
                format!("kiln: reject proposal {id}"),
                CodeActionKind::QUICKFIX,
                json!({ "action": "reject", "proposal": id }),
                false,
            ));
            out.push(self.action(
                format!("kiln: show diff {id}"),
                CodeActionKind::EMPTY,
                json!({ "action": "showDiff", "proposal": id }),
                false,
            ));
        }
        for (id, a) in &state.approvals {
            out.push(self.action(
                format!("kiln: allow {}", a.title),
                CodeActionKind::QUICKFIX,
                json!({ "action": "allow", "approval": id }),
                true,
            ));
            out.push(self.action(
                format!("kiln: always allow {}", a.title),
                CodeActionKind::QUICKFIX,
                json!({ "action": "allowAlways", "approval": id }),
                false,
            ));
            out.push(self.action(
                format!("kiln: reject {}", a.title),
                CodeActionKind::QUICKFIX,
                json!({ "action": "deny", "approval": id }),
                false,
            ));
        }
        let busy = !state.progress.is_empty();
        let deciding = !state.proposals.is_empty() || !state.approvals.is_empty();
        drop(state);
        // Requests the editor makes by itself (VS Code's light bulb on every cursor move)
        // get only the pending decisions: the tasks are offered when the person asks.
        if params.context.trigger_kind == Some(lsp_types::CodeActionTriggerKind::AUTOMATIC) {
            return out;
        }
        let at = json!({ "uri": uri, "range": range });
        let is_chat = path.as_deref().is_some_and(|p| p.ends_with(CHAT_FILE));
        if is_chat {
            out.push(self.action(
                "kiln: send".into(),
                CodeActionKind::EMPTY,
                json!({ "action": "send", "at": at }),
                true,
            ));
        } else if path.is_some() {
            let problems: Vec<Value> = params
                .context
                .diagnostics
                .iter()
                .filter(|d| d.source.as_deref() != Some("kiln"))
                .map(|d| json!({ "line": d.range.start.line + 1, "message": d.message, "severity": severity(d.severity) }))
                .collect();
            let with = |action: &str| json!({ "action": action, "at": at, "problems": problems });
            out.push(self.action(
                "kiln: explain".into(),
                CodeActionKind::EMPTY,
                with("explain"),
                false,
            ));
            out.push(self.action(
                "kiln: fix this".into(),
                CodeActionKind::QUICKFIX,
                with("fix"),
                !problems.is_empty() && !deciding,
            ));
            out.push(self.action(
                "kiln: refactor…".into(),
                CodeActionKind::REFACTOR,
                with("refactor"),
                false,
            ));
            let cursor = range.start.line == range.end.line
                && range.end.character.saturating_sub(range.start.character) <= 1;
            if !cursor {
                out.push(self.action(
                    "kiln: ask about selection".into(),
                    CodeActionKind::EMPTY,
                    with("ask"),
                    false,
                ));
            }
        }
        if busy {
            out.push(self.action(
                "kiln: cancel".into(),
                CodeActionKind::EMPTY,
                json!({ "action": "cancel" }),
                false,
            ));
        }
        out.push(self.action(
            "kiln: undo the last turn's changes".into(),
            CodeActionKind::EMPTY,
            json!({ "action": "undo" }),
            false,
        ));
        out
    }

    fn action(
        &self,
        title: String,
        kind: CodeActionKind,
        data: Value,
        preferred: bool,
    ) -> CodeAction {
        let data = json!({ "kiln": data });
        CodeAction {
            command: (!self.abilities.resolve).then(|| Command {
                title: title.clone(),
                command: "kiln.action".into(),
                arguments: Some(vec![data.clone()]),
            }),
            title,
            kind: Some(kind),
            is_preferred: preferred.then_some(true),
            data: Some(data),
            ..CodeAction::default()
        }
    }

    /// The hunk under `line`: in the file (its old line range) or in the diff file (the
    /// `@@` header's section).
    fn hunk_at(
        &self,
        p: &PendingProposal,
        path: Option<&Path>,
        line: u32,
    ) -> Option<(HunkId, usize)> {
        let path = path?;
        if path == p.diff_file {
            let text = std::fs::read_to_string(&p.diff_file).ok()?;
            let headers = text
                .lines()
                .take(line as usize + 1)
                .filter(|l| l.starts_with("@@"))
                .count();
            let hunks: Vec<HunkId> = p
                .files
                .iter()
                .flat_map(|f| f.diff.hunks.iter().map(|h| h.id))
                .collect();
            return headers
                .checked_sub(1)
                .and_then(|i| hunks.get(i).map(|h| (*h, i + 1)));
        }
        let f = p.files.iter().find(|f| f.path == path)?;
        f.diff
            .hunks
            .iter()
            .enumerate()
            .find(|(_, h)| {
                let (first, end) = changed_lines(h);
                line >= first && line < end.max(first + 1)
            })
            .map(|(i, h)| (h.id, i + 1))
    }

    /// Does what a code action (or `kiln.action`) names; never waits on the model.
    pub fn perform(self: &Arc<Self>, data: &Value) -> Result<(), String> {
        let data = &data["kiln"];
        let proposal = data["proposal"].as_u64().map(|n| n as u32);
        let approval = data["approval"].as_u64().map(|n| n as u32);
        match data["action"].as_str().unwrap_or_default() {
            "accept" => self.decide(false, proposal, Outcome::AllowOnce),
            "acceptHunk" => {
                let hunk = data["hunk"]
                    .as_str()
                    .and_then(|h| u64::from_str_radix(h, 16).ok())
                    .ok_or("no hunk named")?;
                let hunks = vec![HunkId(hunk)];
                let outcome = Outcome::AcceptHunks {
                    hunks,
                    feedback: None,
                };
                self.decide(false, proposal, outcome)
            }
            "reject" => self.decide(false, proposal, Outcome::RejectOnce { feedback: None }),
            "showDiff" => {
                let file = lock(&self.state)
                    .proposals
                    .get(&proposal.unwrap_or(0))
                    .map(|p| p.diff_file.clone())
                    .ok_or("that proposal was already decided (or its turn was cancelled)")?;
                self.show_document(&file, "");
                Ok(())
            }
            "allow" => self.decide(true, approval, Outcome::AllowOnce),
            "allowAlways" => self.decide(true, approval, Outcome::AllowAlways),
            "deny" => self.decide(true, approval, Outcome::RejectOnce { feedback: None }),
            "cancel" => {
                let host = self.host().ok_or("kiln is not ready")?;
                let ids: Vec<String> = lock(&self.state).progress.keys().cloned().collect();
                for id in ids {
                    let _ = host.cancel(&id);
                }
                Ok(())
            }
            "undo" => {
                let host = self.host().ok_or("kiln is not ready")?;
                let plain = self.clone();
                let ids: Vec<String> = lock(&self.state).roots.keys().cloned().collect();
                tokio::spawn(async move {
                    let Some(id) = ids.first() else {
                        plain.show(MessageType::INFO, "kiln: nothing to undo yet");
                        return;
                    };
                    match host.undo_last_turn(id).await {
                        Ok(text) => plain.show(MessageType::INFO, format!("kiln: {text}")),
                        Err(e) => plain.show(MessageType::WARNING, format!("kiln: {e}")),
                    }
                });
                Ok(())
            }
            "send" => {
                let path = path_of(&data["at"])?;
                let root = chat_root(&path).ok_or("kiln: send works in .kiln/chat.md")?;
                let text = self.text_of(&path).unwrap_or_default();
                let question = last_question(&text);
                if question.trim().is_empty() {
                    return Err(format!(
                        "write your question below the last \"{YOU}\" heading of .kiln/chat.md, then run kiln: send"
                    ));
                }
                let prompt = Prompt {
                    text: question,
                    ..Prompt::default()
                };
                self.start_turn(root, None, prompt, false);
                Ok(())
            }
            action @ ("explain" | "fix" | "refactor" | "ask") => {
                let path = path_of(&data["at"])?;
                let root = self.root_of(&path)?;
                let range: lsp_types::Range = serde_json::from_value(data["at"]["range"].clone())
                    .map_err(|e| format!("bad range: {e}"))?;
                let (selection, first, last) = self.selection(&path, range);
                let rel = crate::tools::display_path(&root, &path);
                let lines = if first == last {
                    format!("line {first}")
                } else {
                    format!("lines {first}–{last}")
                };
                let found: Vec<crate::agent::mentions::Problem> = data["problems"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .map(|p| crate::agent::mentions::Problem {
                                path: path.clone(),
                                line: p["line"].as_u64().unwrap_or(1) as u32,
                                severity: p["severity"].as_str().unwrap_or("error").to_owned(),
                                message: p["message"].as_str().unwrap_or_default().to_owned(),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let problems: Vec<String> = found
                    .iter()
                    .map(|p| format!("line {}: {}", p.line, p.message))
                    .collect();
                let context = PromptContext {
                    selection: Some(crate::agent::mentions::Selection {
                        path: path.clone(),
                        start_line: first,
                        end_line: last,
                        text: selection.clone(),
                    }),
                    problems: found,
                    terminal: None,
                };
                let quoted = format!("```\n{}\n```", selection.trim_end());
                match action {
                    "explain" => {
                        let question = format!("Explain `{rel}` {lines}:\n\n{quoted}");
                        let prompt = Prompt {
                            text: format!(
                                "Explain the selected code in {rel} ({lines}). Do not change any file.\n\n@selection"
                            ),
                            context,
                            ..Prompt::default()
                        };
                        self.start_turn(root, Some(question), prompt, true);
                    }
                    "fix" => {
                        let what = if problems.is_empty() {
                            format!("Fix the problem in `{rel}` {lines}.")
                        } else {
                            format!("Fix this in `{rel}`: {}", problems.join("; "))
                        };
                        let question = format!("{what}\n\n{quoted}");
                        let prompt = Prompt {
                            text: format!("{what}\n\n@selection @problems"),
                            context,
                            ..Prompt::default()
                        };
                        // The proposal's diff is what the person looks at; the chat file keeps the
                        // record without taking the focus.
                        self.start_turn(root, Some(question), prompt, false);
                    }
                    _ => {
                        // The person says how: the chat file gets the selection and an
                        // open question; "kiln: send" asks it.
                        let verb = if action == "refactor" {
                            "Refactor"
                        } else {
                            "About"
                        };
                        let entry = format!("{verb} `{rel}` {lines}:\n\n{quoted}\n\n");
                        let plain = self.clone();
                        let host = self.host().ok_or("kiln is not ready")?;
                        tokio::spawn(async move {
                            match plain.session_for(&host, &root).await {
                                Ok(id) => {
                                    plain.chat(&id, ChatOp::End(entry));
                                    plain.chat(&id, ChatOp::Show);
                                    plain.show(MessageType::INFO, "kiln: write your request at the end of .kiln/chat.md, then run the code action \"kiln: send\"");
                                }
                                Err(e) => plain.show(MessageType::ERROR, format!("kiln: {e}")),
                            }
                        });
                    }
                }
                Ok(())
            }
            other => Err(format!("unknown kiln action {other:?}")),
        }
    }

    /// Answers the plain path's requests ([`REQUESTS`]) at once; the work they start runs
    /// in the background.
    pub fn request(
        self: &Arc<Self>,
        method: &str,
        params: Value,
        default_root: Option<PathBuf>,
    ) -> Result<Value, ResponseError> {
        fn decode<P: serde::de::DeserializeOwned>(
            method: &str,
            params: Value,
        ) -> Result<P, ResponseError> {
            serde_json::from_value(params).map_err(|err| {
                ResponseError::new(
                    ErrorCode::INVALID_PARAMS,
                    format!("invalid params for {method}: {err}"),
                )
            })
        }
        match method {
            req::CodeActionRequest::METHOD => {
                let p: lsp_types::CodeActionParams = decode(method, params)?;
                Ok(serde_json::to_value(self.code_actions(&p)).unwrap_or(Value::Null))
            }
            req::CodeActionResolveRequest::METHOD => {
                let action: CodeAction = decode(method, params)?;
                if let Some(data) = &action.data
                    && let Err(message) = self.perform(data)
                {
                    self.show(MessageType::WARNING, format!("kiln: {message}"));
                }
                Ok(serde_json::to_value(action).unwrap_or(Value::Null))
            }
            _ => {
                let p: lsp_types::ExecuteCommandParams = decode(method, params)?;
                match self.execute(&p.command, &p.arguments, default_root) {
                    Ok(()) => Ok(Value::Null),
                    Err(message) => {
                        self.show(MessageType::WARNING, format!("kiln: {message}"));
                        Err(ResponseError::new(ErrorCode::REQUEST_FAILED, message))
                    }
                }
            }
        }
    }

    /// `workspace/executeCommand`: `kiln.prompt` {prompt, uri?}, `kiln.cancel`,
    /// `kiln.accept` {proposal?, hunk?}, `kiln.reject` {proposal?}, `kiln.undo`, and
    /// `kiln.action` (what the code actions carry).
    pub fn execute(
        self: &Arc<Self>,
        command: &str,
        args: &[Value],
        default_root: Option<PathBuf>,
    ) -> Result<(), String> {
        let arg = args.first().cloned().unwrap_or(Value::Null);
        let newest = || lock(&self.state).proposals.keys().next_back().copied();
        match command {
            "kiln.action" => self.perform(&arg),
            "kiln.prompt" => {
                let text = arg["prompt"]
                    .as_str()
                    .or(arg.as_str())
                    .ok_or("kiln.prompt takes {\"prompt\": \"…\"}")?
                    .to_owned();
                let root = match arg["uri"]
                    .as_str()
                    .and_then(|u| Url::parse(u).ok())
                    .and_then(|u| u.to_file_path().ok())
                {
                    Some(p) => self.root_of(&p)?,
                    None => default_root.ok_or("no workspace folder")?,
                };
                self.start_turn(
                    root,
                    Some(text.clone()),
                    Prompt {
                        text,
                        ..Prompt::default()
                    },
                    true,
                );
                Ok(())
            }
            "kiln.cancel" => self.perform(&json!({ "kiln": { "action": "cancel" } })),
            "kiln.undo" => self.perform(&json!({ "kiln": { "action": "undo" } })),
            "kiln.accept" => {
                let id = arg["proposal"]
                    .as_u64()
                    .map(|n| n as u32)
                    .or_else(newest)
                    .ok_or("no proposal is pending")?;
                let action = match arg["hunk"].as_str() {
                    Some(h) => json!({ "action": "acceptHunk", "proposal": id, "hunk": h }),
                    None => json!({ "action": "accept", "proposal": id }),
                };
                self.perform(&json!({ "kiln": action }))
            }
            "kiln.reject" => {
                let id = arg["proposal"]
                    .as_u64()
                    .map(|n| n as u32)
                    .or_else(newest)
                    .ok_or("no proposal is pending")?;
                self.perform(&json!({ "kiln": { "action": "reject", "proposal": id } }))
            }
            other => Err(format!(
                "unknown command {other}; kiln's are {}",
                COMMANDS.join(", ")
            )),
        }
    }

    fn root_of(&self, path: &Path) -> Result<PathBuf, String> {
        let ws = self.workspace.read();
        ws.roots()
            .iter()
            .filter(|r| path.starts_with(r))
            .max_by_key(|r| r.components().count())
            .cloned()
            .or_else(|| ws.roots().first().cloned())
            .ok_or_else(|| "open a workspace folder first: kiln works inside one".to_owned())
    }

    fn text_of(&self, path: &Path) -> Option<String> {
        let buffer = self
            .workspace
            .buffer(path)
            .map(|(rope, _)| rope.to_string());
        buffer.or_else(|| std::fs::read_to_string(path).ok())
    }

    /// The selected text (whole lines when the selection is empty: the cursor's line) and
    /// its one-based first and last lines.
    fn selection(&self, path: &Path, range: lsp_types::Range) -> (String, u32, u32) {
        let text = self.text_of(path).unwrap_or_default();
        let rope = Rope::from_str(&text);
        let enc = self.abilities.encoding;
        let first = range.start.line;
        let mut last = range.end.line;
        if range.end.character == 0 && last > first {
            last -= 1;
        }
        // Helix's cursor is a one-character selection: the same as no selection.
        let cursor = range.start.line == range.end.line
            && range.end.character.saturating_sub(range.start.character) <= 1;
        let selected = if cursor {
            let line = (first as usize).min(rope.len_lines().saturating_sub(1));
            rope.line(line).to_string()
        } else {
            let r = crate::frontend::lsp::convert::range(range);
            let (s, e) = crate::text::position::to_char_range(&rope, r, enc);
            rope.slice(s.0..e.0).to_string()
        };
        (selected, first + 1, last + 1)
    }
}

/// Cleans a pending proposal or approval up when its question ends, however it ends.
struct Cleanup {
    plain: Arc<Plain>,
    proposal: Option<u32>,
    approval: Option<u32>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.plain.forget(self.proposal, self.approval);
    }
}

/// The old lines a hunk changes, without its context: `(first, end)`, zero-based and
/// half-open (equal for a pure insertion, which sits before `first`).
fn changed_lines(h: &crate::text::diff::Hunk) -> (u32, u32) {
    use crate::text::diff::LineKind;
    let mut old = h.old.start;
    let (mut first, mut end) = (None, None);
    for line in &h.lines {
        match line.kind {
            LineKind::Context => old += 1,
            LineKind::Removed => {
                first.get_or_insert(old);
                old += 1;
                end = Some(old);
            }
            LineKind::Added => {
                first.get_or_insert(old);
                end.get_or_insert(old);
            }
        }
    }
    let first = first.unwrap_or(h.old.start);
    (first, end.unwrap_or(first).max(first))
}

fn stats(files: &[ProposalFile]) -> (usize, usize) {
    files
        .iter()
        .flat_map(|f| f.diff.hunks.iter())
        .fold((0, 0), |(a, r), h| (a + h.n_added(), r + h.n_removed()))
}

fn severity(s: Option<DiagnosticSeverity>) -> &'static str {
    match s {
        Some(DiagnosticSeverity::WARNING) => "warning",
        Some(DiagnosticSeverity::INFORMATION) => "info",
        Some(DiagnosticSeverity::HINT) => "hint",
        _ => "error",
    }
}

fn path_of(at: &Value) -> Result<PathBuf, String> {
    at["uri"]
        .as_str()
        .and_then(|u| Url::parse(u).ok())
        .and_then(|u| u.to_file_path().ok())
        .ok_or_else(|| "the code action names no file".to_owned())
}

/// The workspace root of a `.kiln/chat.md` path.
fn chat_root(path: &Path) -> Option<PathBuf> {
    path.ends_with(CHAT_FILE)
        .then(|| path.parent()?.parent().map(Path::to_path_buf))
        .flatten()
}

/// What the person wrote below the last `## You` heading.
pub fn last_question(text: &str) -> String {
    match heading_at(text) {
        Some(at) => text[at + YOU.len()..].trim().to_owned(),
        None => String::new(),
    }
}

/// Where the answer's next text goes: before the blank line above the last `## You`
/// heading (written with the `## kiln` heading), so the heading stays on its own line.
fn answer_at(text: &str) -> usize {
    match heading_at(text) {
        Some(h) if text[..h].ends_with("\n\n") => h - 2,
        Some(h) => h,
        None => text.len(),
    }
}

/// The byte offset of the last `## You` heading line.
fn heading_at(text: &str) -> Option<usize> {
    let mut found = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == YOU {
            found = Some(offset);
        }
        offset += line.len();
    }
    found
}

fn write_file(path: &Path, text: &str) -> std::io::Result<()> {
    apply::write_atomic(path, text.as_bytes())
}

/// Writes a session's chat file: each batch of queued text is one edit, through the editor
/// when the file is open there (versioned, retried when the person typed in between),
/// else on disk.
async fn write_chat(
    client: ClientSocket,
    workspace: SharedWorkspace,
    abilities: PlainAbilities,
    path: PathBuf,
    mut rx: mpsc::UnboundedReceiver<ChatOp>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        // Consecutive ops of one kind go in one edit.
        let mut merged: Vec<ChatOp> = Vec::new();
        for op in batch {
            match (merged.last_mut(), op) {
                (Some(ChatOp::Answer(a)), ChatOp::Answer(b)) => a.push_str(&b),
                (Some(ChatOp::End(a)), ChatOp::End(b)) => a.push_str(&b),
                (_, op) => merged.push(op),
            }
        }
        for op in merged {
            if matches!(op, ChatOp::Show) {
                show_and_wait(&client, &workspace, &path).await;
                continue;
            }
            if let Err(e) = chat_edit(&client, &workspace, abilities, &path, &op).await {
                tracing::warn!("cannot write {}: {e}", path.display());
            }
        }
    }
}

/// Shows `path` with `window/showDocument`, tried even when not advertised (Helix 25.01
/// advertises none but acts on it); when the editor cannot, says `otherwise` (if any).
async fn show_or_say(client: &ClientSocket, path: &Path, otherwise: &str) -> bool {
    let Ok(uri) = Url::from_file_path(path) else {
        return false;
    };
    let shown = client
        .request::<req::ShowDocument>(ShowDocumentParams {
            uri,
            external: Some(false),
            take_focus: Some(true),
            selection: None,
        })
        .await
        .is_ok_and(|r| r.success);
    if !shown && !otherwise.is_empty() {
        let _ = client.notify::<notif::ShowMessage>(ShowMessageParams {
            typ: MessageType::INFO,
            message: otherwise.to_owned(),
        });
    }
    shown
}

/// Asks the editor to show the chat file and waits (up to 2 s) for it to be open there.
async fn show_and_wait(client: &ClientSocket, workspace: &SharedWorkspace, path: &Path) {
    if !show_or_say(client, path, "kiln's answer is in .kiln/chat.md").await {
        return;
    }
    let key = DocKey::path(path);
    workspace
        .wait_for(Duration::from_secs(2), |ws| ws.document(&key).is_some())
        .await;
}

async fn chat_edit(
    client: &ClientSocket,
    workspace: &SharedWorkspace,
    abilities: PlainAbilities,
    path: &Path,
    op: &ChatOp,
) -> Result<(), String> {
    let place = |text: &str| -> usize {
        match op {
            ChatOp::Answer(_) => answer_at(text),
            ChatOp::End(_) | ChatOp::Show => text.len(),
        }
    };
    let insert = match op {
        ChatOp::Answer(t) | ChatOp::End(t) => t.as_str(),
        ChatOp::Show => return Ok(()),
    };
    for _attempt in 0..5 {
        let open = workspace.buffer(path);
        let Some((rope, version)) = open.filter(|_| abilities.apply_edit) else {
            let mut text = std::fs::read_to_string(path).unwrap_or_else(|_| CHAT_HEADER.to_owned());
            let at = place(&text);
            text.insert_str(at, insert);
            return write_file(path, &text).map_err(|e| e.to_string());
        };
        let text = rope.to_string();
        let at = rope.byte_to_char(place(&text));
        let pos = to_position(&rope, CharIdx(at), abilities.encoding);
        let pos = lsp_types::Position::new(pos.line, pos.character);
        let edit = TextEdit {
            range: lsp_types::Range::new(pos, pos),
            new_text: insert.to_owned(),
        };
        match edit_open_document(client, workspace, path, version, vec![edit], "kiln: chat").await?
        {
            Edited::Applied => return Ok(()),
            // The person typed in between: place the text again in what is there now.
            Edited::Refused(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    Err("the editor kept refusing the edit (the file changed under it each time)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_go_above_the_last_you_heading_and_keep_it_on_its_own_line() {
        let mut text = format!("{CHAT_HEADER}question\n\n## kiln\n\n\n\n{YOU}\n\n");
        for piece in ["Made ", "it ", "loud."] {
            let at = answer_at(&text);
            text.insert_str(at, piece);
        }
        assert!(
            text.ends_with("## kiln\n\nMade it loud.\n\n## You\n\n"),
            "{text}"
        );
        assert_eq!(last_question(&text), "");
    }

    #[test]
    fn the_question_is_what_follows_the_last_you_heading() {
        let text = "# kiln chat\n\n## You\n\nfirst\n\n## kiln\n\nanswer\n\n## You\n\nsecond one\n";
        assert_eq!(last_question(text), "second one");
        assert_eq!(heading_at(text), text.rfind("## You"));
        assert_eq!(last_question("no heading"), "");
        assert_eq!(
            chat_root(Path::new("/w/.kiln/chat.md")),
            Some(PathBuf::from("/w"))
        );
        assert_eq!(chat_root(Path::new("/w/notes.md")), None);
    }
}
