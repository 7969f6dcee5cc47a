//! Reading unified diffs (what models and `git diff` write) and applying them with the
//! diff engine: each hunk is located in the current text (its stated line first, then the
//! nearest place where its old side matches, so that patches with drifted line numbers
//! still apply), turned into a [`Hunk`] over that text, and applied with [`apply`], which
//! checks every line again.

use super::{Diff, DiffLine, Hunk, HunkId, LineKind, LineRange, apply, apply::split_lines};

/// The changes to one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilePatch {
    /// `None` for `/dev/null` (the file is created).
    pub old_path: Option<String>,
    /// `None` for `/dev/null` (the file is deleted).
    pub new_path: Option<String>,
    pub hunks: Vec<PatchHunk>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatchHunk {
    /// One-based start line on the old side, as the header says (0 for an empty file).
    pub old_start: u32,
    /// Lines without terminators.
    pub lines: Vec<(LineKind, String)>,
    /// The last added line has no newline (`\ No newline at end of file`).
    pub no_newline_at_end: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    #[error("line {line} of the patch: {message}")]
    Syntax { line: usize, message: String },
    #[error("the patch has no hunks (expected `@@ -a,b +c,d @@` headers)")]
    Empty,
    #[error("hunk {hunk} (at line {stated} of the patch header) does not match the file: {detail}")]
    NoMatch {
        hunk: usize,
        stated: u32,
        detail: String,
    },
}

/// Parses a unified diff with one or more files. Text before the first `---` or `@@`
/// (commit messages, `diff --git` lines) is skipped. A diff with hunks and no file headers
/// yields one `FilePatch` with no paths.
pub fn parse(patch: &str) -> Result<Vec<FilePatch>, PatchError> {
    let mut files: Vec<FilePatch> = Vec::new();
    let mut lines = patch.lines().enumerate().peekable();
    while let Some((idx, line)) = lines.next() {
        if let Some(old) = line.strip_prefix("--- ") {
            let Some((_, next)) = lines.next() else {
                return Err(syntax(idx + 1, "`---` header without a `+++` line"));
            };
            let Some(new) = next.strip_prefix("+++ ") else {
                return Err(syntax(idx + 2, "expected `+++ path` after `--- path`"));
            };
            files.push(FilePatch {
                old_path: header_path(old),
                new_path: header_path(new),
                hunks: Vec::new(),
            });
        } else if line.starts_with("@@") {
            let (old_start, old_len, new_len) =
                hunk_header(line).ok_or_else(|| syntax(idx + 1, "malformed `@@` header"))?;
            if files.is_empty() {
                files.push(FilePatch {
                    old_path: None,
                    new_path: None,
                    hunks: Vec::new(),
                });
            }
            let mut hunk = PatchHunk {
                old_start,
                lines: Vec::new(),
                no_newline_at_end: false,
            };
            let (mut n_old, mut n_new) = (0u32, 0u32);
            while n_old < old_len || n_new < new_len {
                let Some(&(_, body)) = lines.peek() else {
                    break;
                };
                let kind = match body.as_bytes().first() {
                    Some(b' ') => LineKind::Context,
                    Some(b'-') if !body.starts_with("--- ") || n_old < old_len => LineKind::Removed,
                    Some(b'+') => LineKind::Added,
                    Some(b'\\') => {
                        lines.next();
                        continue;
                    }
                    // Models often drop the space of empty context lines.
                    None => LineKind::Context,
                    _ => break,
                };
                lines.next();
                let text = if body.is_empty() { "" } else { &body[1..] };
                let text = text.strip_suffix('\r').unwrap_or(text);
                match kind {
                    LineKind::Context => {
                        n_old += 1;
                        n_new += 1;
                    }
                    LineKind::Removed => n_old += 1,
                    LineKind::Added => n_new += 1,
                }
                hunk.lines.push((kind, text.to_owned()));
            }
            if let Some(&(_, marker)) = lines.peek()
                && marker.starts_with('\\')
            {
                lines.next();
                hunk.no_newline_at_end = hunk
                    .lines
                    .last()
                    .is_some_and(|(k, _)| *k == LineKind::Added);
            }
            if n_old != old_len || n_new != new_len {
                return Err(syntax(
                    idx + 1,
                    &format!(
                        "the hunk header promises {old_len} old and {new_len} new lines, the body has {n_old} and {n_new}"
                    ),
                ));
            }
            if let Some(file) = files.last_mut() {
                file.hunks.push(hunk);
            }
        }
    }
    if files.iter().all(|f| f.hunks.is_empty()) {
        // A creation of an empty file or a deletion has no hunks but is still a change.
        if files.is_empty() {
            return Err(PatchError::Empty);
        }
    }
    Ok(files)
}

fn syntax(line: usize, message: &str) -> PatchError {
    PatchError::Syntax {
        line,
        message: message.to_owned(),
    }
}

fn header_path(text: &str) -> Option<String> {
    // `--- a/src/x.rs\t2024-01-01 …`: the path ends at a tab.
    let path = text.split('\t').next().unwrap_or(text).trim();
    if path == "/dev/null" {
        return None;
    }
    let path = path
        .strip_prefix("a/")
        .or_else(|| path.strip_prefix("b/"))
        .unwrap_or(path);
    Some(path.to_owned())
}

/// `@@ -a,b +c,d @@ …` → (a, b, d); a missing count is 1.
fn hunk_header(line: &str) -> Option<(u32, u32, u32)> {
    let rest = line.strip_prefix("@@ -")?;
    let (ranges, _) = rest.split_once(" @@")?;
    let (old, new) = ranges.split_once(" +")?;
    let range = |r: &str| -> Option<(u32, u32)> {
        match r.split_once(',') {
            Some((s, n)) => Some((s.parse().ok()?, n.parse().ok()?)),
            None => Some((r.parse().ok()?, 1)),
        }
    };
    let (old_start, old_len) = range(old)?;
    let (_, new_len) = range(new)?;
    Some((old_start, old_len, new_len))
}

/// Applies one file's hunks to `text`.
pub fn apply_hunks(text: &str, hunks: &[PatchHunk]) -> Result<String, PatchError> {
    let file_lines = split_lines(text);
    let crlf = text.contains("\r\n");
    let eol = if crlf { "\r\n" } else { "\n" };
    let mut diff = Diff {
        hunks: Vec::new(),
        context: 3,
    };
    let mut search_from = 0usize;
    let mut delta: i64 = 0;
    for (idx, hunk) in hunks.iter().enumerate() {
        let old_side: Vec<&str> = hunk
            .lines
            .iter()
            .filter(|(k, _)| *k != LineKind::Added)
            .map(|(_, t)| t.as_str())
            .collect();
        let stated = (hunk.old_start as usize).saturating_sub(1);
        let start = locate(&file_lines, &old_side, stated, search_from).ok_or_else(|| {
            PatchError::NoMatch {
                hunk: idx + 1,
                stated: hunk.old_start,
                detail: mismatch_detail(&file_lines, &old_side, stated),
            }
        })?;
        let mut lines = Vec::with_capacity(hunk.lines.len());
        let mut at = start;
        let n_added_total = hunk
            .lines
            .iter()
            .filter(|(k, _)| *k == LineKind::Added)
            .count();
        let mut n_added = 0;
        for (kind, content) in &hunk.lines {
            let text = match kind {
                LineKind::Context | LineKind::Removed => {
                    at += 1;
                    file_lines[at - 1].to_owned()
                }
                LineKind::Added => {
                    n_added += 1;
                    let last = n_added == n_added_total;
                    // The file's last line without a newline stays so, unless the patch
                    // adds after it.
                    if last && hunk.no_newline_at_end {
                        content.clone()
                    } else {
                        format!("{content}{eol}")
                    }
                }
            };
            lines.push(DiffLine {
                kind: *kind,
                text,
                spans: Vec::new(),
            });
        }
        // A context or removed line that was the file's last line without a newline, now
        // followed by added lines, needs one.
        for i in 0..lines.len().saturating_sub(1) {
            if lines[i].kind != LineKind::Added && !lines[i].has_newline() {
                lines[i].text.push_str(eol);
            }
        }
        let old_len = old_side.len() as u32;
        let new_len = (hunk.lines.len() - (old_side.len() - count_context(hunk))) as u32;
        let new_start = (start as i64 + delta).max(0) as u32;
        delta += i64::from(new_len) - i64::from(old_len);
        diff.hunks.push(Hunk {
            id: HunkId(idx as u64),
            old: LineRange {
                start: start as u32,
                len: old_len,
            },
            new: LineRange {
                start: new_start,
                len: new_len,
            },
            lines,
        });
        search_from = start + old_side.len();
    }
    let ids = diff.hunk_ids();
    apply(text, &diff, &ids).map_err(|err| PatchError::NoMatch {
        hunk: 0,
        stated: 0,
        detail: err.to_string(),
    })
}

fn count_context(hunk: &PatchHunk) -> usize {
    hunk.lines
        .iter()
        .filter(|(k, _)| *k == LineKind::Context)
        .count()
}

fn content(line: &str) -> &str {
    let l = line.strip_suffix('\n').unwrap_or(line);
    l.strip_suffix('\r').unwrap_or(l)
}

fn matches_at(file: &[&str], old: &[&str], at: usize, loose: bool) -> bool {
    at + old.len() <= file.len()
        && old.iter().enumerate().all(|(i, want)| {
            let have = content(file[at + i]);
            have == *want || (loose && have.trim_end() == want.trim_end())
        })
}

/// Where `old` starts in `file`: at `stated` if it matches there, else the nearest match
/// at or after `from`; exact matches before matches that differ only in trailing blanks.
fn locate(file: &[&str], old: &[&str], stated: usize, from: usize) -> Option<usize> {
    if old.is_empty() {
        // A pure insertion: trust the header.
        return Some(stated.clamp(from, file.len()));
    }
    for loose in [false, true] {
        if stated >= from && matches_at(file, old, stated, loose) {
            return Some(stated);
        }
        let last = file.len().checked_sub(old.len())?;
        let mut best: Option<usize> = None;
        for at in from..=last {
            if matches_at(file, old, at, loose)
                && best.is_none_or(|b| at.abs_diff(stated) < b.abs_diff(stated))
            {
                best = Some(at);
            }
        }
        if best.is_some() {
            return best;
        }
    }
    None
}

/// Names the first line of the hunk's old side that differs from the file at the stated
/// place (the first lines often match; the difference is what the model needs to see).
fn mismatch_detail(file: &[&str], old: &[&str], stated: usize) -> String {
    if old.is_empty() {
        return "nothing to match".to_owned();
    }
    let differs = old.iter().enumerate().find(|(i, want)| {
        file.get(stated + i)
            .is_none_or(|have| content(have) != **want)
    });
    match differs {
        Some((i, want)) => match file.get(stated + i) {
            Some(have) => format!(
                "expected {:?} at line {}, found {:?}; re-read the file and make the patch again",
                want,
                stated + i + 1,
                content(have)
            ),
            None => format!(
                "the file has only {} lines; re-read it and make the patch again",
                file.len()
            ),
        },
        None => "it matches only with different trailing whitespace or in another place; re-read the file and make the patch again".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATCH: &str = "\
diff --git a/src/a.rs b/src/a.rs
--- a/src/a.rs
+++ b/src/a.rs
@@ -2,3 +2,3 @@ fn main() {
 one
-two
+TWO
 three
";

    #[test]
    fn applies_at_the_stated_line_and_after_drift() {
        let files = parse(PATCH).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].old_path.as_deref(), Some("src/a.rs"));
        let text = "zero\none\ntwo\nthree\nfour\n";
        assert_eq!(
            apply_hunks(text, &files[0].hunks).unwrap(),
            "zero\none\nTWO\nthree\nfour\n"
        );
        let drifted = "new\nlines\nzero\none\ntwo\nthree\nfour\n";
        assert_eq!(
            apply_hunks(drifted, &files[0].hunks).unwrap(),
            "new\nlines\nzero\none\nTWO\nthree\nfour\n"
        );
        let crlf = "zero\r\none\r\ntwo\r\nthree\r\n";
        assert_eq!(
            apply_hunks(crlf, &files[0].hunks).unwrap(),
            "zero\r\none\r\nTWO\r\nthree\r\n"
        );
    }

    #[test]
    fn a_hunk_that_does_not_match_says_where() {
        let files = parse(PATCH).unwrap();
        let err = apply_hunks("a\nb\nc\n", &files[0].hunks).unwrap_err();
        assert!(
            err.to_string().contains("expected \"one\" at line 2"),
            "{err}"
        );
    }

    #[test]
    fn creation_and_headerless_hunks() {
        let files =
            parse("--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1,2 @@\n+hello\n+world\n").unwrap();
        assert_eq!(files[0].old_path, None);
        assert_eq!(apply_hunks("", &files[0].hunks).unwrap(), "hello\nworld\n");
        let files = parse("@@ -1 +1 @@\n-a\n+b\n").unwrap();
        assert_eq!(files[0].new_path, None);
        assert_eq!(apply_hunks("a\n", &files[0].hunks).unwrap(), "b\n");
        let err = parse("@@ -1,2 +1,2 @@\n-a\n+b\n").unwrap_err();
        assert!(err.to_string().contains("promises 2 old"), "{err}");
    }
}
