//! The LSP server's state and handlers.
//!
//! Notifications run synchronously on the main loop, in arrival order, so a request sees
//! every buffer change sent before it. Requests answer from the state at once or return a
//! future for work off the loop (disk reads); nothing here waits on the model or the person.
//! A handler that fails logs, tells the client through `window/logMessage`, and leaves the
//! server running; a handler that panics is caught the same way.

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use async_lsp::{
    AnyEvent, AnyNotification, AnyRequest, ClientSocket, ErrorCode, LspService, ResponseError,
};
use futures::future::BoxFuture;
use lsp_types::notification::{self as notif, Notification as _};
use lsp_types::request::{self as req, Request as _};
use lsp_types::{
    DidChangeWatchedFilesRegistrationOptions, FileChangeType, FileSystemWatcher, GlobPattern,
    InitializeParams, InitializeResult, LogMessageParams, MessageType, PositionEncodingKind,
    Registration, RegistrationParams, SaveOptions, ServerCapabilities, ServerInfo,
    TextDocumentSyncCapability, TextDocumentSyncKind, TextDocumentSyncOptions,
    TextDocumentSyncSaveOptions, Url, WorkspaceFoldersServerCapabilities,
    WorkspaceServerCapabilities,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::plain::{self, Plain, PlainAbilities};
use super::port::{self, ClientAbilities, LspPort};
use super::shared::SharedWorkspace;
use super::{convert, session};
use crate::frontend::host::Host;
use crate::text::{ContentChange, Document, PositionEncoding};
use crate::workspace::watch::{self, IgnoreFilter, Watcher};
use crate::workspace::{
    ChangeKind, DocKey, ExternalChange, Identity, ReadResult, Workspace, read_disk,
};

/// kiln's own requests, listed in `initialize`'s `experimental.kiln.methods`.
pub const KILN_READ: &str = "kiln/read";
pub const KILN_STATUS: &str = "kiln/status";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Uninitialized,
    Running,
    ShuttingDown,
}

/// Who reports changes to closed files.
enum WatchMode {
    /// No workspace root, nothing to watch.
    Off,
    /// The client, through `workspace/didChangeWatchedFiles` (registered dynamically).
    Client,
    /// kiln's own `notify` watcher; `None` until it has started.
    Notify(Option<Watcher>),
}

impl WatchMode {
    fn name(&self) -> &'static str {
        match self {
            WatchMode::Off => "off",
            WatchMode::Client => "client",
            WatchMode::Notify(None) => "notify-starting",
            WatchMode::Notify(Some(_)) => "notify",
        }
    }
}

/// Events the server sends itself through the main loop.
struct WatchedChanges(Vec<ExternalChange>);
struct WatcherStarted(Result<Watcher, String>);
struct WatchError(String);
struct RegistrationFailed(String);
struct ReleaseHeld(DocKey);

/// How long a change that arrived ahead of its predecessors waits for them.
const HOLD_FOR: std::time::Duration = std::time::Duration::from_millis(25);

pub struct Server {
    client: ClientSocket,
    shutdown_requested: Arc<AtomicBool>,
    phase: Phase,
    encoding: PositionEncoding,
    /// Shared with the agent's port, which reads open buffers from other tasks; held
    /// only for in-memory work, never across IO or an await.
    workspace: SharedWorkspace,
    ignore: IgnoreFilter,
    /// Changes that arrived ahead of a missing version, by document and version.
    held: HashMap<DocKey, BTreeMap<i32, (Url, Vec<ContentChange>)>>,
    watch: WatchMode,
    client_registers_watchers: bool,
    abilities: ClientAbilities,
    /// The agent host, made on the first session method (so `initialize` stays fast).
    host: Option<Arc<Host>>,
    plain: Option<Arc<Plain>>,
    plain_abilities: PlainAbilities,
}

impl Server {
    pub fn new(client: ClientSocket, shutdown_requested: Arc<AtomicBool>) -> Self {
        Server {
            client,
            shutdown_requested,
            phase: Phase::Uninitialized,
            encoding: PositionEncoding::Utf16,
            workspace: SharedWorkspace::default(),
            ignore: IgnoreFilter::new(Vec::new()),
            held: HashMap::new(),
            watch: WatchMode::Off,
            client_registers_watchers: false,
            abilities: ClientAbilities::default(),
            host: None,
            plain: None,
            plain_abilities: PlainAbilities::default(),
        }
    }

    fn ws(&self) -> std::sync::RwLockReadGuard<'_, Workspace> {
        self.workspace.read()
    }

    fn ws_mut(&self) -> std::sync::RwLockWriteGuard<'_, Workspace> {
        self.workspace.write()
    }

    fn initialize(&mut self, params: InitializeParams) -> InitializeResult {
        let offered: Vec<&str> = params
            .capabilities
            .general
            .as_ref()
            .and_then(|g| g.position_encodings.as_ref())
            .map(|encs| encs.iter().map(|e| e.as_str()).collect())
            .unwrap_or_default();
        self.encoding = PositionEncoding::negotiate(&offered);
        let workspace_caps = params.capabilities.workspace.as_ref();
        self.abilities = ClientAbilities {
            permission_requests: params
                .capabilities
                .experimental
                .as_ref()
                .is_some_and(|e| e["kiln"]["permissionRequests"] == true),
            kiln_client: params
                .capabilities
                .experimental
                .as_ref()
                .is_some_and(|e| e.get("kiln").is_some()),
            apply_edit: workspace_caps.and_then(|w| w.apply_edit).unwrap_or(false)
                && workspace_caps
                    .and_then(|w| w.workspace_edit.as_ref())
                    .and_then(|e| e.document_changes)
                    .unwrap_or(false),
            encoding: self.encoding,
        };
        self.plain_abilities = PlainAbilities {
            apply_edit: self.abilities.apply_edit,
            progress: params
                .capabilities
                .window
                .as_ref()
                .and_then(|w| w.work_done_progress)
                .unwrap_or(false),
            resolve: params
                .capabilities
                .text_document
                .as_ref()
                .and_then(|t| t.code_action.as_ref())
                .and_then(|c| c.resolve_support.as_ref())
                .is_some_and(|r| r.properties.iter().any(|p| p == "edit" || p == "command")),
            encoding: self.encoding,
        };
        self.client_registers_watchers = params
            .capabilities
            .workspace
            .as_ref()
            .and_then(|w| w.did_change_watched_files.as_ref())
            .and_then(|d| d.dynamic_registration)
            .unwrap_or(false);
        *self.ws_mut() = Workspace::new(workspace_roots(&params));
        let roots = self.ws().roots().to_vec();
        self.ignore = IgnoreFilter::new(roots);
        if let Some(info) = &params.client_info {
            tracing::info!(
                "client: {} {}",
                info.name,
                info.version.as_deref().unwrap_or("")
            );
        }
        tracing::info!(
            "position encoding {}, roots {:?}",
            self.encoding.as_lsp_str(),
            self.ws().roots()
        );
        self.phase = Phase::Running;
        InitializeResult {
            capabilities: ServerCapabilities {
                position_encoding: Some(PositionEncodingKind::new(self.encoding.as_lsp_str())),
                text_document_sync: Some(TextDocumentSyncCapability::Options(
                    TextDocumentSyncOptions {
                        open_close: Some(true),
                        change: Some(TextDocumentSyncKind::INCREMENTAL),
                        save: Some(TextDocumentSyncSaveOptions::SaveOptions(SaveOptions {
                            include_text: Some(false),
                        })),
                        will_save: None,
                        will_save_wait_until: None,
                    },
                )),
                workspace: Some(WorkspaceServerCapabilities {
                    workspace_folders: Some(WorkspaceFoldersServerCapabilities {
                        supported: Some(true),
                        change_notifications: Some(lsp_types::OneOf::Left(true)),
                    }),
                    file_operations: None,
                }),
                code_action_provider: Some(lsp_types::CodeActionProviderCapability::Options(
                    lsp_types::CodeActionOptions {
                        code_action_kinds: Some(vec![
                            lsp_types::CodeActionKind::EMPTY,
                            lsp_types::CodeActionKind::QUICKFIX,
                            lsp_types::CodeActionKind::REFACTOR,
                        ]),
                        resolve_provider: Some(true),
                        work_done_progress_options: Default::default(),
                    },
                )),
                execute_command_provider: Some(lsp_types::ExecuteCommandOptions {
                    commands: plain::COMMANDS.iter().map(|c| (*c).to_owned()).collect(),
                    work_done_progress_options: Default::default(),
                }),
                experimental: Some(json!({ "kiln": {
                    "methods": ([KILN_READ, KILN_STATUS].iter().chain(session::METHODS.iter()).collect::<Vec<_>>()),
                    "notifications": [port::SESSION_UPDATE],
                    "requests": [port::REQUEST_PERMISSION],
                } })),
                ..ServerCapabilities::default()
            },
            server_info: Some(ServerInfo {
                name: "kiln".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
        }
    }

    /// The host, made on first use; `Err` says why it cannot exist.
    fn host(&mut self) -> Result<Arc<Host>, String> {
        if let Some(host) = &self.host {
            return Ok(host.clone());
        }
        let plain = Arc::new(Plain::new(
            self.client.clone(),
            self.workspace.clone(),
            self.plain_abilities,
        ));
        let port = Arc::new(LspPort {
            client: self.client.clone(),
            workspace: self.workspace.clone(),
            abilities: self.abilities,
            plain: plain.clone(),
        });
        let host = Arc::new(Host::new(port)?);
        plain.set_host(&host);
        self.host = Some(host.clone());
        self.plain = Some(plain);
        Ok(host)
    }

    fn plain(&mut self) -> Result<Arc<Plain>, String> {
        self.host()?;
        self.plain
            .clone()
            .ok_or_else(|| "bug: no plain path".to_owned())
    }

    fn read(&self, params: ReadParams) -> BoxFuture<'static, Result<Value, ResponseError>> {
        let uri = params.uri;
        let key = convert::doc_key(&uri);
        let buffer = {
            let ws = self.ws();
            ws.read_buffer(&key)
                .map(|read| (read, ws.document(&key).map(|d| d.language_id().to_owned())))
        };
        if let Some((read, language_id)) = buffer {
            return ready(Ok(read_reply(uri, read, language_id)));
        }
        let Some(path) = convert::file_path(&uri) else {
            return failed(format!(
                "{uri} is not open in the editor and is not a file: URI"
            ));
        };
        Box::pin(async move {
            let read = tokio::task::spawn_blocking(move || read_disk(&path))
                .await
                .map_err(|err| request_failed(format!("reading failed: {err}")))?
                .map_err(|err| request_failed(err.to_string()))?;
            Ok(read_reply(uri, read, None))
        })
    }

    fn status(&self) -> Value {
        let ws = self.ws();
        let mut documents: Vec<Value> = ws
            .documents()
            .map(|doc| {
                json!({
                    "uri": doc.uri(),
                    "version": doc.version(),
                    "languageId": doc.language_id(),
                    "lineCount": doc.rope().len_lines(),
                    "byteLength": doc.rope().len_bytes(),
                })
            })
            .collect();
        documents.sort_by(|a, b| a["uri"].as_str().cmp(&b["uri"].as_str()));
        let (n_changes, recent) = ws.external_changes();
        let recent: Vec<Value> = recent
            .map(|c| json!({ "path": c.path, "kind": c.kind.as_str() }))
            .collect();
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "positionEncoding": self.encoding.as_lsp_str(),
            "roots": ws.roots(),
            "watching": self.watch.name(),
            "openDocuments": documents,
            "externalChanges": { "total": n_changes, "recent": recent },
        })
    }

    fn dispatch_notification(&mut self, notif: AnyNotification) -> Result<(), String> {
        tracing::trace!("notification {}", notif.method);
        match notif.method.as_str() {
            notif::Initialized::METHOD => self.start_watching(),
            notif::DidOpenTextDocument::METHOD => {
                let p: lsp_types::DidOpenTextDocumentParams = params(notif)?;
                let doc = p.text_document;
                let key = convert::doc_key(&doc.uri);
                let fresh =
                    Document::new(doc.uri.to_string(), doc.version, doc.language_id, &doc.text);
                if self.ws_mut().open(key, fresh).is_some() {
                    tracing::warn!("{} was opened again; its text was replaced", doc.uri);
                }
            }
            notif::DidChangeTextDocument::METHOD => {
                let p: lsp_types::DidChangeTextDocumentParams = params(notif)?;
                let changes = p
                    .content_changes
                    .into_iter()
                    .map(convert::content_change)
                    .collect();
                self.did_change(p.text_document.uri, p.text_document.version, changes)?;
            }
            notif::DidCloseTextDocument::METHOD => {
                let p: lsp_types::DidCloseTextDocumentParams = params(notif)?;
                self.held.remove(&convert::doc_key(&p.text_document.uri));
                if self
                    .ws_mut()
                    .close(&convert::doc_key(&p.text_document.uri))
                    .is_none()
                {
                    tracing::warn!("didClose for {}, which was not open", p.text_document.uri);
                }
            }
            notif::DidSaveTextDocument::METHOD => {
                let p: lsp_types::DidSaveTextDocumentParams = params(notif)?;
                let uri = p.text_document.uri;
                let key = convert::doc_key(&uri);
                self.release_held(&key)?;
                match (self.ws_mut().document_mut(&key), p.text) {
                    (None, _) => tracing::warn!("didSave for {uri}, which is not open"),
                    (Some(doc), Some(text)) if *doc.rope() != text => {
                        tracing::warn!(
                            "{uri}: the saved text differs from kiln's copy; resynchronised"
                        );
                        let (version, language_id) = (doc.version(), doc.language_id().to_owned());
                        doc.reset(version, language_id, &text);
                    }
                    (Some(doc), _) => tracing::debug!(
                        "{uri} saved at version {}; kiln's copy: {} bytes, fnv1a {:016x}",
                        doc.version(),
                        doc.rope().len_bytes(),
                        crate::text::hash::stable_hash_rope(doc.rope())
                    ),
                }
            }
            notif::DidChangeWatchedFiles::METHOD => {
                let p: lsp_types::DidChangeWatchedFilesParams = params(notif)?;
                let mut changes = Vec::new();
                for event in p.changes {
                    let Some(path) = convert::file_path(&event.uri) else {
                        continue;
                    };
                    let kind = match event.typ {
                        FileChangeType::CREATED => ChangeKind::Created,
                        FileChangeType::DELETED => ChangeKind::Deleted,
                        _ => ChangeKind::Changed,
                    };
                    changes.push(ExternalChange {
                        path: crate::workspace::paths::normalize(&path),
                        kind,
                    });
                }
                self.record_changes(changes);
            }
            notif::DidChangeWorkspaceFolders::METHOD => {
                let p: lsp_types::DidChangeWorkspaceFoldersParams = params(notif)?;
                for folder in &p.event.removed {
                    if let Some(path) = convert::file_path(&folder.uri) {
                        self.ws_mut().remove_root(&path);
                    }
                }
                for folder in &p.event.added {
                    if let Some(path) = convert::file_path(&folder.uri) {
                        self.ws_mut().add_root(&path);
                    }
                }
                let roots = self.ws().roots().to_vec();
                self.ignore = IgnoreFilter::new(roots);
                if !matches!(self.watch, WatchMode::Client) {
                    self.start_watching();
                }
            }
            method if method.starts_with("$/") => tracing::debug!("ignoring {method}"),
            method => tracing::info!("ignoring unknown notification {method}"),
        }
        Ok(())
    }

    /// Applies a `didChange`, putting changes back in version order.
    ///
    /// Some clients send changes out of order (Helix 25.01 does when several edits happen
    /// at once). A change whose version is more than one ahead waits, briefly, for the
    /// versions before it; it is applied as soon as they arrive, before anything reads the
    /// document, or after [`HOLD_FOR`] at the latest (clients whose versions skip numbers,
    /// like Neovim's `changedtick`, only pay that delay, never a wrong order).
    fn did_change(
        &mut self,
        uri: Url,
        version: i32,
        changes: Vec<ContentChange>,
    ) -> Result<(), String> {
        let key = convert::doc_key(&uri);
        let Some(current) = self.ws().document(&key).map(Document::version) else {
            return Err(format!(
                "didChange for {uri}, which is not open; the change was ignored"
            ));
        };
        let nothing_held = self.held.get(&key).is_none_or(BTreeMap::is_empty);
        if nothing_held && version.checked_sub(1).is_none_or(|v| v <= current) {
            return self.apply_change(&key, version, changes);
        }
        self.held
            .entry(key.clone())
            .or_default()
            .insert(version, (uri, changes));
        // Apply whatever is now contiguous.
        loop {
            let current = self.ws().document(&key).map_or(i32::MAX, Document::version);
            let held = self.held.get_mut(&key).expect("inserted above");
            match held.first_key_value() {
                Some((&next, _)) if next.checked_sub(1).is_none_or(|v| v <= current) => {
                    let (version, (_, changes)) = held.pop_first().expect("non-empty");
                    self.apply_change(&key, version, changes)?;
                }
                Some(_) => break,
                None => {
                    self.held.remove(&key);
                    return Ok(());
                }
            }
        }
        let client = self.client.clone();
        tokio::spawn(async move {
            tokio::time::sleep(HOLD_FOR).await;
            let _ = client.emit(ReleaseHeld(key));
        });
        Ok(())
    }

    /// Applies the changes held for `key`, in version order, whatever gaps remain.
    fn release_held(&mut self, key: &DocKey) -> Result<(), String> {
        let Some(held) = self.held.remove(key) else {
            return Ok(());
        };
        if let Some((uri, _)) = held.values().next() {
            tracing::debug!(
                "{uri}: applying {} change(s) held for missing versions",
                held.len()
            );
        }
        for (version, (_, changes)) in held {
            self.apply_change(key, version, changes)?;
        }
        Ok(())
    }

    fn release_all_held(&mut self) {
        let keys: Vec<DocKey> = self.held.keys().cloned().collect();
        for key in keys {
            if let Err(message) = self.release_held(&key) {
                self.report(MessageType::ERROR, message);
            }
        }
    }

    fn apply_change(
        &mut self,
        key: &DocKey,
        version: i32,
        changes: Vec<ContentChange>,
    ) -> Result<(), String> {
        let encoding = self.encoding;
        let mut ws = self.ws_mut();
        let Some(doc) = ws.document_mut(key) else {
            return Ok(());
        };
        let kept = doc.version();
        let report = doc.apply_changes(version, &changes, encoding).map_err(|err| {
            format!("{}: {err}; the whole change was rejected and the document stays at version {kept}", doc.uri())
        })?;
        if let Some(previous) = report.version_not_increasing {
            tracing::warn!(
                "{}: version went from {previous} to {version}; versions must increase",
                doc.uri()
            );
        }
        Ok(())
    }

    /// Records external changes that survive the ignore rules.
    fn record_changes(&mut self, changes: Vec<ExternalChange>) {
        for change in changes {
            if self.ignore.is_ignored(&change.path) {
                continue;
            }
            tracing::debug!("{} {}", change.path.display(), change.kind.as_str());
            self.ws_mut().record_external_change(change);
        }
    }

    fn start_watching(&mut self) {
        if self.ws().roots().is_empty() {
            self.watch = WatchMode::Off;
            return;
        }
        if self.client_registers_watchers {
            self.watch = WatchMode::Client;
            let client = self.client.clone();
            tokio::spawn(async move {
                let options = DidChangeWatchedFilesRegistrationOptions {
                    watchers: vec![FileSystemWatcher {
                        glob_pattern: GlobPattern::String("**/*".into()),
                        kind: None,
                    }],
                };
                let params = RegistrationParams {
                    registrations: vec![Registration {
                        id: "kiln-watched-files".into(),
                        method: notif::DidChangeWatchedFiles::METHOD.into(),
                        register_options: serde_json::to_value(options).ok(),
                    }],
                };
                if let Err(err) = client.request::<req::RegisterCapability>(params).await {
                    let _ = client.emit(RegistrationFailed(err.to_string()));
                }
            });
        } else {
            self.start_notify_watcher();
        }
    }

    fn start_notify_watcher(&mut self) {
        // Dropping the previous watcher (if any) stops it.
        self.watch = WatchMode::Notify(None);
        let roots = self.ws().roots().to_vec();
        let client = self.client.clone();
        tokio::task::spawn_blocking(move || {
            let on_changes = client.clone();
            let on_error = client.clone();
            let started = watch::watch(
                &roots,
                move |changes| {
                    let _ = on_changes.emit(WatchedChanges(changes));
                },
                move |err| {
                    let _ = on_error.emit(WatchError(err));
                },
            );
            let _ = client.emit(WatcherStarted(started.map_err(|err| err.to_string())));
        });
    }

    fn handle_event(&mut self, event: AnyEvent) -> Result<(), String> {
        let event = match event.downcast::<session::Flush>() {
            Ok(session::Flush(done)) => {
                let _ = done.send(());
                return Ok(());
            }
            Err(event) => event,
        };
        let event = match event.downcast::<ReleaseHeld>() {
            Ok(ReleaseHeld(key)) => return self.release_held(&key),
            Err(event) => event,
        };
        let event = match event.downcast::<WatchedChanges>() {
            Ok(WatchedChanges(changes)) => {
                self.record_changes(changes);
                return Ok(());
            }
            Err(event) => event,
        };
        let event = match event.downcast::<WatcherStarted>() {
            Ok(WatcherStarted(Ok(watcher))) => {
                if let WatchMode::Notify(slot) = &mut self.watch {
                    *slot = Some(watcher);
                }
                return Ok(());
            }
            Ok(WatcherStarted(Err(err))) => {
                self.watch = WatchMode::Off;
                return Err(format!(
                    "cannot watch the workspace for file changes: {err}"
                ));
            }
            Err(event) => event,
        };
        let event = match event.downcast::<WatchError>() {
            Ok(WatchError(err)) => return Err(format!("file watcher: {err}")),
            Err(event) => event,
        };
        match event.downcast::<RegistrationFailed>() {
            Ok(RegistrationFailed(err)) => {
                tracing::warn!(
                    "the client refused to watch files ({err}); watching with notify instead"
                );
                self.client_registers_watchers = false;
                self.start_notify_watcher();
                Ok(())
            }
            Err(event) => Err(format!(
                "bug: unexpected internal event {}",
                event.type_name()
            )),
        }
    }

    /// Logs a problem and shows it in the client's log.
    fn report(&self, level: MessageType, message: String) {
        if level == MessageType::ERROR {
            tracing::error!("{message}");
        } else {
            tracing::warn!("{message}");
        }
        let _ = self.client.notify::<notif::LogMessage>(LogMessageParams {
            typ: level,
            message: format!("kiln: {message}"),
        });
    }
}

#[derive(Deserialize)]
struct ReadParams {
    uri: Url,
}

/// `kiln/read`'s answer.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReadReply {
    uri: Url,
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    language_id: Option<String>,
    identity: IdentityWire,
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
enum IdentityWire {
    Buffer { version: i32 },
    Disk { hash: String, length: u64 },
}

fn read_reply(uri: Url, read: ReadResult, language_id: Option<String>) -> Value {
    let identity = match read.identity {
        Identity::Buffer { version } => IdentityWire::Buffer { version },
        Identity::Disk { hash, len } => IdentityWire::Disk {
            hash: format!("{hash:016x}"),
            length: len,
        },
    };
    serde_json::to_value(ReadReply {
        uri,
        text: read.text,
        language_id,
        identity,
    })
    .unwrap_or(Value::Null)
}

fn workspace_roots(params: &InitializeParams) -> Vec<PathBuf> {
    if let Some(folders) = params.workspace_folders.as_ref().filter(|f| !f.is_empty()) {
        return folders
            .iter()
            .filter_map(|f| convert::file_path(&f.uri))
            .collect();
    }
    #[allow(deprecated)]
    let root_uri = params.root_uri.as_ref().and_then(convert::file_path);
    #[allow(deprecated)]
    let root_path = params.root_path.as_ref().map(PathBuf::from);
    root_uri.or(root_path).into_iter().collect()
}

fn params<P: DeserializeOwned>(notif: AnyNotification) -> Result<P, String> {
    serde_json::from_value(notif.params)
        .map_err(|err| format!("invalid params for {}: {err}", notif.method))
}

fn request_failed(message: String) -> ResponseError {
    ResponseError::new(ErrorCode::REQUEST_FAILED, message)
}

fn failed(message: String) -> BoxFuture<'static, Result<Value, ResponseError>> {
    Box::pin(std::future::ready(Err(request_failed(message))))
}

fn ready(result: Result<Value, ResponseError>) -> BoxFuture<'static, Result<Value, ResponseError>> {
    Box::pin(std::future::ready(result))
}

fn request_params<P: DeserializeOwned>(req: AnyRequest) -> Result<P, ResponseError> {
    serde_json::from_value(req.params).map_err(|err| {
        ResponseError::new(
            ErrorCode::INVALID_PARAMS,
            format!("invalid params for {}: {err}", req.method),
        )
    })
}

impl tower::Service<AnyRequest> for Server {
    type Response = Value;
    type Error = ResponseError;
    type Future = BoxFuture<'static, Result<Value, ResponseError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: AnyRequest) -> Self::Future {
        let method = req.method.as_str();
        match (self.phase, method) {
            (Phase::Uninitialized, req::Initialize::METHOD) => {
                return ready(
                    request_params(req)
                        .map(|p| serde_json::to_value(self.initialize(p)).unwrap_or(Value::Null)),
                );
            }
            (Phase::Uninitialized, _) => {
                return ready(Err(ResponseError::new(
                    ErrorCode::SERVER_NOT_INITIALIZED,
                    format!("{method} before initialize: send initialize first"),
                )));
            }
            (_, req::Initialize::METHOD) => {
                return ready(Err(ResponseError::new(
                    ErrorCode::INVALID_REQUEST,
                    "initialize was already received",
                )));
            }
            (Phase::ShuttingDown, _) => {
                return ready(Err(ResponseError::new(
                    ErrorCode::INVALID_REQUEST,
                    format!("{method} after shutdown: the server only accepts exit now"),
                )));
            }
            (Phase::Running, _) => {}
        }
        match method {
            req::Shutdown::METHOD => {
                self.phase = Phase::ShuttingDown;
                self.shutdown_requested.store(true, Ordering::SeqCst);
                self.watch = WatchMode::Off;
                ready(Ok(Value::Null))
            }
            KILN_READ => match request_params::<ReadParams>(req) {
                Ok(p) => {
                    if let Err(message) = self.release_held(&convert::doc_key(&p.uri)) {
                        self.report(MessageType::ERROR, message);
                    }
                    self.read(p)
                }
                Err(err) => ready(Err(err)),
            },
            KILN_STATUS => {
                self.release_all_held();
                ready(Ok(self.status()))
            }
            method if plain::REQUESTS.contains(&method) => {
                self.release_all_held();
                let root = self.ws().roots().first().cloned();
                match self.plain() {
                    Ok(plain) => ready(plain.request(method, req.params, root)),
                    Err(message) => failed(message),
                }
            }
            method if session::METHODS.contains(&method) => {
                self.release_all_held();
                let root = self.ws().roots().first().cloned();
                match self.host() {
                    Ok(host) => {
                        session::handle(host, self.client.clone(), root, method, req.params)
                    }
                    Err(message) => failed(message),
                }
            }
            _ => ready(Err(ResponseError::new(
                ErrorCode::METHOD_NOT_FOUND,
                format!("unknown method {method}"),
            ))),
        }
    }
}

impl LspService for Server {
    fn notify(&mut self, notif: AnyNotification) -> ControlFlow<async_lsp::Result<()>> {
        if notif.method == notif::Exit::METHOD {
            return ControlFlow::Break(Ok(()));
        }
        if self.phase == Phase::Uninitialized {
            tracing::warn!("dropped {} received before initialize", notif.method);
            return ControlFlow::Continue(());
        }
        let method = notif.method.clone();
        match catch_unwind(AssertUnwindSafe(|| self.dispatch_notification(notif))) {
            Ok(Ok(())) => {}
            Ok(Err(message)) => self.report(MessageType::ERROR, message),
            Err(_panic) => self.report(
                MessageType::ERROR,
                format!("bug: the {method} handler panicked; see the log"),
            ),
        }
        self.workspace.changed();
        ControlFlow::Continue(())
    }

    fn emit(&mut self, event: AnyEvent) -> ControlFlow<async_lsp::Result<()>> {
        if let Err(message) = self.handle_event(event) {
            self.report(MessageType::WARNING, message);
        }
        // Held changes may have been applied.
        self.workspace.changed();
        ControlFlow::Continue(())
    }
}
