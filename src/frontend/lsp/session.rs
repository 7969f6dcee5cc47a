//! The rich path's `kiln/*` session methods. Each returns a future that runs off the main
//! loop, so a prompt (minutes, with approvals) never stalls `didChange`.

use std::path::PathBuf;
use std::sync::Arc;

use async_lsp::{ClientSocket, ErrorCode, ResponseError};
use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::frontend::host::Host;
use crate::frontend::prompt;
use crate::frontend::wire::*;

pub const NEW_SESSION: &str = "kiln/newSession";
pub const LOAD_SESSION: &str = "kiln/loadSession";
pub const LIST_SESSIONS: &str = "kiln/listSessions";
pub const PROMPT: &str = "kiln/prompt";
pub const CANCEL: &str = "kiln/cancel";
pub const SET_MODE: &str = "kiln/setMode";
pub const SET_MODEL: &str = "kiln/setModel";
pub const LIST_MODELS: &str = "kiln/listModels";
pub const CHECKPOINTS: &str = "kiln/checkpoints";
pub const RESTORE_CHECKPOINT: &str = "kiln/restoreCheckpoint";

pub const METHODS: [&str; 10] = [
    NEW_SESSION,
    LOAD_SESSION,
    LIST_SESSIONS,
    PROMPT,
    CANCEL,
    SET_MODE,
    SET_MODEL,
    LIST_MODELS,
    CHECKPOINTS,
    RESTORE_CHECKPOINT,
];

type Reply = BoxFuture<'static, Result<Value, ResponseError>>;

/// Cancels the session's turn when dropped before `done` (a `$/cancelRequest` drops the
/// request's future).
struct CancelOnDrop {
    host: Arc<Host>,
    session_id: String,
    done: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.host.cancel(&self.session_id);
        }
    }
}

/// Sent through the main loop behind the updates a request caused: when it is handled,
/// they have been written, so the response that follows cannot overtake them (a client
/// must see every update of a turn before the turn's result).
pub struct Flush(pub tokio::sync::oneshot::Sender<()>);

/// Handles `method` when it is one of [`METHODS`].
pub fn handle(
    host: Arc<Host>,
    client: ClientSocket,
    default_root: Option<PathBuf>,
    method: &str,
    params: Value,
) -> Reply {
    let method = method.to_owned();
    Box::pin(async move {
        let reply = answer(host, default_root, &method, params).await;
        let (done, flushed) = tokio::sync::oneshot::channel();
        if client.emit(Flush(done)).is_ok() {
            let _ = flushed.await;
        }
        reply
    })
}

async fn answer(
    host: Arc<Host>,
    default_root: Option<PathBuf>,
    method: &str,
    params: Value,
) -> Result<Value, ResponseError> {
    {
        let root = |cwd: Option<PathBuf>| {
            cwd.or(default_root.clone()).ok_or_else(|| {
                failed("no workspace folder: open a folder or pass \"cwd\"".to_owned())
            })
        };
        match method {
            NEW_SESSION => {
                let p: NewSessionParams = decode(method, params)?;
                let cwd = root(p.cwd)?;
                let opened = host
                    .new_session(&cwd, p.mode.as_deref(), p.model.as_deref())
                    .await
                    .map_err(failed)?;
                encode(SessionResult::from(opened))
            }
            LOAD_SESSION => {
                let p: LoadSessionParams = decode(method, params)?;
                let cwd = root(p.cwd)?;
                let opened = host
                    .load_session(&p.session_id, &cwd)
                    .await
                    .map_err(failed)?;
                encode(SessionResult::from(opened))
            }
            LIST_SESSIONS => {
                let p: WorkspaceParams = decode(method, params)?;
                let cwd = root(p.cwd)?;
                let sessions = blocking(move || host.list_sessions(&cwd)).await?;
                encode(ListSessionsResult {
                    sessions: sessions.into_iter().map(SessionInfo::from).collect(),
                })
            }
            PROMPT => {
                let p: PromptParams = decode(method, params)?;
                let session_root = host.root_of(&p.session_id).map_err(failed)?;
                let prompt = prompt::from_blocks(&p.prompt, p.context.as_ref(), &session_root)
                    .map_err(invalid)?;
                let mut guard = CancelOnDrop {
                    host: host.clone(),
                    session_id: p.session_id.clone(),
                    done: false,
                };
                let result = host.prompt(&p.session_id, prompt).await.map_err(failed)?;
                guard.done = true;
                match &result.stop {
                    Ok(_) => encode(PromptResult::from(&result)),
                    Err(message) => Err(failed(message.clone())),
                }
            }
            CANCEL => {
                let p: SessionParams = decode(method, params)?;
                host.cancel(&p.session_id).map_err(failed)?;
                Ok(Value::Null)
            }
            SET_MODE => {
                let p: SetModeParams = decode(method, params)?;
                let modes = host
                    .set_mode(&p.session_id, &p.mode_id)
                    .await
                    .map_err(invalid)?;
                encode(ModeState::from(modes))
            }
            SET_MODEL => {
                let p: SetModelParams = decode(method, params)?;
                let models = host
                    .set_model(&p.session_id, &p.model_id)
                    .await
                    .map_err(invalid)?;
                encode(ModelState::from(models))
            }
            LIST_MODELS => {
                let p: SessionParams = decode(method, params)?;
                let (_, models) = host.state(&p.session_id).map_err(failed)?;
                encode(ModelState::from(models))
            }
            CHECKPOINTS => {
                let p: WorkspaceParams = decode(method, params)?;
                let cwd = root(p.cwd)?;
                let list = blocking(move || host.list_checkpoints(&cwd)).await?;
                encode(CheckpointsResult {
                    checkpoints: list.iter().map(CheckpointInfo::from).collect(),
                })
            }
            RESTORE_CHECKPOINT => {
                let p: RestoreParams = decode(method, params)?;
                let cwd = root(p.cwd)?;
                let restored = blocking(move || {
                    host.restore_checkpoint(
                        &cwd,
                        &p.checkpoint_id,
                        p.file.as_deref(),
                        p.session_id.as_deref(),
                    )
                })
                .await?;
                encode(RestoreResult::from(restored))
            }
            other => Err(ResponseError::new(
                ErrorCode::METHOD_NOT_FOUND,
                format!("unknown method {other}"),
            )),
        }
    }
}

/// Runs blocking work (session files, git) off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, ResponseError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| failed(e.to_string()))?
        .map_err(failed)
}

fn decode<P: DeserializeOwned>(method: &str, params: Value) -> Result<P, ResponseError> {
    serde_json::from_value(params)
        .map_err(|err| invalid(format!("invalid params for {method}: {err}")))
}

fn encode<T: Serialize>(value: T) -> Result<Value, ResponseError> {
    serde_json::to_value(value).map_err(|e| failed(format!("bug: cannot encode the result: {e}")))
}

fn failed(message: String) -> ResponseError {
    ResponseError::new(ErrorCode::REQUEST_FAILED, message)
}

fn invalid(message: String) -> ResponseError {
    ResponseError::new(ErrorCode::INVALID_PARAMS, message)
}
