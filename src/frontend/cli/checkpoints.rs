//! `kiln checkpoints list|diff|restore|undo`: the workspace's checkpoints (a shadow git
//! repository under the data directory; the workspace's own `.git` is never touched).

use std::path::PathBuf;

use serde_json::json;

use super::Format;
use super::run::{EXIT_ERROR, EXIT_OK, workspace_root};
use crate::agent::checkpoint::{Checkpoint, Checkpoints, Restored, short};
use crate::agent::store;

#[derive(Clone, Debug)]
pub enum CheckpointsAction {
    List,
    Diff { id: String, file: Option<String> },
    Restore { id: String, file: Option<String> },
    Undo { id: String },
}

pub struct CheckpointsCommand {
    pub action: CheckpointsAction,
    pub dir: Option<PathBuf>,
    pub format: Format,
}

pub fn run(cmd: CheckpointsCommand) -> i32 {
    match run_inner(&cmd) {
        Ok(code) => code,
        Err(err) => {
            match cmd.format {
                Format::Json => println!("{}", json!({ "error": err })),
                Format::Text => eprintln!("kiln: {err}"),
            }
            EXIT_ERROR
        }
    }
}

fn row(c: &Checkpoint) -> serde_json::Value {
    json!({ "id": c.id, "kind": c.kind.as_str(), "message": c.message, "session": c.session, "time": store::iso8601(c.time_ms) })
}

fn restored_json(r: &Restored) -> serde_json::Value {
    json!({ "before": r.before, "written": r.written, "removed": r.removed, "conflicts": r.conflicts })
}

fn run_inner(cmd: &CheckpointsCommand) -> Result<i32, String> {
    let root = workspace_root(cmd.dir.as_deref())?;
    let data = store::data_dir().ok_or("no data directory (set KILN_DATA_DIR)")?;
    let cp = Checkpoints::open(&data, &root).map_err(|e| e.to_string())?;
    match &cmd.action {
        CheckpointsAction::List => {
            let list = cp.list().map_err(|e| e.to_string())?;
            match cmd.format {
                Format::Json => println!(
                    "{}",
                    json!({ "checkpoints": list.iter().map(row).collect::<Vec<_>>() })
                ),
                Format::Text if list.is_empty() => println!(
                    "no checkpoints in {} yet (kiln takes one before the agent's first change of a turn)",
                    root.display()
                ),
                Format::Text => {
                    for c in &list {
                        println!(
                            "{}  {}  {:<14} {}",
                            short(&c.id),
                            store::iso8601(c.time_ms),
                            c.kind.as_str(),
                            c.message
                        );
                    }
                }
            }
        }
        CheckpointsAction::Diff { id, file } => {
            let diff = cp
                .diff(id, None, file.as_deref())
                .map_err(|e| e.to_string())?;
            match cmd.format {
                Format::Json => println!(
                    "{}",
                    json!({ "id": cp.resolve(id).map_err(|e| e.to_string())?, "patch": diff })
                ),
                Format::Text if diff.is_empty() => println!("no changes since {id}"),
                Format::Text => print!("{diff}"),
            }
        }
        CheckpointsAction::Restore { id, file } => {
            let r = cp
                .restore(id, file.as_deref(), None)
                .map_err(|e| e.to_string())?;
            report(cmd.format, "restored", id, &r);
        }
        CheckpointsAction::Undo { id } => {
            let r = cp.undo_agent_since(id, None).map_err(|e| e.to_string())?;
            report(cmd.format, "undid the agent's changes since", id, &r);
            if !r.conflicts.is_empty() {
                return Ok(EXIT_ERROR);
            }
        }
    }
    Ok(EXIT_OK)
}

fn report(format: Format, what: &str, id: &str, r: &Restored) {
    match format {
        Format::Json => println!("{}", restored_json(r)),
        Format::Text => {
            println!(
                "{what} {id}: {} file(s) written, {} removed",
                r.written.len(),
                r.removed.len()
            );
            for p in &r.written {
                println!("  M {p}");
            }
            for p in &r.removed {
                println!("  D {p}");
            }
            for p in &r.conflicts {
                println!("  ! {p}: your edits overlap the agent's; left as you have it");
            }
            if let Some(before) = &r.before {
                println!(
                    "to take this back: kiln checkpoints restore {}",
                    short(before)
                );
            }
        }
    }
}
