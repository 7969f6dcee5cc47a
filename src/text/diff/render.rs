//! Unified diff text, byte-compatible with what `git diff` writes and `git apply` reads.
//!
//! Headers are `--- a/<old>` and `+++ b/<new>`; hunk headers follow git (`-l` alone when the
//! count is 1, `-l,0` naming the line before an insertion); a line without a final newline is
//! followed by `\ No newline at end of file`. Colour uses plain ANSI escapes: red/green
//! lines, changed spans in bold reverse video, as `git diff --color-words` readers expect.

use std::fmt::Write as _;

use super::{Diff, DiffLine, LineKind, LineRange};

#[derive(Clone, Debug)]
pub struct RenderOptions<'a> {
    pub old_path: &'a str,
    pub new_path: &'a str,
    pub color: bool,
}

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";
const CYAN: &str = "\x1b[36m";
const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const EMPHASIS: &str = "\x1b[1;7m";
const NO_EMPHASIS: &str = "\x1b[22;27m";

/// Renders `diff` as a unified diff. An empty diff renders as the empty string.
pub fn render_unified(diff: &Diff, options: &RenderOptions<'_>) -> String {
    let mut out = String::new();
    if diff.is_empty() {
        return out;
    }
    let (bold, cyan, reset) = if options.color {
        (BOLD, CYAN, RESET)
    } else {
        ("", "", "")
    };
    let _ = writeln!(out, "{bold}--- a/{}{reset}", options.old_path);
    let _ = writeln!(out, "{bold}+++ b/{}{reset}", options.new_path);
    for hunk in &diff.hunks {
        let _ = writeln!(
            out,
            "{cyan}@@ -{} +{} @@{reset}",
            header_range(hunk.old),
            header_range(hunk.new)
        );
        for line in &hunk.lines {
            render_line(&mut out, line, options.color);
        }
    }
    out
}

fn header_range(range: LineRange) -> String {
    match range.len {
        // git names the line before an empty range (0 at the start of the file).
        0 => format!("{},0", range.start),
        1 => format!("{}", range.start + 1),
        n => format!("{},{}", range.start + 1, n),
    }
}

fn render_line(out: &mut String, line: &DiffLine, color: bool) {
    let (sign, colour) = match line.kind {
        LineKind::Context => (' ', ""),
        LineKind::Removed => ('-', RED),
        LineKind::Added => ('+', GREEN),
    };
    let body = line.text.strip_suffix('\n').unwrap_or(&line.text);
    if !color || line.kind == LineKind::Context {
        out.push(sign);
        out.push_str(body);
    } else {
        out.push_str(colour);
        out.push(sign);
        let mut at = 0;
        for span in &line.spans {
            out.push_str(&body[at..span.start]);
            out.push_str(EMPHASIS);
            out.push_str(&body[span.clone()]);
            out.push_str(NO_EMPHASIS);
            at = span.end;
        }
        out.push_str(&body[at..]);
        out.push_str(RESET);
    }
    out.push('\n');
    if !line.has_newline() {
        out.push_str("\\ No newline at end of file\n");
    }
}
