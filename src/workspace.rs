//! The workspace: its roots, the editor's open buffers laid over the files on disk, and
//! the watching of closed files.
//!
//! [`Workspace::read`] is the one way kiln reads a file: the open buffer when the editor has
//! the file open (the person's unsaved text is the truth), else the file on disk. Every read
//! returns an [`Identity`] of what was read (a buffer version or a content hash) so that a
//! change built from that read can later be refused if the file has moved on.

mod overlay;
pub mod paths;
pub mod watch;

pub use overlay::{
    ChangeKind, DocKey, ExternalChange, Identity, ReadError, ReadResult, Workspace, read_disk,
};
