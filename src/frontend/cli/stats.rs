//! `kiln stats`: a summary of the audit log (turns, tool calls by kind, approvals and
//! denials, tokens).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};

use super::Format;
use super::run::{EXIT_ERROR, EXIT_OK, workspace_root};
use crate::agent::audit;

pub struct StatsCommand {
    pub dir: Option<PathBuf>,
    pub log_dir: Option<PathBuf>,
    pub format: Format,
}

#[derive(Default, Debug)]
struct Stats {
    sessions: std::collections::BTreeSet<String>,
    prompts: u64,
    turns: BTreeMap<String, u64>,
    requests: u64,
    tool_calls: BTreeMap<String, u64>,
    permissions: BTreeMap<String, u64>,
    file_changes: u64,
    lines_added: u64,
    lines_removed: u64,
    commands: u64,
    commands_failed: u64,
    errors: u64,
    input_tokens: u64,
    output_tokens: u64,
    cache_read_tokens: u64,
    models: BTreeMap<String, u64>,
}

pub fn run(cmd: StatsCommand) -> i32 {
    let root = match workspace_root(cmd.dir.as_deref()) {
        Ok(r) => r,
        Err(err) => {
            eprintln!("kiln: {err}");
            return EXIT_ERROR;
        }
    };
    let dir = match cmd.log_dir {
        Some(d) if d.is_absolute() => d,
        Some(d) => root.join(d),
        None => root.join(".kiln/logs"),
    };
    let events = audit::read_all(&dir);
    let stats = summarise(&events);
    let n = |v: u64| v;
    match cmd.format {
        Format::Json => println!(
            "{}",
            json!({
                "logDir": dir,
                "events": events.len(),
                "sessions": stats.sessions.len(),
                "prompts": stats.prompts,
                "turns": stats.turns,
                "requests": stats.requests,
                "toolCalls": stats.tool_calls,
                "permissions": stats.permissions,
                "fileChanges": { "count": stats.file_changes, "linesAdded": stats.lines_added, "linesRemoved": stats.lines_removed },
                "commands": { "count": stats.commands, "failed": stats.commands_failed },
                "errors": stats.errors,
                "tokens": { "input": stats.input_tokens, "output": stats.output_tokens, "cacheRead": stats.cache_read_tokens },
                "models": stats.models,
            })
        ),
        Format::Text if events.is_empty() => {
            println!(
                "no audit log in {} yet (kiln run writes one)",
                dir.display()
            )
        }
        Format::Text => {
            let list = |m: &BTreeMap<String, u64>| {
                m.iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            println!("audit log: {} ({} events)", dir.display(), events.len());
            println!("sessions:      {}", stats.sessions.len());
            println!(
                "prompts:       {}   turns: {}",
                n(stats.prompts),
                list(&stats.turns)
            );
            println!("requests:      {}", stats.requests);
            println!("tool calls:    {}", list(&stats.tool_calls));
            println!("permissions:   {}", list(&stats.permissions));
            println!(
                "file changes:  {} (+{} −{} lines)",
                stats.file_changes, stats.lines_added, stats.lines_removed
            );
            println!(
                "commands:      {} ({} failed)",
                stats.commands, stats.commands_failed
            );
            println!("errors:        {}", stats.errors);
            println!(
                "tokens:        {} in ({} cached) / {} out",
                stats.input_tokens, stats.cache_read_tokens, stats.output_tokens
            );
            println!("models:        {}", list(&stats.models));
        }
    }
    EXIT_OK
}

fn summarise(events: &[Value]) -> Stats {
    let mut s = Stats::default();
    let num = |e: &Value, k: &str| e.get(k).and_then(Value::as_u64).unwrap_or(0);
    let text = |e: &Value, k: &str| e.get(k).and_then(Value::as_str).unwrap_or("?").to_owned();
    for e in events {
        if let Some(id) = e.get("session").and_then(Value::as_str) {
            s.sessions.insert(id.to_owned());
        }
        match e.get("event").and_then(Value::as_str).unwrap_or("") {
            "prompt" => s.prompts += 1,
            "tool_call" => *s.tool_calls.entry(text(e, "tool")).or_default() += 1,
            "permission" => {
                let key = format!("{} by {}", text(e, "decision"), text(e, "by"));
                *s.permissions.entry(key).or_default() += 1;
            }
            "file_change" => {
                s.file_changes += 1;
                s.lines_added += num(e, "added");
                s.lines_removed += num(e, "removed");
            }
            "command" => {
                s.commands += 1;
                if e.get("exit_code").and_then(Value::as_i64) != Some(0) {
                    s.commands_failed += 1;
                }
            }
            "error" => s.errors += 1,
            "turn_end" => {
                *s.turns.entry(text(e, "stop_reason")).or_default() += 1;
                s.requests += num(e, "requests");
                s.input_tokens += num(e, "input_tokens");
                s.output_tokens += num(e, "output_tokens");
                s.cache_read_tokens += num(e, "cache_read_tokens");
                *s.models.entry(text(e, "model")).or_default() += 1;
            }
            _ => {}
        }
    }
    s
}
