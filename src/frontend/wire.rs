//! The `kiln/*` methods' params and results, as Rust types: the handlers decode and encode
//! through them, and `protocol/schema/kiln.json` is generated from them (a test fails when
//! the file and the types differ; regenerate with `KILN_UPDATE_DOCS=1 cargo test docs`).
//! Shapes follow ACP v1 (`sessionId`, `modes`, `stopReason`, content blocks, `SessionUpdate`)
//! so one client library reads both transports.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::host::{Models, Modes, Opened, SessionSummary};
use crate::agent::checkpoint::{Checkpoint, Restored};

/// `kiln/newSession` params.
#[derive(Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewSessionParams {
    /// The workspace folder; the first workspace root when absent.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// A mode id (`code`, `architect`, `ask`, `debug` or one from the config).
    #[serde(default)]
    pub mode: Option<String>,
    /// `provider/model`; the configured or detected model when absent.
    #[serde(default)]
    pub model: Option<String>,
}

/// `kiln/newSession` and `kiln/loadSession` result.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionResult {
    pub session_id: String,
    pub modes: ModeState,
    pub models: ModelState,
    /// Problems in the config or instructions; the session works regardless.
    pub problems: Vec<String>,
}

/// ACP's `SessionModeState`.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModeState {
    pub current_mode_id: String,
    pub available_modes: Vec<ModeInfo>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModeInfo {
    pub id: String,
    pub name: String,
    pub description: String,
}

/// ACP's `SessionModelState`.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelState {
    pub current_model_id: String,
    pub available_models: Vec<ModelInfo>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelInfo {
    /// `provider/model`.
    pub model_id: String,
    pub name: String,
}

/// `kiln/prompt` params.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PromptParams {
    pub session_id: String,
    /// ACP content blocks: `text`, `resource_link`, `resource` (text), `image`.
    pub prompt: Value,
    /// What the editor knows: `{ selection?: {uri|path, startLine, endLine, text},
    /// problems?: [{uri|path, line, severity, message}], terminal?: string }` (lines
    /// one-based); `@selection`, `@problems` and `@terminal` in the prompt refer to it.
    #[serde(default)]
    pub context: Option<Value>,
}

/// `kiln/prompt` result.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PromptResult {
    /// `end_turn`, `max_tokens`, `max_turn_requests`, `refusal` or `cancelled`.
    pub stop_reason: String,
    /// Set when a permission nobody could grant stopped the turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied: Option<String>,
    pub usage: Usage,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub requests: u32,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub tool_calls: u32,
}

/// Params naming one session: `kiln/cancel`, `kiln/listModels`.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionParams {
    pub session_id: String,
}

/// `kiln/loadSession` params.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadSessionParams {
    pub session_id: String,
    #[serde(default)]
    pub cwd: Option<PathBuf>,
}

/// Params naming a workspace: `kiln/listSessions`, `kiln/checkpoints`.
#[derive(Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceParams {
    #[serde(default)]
    pub cwd: Option<PathBuf>,
}

/// `kiln/listSessions` result (ACP `session/list`'s shape).
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListSessionsResult {
    pub sessions: Vec<SessionInfo>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    pub session_id: String,
    pub cwd: PathBuf,
    pub title: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// `kiln/setMode` params.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetModeParams {
    pub session_id: String,
    pub mode_id: String,
}

/// `kiln/setModel` params.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetModelParams {
    pub session_id: String,
    /// `provider/model`.
    pub model_id: String,
}

/// `kiln/checkpoints` result, newest first.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointsResult {
    pub checkpoints: Vec<CheckpointInfo>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointInfo {
    pub id: String,
    /// `before-turn`, `after-change`, `before-restore` or `manual`.
    pub kind: String,
    pub message: String,
    #[serde(default)]
    pub session_id: Option<String>,
    /// RFC 3339.
    pub time: String,
}

/// `kiln/restoreCheckpoint` params.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreParams {
    /// A checkpoint id (or a unique prefix).
    pub checkpoint_id: String,
    /// Restore only this workspace-relative file or folder.
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    #[serde(default)]
    pub session_id: Option<String>,
}

/// `kiln/restoreCheckpoint` result.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreResult {
    /// The checkpoint taken just before; restore it to take this back.
    pub before: Option<String>,
    pub written: Vec<String>,
    pub removed: Vec<String>,
}

/// `kiln/sessionUpdate` params (a notification, server → client).
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionUpdateParams {
    pub session_id: String,
    /// An ACP `SessionUpdate` (protocol/updates.md).
    pub update: Value,
}

/// `_meta.kiln` of a `kiln/requestPermission` / `session/request_permission` answer.
#[derive(Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PermissionAnswerMeta {
    /// Accept only these hunks (ids from the diff's `_meta.kiln.hunks`); the rest are
    /// rejected.
    #[serde(default)]
    pub accepted_hunks: Option<Vec<String>>,
    /// Told to the model with a rejection or a partial acceptance.
    #[serde(default)]
    pub feedback: Option<String>,
    /// With `allow_always`: also write the rule to the project's kiln.jsonc.
    #[serde(default)]
    pub save: bool,
}

impl From<Modes> for ModeState {
    fn from(m: Modes) -> Self {
        ModeState {
            current_mode_id: m.current,
            available_modes: m
                .available
                .into_iter()
                .map(|(id, name, description)| ModeInfo {
                    id,
                    name,
                    description,
                })
                .collect(),
        }
    }
}

impl From<Models> for ModelState {
    fn from(m: Models) -> Self {
        ModelState {
            current_model_id: m.current,
            available_models: m
                .available
                .into_iter()
                .map(|(model_id, name)| ModelInfo { model_id, name })
                .collect(),
        }
    }
}

impl From<Opened> for SessionResult {
    fn from(o: Opened) -> Self {
        SessionResult {
            session_id: o.session_id,
            modes: o.modes.into(),
            models: o.models.into(),
            problems: o.problems,
        }
    }
}

impl From<SessionSummary> for SessionInfo {
    fn from(s: SessionSummary) -> Self {
        SessionInfo {
            session_id: s.session_id,
            cwd: s.cwd,
            title: s.title,
            updated_at: crate::agent::store::iso8601(s.updated_ms),
        }
    }
}

impl From<&Checkpoint> for CheckpointInfo {
    fn from(c: &Checkpoint) -> Self {
        CheckpointInfo {
            id: c.id.clone(),
            kind: c.kind.as_str().to_owned(),
            message: c.message.clone(),
            session_id: c.session.clone(),
            time: crate::agent::store::iso8601(c.time_ms),
        }
    }
}

impl From<Restored> for RestoreResult {
    fn from(r: Restored) -> Self {
        RestoreResult {
            before: r.before,
            written: r.written,
            removed: r.removed,
        }
    }
}

impl From<&crate::agent::TurnResult> for PromptResult {
    fn from(r: &crate::agent::TurnResult) -> Self {
        PromptResult {
            stop_reason: r
                .stop
                .as_ref()
                .map(|s| s.as_str())
                .unwrap_or("end_turn")
                .to_owned(),
            denied: r.denied.clone(),
            usage: Usage {
                requests: r.usage.requests,
                input_tokens: r.usage.input_tokens,
                output_tokens: r.usage.output_tokens,
                cache_read_tokens: r.usage.cache_read_tokens,
                tool_calls: r.usage.tool_calls,
            },
        }
    }
}

/// Every `kiln/*` message type by method, for `protocol/schema/kiln.json`.
pub fn schema() -> Value {
    use schemars::generate::SchemaSettings;
    let mut generator = SchemaSettings::draft2020_12().into_generator();
    let mut methods = serde_json::Map::new();
    let mut add = |method: &str, params: Option<Value>, result: Option<Value>| {
        let mut entry = serde_json::Map::new();
        if let Some(p) = params {
            entry.insert("params".into(), p);
        }
        if let Some(r) = result {
            entry.insert("result".into(), r);
        }
        methods.insert(method.to_owned(), Value::Object(entry));
    };
    macro_rules! s {
        ($t:ty) => {
            Some(generator.subschema_for::<$t>().to_value())
        };
    }
    add("kiln/newSession", s!(NewSessionParams), s!(SessionResult));
    add("kiln/loadSession", s!(LoadSessionParams), s!(SessionResult));
    add(
        "kiln/listSessions",
        s!(WorkspaceParams),
        s!(ListSessionsResult),
    );
    add("kiln/prompt", s!(PromptParams), s!(PromptResult));
    add("kiln/cancel", s!(SessionParams), None);
    add("kiln/setMode", s!(SetModeParams), s!(ModeState));
    add("kiln/setModel", s!(SetModelParams), s!(ModelState));
    add("kiln/listModels", s!(SessionParams), s!(ModelState));
    add(
        "kiln/checkpoints",
        s!(WorkspaceParams),
        s!(CheckpointsResult),
    );
    add(
        "kiln/restoreCheckpoint",
        s!(RestoreParams),
        s!(RestoreResult),
    );
    add("kiln/sessionUpdate", s!(SessionUpdateParams), None);
    add(
        "kiln/requestPermission#_meta.kiln",
        s!(PermissionAnswerMeta),
        None,
    );
    let definitions = generator.take_definitions(true);
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "kiln/* methods over LSP",
        "description": "Generated from src/frontend/wire.rs; see protocol/lsp.md. Each method lists its params and result schema.",
        "methods": methods,
        "$defs": definitions,
    })
}
