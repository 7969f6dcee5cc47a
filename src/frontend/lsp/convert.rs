//! Conversions between `lsp-types` wire values and kiln's domain types. Positions stay
//! [`Unclipped`] until a document validates them.

use std::path::PathBuf;

use lsp_types::Url;

use crate::text::{ContentChange, Position, Range, Unclipped};
use crate::workspace::DocKey;

pub fn doc_key(uri: &Url) -> DocKey {
    match file_path(uri) {
        Some(path) => DocKey::path(&path),
        None => DocKey::Uri(uri.to_string()),
    }
}

pub fn file_path(uri: &Url) -> Option<PathBuf> {
    if uri.scheme() == "file" {
        uri.to_file_path().ok()
    } else {
        None
    }
}

pub fn position(pos: lsp_types::Position) -> Position {
    Position::new(pos.line, pos.character)
}

pub fn range(range: lsp_types::Range) -> Unclipped<Range> {
    Unclipped(Range::new(position(range.start), position(range.end)))
}

pub fn content_change(change: lsp_types::TextDocumentContentChangeEvent) -> ContentChange {
    ContentChange {
        range: change.range.map(range),
        text: change.text,
    }
}
