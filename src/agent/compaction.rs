//! Compaction: before a request would fill more than `compaction.threshold_percent` of the
//! model's input window, the older part of the conversation is summarised by the model
//! (or `small_model`) and replaced by the summary. The last turns stay verbatim, and a
//! turn is never split, so tool calls keep their results.

use crate::llm::{AssistantPart, Message, UserPart};

/// Turns (a person's message and everything after it) always kept verbatim.
pub const KEEP_TURNS: usize = 2;

pub const SUMMARY_HEADING: &str = "[Summary of the earlier conversation]";

pub const SUMMARY_PROMPT: &str = "You summarise a coding session so that it can go on without the full history. Write a concise summary: the person's goals and requests, decisions made, files read or changed (with paths) and what changed in them, commands run and their results, open problems and next steps. Keep exact names, paths and error messages. Do not address the person; write only the summary.";

/// A rough token count (about four bytes a token) for when the provider has not said.
pub fn estimate(messages: &[Message]) -> u64 {
    let bytes: usize = messages
        .iter()
        .map(|m| match m {
            Message::User(parts) => parts
                .iter()
                .map(|p| match p {
                    UserPart::Text(t) => t.len(),
                    // Providers count images at roughly a thousand tokens.
                    UserPart::Image { .. } => 4000,
                })
                .sum(),
            Message::Assistant(parts) => parts
                .iter()
                .map(|p| match p {
                    AssistantPart::Text(t) => t.len(),
                    AssistantPart::Reasoning { text, .. } => text.len(),
                    AssistantPart::ToolCall {
                        name, arguments, ..
                    } => name.len() + arguments.to_string().len(),
                })
                .sum(),
            Message::ToolResult { content, .. } => content.len() + 16,
        })
        .sum();
    (bytes / 4) as u64 + 4 * messages.len() as u64
}

/// Where the kept part starts: the first message of the last [`KEEP_TURNS`] turns (a
/// turn starts at a person's message). `None` when there is nothing older to summarise.
pub fn split_point(messages: &[Message]) -> Option<usize> {
    let starts: Vec<usize> = messages
        .iter()
        .enumerate()
        .filter(|(_, m)| matches!(m, Message::User(_)))
        .map(|(i, _)| i)
        .collect();
    if starts.len() <= KEEP_TURNS {
        // One long turn: keep its prompt and the latest exchange, summarise the middle
        // only at a tool-result boundary.
        let first = *starts.first()?;
        let last_assistant = messages
            .iter()
            .rposition(|m| matches!(m, Message::Assistant(_)))?;
        return (last_assistant > first + 2).then_some(last_assistant);
    }
    let at = starts[starts.len() - KEEP_TURNS];
    (at > 0).then_some(at)
}

/// The older messages written out as a transcript for the summariser.
pub fn transcript(messages: &[Message]) -> String {
    let mut out = String::new();
    for m in messages {
        match m {
            Message::User(parts) => {
                out.push_str("## Person\n");
                for p in parts {
                    match p {
                        UserPart::Text(t) => out.push_str(t),
                        UserPart::Image { .. } => out.push_str("[image]"),
                    }
                    out.push('\n');
                }
            }
            Message::Assistant(parts) => {
                out.push_str("## Agent\n");
                for p in parts {
                    match p {
                        AssistantPart::Text(t) => out.push_str(t),
                        AssistantPart::Reasoning { .. } => continue,
                        AssistantPart::ToolCall {
                            name, arguments, ..
                        } => out.push_str(&format!("[called {name} {arguments}]")),
                    }
                    out.push('\n');
                }
            }
            Message::ToolResult {
                content, is_error, ..
            } => {
                out.push_str(if *is_error {
                    "## Tool error\n"
                } else {
                    "## Tool result\n"
                });
                out.push_str(&crate::tools::truncate_middle(content, 4000));
                out.push('\n');
            }
        }
    }
    out
}

/// Puts the summary in front of the kept conversation: into its first message when that
/// is the person's, else as a message of its own.
pub fn prepend_summary(messages: &mut Vec<Message>, summary: &str) {
    let text = format!("{SUMMARY_HEADING}\n{summary}\n\n");
    match messages.first_mut() {
        Some(Message::User(parts)) => parts.insert(0, UserPart::Text(text)),
        _ => messages.insert(0, Message::User(vec![UserPart::Text(text)])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(t: &str) -> Message {
        Message::User(vec![UserPart::Text(t.into())])
    }
    fn agent(t: &str) -> Message {
        Message::Assistant(vec![AssistantPart::Text(t.into())])
    }

    #[test]
    fn keeps_the_last_turns_whole() {
        let msgs = vec![
            user("1"),
            agent("a"),
            user("2"),
            agent("b"),
            user("3"),
            agent("c"),
        ];
        assert_eq!(split_point(&msgs), Some(2));
        // Too few turns: the latest exchange is kept, the rest summarised.
        assert_eq!(split_point(&msgs[2..]), Some(3));
        assert_eq!(split_point(&msgs[4..]), None);
        let mut kept = msgs[2..].to_vec();
        prepend_summary(&mut kept, "did 1");
        assert!(matches!(&kept[0], Message::User(p) if p.len() == 2));
    }
}
