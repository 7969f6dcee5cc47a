//! Changed spans inside paired lines: a token diff of each removed line against the added
//! line at the same position in its change block.
//!
//! Tokens are runs of word characters, runs of whitespace, or single other characters, so
//! a renamed identifier highlights as one span rather than a scatter of letters. Very long
//! lines are not tokenized: the whole content is the span (cheap and still truthful).

use std::ops::Range;

use imara_diff::{Algorithm, InternedInput};

type Spans = Vec<Range<usize>>;

/// Lines longer than this (in bytes) are marked as changed as a whole.
const MAX_LINE_BYTES: usize = 4096;

/// Returns spans for the first `min(removed.len(), added.len())` lines of each side.
pub(super) fn paired_spans(removed: &[&str], added: &[&str]) -> (Vec<Spans>, Vec<Spans>) {
    let n_pairs = removed.len().min(added.len());
    let mut old_spans = Vec::with_capacity(n_pairs);
    let mut new_spans = Vec::with_capacity(n_pairs);
    let mut input = InternedInput::default();
    for (old, new) in removed.iter().zip(added).take(n_pairs) {
        let (o, n) = line_spans(&mut input, strip_eol(old), strip_eol(new));
        old_spans.push(o);
        new_spans.push(n);
    }
    (old_spans, new_spans)
}

fn strip_eol(line: &str) -> &str {
    let line = line.strip_suffix('\n').unwrap_or(line);
    line.strip_suffix('\r').unwrap_or(line)
}

fn line_spans<'a>(
    input: &mut InternedInput<&'a str>,
    old: &'a str,
    new: &'a str,
) -> (Spans, Spans) {
    if old == new {
        // Only the line terminator differs.
        return (Vec::new(), Vec::new());
    }
    if old.len() > MAX_LINE_BYTES || new.len() > MAX_LINE_BYTES {
        return (whole(old), whole(new));
    }
    let old_tokens = tokenize(old);
    let new_tokens = tokenize(new);
    input.clear();
    input.update_before(old_tokens.iter().map(|r| &old[r.clone()]));
    input.update_after(new_tokens.iter().map(|r| &new[r.clone()]));
    let diff = imara_diff::Diff::compute(Algorithm::Histogram, input);
    let mut old_spans = Vec::new();
    let mut new_spans = Vec::new();
    for hunk in diff.hunks() {
        push_span(&mut old_spans, &old_tokens, hunk.before);
        push_span(&mut new_spans, &new_tokens, hunk.after);
    }
    (old_spans, new_spans)
}

fn whole(line: &str) -> Spans {
    if line.is_empty() {
        Vec::new()
    } else {
        std::iter::once(0..line.len()).collect()
    }
}

fn push_span(spans: &mut Spans, tokens: &[Range<usize>], token_range: Range<u32>) {
    if token_range.is_empty() {
        return;
    }
    let start = tokens[token_range.start as usize].start;
    let end = tokens[token_range.end as usize - 1].end;
    match spans.last_mut() {
        Some(last) if last.end == start => last.end = end,
        _ => spans.push(start..end),
    }
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Class {
    Word,
    Space,
    Other,
}

fn class(ch: char) -> Class {
    if ch.is_alphanumeric() || ch == '_' {
        Class::Word
    } else if ch.is_whitespace() {
        Class::Space
    } else {
        Class::Other
    }
}

fn tokenize(line: &str) -> Vec<Range<usize>> {
    let mut tokens: Vec<Range<usize>> = Vec::new();
    let mut prev = None;
    for (i, ch) in line.char_indices() {
        let c = class(ch);
        let end = i + ch.len_utf8();
        match tokens.last_mut() {
            Some(last) if prev == Some(c) && c != Class::Other => last.end = end,
            _ => tokens.push(i..end),
        }
        prev = Some(c);
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renamed_identifier_is_one_span() {
        let (old, new) = paired_spans(&["let total = a + b;\n"], &["let sum = a + b;\n"]);
        assert_eq!(old, vec![vec![4..9]]);
        assert_eq!(new, vec![vec![4..7]]);
    }

    #[test]
    fn unpaired_lines_get_no_spans() {
        let (old, new) = paired_spans(&["a\n", "b\n"], &["c\n"]);
        assert_eq!(old.len(), 1);
        assert_eq!(new.len(), 1);
    }

    #[test]
    fn multibyte_spans_fall_on_char_boundaries() {
        let (old, new) = paired_spans(&["日本語 text"], &["日本人 text"]);
        let o = &old[0][0];
        let n = &new[0][0];
        assert_eq!(&"日本語 text"[o.clone()], "日本語");
        assert_eq!(&"日本人 text"[n.clone()], "日本人");
    }
}
