//! The one path every file change takes once the policy allows it. A change is refused
//! when the file moved on since the tool read it (the person typed, a formatter ran), so
//! nothing anyone wrote is overwritten; the model is told to read again. Closed files are
//! written atomically: a temporary file in the same folder, fsynced, renamed over the old
//! one with its permissions kept.

use std::io::Write;
use std::path::Path;

use crate::text::diff::{Diff, DiffOptions};
use crate::tools::FileChange;
use crate::workspace::{Identity, ReadError, read_disk};

/// What an applied change did, for the model, the audit log and the person.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub added: usize,
    pub removed: usize,
    pub created: bool,
    pub deleted: bool,
}

pub fn stats(change: &FileChange) -> Stats {
    let old = change.old_text.as_deref().unwrap_or("");
    let new = change.new_text.as_deref().unwrap_or("");
    let diff = Diff::new(
        old,
        new,
        DiffOptions {
            context: 0,
            inline_spans: false,
        },
    );
    Stats {
        added: diff.n_added(),
        removed: diff.n_removed(),
        created: change.old_text.is_none(),
        deleted: change.new_text.is_none(),
    }
}

/// [`apply_to_disk`] on a blocking thread.
pub async fn apply_to_disk_off_thread(change: FileChange, display: String) -> Result<(), String> {
    off_thread(move || apply_to_disk(&change, &display)).await
}

/// Runs file IO on a blocking thread.
pub async fn off_thread(
    io: impl FnOnce() -> Result<(), String> + Send + 'static,
) -> Result<(), String> {
    tokio::task::spawn_blocking(io)
        .await
        .unwrap_or_else(|err| Err(format!("writing stopped unexpectedly: {err}")))
}

/// Checks `change.base` against the disk and writes (blocking IO).
pub fn apply_to_disk(change: &FileChange, display: &str) -> Result<(), String> {
    let current = match read_disk(&change.path) {
        Ok(read) => Some(read.identity),
        Err(ReadError::NotFound { .. }) => None,
        Err(err) => return Err(err.to_string()),
    };
    check_base(change.base, current, display)?;
    write_change(change, display)
}

/// Writes (or deletes) the change's file, its base already checked (blocking IO).
pub fn write_change(change: &FileChange, display: &str) -> Result<(), String> {
    match &change.new_text {
        Some(text) => write_atomic(&change.path, text.as_bytes())
            .map_err(|e| format!("cannot write {display}: {e}")),
        None => {
            std::fs::remove_file(&change.path).map_err(|e| format!("cannot delete {display}: {e}"))
        }
    }
}

/// Refuses a change built on something other than what is there now.
pub fn check_base(
    base: Option<Identity>,
    current: Option<Identity>,
    display: &str,
) -> Result<(), String> {
    match (base, current) {
        (None, None) => Ok(()),
        (Some(b), Some(c)) if b == c => Ok(()),
        (None, Some(_)) => Err(format!(
            "{display} was created by someone else after the tool looked; nothing was written. Read it and try again"
        )),
        (Some(_), None) => Err(format!(
            "{display} was deleted after it was read; nothing was written"
        )),
        (Some(_), Some(_)) => Err(format!(
            "{display} changed since it was read (edited in the editor or on disk); nothing was written. Read it again and redo the change"
        )),
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder, keeping the old
/// file's permissions; creates missing parent folders. Through a symlink, the target is
/// written.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    // A symlink stays a symlink: the file it points to is what changes.
    let resolved;
    let path = if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        resolved = std::fs::canonicalize(path)?;
        resolved.as_path()
    } else {
        path
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.kiln-{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        if let Ok(meta) = std::fs::metadata(path) {
            std::fs::set_permissions(&tmp, meta.permissions())?;
        }
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_keep_the_mode_and_refuse_a_moved_on_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.sh");
        std::fs::write(&path, "echo 1\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let read = read_disk(&path).unwrap();
        let change = FileChange {
            path: path.clone(),
            base: Some(read.identity),
            old_text: Some(read.text),
            new_text: Some("echo 2\n".into()),
        };
        std::fs::write(&path, "echo typed by the person\n").unwrap();
        let err = apply_to_disk(&change, "run.sh").unwrap_err();
        assert!(err.contains("changed since it was read"), "{err}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "echo typed by the person\n"
        );

        std::fs::write(&path, "echo 1\n").unwrap();
        apply_to_disk(&change, "run.sh").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "echo 2\n");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o755
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
        assert_eq!(
            stats(&change),
            Stats {
                added: 1,
                removed: 1,
                created: false,
                deleted: false
            }
        );
    }
}
