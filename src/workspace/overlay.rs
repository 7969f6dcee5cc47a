//! Open buffers over the disk.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use crate::text::Document;
use crate::text::hash::stable_hash;

use super::paths::normalize;

/// How an open document is keyed: by normalised path for `file:` URIs, by the URI itself
/// for everything else (`untitled:`, virtual documents).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DocKey {
    Path(PathBuf),
    Uri(String),
}

impl DocKey {
    pub fn path(path: &Path) -> DocKey {
        DocKey::Path(normalize(path))
    }
}

/// What a read saw, so that a later write can check the file has not moved on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Identity {
    /// The editor's buffer at this version.
    Buffer { version: i32 },
    /// The file on disk with this content hash and length.
    Disk { hash: u64, len: u64 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadResult {
    pub text: String,
    pub identity: Identity,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("file not found: {}", path.display())]
    NotFound { path: PathBuf },
    #[error("not a regular file: {}", path.display())]
    NotAFile { path: PathBuf },
    #[error("file is not UTF-8 text: {}", path.display())]
    NotUtf8 { path: PathBuf },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Created,
    Changed,
    Deleted,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Created => "created",
            ChangeKind::Changed => "changed",
            ChangeKind::Deleted => "deleted",
        }
    }
}

/// A change to a file made outside kiln, reported by the editor or the file watcher.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalChange {
    pub path: PathBuf,
    pub kind: ChangeKind,
}

/// How many recent external changes are kept for inspection.
const RECENT_CHANGES: usize = 64;

#[derive(Debug, Default)]
pub struct Workspace {
    roots: Vec<PathBuf>,
    docs: HashMap<DocKey, Document>,
    n_external_changes: u64,
    recent_external_changes: VecDeque<ExternalChange>,
}

impl Workspace {
    pub fn new(roots: Vec<PathBuf>) -> Self {
        Workspace {
            roots: roots.iter().map(|r| normalize(r)).collect(),
            ..Default::default()
        }
    }

    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    pub fn add_root(&mut self, root: &Path) {
        let root = normalize(root);
        if !self.roots.contains(&root) {
            self.roots.push(root);
        }
    }

    pub fn remove_root(&mut self, root: &Path) {
        let root = normalize(root);
        self.roots.retain(|r| *r != root);
    }

    /// Opens (or re-opens) a document; returns the one it replaces.
    pub fn open(&mut self, key: DocKey, doc: Document) -> Option<Document> {
        self.docs.insert(key, doc)
    }

    pub fn close(&mut self, key: &DocKey) -> Option<Document> {
        self.docs.remove(key)
    }

    pub fn document(&self, key: &DocKey) -> Option<&Document> {
        self.docs.get(key)
    }

    pub fn document_mut(&mut self, key: &DocKey) -> Option<&mut Document> {
        self.docs.get_mut(key)
    }

    pub fn documents(&self) -> impl Iterator<Item = &Document> {
        self.docs.values()
    }

    /// The open buffer for `key`, if the editor has it open. Never touches the disk.
    pub fn read_buffer(&self, key: &DocKey) -> Option<ReadResult> {
        let doc = self.docs.get(key)?;
        Some(ReadResult {
            text: doc.rope().to_string(),
            identity: Identity::Buffer {
                version: doc.version(),
            },
        })
    }

    /// The open buffer for `path`, else the file on disk (blocking IO).
    pub fn read(&self, path: &Path) -> Result<ReadResult, ReadError> {
        match self.read_buffer(&DocKey::path(path)) {
            Some(read) => Ok(read),
            None => read_disk(path),
        }
    }

    pub fn record_external_change(&mut self, change: ExternalChange) {
        self.n_external_changes += 1;
        if self.recent_external_changes.len() == RECENT_CHANGES {
            self.recent_external_changes.pop_front();
        }
        self.recent_external_changes.push_back(change);
    }

    /// The number of external changes seen so far and the most recent ones, oldest first.
    pub fn external_changes(&self) -> (u64, impl Iterator<Item = &ExternalChange>) {
        (self.n_external_changes, self.recent_external_changes.iter())
    }
}

/// Reads a file from disk with its content identity (blocking IO).
pub fn read_disk(path: &Path) -> Result<ReadResult, ReadError> {
    let path_buf = || path.to_path_buf();
    let meta = std::fs::metadata(path).map_err(|source| io_error(path_buf(), source))?;
    if !meta.is_file() {
        return Err(ReadError::NotAFile { path: path_buf() });
    }
    let bytes = std::fs::read(path).map_err(|source| io_error(path_buf(), source))?;
    let identity = Identity::Disk {
        hash: stable_hash(&bytes),
        len: bytes.len() as u64,
    };
    let text = String::from_utf8(bytes).map_err(|_| ReadError::NotUtf8 { path: path_buf() })?;
    Ok(ReadResult { text, identity })
}

fn io_error(path: PathBuf, source: std::io::Error) -> ReadError {
    if source.kind() == std::io::ErrorKind::NotFound {
        ReadError::NotFound { path }
    } else {
        ReadError::Io { path, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_buffer_shadows_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        std::fs::write(&path, "on disk\n").unwrap();
        let mut ws = Workspace::new(vec![dir.path().to_path_buf()]);

        let disk = ws.read(&path).unwrap();
        assert_eq!(disk.text, "on disk\n");
        assert_eq!(
            disk.identity,
            Identity::Disk {
                hash: stable_hash(b"on disk\n"),
                len: 8
            }
        );

        let doc = Document::new("file:///a.txt".into(), 7, "text".into(), "in the editor\n");
        ws.open(DocKey::path(&path.join("../a.txt")), doc);
        let buffer = ws.read(&path).unwrap();
        assert_eq!(buffer.text, "in the editor\n");
        assert_eq!(buffer.identity, Identity::Buffer { version: 7 });

        ws.close(&DocKey::path(&path));
        assert_eq!(ws.read(&path).unwrap().text, "on disk\n");
    }

    #[test]
    fn missing_and_non_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(vec![]);
        let err = ws.read(&dir.path().join("nope.rs")).unwrap_err();
        assert!(err.to_string().starts_with("file not found: "), "{err}");
        let err = ws.read(dir.path()).unwrap_err();
        assert!(err.to_string().starts_with("not a regular file: "), "{err}");
    }
}
