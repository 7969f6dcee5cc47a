//! The diff engine: a line diff between two texts, grouped into hunks that a person can
//! accept or reject one by one.
//!
//! Lines are split on `\n` (the terminator stays part of the line, so `\r\n` vs `\n` and a
//! missing final newline are real differences), diffed with imara-diff's histogram
//! algorithm and its indent-aware line post-processing, which is what git and Helix do.
//! Change blocks closer than twice the context are merged into one [`Hunk`], exactly as
//! `git diff -U<context>` groups them, so the hunks a person sees are the units they decide
//! on. Each hunk carries a stable id, its old and new line ranges, its lines, and for paired
//! changed lines the byte spans that differ (a token diff inside the hunk).
//!
//! The other halves live in submodules: `render` (unified diff text), `apply` (apply any
//! subset of hunks; convert to LSP-style text edits) and `inline` (the token diff).

mod anchored;
mod apply;
mod inline;
pub mod patch;
mod render;

pub use apply::{ApplyError, TextEdit, apply, text_edits};
pub use render::{RenderOptions, render_unified};

use imara_diff::{Algorithm, InternedInput};

use super::hash::StableHasher;

/// How a diff is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiffOptions {
    /// Unchanged lines kept around each change; also decides which changes share a hunk.
    pub context: u32,
    /// Compute the changed spans inside paired lines.
    pub inline_spans: bool,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions {
            context: 3,
            inline_spans: true,
        }
    }
}

/// A stable hunk identifier: a hash of the hunk's position and content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HunkId(pub u64);

impl std::fmt::Display for HunkId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A range of zero-based line indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LineRange {
    pub start: u32,
    pub len: u32,
}

impl LineRange {
    pub fn end(self) -> u32 {
        self.start + self.len
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineKind {
    Context,
    Removed,
    Added,
}

/// One line of a hunk. `text` includes its terminator (`\n` or `\r\n`); only the last line of
/// a file can lack one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffLine {
    pub kind: LineKind,
    pub text: String,
    /// Byte ranges in `text` that differ from the paired line on the other side. Empty for
    /// context lines and for changed lines that have no partner.
    pub spans: Vec<std::ops::Range<usize>>,
}

impl DiffLine {
    pub fn has_newline(&self) -> bool {
        self.text.ends_with('\n')
    }

    /// The text without its line terminator.
    pub fn content(&self) -> &str {
        let t = self.text.strip_suffix('\n').unwrap_or(&self.text);
        t.strip_suffix('\r').unwrap_or(t)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hunk {
    pub id: HunkId,
    pub old: LineRange,
    pub new: LineRange,
    pub lines: Vec<DiffLine>,
}

impl Hunk {
    pub fn n_added(&self) -> usize {
        self.lines
            .iter()
            .filter(|l| l.kind == LineKind::Added)
            .count()
    }

    pub fn n_removed(&self) -> usize {
        self.lines
            .iter()
            .filter(|l| l.kind == LineKind::Removed)
            .count()
    }
}

/// The difference between two texts.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Diff {
    pub hunks: Vec<Hunk>,
    pub context: u32,
}

impl Diff {
    /// Computes the diff from `old` to `new`.
    pub fn new(old: &str, new: &str, options: DiffOptions) -> Diff {
        let input = InternedInput::new(old, new);
        let line = |token: imara_diff::Token| input.interner[token];
        let old_lines: Vec<&str> = input.before.iter().map(|&t| line(t)).collect();
        let new_lines: Vec<&str> = input.after.iter().map(|&t| line(t)).collect();
        let blocks = if old_lines.len() + new_lines.len() <= ANCHOR_THRESHOLD {
            histogram_blocks(&input)
        } else {
            anchored::blocks(&input, &old_lines, &new_lines)
        };
        let hunks = group_blocks(&blocks, options.context)
            .map(|group| build_hunk(group, &old_lines, &new_lines, options))
            .collect();
        Diff {
            hunks,
            context: options.context,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.hunks.is_empty()
    }

    pub fn n_added(&self) -> usize {
        self.hunks.iter().map(Hunk::n_added).sum()
    }

    pub fn n_removed(&self) -> usize {
        self.hunks.iter().map(Hunk::n_removed).sum()
    }

    pub fn hunk_ids(&self) -> Vec<HunkId> {
        self.hunks.iter().map(|h| h.id).collect()
    }
}

/// Above this many lines (old + new), the diff is first split at anchors (see `anchored`).
const ANCHOR_THRESHOLD: usize = 20_000;

fn histogram_blocks<T: AsRef<[u8]>>(input: &InternedInput<T>) -> Vec<imara_diff::Hunk> {
    let mut raw = imara_diff::Diff::compute(Algorithm::Histogram, input);
    raw.postprocess_lines(input);
    raw.hunks().collect()
}

/// Splits change blocks into runs whose gaps are at most `2 * context` unchanged lines.
fn group_blocks(
    blocks: &[imara_diff::Hunk],
    context: u32,
) -> impl Iterator<Item = &[imara_diff::Hunk]> {
    let max_gap = context.saturating_mul(2);
    blocks.chunk_by(move |a, b| b.before.start - a.before.end <= max_gap)
}

fn build_hunk(
    group: &[imara_diff::Hunk],
    old_lines: &[&str],
    new_lines: &[&str],
    options: DiffOptions,
) -> Hunk {
    let first = &group[0];
    let last = &group[group.len() - 1];
    let n_old = old_lines.len() as u32;
    let lead = first.before.start.min(options.context);
    let trail = (n_old - last.before.end).min(options.context);
    let old = LineRange {
        start: first.before.start - lead,
        len: 0,
    };
    let new = LineRange {
        start: first.after.start - lead,
        len: 0,
    };
    let old_end = last.before.end + trail;
    let new_end = last.after.end + trail;

    let mut lines = Vec::new();
    let context = |lines: &mut Vec<DiffLine>, range: std::ops::Range<u32>| {
        for i in range {
            lines.push(DiffLine {
                kind: LineKind::Context,
                text: old_lines[i as usize].to_owned(),
                spans: Vec::new(),
            });
        }
    };
    context(&mut lines, old.start..first.before.start);
    for (block_idx, block) in group.iter().enumerate() {
        if block_idx > 0 {
            context(
                &mut lines,
                group[block_idx - 1].before.end..block.before.start,
            );
        }
        let removed = &old_lines[block.before.start as usize..block.before.end as usize];
        let added = &new_lines[block.after.start as usize..block.after.end as usize];
        let (removed_spans, added_spans) = if options.inline_spans {
            inline::paired_spans(removed, added)
        } else {
            (Vec::new(), Vec::new())
        };
        let mut push = |kind, texts: &[&str], mut spans: Vec<Vec<std::ops::Range<usize>>>| {
            spans.resize(texts.len(), Vec::new());
            for (text, spans) in texts.iter().zip(spans) {
                lines.push(DiffLine {
                    kind,
                    text: (*text).to_owned(),
                    spans,
                });
            }
        };
        push(LineKind::Removed, removed, removed_spans);
        push(LineKind::Added, added, added_spans);
    }
    context(&mut lines, last.before.end..old_end);

    let id = hunk_id(old.start, &lines);
    Hunk {
        id,
        old: LineRange {
            start: old.start,
            len: old_end - old.start,
        },
        new: LineRange {
            start: new.start,
            len: new_end - new.start,
        },
        lines,
    }
}

fn hunk_id(old_start: u32, lines: &[DiffLine]) -> HunkId {
    let mut h = StableHasher::default();
    h.write_u64(u64::from(old_start));
    for line in lines {
        let tag: &[u8] = match line.kind {
            LineKind::Context => b" ",
            LineKind::Removed => b"-",
            LineKind::Added => b"+",
        };
        h.write(tag);
        h.write(line.text.as_bytes());
        // Separate lines so that ["ab", "c"] and ["a", "bc"] differ even without newlines.
        h.write(&[0xff]);
    }
    HunkId(h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearby_changes_share_a_hunk_like_git() {
        let old: String = (1..=20).map(|i| format!("line {i}\n")).collect();
        let new = old
            .replace("line 5\n", "LINE 5\n")
            .replace("line 11\n", "LINE 11\n");
        // Gap of 5 unchanged lines: one hunk with context 3, two with context 2.
        assert_eq!(
            Diff::new(
                &old,
                &new,
                DiffOptions {
                    context: 3,
                    inline_spans: false
                }
            )
            .hunks
            .len(),
            1
        );
        assert_eq!(
            Diff::new(
                &old,
                &new,
                DiffOptions {
                    context: 2,
                    inline_spans: false
                }
            )
            .hunks
            .len(),
            2
        );
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n";
        let new = "a\nB\nc\nd\ne\nf\ng\nh\nI\nj\n";
        let options = DiffOptions {
            context: 1,
            inline_spans: true,
        };
        let one = Diff::new(old, new, options);
        let two = Diff::new(old, new, options);
        assert_eq!(one.hunk_ids(), two.hunk_ids());
        assert_eq!(one.hunks.len(), 2);
        assert_ne!(one.hunks[0].id, one.hunks[1].id);
    }
}
