//! Sessions on disk: one append-only JSONL file per session under the data directory, one
//! folder per workspace. Every completed message is appended, flushed and fsynced, so a
//! `kill -9` mid-turn loses at most the message in flight; a torn last line is skipped on
//! load, and tool calls left without results get a result saying the call was cut off, so
//! the conversation is valid to send again.
//!
//! The record shapes here are a file format (documented in `protocol/sessions.md`), hence
//! their own serde types.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::llm::{AssistantPart, Message, UserPart};
use crate::text::hash::stable_hash;

/// `$KILN_DATA_DIR`, else the platform data directory (`~/.local/share/kiln` on Linux).
pub fn data_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("KILN_DATA_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    dirs::data_dir().map(|d| d.join("kiln"))
}

/// The folder holding a workspace's sessions: its name plus a hash of its path.
pub fn sessions_dir(data_dir: &Path, workspace: &Path) -> PathBuf {
    let name: String = workspace
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".into())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let hash = stable_hash(workspace.as_os_str().as_encoded_bytes());
    data_dir
        .join("sessions")
        .join(format!("{name}-{:08x}", hash as u32))
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    Session {
        id: String,
        cwd: PathBuf,
        created_ms: u64,
        mode: String,
        #[serde(default)]
        model: Option<String>,
    },
    Message {
        #[serde(flatten)]
        message: StoredMessage,
    },
    /// Every message before this record was replaced by `summary`.
    Compaction {
        summary: String,
        replaced: usize,
    },
    Mode {
        mode: String,
    },
    Model {
        model: String,
    },
    /// Turn boundaries, for listing (title, counts) and stats.
    TurnEnd {
        stop_reason: String,
        #[serde(default)]
        input_tokens: u64,
        #[serde(default)]
        output_tokens: u64,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum StoredMessage {
    User {
        parts: Vec<StoredPart>,
    },
    Assistant {
        parts: Vec<StoredPart>,
    },
    Tool {
        call_id: String,
        content: String,
        #[serde(default)]
        is_error: bool,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StoredPart {
    Text {
        text: String,
    },
    Image {
        media_type: String,
        data: String,
    },
    Reasoning {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
    },
    ToolCall {
        id: String,
        name: String,
        arguments: serde_json::Value,
    },
}

impl From<&Message> for StoredMessage {
    fn from(message: &Message) -> Self {
        match message {
            Message::User(parts) => StoredMessage::User {
                parts: parts
                    .iter()
                    .map(|p| match p {
                        UserPart::Text(text) => StoredPart::Text { text: text.clone() },
                        UserPart::Image { media_type, data } => StoredPart::Image {
                            media_type: media_type.clone(),
                            data: data.clone(),
                        },
                    })
                    .collect(),
            },
            Message::Assistant(parts) => StoredMessage::Assistant {
                parts: parts
                    .iter()
                    .map(|p| match p {
                        AssistantPart::Text(text) => StoredPart::Text { text: text.clone() },
                        AssistantPart::Reasoning { text, signature } => StoredPart::Reasoning {
                            text: text.clone(),
                            signature: signature.clone(),
                        },
                        AssistantPart::ToolCall {
                            id,
                            name,
                            arguments,
                        } => StoredPart::ToolCall {
                            id: id.clone(),
                            name: name.clone(),
                            arguments: arguments.clone(),
                        },
                    })
                    .collect(),
            },
            Message::ToolResult {
                call_id,
                content,
                is_error,
            } => StoredMessage::Tool {
                call_id: call_id.clone(),
                content: content.clone(),
                is_error: *is_error,
            },
        }
    }
}

impl From<StoredMessage> for Message {
    fn from(message: StoredMessage) -> Self {
        match message {
            StoredMessage::User { parts } => Message::User(
                parts
                    .into_iter()
                    .filter_map(|p| match p {
                        StoredPart::Text { text } => Some(UserPart::Text(text)),
                        StoredPart::Image { media_type, data } => {
                            Some(UserPart::Image { media_type, data })
                        }
                        _ => None,
                    })
                    .collect(),
            ),
            StoredMessage::Assistant { parts } => Message::Assistant(
                parts
                    .into_iter()
                    .filter_map(|p| match p {
                        StoredPart::Text { text } => Some(AssistantPart::Text(text)),
                        StoredPart::Reasoning { text, signature } => {
                            Some(AssistantPart::Reasoning { text, signature })
                        }
                        StoredPart::ToolCall {
                            id,
                            name,
                            arguments,
                        } => Some(AssistantPart::ToolCall {
                            id,
                            name,
                            arguments,
                        }),
                        StoredPart::Image { .. } => None,
                    })
                    .collect(),
            ),
            StoredMessage::Tool {
                call_id,
                content,
                is_error,
            } => Message::ToolResult {
                call_id,
                content,
                is_error,
            },
        }
    }
}

/// An open session file. Every append is written before `append` returns (so a killed
/// process loses nothing written); the fsync that makes it survive a power cut runs on a
/// background thread, off the turn's path (it cost 0.6 ms a round trip, benches/agent.rs).
pub struct SessionFile {
    path: PathBuf,
    file: std::sync::Arc<File>,
    syncer: std::sync::mpsc::Sender<()>,
}

/// Starts the thread that fsyncs `file` after appends, coalescing bursts; it syncs once
/// more and ends when the session file is dropped.
fn start_syncer(file: std::sync::Arc<File>) -> std::sync::mpsc::Sender<()> {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("kiln-session-sync".into())
        .spawn(move || {
            while rx.recv().is_ok() {
                while rx.try_recv().is_ok() {}
                if let Err(err) = file.sync_data() {
                    tracing::warn!("cannot fsync a session file: {err}");
                }
            }
            let _ = file.sync_data();
        });
    if let Err(err) = spawned {
        tracing::warn!("no background fsync for the session file: {err}");
    }
    tx
}

impl SessionFile {
    pub fn create(dir: &Path, id: &str) -> std::io::Result<SessionFile> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{id}.jsonl"));
        let file = std::sync::Arc::new(
            OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(&path)?,
        );
        Ok(SessionFile {
            path,
            syncer: start_syncer(file.clone()),
            file,
        })
    }

    pub fn open_append(path: &Path) -> std::io::Result<SessionFile> {
        let mut file = OpenOptions::new().read(true).append(true).open(path)?;
        // A torn last line (kill -9 mid-write) must not swallow the next record: only the
        // last byte is read to know.
        let len = file.metadata()?.len();
        if len > 0 {
            use std::io::{Read, Seek, SeekFrom};
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(len - 1))?;
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
            }
        }
        let file = std::sync::Arc::new(file);
        Ok(SessionFile {
            path: path.to_path_buf(),
            syncer: start_syncer(file.clone()),
            file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn append(&mut self, record: &Record) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        (&*self.file).write_all(&line)?;
        let _ = self.syncer.send(());
        Ok(())
    }
}

/// A session as loaded from its file.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub id: String,
    pub cwd: PathBuf,
    pub created_ms: u64,
    pub mode: String,
    pub model: Option<String>,
    /// The conversation to send (after the last compaction, repaired).
    pub messages: Vec<Message>,
    /// Every message ever recorded, for `show` and `export` (compactions included as the
    /// summary text).
    pub history: Vec<Message>,
    pub n_turns: usize,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Lines that could not be read (a torn write).
    pub n_skipped: usize,
    /// Results `repair` added at the end, not in the file yet (the session that resumes
    /// records them).
    pub unrecorded: Vec<Message>,
    pub title: String,
    pub modified: SystemTime,
}

pub fn load(path: &Path) -> std::io::Result<Loaded> {
    let file = File::open(path)?;
    let modified = file.metadata()?.modified().unwrap_or(UNIX_EPOCH);
    let mut loaded = Loaded {
        id: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        cwd: PathBuf::new(),
        created_ms: 0,
        mode: super::mode::DEFAULT_MODE.to_owned(),
        model: None,
        messages: Vec::new(),
        history: Vec::new(),
        n_turns: 0,
        input_tokens: 0,
        output_tokens: 0,
        n_skipped: 0,
        unrecorded: Vec::new(),
        title: String::new(),
        modified,
    };
    for line in BufReader::new(file).split(b'\n') {
        let line = line?;
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let Ok(record) = serde_json::from_slice::<Record>(&line) else {
            loaded.n_skipped += 1;
            continue;
        };
        match record {
            Record::Session {
                id,
                cwd,
                created_ms,
                mode,
                model,
            } => {
                loaded.id = id;
                loaded.cwd = cwd;
                loaded.created_ms = created_ms;
                loaded.mode = mode;
                loaded.model = model;
            }
            Record::Message { message } => {
                let message = Message::from(message);
                if loaded.title.is_empty()
                    && let Message::User(parts) = &message
                {
                    loaded.title = title_of(parts);
                }
                loaded.history.push(message.clone());
                loaded.messages.push(message);
            }
            Record::Compaction { summary, replaced } => {
                let replaced = replaced.min(loaded.messages.len());
                loaded.messages.drain(..replaced);
                super::compaction::prepend_summary(&mut loaded.messages, &summary);
            }
            Record::Mode { mode } => loaded.mode = mode,
            Record::Model { model } => loaded.model = Some(model),
            Record::TurnEnd {
                input_tokens,
                output_tokens,
                ..
            } => {
                loaded.n_turns += 1;
                loaded.input_tokens += input_tokens;
                loaded.output_tokens += output_tokens;
            }
        }
    }
    let before = loaded.messages.len();
    repair(&mut loaded.messages);
    // Results added after the last recorded message belong in the file too, so that a
    // later compaction's message count means the same when the file is replayed.
    if loaded.messages.len() > before
        && loaded.messages[before..]
            .iter()
            .all(|m| matches!(m, Message::ToolResult { content, .. } if content == CUT_OFF))
    {
        loaded.unrecorded = loaded.messages[before..].to_vec();
    }
    Ok(loaded)
}

/// What `repair` says for a call whose result was never recorded.
pub const CUT_OFF: &str = "this tool call was cut off (kiln stopped before it finished); check the state of the files before going on";

/// Gives every tool call without a result a result saying it was cut off.
pub fn repair(messages: &mut Vec<Message>) {
    let mut idx = 0;
    while idx < messages.len() {
        if let Message::Assistant(parts) = &messages[idx] {
            let calls: Vec<String> = parts
                .iter()
                .filter_map(|p| match p {
                    AssistantPart::ToolCall { id, .. } => Some(id.clone()),
                    _ => None,
                })
                .collect();
            let mut end = idx + 1;
            while let Some(Message::ToolResult { .. }) = messages.get(end) {
                end += 1;
            }
            let answered: Vec<String> = messages[idx + 1..end]
                .iter()
                .filter_map(|m| match m {
                    Message::ToolResult { call_id, .. } => Some(call_id.clone()),
                    _ => None,
                })
                .collect();
            let missing: Vec<Message> = calls
                .into_iter()
                .filter(|id| !answered.contains(id))
                .map(|call_id| Message::ToolResult {
                    call_id,
                    content: CUT_OFF.to_owned(),
                    is_error: true,
                })
                .collect();
            let n = missing.len();
            messages.splice(end..end, missing);
            idx = end + n;
        } else {
            idx += 1;
        }
    }
}

fn title_of(parts: &[UserPart]) -> String {
    let text = parts
        .iter()
        .find_map(|p| match p {
            UserPart::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .unwrap_or("");
    let line = text.lines().next().unwrap_or("").trim();
    let mut title: String = line.chars().take(72).collect();
    if line.chars().count() > 72 {
        title.push('…');
    }
    title
}

/// Every session file of a workspace, newest first.
pub fn list(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(SystemTime, PathBuf)> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .map(|p| {
            let modified = p
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(UNIX_EPOCH);
            (modified, p)
        })
        .collect();
    files.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
    files.into_iter().map(|(_, p)| p).collect()
}

/// A new session id: time-ordered, with a random tail (`ses_20261201T205754_a1b2c3`).
pub fn new_id() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (y, mo, d, h, mi, s) = civil(secs);
    let tail = stable_hash(format!("{}{}", now.as_nanos(), std::process::id()).as_bytes());
    format!(
        "ses_{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}_{:06x}",
        tail & 0xff_ffff
    )
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// UTC calendar date and time of a Unix time (Howard Hinnant's days-from-civil inverse).
pub fn civil(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

/// ISO 8601 UTC (`2026-12-01T20:57:54Z`).
pub fn iso8601(ms: u64) -> String {
    let (y, mo, d, h, mi, s) = civil(ms / 1000);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(iso8601(1_796_158_674_000), "2026-12-01T20:57:54Z");
    }

    #[test]
    fn repair_answers_cut_off_calls_in_place() {
        let call = |id: &str| AssistantPart::ToolCall {
            id: id.into(),
            name: "read".into(),
            arguments: serde_json::json!({}),
        };
        let mut messages = vec![
            Message::User(vec![UserPart::Text("go".into())]),
            Message::Assistant(vec![call("a"), call("b")]),
            Message::ToolResult {
                call_id: "a".into(),
                content: "ok".into(),
                is_error: false,
            },
        ];
        repair(&mut messages);
        assert_eq!(messages.len(), 4);
        assert!(
            matches!(&messages[3], Message::ToolResult { call_id, content, .. } if call_id == "b" && content == CUT_OFF)
        );
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_appends_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = SessionFile::create(dir.path(), "s1").unwrap();
        let msg = Message::User(vec![UserPart::Text("hello".into())]);
        file.append(&Record::Message {
            message: (&msg).into(),
        })
        .unwrap();
        drop(file);
        let path = dir.path().join("s1.jsonl");
        let mut raw = OpenOptions::new().append(true).open(&path).unwrap();
        raw.write_all(b"{\"type\":\"message\",\"role\":\"assis")
            .unwrap();
        drop(raw);
        let mut file = SessionFile::open_append(&path).unwrap();
        file.append(&Record::Message {
            message: (&msg).into(),
        })
        .unwrap();
        let loaded = load(&path).unwrap();
        assert_eq!(loaded.n_skipped, 1);
        assert_eq!(loaded.messages, vec![msg.clone(), msg]);
        assert_eq!(loaded.title, "hello");
    }
}
