//! Pure text machinery: ropes, positions in the three LSP encodings, documents that apply
//! editor changes, and the line diff that every proposal is built from.
//!
//! Nothing in here does IO, spawns tasks or logs. Problems are returned as values
//! (`ChangeError`, `ChangeReport`, `ApplyError`) and the layers above decide how to report
//! them. That keeps the module fast to test exhaustively and impossible to deadlock.

pub mod diff;
pub mod document;
pub mod hash;
pub mod position;

pub use document::{ChangeError, ChangeReport, ContentChange, Document};
pub use position::{CharIdx, Position, PositionEncoding, Range, Unclipped};
