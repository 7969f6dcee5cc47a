//! What a session tells its frontend, in ACP's vocabulary: message and thought chunks,
//! tool calls and their updates, plans, usage, mode changes. These are domain values;
//! each frontend writes them in its own wire shape (ACP `SessionUpdate` JSON for `acp`,
//! `kiln/sessionUpdate` for `lsp`, lines for `run`).

use std::path::PathBuf;

use crate::tools::{Kind, todo};

#[derive(Clone, Debug, PartialEq)]
pub enum Update {
    /// The person's prompt (sent when a session is replayed).
    UserMessage(String),
    AgentMessage(String),
    AgentThought(String),
    ToolCall(ToolCall),
    ToolCallUpdate(ToolCallUpdate),
    Plan(Vec<todo::Item>),
    Usage(UsageUpdate),
    CurrentMode(String),
    /// Something the person should know that is not part of the conversation: a retry,
    /// a compaction, an unknown mention, a warning from the provider.
    Notice {
        level: NoticeLevel,
        message: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoticeLevel {
    Info,
    Warning,
    Error,
}

impl NoticeLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeLevel::Info => "info",
            NoticeLevel::Warning => "warning",
            NoticeLevel::Error => "error",
        }
    }
}

/// ACP `ToolCallStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolStatus {
    Pending,
    InProgress,
    Completed,
    Failed,
    /// kiln's own: the call was stopped by a cancellation (ACP clients see `failed`).
    Cancelled,
}

impl ToolStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ToolStatus::Pending => "pending",
            ToolStatus::InProgress => "in_progress",
            ToolStatus::Completed => "completed",
            ToolStatus::Failed => "failed",
            ToolStatus::Cancelled => "cancelled",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub title: String,
    pub kind: Kind,
    pub status: ToolStatus,
    pub locations: Vec<ToolLocation>,
    pub raw_input: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolLocation {
    pub path: PathBuf,
    pub line: Option<u32>,
}

/// Only the fields that changed are set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ToolCallUpdate {
    pub id: String,
    pub status: Option<ToolStatus>,
    pub title: Option<String>,
    /// Replaces the call's content.
    pub content: Option<Vec<ToolContent>>,
    /// Partial output of a running command, appended to what came before (kiln's own:
    /// ACP replaces content, so `acp` sends the accumulated text).
    pub output_chunk: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ToolContent {
    Text(String),
    /// A file change; `old_text` is `None` for a new file, `new_text` `None` for a deletion.
    Diff {
        path: PathBuf,
        old_text: Option<String>,
        new_text: Option<String>,
    },
}

/// ACP `usage_update`: the context window in use, and what the turn has cost so far.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct UsageUpdate {
    /// Tokens the conversation takes in the context window now.
    pub used: u64,
    /// The window's size, when known.
    pub size: Option<u64>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
}
