//! The audit log: one JSON line per event (prompt, tool call with its input, permission
//! decision and who made it, file change with diff stats, command with exit code, error,
//! turn end with tokens), appended to `<log dir>/<date>.jsonl` (default `.kiln/logs/` in
//! the workspace). `kiln stats` reads it back. Secrets never reach it: tool inputs are
//! logged as the model sent them, and keys are never part of those.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{Value, json};

use super::store::{iso8601, now_ms};

pub struct AuditLog {
    dir: Option<PathBuf>,
    session: String,
    /// Today's file, kept open; the lock keeps lines from concurrent tasks whole.
    file: Mutex<Option<(String, std::fs::File)>>,
}

impl AuditLog {
    /// `dir: None` logs nothing (tests of other parts, `--log-dir ''`).
    pub fn new(dir: Option<PathBuf>, session: &str) -> AuditLog {
        AuditLog {
            dir,
            session: session.to_owned(),
            file: Mutex::new(None),
        }
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Appends `{"ts", "session", "event", ...fields}`. Failures are logged, never fatal:
    /// the audit log must not stop the work it records.
    pub fn record(&self, event: &str, fields: Value) {
        let Some(dir) = &self.dir else { return };
        let ms = now_ms();
        let mut line = json!({ "ts": iso8601(ms), "session": self.session, "event": event });
        if let (Some(obj), Value::Object(extra)) = (line.as_object_mut(), fields) {
            obj.extend(extra);
        }
        let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
        bytes.push(b'\n');
        let mut slot = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let date = iso8601(ms)[..10].to_owned();
        let result = (|| {
            if slot.as_ref().is_none_or(|(d, _)| *d != date) {
                if !dir.exists() {
                    std::fs::create_dir_all(dir)?;
                    ignore_logs(dir);
                }
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join(format!("{date}.jsonl")))?;
                *slot = Some((date, file));
            }
            match slot.as_mut() {
                Some((_, file)) => file.write_all(&bytes),
                None => Ok(()),
            }
        })();
        if result.is_err() {
            *slot = None;
        }
        if let Err(err) = result {
            tracing::warn!("cannot write the audit log in {}: {err}", dir.display());
        }
    }
}

/// A new `.kiln/logs` gets a `.gitignore` so the log is not committed by accident.
fn ignore_logs(dir: &Path) {
    let gitignore = dir.join(".gitignore");
    if !gitignore.exists() {
        let _ = std::fs::write(gitignore, "*\n");
    }
}

/// Every event in a log directory, oldest file first; unreadable lines are skipped.
pub fn read_all(dir: &Path) -> Vec<Value> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .collect::<Vec<_>>()
        })
        .collect()
}
