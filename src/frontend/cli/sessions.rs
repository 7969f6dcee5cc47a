//! `kiln sessions list|show|export|delete`: the sessions stored for a workspace.

use std::path::PathBuf;

use serde_json::json;

use super::Format;
use super::run::{EXIT_ERROR, EXIT_OK, find_session, workspace_root};
use crate::agent::store;
use crate::llm::{AssistantPart, Message, UserPart};

#[derive(Clone, Debug)]
pub enum SessionsAction {
    List,
    Show(String),
    Export(String),
    Delete(String),
}

pub struct SessionsCommand {
    pub action: SessionsAction,
    pub dir: Option<PathBuf>,
    pub format: Format,
}

pub fn run(cmd: SessionsCommand) -> i32 {
    match run_inner(&cmd) {
        Ok(()) => EXIT_OK,
        Err(err) => {
            match cmd.format {
                Format::Json => println!("{}", json!({ "error": err })),
                Format::Text => eprintln!("kiln: {err}"),
            }
            EXIT_ERROR
        }
    }
}

fn run_inner(cmd: &SessionsCommand) -> Result<(), String> {
    let root = workspace_root(cmd.dir.as_deref())?;
    let data = store::data_dir().ok_or("no data directory (set KILN_DATA_DIR)")?;
    let dir = store::sessions_dir(&data, &root);
    let load = |id: &str| {
        let path = find_session(&dir, Some(id), &root)?;
        store::load(&path)
            .map(|l| (path.clone(), l))
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    match &cmd.action {
        SessionsAction::List => {
            let sessions: Vec<store::Loaded> = store::list(&dir)
                .iter()
                .filter_map(|p| store::load(p).ok())
                .collect();
            match cmd.format {
                Format::Json => println!(
                    "{}",
                    json!({ "sessions": sessions.iter().map(summary).collect::<Vec<_>>() })
                ),
                Format::Text if sessions.is_empty() => {
                    println!(
                        "no sessions in {} yet; start one with kiln run \"…\"",
                        root.display()
                    )
                }
                Format::Text => {
                    for s in &sessions {
                        println!(
                            "{}  {}  {:>3} turn{}  {:<8} {}  {}",
                            s.id,
                            store::iso8601(modified_ms(s)),
                            s.n_turns,
                            if s.n_turns == 1 { " " } else { "s" },
                            s.mode,
                            s.model.as_deref().unwrap_or("-"),
                            s.title
                        );
                    }
                }
            }
        }
        SessionsAction::Show(id) | SessionsAction::Export(id) => {
            let (path, s) = load(id)?;
            let export = matches!(cmd.action, SessionsAction::Export(_));
            match cmd.format {
                Format::Json if export => {
                    let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
                    let records: Vec<serde_json::Value> = text
                        .lines()
                        .filter_map(|l| serde_json::from_str(l).ok())
                        .collect();
                    println!("{}", json!({ "session": summary(&s), "records": records }));
                }
                Format::Json => {
                    let messages: Vec<serde_json::Value> = s
                        .history
                        .iter()
                        .map(|m| {
                            serde_json::to_value(store::StoredMessage::from(m)).unwrap_or_default()
                        })
                        .collect();
                    println!(
                        "{}",
                        json!({ "session": summary(&s), "messages": messages })
                    );
                }
                Format::Text => print!("{}", transcript(&s, export)),
            }
        }
        SessionsAction::Delete(id) => {
            let (path, s) = load(id)?;
            std::fs::remove_file(&path)
                .map_err(|e| format!("cannot delete {}: {e}", path.display()))?;
            match cmd.format {
                Format::Json => println!("{}", json!({ "deleted": s.id })),
                Format::Text => println!("deleted session {}", s.id),
            }
        }
    }
    Ok(())
}

fn modified_ms(s: &store::Loaded) -> u64 {
    s.modified
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn summary(s: &store::Loaded) -> serde_json::Value {
    json!({
        "id": s.id,
        "title": s.title,
        "cwd": s.cwd,
        "mode": s.mode,
        "model": s.model,
        "created": store::iso8601(s.created_ms),
        "updated": store::iso8601(modified_ms(s)),
        "turns": s.n_turns,
        "messages": s.history.len(),
        "inputTokens": s.input_tokens,
        "outputTokens": s.output_tokens,
    })
}

/// The conversation as Markdown; `full` keeps tool results whole (export), else they are
/// cut to a few lines (show).
fn transcript(s: &store::Loaded, full: bool) -> String {
    let mut out = format!(
        "# {}\n\nsession {} · {} · {} mode · {} turns\n\n",
        if s.title.is_empty() {
            "(untitled)"
        } else {
            &s.title
        },
        s.id,
        s.model.as_deref().unwrap_or("-"),
        s.mode,
        s.n_turns
    );
    for m in &s.history {
        match m {
            Message::User(parts) => {
                out.push_str("## You\n\n");
                for p in parts {
                    match p {
                        UserPart::Text(t) => out.push_str(t.trim_end()),
                        UserPart::Image { media_type, .. } => {
                            out.push_str(&format!("[image {media_type}]"))
                        }
                    }
                    out.push_str("\n\n");
                }
            }
            Message::Assistant(parts) => {
                out.push_str("## kiln\n\n");
                for p in parts {
                    match p {
                        AssistantPart::Text(t) => out.push_str(&format!("{}\n\n", t.trim_end())),
                        AssistantPart::Reasoning { text, .. } if full => out.push_str(&format!(
                            "> thinking: {}\n\n",
                            text.trim_end().replace('\n', "\n> ")
                        )),
                        AssistantPart::Reasoning { .. } => {}
                        AssistantPart::ToolCall {
                            name, arguments, ..
                        } => out.push_str(&format!("→ `{name}` {arguments}\n\n")),
                    }
                }
            }
            Message::ToolResult {
                content, is_error, ..
            } => {
                let shown = if full {
                    content.clone()
                } else {
                    let lines: Vec<&str> = content.lines().collect();
                    if lines.len() > 6 {
                        format!(
                            "{}\n… ({} more lines)",
                            lines[..6].join("\n"),
                            lines.len() - 6
                        )
                    } else {
                        content.clone()
                    }
                };
                out.push_str(&format!(
                    "{}\n```\n{}\n```\n\n",
                    if *is_error { "← error" } else { "←" },
                    shown.trim_end()
                ));
            }
        }
    }
    out
}
