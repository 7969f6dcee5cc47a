//! An open editor buffer: its URI, version, language and text in a rope.
//!
//! The editor owns the buffer; kiln keeps a mirror that must never drift. Changes are
//! applied in arrival order, a notification's changes all-or-nothing: if one change in a
//! `didChange` is invalid (a range that ends before it starts), the document stays exactly
//! as it was before the notification and the error is returned for the caller to log.

use ropey::Rope;

use super::position::{self, PositionEncoding, Range, Unclipped};

/// One entry of `didChange`'s `contentChanges`: a range replacement, or the whole text when
/// `range` is `None`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentChange {
    pub range: Option<Unclipped<Range>>,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    #[error(
        "change {change_idx} has a range that ends ({end_line}:{end_character}) before it starts ({start_line}:{start_character})"
    )]
    EndBeforeStart {
        change_idx: usize,
        start_line: u32,
        start_character: u32,
        end_line: u32,
        end_character: u32,
    },
}

/// What the caller may want to log about an applied change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangeReport {
    /// Set when the new version is not greater than the previous one (LSP requires it to
    /// increase); holds the previous version.
    pub version_not_increasing: Option<i32>,
}

#[derive(Clone, Debug)]
pub struct Document {
    uri: String,
    version: i32,
    language_id: String,
    rope: Rope,
}

impl Document {
    pub fn new(uri: String, version: i32, language_id: String, text: &str) -> Self {
        Document {
            uri,
            version,
            language_id,
            rope: Rope::from_str(text),
        }
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    pub fn version(&self) -> i32 {
        self.version
    }

    pub fn language_id(&self) -> &str {
        &self.language_id
    }

    pub fn rope(&self) -> &Rope {
        &self.rope
    }

    /// Applies one `didChange` notification. On error nothing changes, not even the version.
    pub fn apply_changes(
        &mut self,
        version: i32,
        changes: &[ContentChange],
        enc: PositionEncoding,
    ) -> Result<ChangeReport, ChangeError> {
        // Validate everything first, so that a bad change leaves the document untouched
        // without the cost of a copy-on-write snapshot on every edit.
        for (change_idx, change) in changes.iter().enumerate() {
            check(change_idx, change)?;
        }
        for change in changes {
            apply_one(&mut self.rope, change, enc);
        }
        let report = ChangeReport {
            version_not_increasing: (version <= self.version).then_some(self.version),
        };
        self.version = version;
        Ok(report)
    }

    /// Replaces the whole text, e.g. on a repeated `didOpen`.
    pub fn reset(&mut self, version: i32, language_id: String, text: &str) {
        self.version = version;
        self.language_id = language_id;
        self.rope = Rope::from_str(text);
    }
}

fn check(change_idx: usize, change: &ContentChange) -> Result<(), ChangeError> {
    match change.range {
        Some(Unclipped(range)) if range.end < range.start => Err(ChangeError::EndBeforeStart {
            change_idx,
            start_line: range.start.line,
            start_character: range.start.character,
            end_line: range.end.line,
            end_character: range.end.character,
        }),
        _ => Ok(()),
    }
}

fn apply_one(rope: &mut Rope, change: &ContentChange, enc: PositionEncoding) {
    let Some(range) = change.range else {
        *rope = Rope::from_str(&change.text);
        return;
    };
    let (start, end) = position::to_char_range(rope, range, enc);
    if end > start {
        rope.remove(start.0..end.0);
    }
    if !change.text.is_empty() {
        rope.insert(start.0, &change.text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::Position;

    fn change(l0: u32, c0: u32, l1: u32, c1: u32, text: &str) -> ContentChange {
        ContentChange {
            range: Some(Unclipped(Range::new(
                Position::new(l0, c0),
                Position::new(l1, c1),
            ))),
            text: text.to_owned(),
        }
    }

    #[test]
    fn invalid_change_rolls_back_the_whole_notification() {
        let mut doc = Document::new("file:///a".into(), 1, "rust".into(), "hello\nworld\n");
        let err = doc
            .apply_changes(
                2,
                &[change(0, 0, 0, 5, "HELLO"), change(1, 3, 1, 1, "x")],
                PositionEncoding::Utf16,
            )
            .unwrap_err();
        assert!(matches!(
            err,
            ChangeError::EndBeforeStart { change_idx: 1, .. }
        ));
        assert_eq!(doc.rope().to_string(), "hello\nworld\n");
        assert_eq!(doc.version(), 1);
    }

    #[test]
    fn version_going_backwards_is_reported_and_applied() {
        let mut doc = Document::new("file:///a".into(), 5, "rust".into(), "a");
        let report = doc.apply_changes(3, &[change(0, 1, 0, 1, "b")], PositionEncoding::Utf8);
        assert_eq!(report.unwrap().version_not_increasing, Some(5));
        assert_eq!(doc.rope().to_string(), "ab");
        assert_eq!(doc.version(), 3);
    }
}
