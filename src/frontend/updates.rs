//! Session updates as ACP v1 `SessionUpdate` JSON: the one wire shape that `kiln run
//! --format json`, `kiln/sessionUpdate` over LSP and `session/update` over ACP share.
//! What ACP lacks rides in `_meta.kiln` (a command's streamed output) or in kiln's own
//! `_kiln_notice` update, which ACP clients ignore as an unknown extension.

use serde_json::{Value, json};

use crate::agent::update::{ToolCall, ToolContent, ToolStatus, Update};
use crate::text::diff::{RenderOptions, render_unified};
use crate::tools::todo;

pub fn session_update(update: &Update) -> Value {
    let text = |kind: &str, text: &str| json!({ "sessionUpdate": kind, "content": { "type": "text", "text": text } });
    match update {
        Update::UserMessage(t) => text("user_message_chunk", t),
        Update::AgentMessage(t) => text("agent_message_chunk", t),
        Update::AgentThought(t) => text("agent_thought_chunk", t),
        Update::ToolCall(call) => tool_call(call),
        Update::ToolCallUpdate(up) => {
            let mut v = json!({ "sessionUpdate": "tool_call_update", "toolCallId": up.id });
            if let Some(s) = up.status {
                v["status"] = json!(status(s));
                if s == ToolStatus::Cancelled {
                    v["_meta"] = json!({ "kiln": { "cancelled": true } });
                }
            }
            if let Some(title) = &up.title {
                v["title"] = json!(title);
            }
            if let Some(content) = &up.content {
                v["content"] = json!(content.iter().map(tool_content).collect::<Vec<_>>());
            }
            if let Some(chunk) = &up.output_chunk {
                v["_meta"] = json!({ "kiln": { "outputChunk": chunk } });
            }
            v
        }
        Update::Plan(items) => json!({
            "sessionUpdate": "plan",
            "entries": items.iter().map(plan_entry).collect::<Vec<_>>(),
        }),
        Update::Usage(u) => json!({
            "sessionUpdate": "usage_update",
            "used": u.used,
            "size": u.size,
            "_meta": { "kiln": {
                "inputTokens": u.input_tokens,
                "outputTokens": u.output_tokens,
                "cacheReadTokens": u.cache_read_tokens,
            } },
        }),
        Update::CurrentMode(mode) => {
            json!({ "sessionUpdate": "current_mode_update", "currentModeId": mode })
        }
        Update::Notice { level, message } => json!({
            "sessionUpdate": "_kiln_notice",
            "level": level.as_str(),
            "message": message,
        }),
    }
}

/// An update for an editor (`kiln/sessionUpdate`, ACP `session/update`): ACP's shape, and
/// where ACP's types cannot carry kiln's value, kiln's own `_kiln_*` update, which ACP
/// clients ignore. So far that is usage without a known context window (ACP requires
/// `size`): `_kiln_usage` with the same fields.
pub fn for_editor(update: &Update) -> Value {
    let mut value = session_update(update);
    if let Update::Usage(u) = update
        && u.size.is_none()
    {
        value["sessionUpdate"] = json!("_kiln_usage");
        value.as_object_mut().map(|o| o.remove("size"));
    }
    value
}

/// A `tool_call` update (ACP `ToolCall` with `sessionUpdate`).
pub fn tool_call(call: &ToolCall) -> Value {
    json!({
        "sessionUpdate": "tool_call",
        "toolCallId": call.id,
        "title": call.title,
        "kind": call.kind.as_str(),
        "status": status(call.status),
        "locations": call.locations.iter().map(|l| {
            let mut loc = json!({ "path": l.path });
            if let Some(line) = l.line { loc["line"] = json!(line); }
            loc
        }).collect::<Vec<_>>(),
        "rawInput": call.raw_input,
    })
}

/// ACP has no `cancelled` tool status: a cancelled call is `failed` (with `_meta`).
fn status(s: ToolStatus) -> &'static str {
    match s {
        ToolStatus::Cancelled => "failed",
        other => other.as_str(),
    }
}

pub fn tool_content(content: &ToolContent) -> Value {
    match content {
        ToolContent::Text(text) => {
            json!({ "type": "content", "content": { "type": "text", "text": text } })
        }
        ToolContent::Diff {
            path,
            old_text,
            new_text,
        } => {
            let diff = crate::agent::proposal::diff_of(old_text.as_deref(), new_text.as_deref());
            let name = path.display().to_string();
            let patch = render_unified(
                &diff,
                &RenderOptions {
                    old_path: &name,
                    new_path: &name,
                    color: false,
                },
            );
            json!({
                "type": "diff",
                "path": path,
                "oldText": old_text,
                "newText": new_text.clone().unwrap_or_default(),
                "_meta": { "kiln": {
                    "deleted": new_text.is_none(),
                    "hunks": diff.hunks.iter().map(hunk).collect::<Vec<_>>(),
                    "patch": patch,
                } },
            })
        }
    }
}

/// A hunk as `_meta.kiln.hunks` carries it (the hunk model of protocol/diff.md, without
/// the lines: they are in `patch`). Lines are zero-based.
fn hunk(h: &crate::text::diff::Hunk) -> Value {
    json!({
        "id": h.id.to_string(),
        "oldStart": h.old.start,
        "oldLines": h.old.len,
        "newStart": h.new.start,
        "newLines": h.new.len,
        "added": h.n_added(),
        "removed": h.n_removed(),
    })
}

fn plan_entry(item: &todo::Item) -> Value {
    let status = match item.status {
        todo::Status::Pending => "pending",
        todo::Status::InProgress => "in_progress",
        todo::Status::Completed => "completed",
    };
    let priority = match item.priority {
        todo::Priority::High => "high",
        todo::Priority::Medium => "medium",
        todo::Priority::Low => "low",
    };
    json!({ "content": item.content, "status": status, "priority": priority })
}
