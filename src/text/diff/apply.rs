//! Applying a diff, or any subset of its hunks, to the text it was computed from, and
//! turning it into the minimal text edits an editor applies.
//!
//! Hunks never overlap in the old text, so every subset yields a consistent file: accepted
//! hunks contribute their new side, the rest of the file stays as it was. Both functions
//! check that the old text still holds what each hunk expects and refuse otherwise, which
//! is how a proposal built against a stale snapshot is caught.

use ropey::Rope;

use super::{Diff, Hunk, HunkId, LineKind};
use crate::text::position::{self, PositionEncoding, Range};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error(
        "hunk {hunk_id} does not match the text at line {line}: the text changed since the diff was made"
    )]
    Mismatch { hunk_id: HunkId, line: u32 },
    #[error("no hunk with id {hunk_id} in this diff")]
    UnknownHunk { hunk_id: HunkId },
}

/// A replacement of `range` (in some position encoding) by `new_text`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextEdit {
    pub range: Range,
    pub new_text: String,
}

/// Applies the hunks whose ids are in `accepted` to `old`.
pub fn apply(old: &str, diff: &Diff, accepted: &[HunkId]) -> Result<String, ApplyError> {
    let old_lines = split_lines(old);
    let selected = select(diff, accepted, &old_lines)?;
    let mut out = String::with_capacity(old.len());
    let mut at = 0usize;
    for hunk in selected {
        let start = hunk.old.start as usize;
        for line in &old_lines[at..start] {
            out.push_str(line);
        }
        for line in hunk.lines.iter().filter(|l| l.kind != LineKind::Removed) {
            out.push_str(&line.text);
        }
        at = hunk.old.end() as usize;
    }
    for line in &old_lines[at..] {
        out.push_str(line);
    }
    Ok(out)
}

/// The accepted hunks as edits against `old`, each trimmed to the characters that actually
/// change, in document order, positions in `enc`.
pub fn text_edits(
    old: &str,
    diff: &Diff,
    accepted: &[HunkId],
    enc: PositionEncoding,
) -> Result<Vec<TextEdit>, ApplyError> {
    let old_lines = split_lines(old);
    let selected = select(diff, accepted, &old_lines)?;
    let mut line_starts = Vec::with_capacity(old_lines.len() + 1);
    let mut offset = 0;
    for line in &old_lines {
        line_starts.push(offset);
        offset += line.len();
    }
    line_starts.push(offset);
    let rope = Rope::from_str(old);
    let mut edits = Vec::new();
    for hunk in selected {
        let mut old_idx = hunk.old.start as usize;
        let mut lines = hunk.lines.iter().peekable();
        while let Some(line) = lines.next() {
            if line.kind == LineKind::Context {
                old_idx += 1;
                continue;
            }
            // A change block: the run of removed and added lines starting here.
            let block_start = old_idx;
            let mut removed = String::new();
            let mut added = String::new();
            let mut line = line;
            loop {
                match line.kind {
                    LineKind::Removed => {
                        removed.push_str(&line.text);
                        old_idx += 1;
                    }
                    LineKind::Added => added.push_str(&line.text),
                    LineKind::Context => unreachable!("blocks end before context lines"),
                }
                match lines.next_if(|l| l.kind != LineKind::Context) {
                    Some(next) => line = next,
                    None => break,
                }
            }
            let base = line_starts[block_start];
            let (old_range, new_range) = trim_common(old, base..base + removed.len(), &added);
            edits.push(TextEdit {
                range: Range::new(
                    position::byte_to_position(&rope, old_range.start, enc),
                    position::byte_to_position(&rope, old_range.end, enc),
                ),
                new_text: added[new_range].to_owned(),
            });
        }
    }
    Ok(edits)
}

/// Narrows a replacement of `old[range]` by `new` to the part that differs, never splitting
/// a `\r\n` pair (an LSP position cannot point between the two).
fn trim_common(
    old: &str,
    range: std::ops::Range<usize>,
    new: &str,
) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
    let old_block = &old[range.clone()];
    let mut prefix = old_block
        .char_indices()
        .zip(new.chars())
        .find(|((_, a), b)| a != b)
        .map_or(old_block.len().min(new.len()), |((i, _), _)| i);
    // The zip stops at the shorter side; make sure `prefix` is a boundary in both.
    while !new.is_char_boundary(prefix) || !old_block.is_char_boundary(prefix) {
        prefix -= 1;
    }
    let max_suffix = (old_block.len() - prefix).min(new.len() - prefix);
    let mut suffix = old_block[prefix..]
        .chars()
        .rev()
        .zip(new[prefix..].chars().rev())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a.len_utf8())
        .sum::<usize>()
        .min(max_suffix);
    while !old_block.is_char_boundary(old_block.len() - suffix)
        || !new.is_char_boundary(new.len() - suffix)
    {
        suffix -= 1;
    }
    let mut old_start = range.start + prefix;
    let mut old_end = range.end - suffix;
    let mut new_start = prefix;
    let mut new_end = new.len() - suffix;
    let bytes = old.as_bytes();
    if old_start > 0 && bytes[old_start - 1] == b'\r' && bytes.get(old_start) == Some(&b'\n') {
        old_start -= 1;
        new_start -= 1;
    }
    if old_end > 0 && bytes[old_end - 1] == b'\r' && bytes.get(old_end) == Some(&b'\n') {
        old_end += 1;
        new_end += 1;
    }
    (old_start..old_end, new_start..new_end)
}

/// Lines with their terminators, split after each `\n`, as the diff was computed.
pub(super) fn split_lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

/// The accepted hunks in order, each checked against the old text.
fn select<'d>(
    diff: &'d Diff,
    accepted: &[HunkId],
    old_lines: &[&str],
) -> Result<Vec<&'d Hunk>, ApplyError> {
    if let Some(&hunk_id) = accepted
        .iter()
        .find(|id| !diff.hunks.iter().any(|h| h.id == **id))
    {
        return Err(ApplyError::UnknownHunk { hunk_id });
    }
    let selected: Vec<&Hunk> = diff
        .hunks
        .iter()
        .filter(|h| accepted.contains(&h.id))
        .collect();
    for hunk in &selected {
        check_matches(hunk, old_lines)?;
    }
    Ok(selected)
}

fn check_matches(hunk: &Hunk, old_lines: &[&str]) -> Result<(), ApplyError> {
    let old_side = hunk.lines.iter().filter(|l| l.kind != LineKind::Added);
    for (idx, line) in (hunk.old.start as usize..).zip(old_side) {
        if old_lines.get(idx) != Some(&line.text.as_str()) {
            return Err(ApplyError::Mismatch {
                hunk_id: hunk.id,
                line: idx as u32 + 1,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::diff::DiffOptions;

    #[test]
    fn crlf_pair_is_never_split() {
        let old = "a\r\nb\n";
        let new = "a\nb\n";
        let diff = Diff::new(old, new, DiffOptions::default());
        let edits = text_edits(old, &diff, &diff.hunk_ids(), PositionEncoding::Utf16).unwrap();
        assert_eq!(edits.len(), 1);
        assert_eq!(edits[0].new_text, "\n");
        assert_eq!(edits[0].range.start, crate::text::Position::new(0, 1));
        assert_eq!(edits[0].range.end, crate::text::Position::new(1, 0));
    }

    #[test]
    fn stale_text_is_refused() {
        let diff = Diff::new("a\nb\n", "a\nc\n", DiffOptions::default());
        let err = apply("a\nB\n", &diff, &diff.hunk_ids()).unwrap_err();
        assert!(
            matches!(err, ApplyError::Mismatch { line: 2, .. }),
            "{err:?}"
        );
        assert_eq!(apply("a\nB\n", &diff, &[]).unwrap(), "a\nB\n");
    }
}
