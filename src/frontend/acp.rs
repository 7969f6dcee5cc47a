//! `kiln acp`: the Agent Client Protocol v1 over stdio (newline-delimited JSON-RPC) for Zed,
//! JetBrains and the Neovim ACP plugins, on the pinned `agent-client-protocol` crate.
//!
//! The sessions are the editor host's ([`Host`]), the same as `kiln lsp`'s. Messages are
//! built as JSON in the shapes `protocol/acp.md` documents and then decoded into the
//! crate's types, so what goes out is checked against the official schema types on the
//! way. Handlers that wait (prompts, model detection, replays, the client's answers) run
//! as spawned tasks: the dispatch loop never waits, so `session/cancel` always gets through.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::schema::{
    CancelNotification, InitializeRequest, InitializeResponse, ListSessionsRequest,
    ListSessionsResponse, LoadSessionRequest, LoadSessionResponse, NewSessionRequest,
    NewSessionResponse, PromptRequest, PromptResponse, ReadTextFileRequest,
    RequestPermissionRequest, SessionNotification, SetSessionConfigOptionRequest,
    SetSessionConfigOptionResponse, SetSessionModeRequest, SetSessionModeResponse,
    WriteTextFileRequest,
};
use agent_client_protocol::{Agent, ByteStreams, Client, Error, v1};
use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio_util::compat::TokioAsyncReadCompatExt;

use super::host::{Host, Models, Modes};
use super::{permission, prompt, updates};
use crate::agent::update::NoticeLevel;
use crate::agent::{Outcome, PermissionRequest, Port, Update, apply, checkpoint};
use crate::text::hash::stable_hash;
use crate::tools::{FileChange, Files};
use crate::workspace::{Identity, ReadError, ReadResult, read_disk};

type Cx = v1::ConnectionTo<Client>;

/// The slash commands kiln offers in `available_commands_update`.
const COMMANDS: [(&str, &str, Option<&str>); 3] = [
    (
        "undo",
        "Undo the agent's changes of the last turn, keeping your own edits",
        None,
    ),
    ("checkpoints", "List this workspace's checkpoints", None),
    (
        "mode",
        "Switch mode (code, architect, ask, debug, …)",
        Some("mode id"),
    ),
];

/// What `initialize` told kiln about the client.
#[derive(Clone, Copy, Debug, Default)]
struct ClientCaps {
    read_text_file: bool,
    write_text_file: bool,
    notices: bool,
}

#[derive(Default)]
struct Shared {
    cx: OnceLock<Cx>,
    caps: OnceLock<ClientCaps>,
}

impl Shared {
    fn caps(&self) -> ClientCaps {
        self.caps.get().copied().unwrap_or_default()
    }
}

struct AcpPort {
    shared: Arc<Shared>,
    runtime: tokio::runtime::Handle,
}

/// Decodes JSON into one of the crate's types; a failure is kiln's bug, logged.
fn typed<T: DeserializeOwned>(value: Value, what: &str) -> Option<T> {
    match serde_json::from_value(value) {
        Ok(t) => Some(t),
        Err(err) => {
            tracing::error!("bug: kiln built an invalid ACP {what}: {err}");
            None
        }
    }
}

fn to_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// An update in ACP's shape for this client, or `None` when the client would not take it.
fn acp_update(update: &Update, caps: ClientCaps) -> Option<Value> {
    match update {
        Update::Notice { level, message } if caps.notices => Some(json!({
            "sessionUpdate": "notice",
            "severity": level.as_str(),
            "title": message,
        })),
        // Without notices, errors still reach the person, as text; the rest goes to the log.
        Update::Notice {
            level: NoticeLevel::Error,
            message,
        } => Some(json!({
            "sessionUpdate": "agent_message_chunk",
            "content": { "type": "text", "text": format!("\n\n**kiln:** {message}\n") },
        })),
        Update::Notice { message, .. } => {
            tracing::info!("{message}");
            None
        }
        Update::Usage(u) if u.size.is_none() => None,
        other => Some(updates::for_editor(other)),
    }
}

impl AcpPort {
    fn client_files(&self, session_id: &str) -> ClientFiles {
        ClientFiles {
            shared: self.shared.clone(),
            runtime: self.runtime.clone(),
            session_id: session_id.to_owned(),
        }
    }
}

impl Port for AcpPort {
    fn update(&self, session_id: &str, update: Update) {
        let (Some(cx), Some(value)) = (
            self.shared.cx.get(),
            acp_update(&update, self.shared.caps()),
        ) else {
            return;
        };
        let notification = json!({ "sessionId": session_id, "update": value });
        if let Some(n) = typed::<SessionNotification>(notification, "session/update")
            && cx.send_notification(n).is_err()
        {
            tracing::debug!("the client is gone; an update was dropped");
        }
    }

    fn request_permission(&self, request: PermissionRequest) -> BoxFuture<'static, Outcome> {
        let cx = self.shared.cx.get().cloned();
        let params = permission::request(&request);
        Box::pin(async move {
            let Some(cx) = cx else {
                return Outcome::Unanswerable("the editor is not connected".into());
            };
            let Some(req) = typed::<RequestPermissionRequest>(params, "permission request") else {
                return Outcome::Unanswerable("kiln could not build the question".into());
            };
            match cx.send_request(req).block_task().await {
                Ok(answer) => permission::outcome(&to_json(&answer)),
                Err(err) => Outcome::Unanswerable(format!(
                    "the editor did not answer the permission request ({})",
                    err.message
                )),
            }
        })
    }

    fn files(&self, session_id: &str) -> Arc<dyn Files> {
        Arc::new(self.client_files(session_id))
    }

    fn apply_change(
        &self,
        session_id: &str,
        change: FileChange,
        display: String,
    ) -> BoxFuture<'static, Result<(), String>> {
        let caps = self.shared.caps();
        let cx = self.shared.cx.get().cloned();
        let files = self.client_files(session_id);
        let session_id = session_id.to_owned();
        Box::pin(async move {
            let (Some(cx), true, Some(text)) = (cx, caps.write_text_file, change.new_text.clone())
            else {
                return apply::apply_to_disk_off_thread(change, display).await;
            };
            // The base check reads what the editor has now (its unsaved buffer, if any).
            let path = change.path.clone();
            let current = tokio::task::spawn_blocking(move || files.read(&path))
                .await
                .map_err(|e| e.to_string())?;
            let current = match current {
                Ok(read) => Some(read.identity),
                Err(ReadError::NotFound { .. }) => None,
                Err(err) => return Err(err.to_string()),
            };
            apply::check_base(change.base, current, &display)?;
            let req = typed::<WriteTextFileRequest>(
                json!({ "sessionId": session_id, "path": change.path, "content": text }),
                "fs/write_text_file",
            )
            .ok_or("kiln could not build the write request")?;
            cx.send_request(req)
                .block_task()
                .await
                .map(|_| ())
                .map_err(|err| format!("the editor could not write {display}: {}", err.message))
        })
    }
}

/// Reads through the client's `fs/read_text_file` when it offers it (unsaved buffers
/// included), else from disk. Identities are content hashes either way, so a change made
/// from the client's text is checked against the client's text.
struct ClientFiles {
    shared: Arc<Shared>,
    runtime: tokio::runtime::Handle,
    session_id: String,
}

impl Files for ClientFiles {
    fn read(&self, path: &Path) -> Result<ReadResult, ReadError> {
        let (Some(cx), true) = (self.shared.cx.get(), self.shared.caps().read_text_file) else {
            return read_disk(path);
        };
        // A path that is not a file gets the disk's precise error (not found, a folder).
        if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
            return read_disk(path);
        }
        let session_id = &self.session_id;
        let Some(req) = typed::<ReadTextFileRequest>(
            json!({ "sessionId": session_id, "path": path }),
            "fs/read_text_file",
        ) else {
            return read_disk(path);
        };
        let cx = cx.clone();
        match self
            .runtime
            .block_on(async move { cx.send_request(req).block_task().await })
        {
            Ok(answer) => {
                let text = answer.content;
                Ok(ReadResult {
                    identity: Identity::Disk {
                        hash: stable_hash(text.as_bytes()),
                        len: text.len() as u64,
                    },
                    text,
                })
            }
            Err(err) => {
                tracing::warn!(
                    "fs/read_text_file {} failed ({}); reading the disk",
                    path.display(),
                    err.message
                );
                read_disk(path)
            }
        }
    }
}

fn modes_json(m: &Modes) -> Value {
    json!({
        "currentModeId": m.current,
        "availableModes": m.available.iter().map(|(id, name, description)| json!({
            "id": id, "name": name, "description": description,
        })).collect::<Vec<_>>(),
    })
}

/// The session's config options: a mode select and a model select.
fn config_options(modes: &Modes, models: &Models) -> Value {
    json!([
        {
            "id": "mode",
            "name": "Mode",
            "category": "mode",
            "type": "select",
            "currentValue": modes.current,
            "options": modes.available.iter().map(|(id, name, description)| json!({
                "value": id, "name": name, "description": description,
            })).collect::<Vec<_>>(),
        },
        {
            "id": "model",
            "name": "Model",
            "category": "model",
            "type": "select",
            "currentValue": models.current,
            "options": models.available.iter().map(|(id, name)| json!({ "value": id, "name": name })).collect::<Vec<_>>(),
        },
    ])
}

fn commands_update(session_id: &str) -> Value {
    json!({
        "sessionId": session_id,
        "update": {
            "sessionUpdate": "available_commands_update",
            "availableCommands": COMMANDS.iter().map(|(name, description, hint)| {
                let mut c = json!({ "name": name, "description": description });
                if let Some(hint) = hint {
                    c["input"] = json!({ "hint": hint });
                }
                c
            }).collect::<Vec<_>>(),
        },
    })
}

/// The person's message is the error's message (clients show it), not only its data.
fn err(message: impl Into<String>) -> Error {
    Error::new(-32602, message)
}

fn failed(message: impl Into<String>) -> Error {
    Error::new(-32603, message)
}

/// Answers a request from a spawned task, with the host and the request as JSON.
fn serve_with<Req, T, F, Fut>(
    lazy: &Arc<LazyHost>,
    req: &Req,
    cx: &Cx,
    responder: v1::Responder<T>,
    work: F,
) -> Result<(), Error>
where
    Req: Serialize,
    T: agent_client_protocol::JsonRpcResponse + Send + 'static,
    F: FnOnce(Arc<Host>, Value) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, Error>> + Send + 'static,
{
    let lazy = lazy.clone();
    let v = to_json(req);
    spawn_reply(cx, responder, async move { work(lazy.get()?, v).await })
}

/// Replies from a spawned task (the dispatch loop goes on at once).
fn spawn_reply<T, F>(cx: &Cx, responder: v1::Responder<T>, work: F) -> Result<(), Error>
where
    T: agent_client_protocol::JsonRpcResponse + Send + 'static,
    F: std::future::Future<Output = Result<T, Error>> + Send + 'static,
{
    cx.spawn(async move {
        let _ = responder.respond_with_result(work.await);
        Ok(())
    })
}

/// The session's config and instruction problems, for the log (the client gets them in
/// `_meta.kiln.problems`).
fn tell(session_id: &str, problems: &[String]) {
    for p in problems {
        tracing::warn!("{session_id}: {p}");
    }
}

fn path_of(v: &Value) -> Result<PathBuf, Error> {
    v["cwd"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| err("cwd is required (an absolute path)"))
}

/// A slash command typed as the prompt; `None` when the prompt is not one of kiln's.
async fn slash_command(
    host: &Arc<Host>,
    session_id: &str,
    text: &str,
    port: &dyn Port,
) -> Option<String> {
    let text = text.trim();
    let rest = text.strip_prefix('/')?;
    let (name, arg) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let root = host.root_of(session_id).ok()?;
    let answer = match name {
        "mode" if !arg.trim().is_empty() => match host.set_mode(session_id, arg.trim()).await {
            Ok(_) => format!("Mode: {}", arg.trim()),
            Err(e) => e,
        },
        "mode" => {
            let (modes, _) = host.state(session_id).ok()?;
            let list: Vec<String> = modes
                .available
                .iter()
                .map(|(id, name, _)| format!("`{id}` ({name})"))
                .collect();
            format!("Mode: `{}`. Modes: {}", modes.current, list.join(", "))
        }
        "checkpoints" => {
            let list = tokio::task::spawn_blocking({
                let host = host.clone();
                move || host.list_checkpoints(&root)
            })
            .await
            .ok()?;
            match list {
                Ok(list) if list.is_empty() => "No checkpoints yet.".to_owned(),
                Ok(list) => list
                    .iter()
                    .take(20)
                    .map(|c| {
                        format!(
                            "- `{}` {} {}: {}",
                            checkpoint::short(&c.id),
                            crate::agent::store::iso8601(c.time_ms),
                            c.kind.as_str(),
                            c.message
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
                Err(e) => e,
            }
        }
        "undo" => match host.undo_last_turn(session_id).await {
            Ok(text) => text,
            Err(e) => e,
        },
        _ => return None,
    };
    port.update(session_id, Update::AgentMessage(answer.clone()));
    Some(answer)
}

async fn new_session(host: &Host, v: &Value) -> Result<(String, NewSessionResponse), Error> {
    let cwd = path_of(v)?;
    let opened = host.new_session(&cwd, None, None).await.map_err(failed)?;
    let mut problems = opened.problems.clone();
    if v["mcpServers"].as_array().is_some_and(|a| !a.is_empty()) {
        problems.push("MCP servers are not supported yet; the ones given were not started".into());
    }
    tell(&opened.session_id, &problems);
    let response = typed::<NewSessionResponse>(
        json!({
            "sessionId": opened.session_id,
            "modes": modes_json(&opened.modes),
            "configOptions": config_options(&opened.modes, &opened.models),
            "_meta": { "kiln": { "problems": problems } },
        }),
        "session/new response",
    )
    .ok_or_else(|| failed("kiln could not build the session/new response"))?;
    Ok((opened.session_id, response))
}

/// The host, made on the first session request (its HTTP client loads the system's
/// certificates: a few milliseconds `initialize` need not wait for).
struct LazyHost {
    port: Arc<AcpPort>,
    cell: OnceLock<Result<Arc<Host>, String>>,
}

impl LazyHost {
    fn get(&self) -> Result<Arc<Host>, Error> {
        self.cell
            .get_or_init(|| Host::new(self.port.clone()).map(Arc::new))
            .clone()
            .map_err(failed)
    }
}

/// Serves ACP over stdin/stdout; returns the exit code.
pub fn run_stdio() -> i32 {
    super::serve_stdio(serve())
}

async fn serve() -> i32 {
    let shared = Arc::new(Shared::default());
    let port = Arc::new(AcpPort {
        shared: shared.clone(),
        runtime: tokio::runtime::Handle::current(),
    });
    let host = Arc::new(LazyHost {
        port: port.clone(),
        cell: OnceLock::new(),
    });
    // Messages go through a channel to one writer task that batches them (see
    // `framing::write_out`): a stream of deltas costs one stdout write per batch.
    let (out_tx, out_rx) = tokio::sync::mpsc::unbounded_channel();
    let writer = tokio::spawn(super::lsp::framing::write_out(out_rx, tokio::io::stdout()));
    let transport = ByteStreams::new(
        super::lsp::framing::ChannelWriter::new(out_tx),
        tokio::io::stdin().compat(),
    );
    let (h_new, h_load, h_list, h_prompt, h_cancel, h_mode, h_config) = (
        host.clone(),
        host.clone(),
        host.clone(),
        host.clone(),
        host.clone(),
        host.clone(),
        host.clone(),
    );
    let s_init = shared.clone();
    let p_prompt = port.clone();
    let result = Agent
        .v1()
        .name("kiln")
        .on_receive_request(
            async move |req: InitializeRequest, responder, cx: Cx| {
                let caps = to_json(&req.client_capabilities);
                let _ = s_init.caps.set(ClientCaps {
                    read_text_file: caps["fs"]["readTextFile"] == true,
                    write_text_file: caps["fs"]["writeTextFile"] == true,
                    notices: caps["session"]["notices"] == true,
                });
                let _ = s_init.cx.set(cx);
                let response = typed::<InitializeResponse>(
                    json!({
                        "protocolVersion": ProtocolVersion::V1,
                        "agentCapabilities": {
                            "loadSession": true,
                            "promptCapabilities": { "image": true, "audio": false, "embeddedContext": true },
                            "mcpCapabilities": { "http": false, "sse": false },
                            "sessionCapabilities": { "list": {} },
                        },
                        "authMethods": [],
                        "agentInfo": { "name": "kiln", "title": "kiln", "version": env!("CARGO_PKG_VERSION") },
                    }),
                    "initialize response",
                )
                .ok_or_else(|| failed("kiln could not build its initialize response"))?;
                responder.respond(response)
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: NewSessionRequest, responder, cx: Cx| {
                let lazy = h_new.clone();
                let v = to_json(&req);
                let task_cx = cx.clone();
                cx.spawn(async move {
                    let made = match lazy.get() {
                        Ok(host) => new_session(&host, &v).await,
                        Err(e) => Err(e),
                    };
                    let id = made.as_ref().ok().map(|(id, _)| id.clone());
                    let _ = responder.respond_with_result(made.map(|(_, r)| r));
                    // After the response, so the client knows the session.
                    if let Some(id) = id
                        && let Some(n) = typed::<SessionNotification>(commands_update(&id), "commands")
                    {
                        let _ = task_cx.send_notification(n);
                    }
                    Ok(())
                })
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: LoadSessionRequest, responder, cx: Cx| {
                serve_with(&h_load, &req, &cx, responder, |host, v| async move {
                    let cwd = path_of(&v)?;
                    let id = v["sessionId"].as_str().unwrap_or_default().to_owned();
                    let opened = host.load_session(&id, &cwd).await.map_err(failed)?;
                    tell(&opened.session_id, &opened.problems);
                    typed::<LoadSessionResponse>(
                        json!({
                            "modes": modes_json(&opened.modes),
                            "configOptions": config_options(&opened.modes, &opened.models),
                        }),
                        "session/load response",
                    )
                    .ok_or_else(|| failed("kiln could not build the session/load response"))
                })
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: ListSessionsRequest, responder, cx: Cx| {
                serve_with(&h_list, &req, &cx, responder, |host, v| async move {
                    let cwd = match v["cwd"].as_str() {
                        Some(c) => PathBuf::from(c),
                        None => std::env::current_dir().map_err(|e| failed(e.to_string()))?,
                    };
                    let list = tokio::task::spawn_blocking(move || host.list_sessions(&cwd))
                        .await
                        .map_err(|e| failed(e.to_string()))?
                        .map_err(failed)?;
                    let sessions: Vec<Value> = list
                        .into_iter()
                        .map(|s| json!({
                            "sessionId": s.session_id,
                            "cwd": s.cwd,
                            "title": s.title,
                            "updatedAt": crate::agent::store::iso8601(s.updated_ms),
                        }))
                        .collect();
                    typed::<ListSessionsResponse>(json!({ "sessions": sessions }), "session/list response")
                        .ok_or_else(|| failed("kiln could not build the session/list response"))
                })
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: PromptRequest, responder, cx: Cx| {
                let port = p_prompt.clone();
                serve_with(&h_prompt, &req, &cx, responder, |host, v| async move {
                    let id = v["sessionId"].as_str().unwrap_or_default().to_owned();
                    let root = host.root_of(&id).map_err(err)?;
                    let prompt = prompt::from_blocks(&v["prompt"], None, &root).map_err(err)?;
                    let stop = if slash_command(&host, &id, &prompt.text, port.as_ref()).await.is_some() {
                        "end_turn".to_owned()
                    } else {
                        let result = host.prompt(&id, prompt).await.map_err(failed)?;
                        match result.stop {
                            Ok(stop) => stop.as_str().to_owned(),
                            Err(message) => return Err(failed(message)),
                        }
                    };
                    typed::<PromptResponse>(json!({ "stopReason": stop }), "session/prompt response")
                        .ok_or_else(|| failed("kiln could not build the prompt response"))
                })
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_notification(
            async move |n: CancelNotification, _cx: Cx| {
                let v = to_json(&n);
                if let Some(id) = v["sessionId"].as_str()
                    && let Ok(host) = h_cancel.get()
                    && let Err(e) = host.cancel(id)
                {
                    tracing::warn!("session/cancel: {e}");
                }
                Ok(())
            },
            agent_client_protocol::on_receive_notification!(),
        )
        .on_receive_request(
            async move |req: SetSessionModeRequest, responder, cx: Cx| {
                serve_with(&h_mode, &req, &cx, responder, |host, v| async move {
                    let id = v["sessionId"].as_str().unwrap_or_default();
                    host.set_mode(id, v["modeId"].as_str().unwrap_or_default())
                        .await
                        .map_err(err)?;
                    typed::<SetSessionModeResponse>(json!({}), "session/set_mode response")
                        .ok_or_else(|| failed("kiln could not build the set_mode response"))
                })
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: SetSessionConfigOptionRequest, responder, cx: Cx| {
                serve_with(&h_config, &req, &cx, responder, |host, v| async move {
                    let id = v["sessionId"].as_str().unwrap_or_default();
                    let value = v["value"].as_str().unwrap_or_default();
                    match v["configId"].as_str() {
                        Some("mode") => {
                            host.set_mode(id, value).await.map_err(err)?;
                        }
                        Some("model") => {
                            host.set_model(id, value).await.map_err(err)?;
                        }
                        other => {
                            return Err(err(format!(
                                "kiln has no config option {other:?}; it has \"mode\" and \"model\""
                            )));
                        }
                    }
                    let (modes, models) = host.state(id).map_err(err)?;
                    typed::<SetSessionConfigOptionResponse>(
                        json!({ "configOptions": config_options(&modes, &models) }),
                        "session/set_config_option response",
                    )
                    .ok_or_else(|| failed("kiln could not build the set_config_option response"))
                })
            },
            agent_client_protocol::on_receive_request!(),
        )
        .connect_to(transport)
        .await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), writer).await;
    match result {
        Ok(()) => {
            tracing::info!("the client closed the connection");
            0
        }
        Err(e) => {
            tracing::error!("the ACP connection failed: {e}");
            1
        }
    }
}
