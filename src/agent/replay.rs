//! A stored conversation as the updates that first showed it, so an editor that loads a
//! session (`session/load`, `kiln/loadSession`) draws the same transcript it saw live.

use std::path::Path;

use super::update::{ToolCall, ToolCallUpdate, ToolContent, ToolLocation, ToolStatus, Update};
use crate::llm::{AssistantPart, Message, UserPart};
use crate::tools::{Kind, Registry, ToolCx};

/// The updates that replay `messages`, in order. Tool calls are described by the tools
/// that made them (title, kind, locations) and end with their recorded result.
pub fn updates(registry: &Registry, root: &Path, messages: &[Message]) -> Vec<Update> {
    let cx = ToolCx::on_disk(root.to_path_buf());
    let mut out = Vec::new();
    for message in messages {
        match message {
            Message::User(parts) => {
                for part in parts {
                    if let UserPart::Text(text) = part {
                        out.push(Update::UserMessage(text.clone()));
                    }
                }
            }
            Message::Assistant(parts) => {
                for part in parts {
                    match part {
                        AssistantPart::Text(text) => out.push(Update::AgentMessage(text.clone())),
                        AssistantPart::Reasoning { text, .. } => {
                            out.push(Update::AgentThought(text.clone()))
                        }
                        AssistantPart::ToolCall {
                            id,
                            name,
                            arguments,
                        } => {
                            let tool = registry.get(name);
                            let described = tool.and_then(|t| t.describe(arguments, &cx).ok());
                            out.push(Update::ToolCall(ToolCall {
                                id: id.clone(),
                                title: described
                                    .as_ref()
                                    .map_or_else(|| name.clone(), |d| d.title.clone()),
                                kind: tool.map_or(Kind::Other, |t| t.kind()),
                                status: ToolStatus::Pending,
                                locations: described
                                    .map(|d| {
                                        d.locations
                                            .into_iter()
                                            .map(|l| ToolLocation {
                                                path: l.path,
                                                line: l.line,
                                            })
                                            .collect()
                                    })
                                    .unwrap_or_default(),
                                raw_input: arguments.clone(),
                            }));
                        }
                    }
                }
            }
            Message::ToolResult {
                call_id,
                content,
                is_error,
            } => out.push(Update::ToolCallUpdate(ToolCallUpdate {
                id: call_id.clone(),
                status: Some(if *is_error {
                    ToolStatus::Failed
                } else {
                    ToolStatus::Completed
                }),
                content: Some(vec![ToolContent::Text(content.clone())]),
                ..ToolCallUpdate::default()
            })),
        }
    }
    out
}
