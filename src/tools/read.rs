//! `read`: a file's lines (numbered), from the editor's buffer when it is open; a
//! directory's entries when the path is a directory.

use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Describe, Group, Kind, Output, Tool, ToolCx, blocking};

/// Read a file from the workspace. Returns numbered lines (`   12│text`); use `offset` and
/// `limit` for a range of a long file. Reads the editor's unsaved buffer when the file is
/// open. A directory path lists its entries.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The file, relative to the workspace root (or absolute).
    pub path: String,
    /// First line to read, one-based (default 1).
    #[serde(default)]
    pub offset: Option<usize>,
    /// How many lines to read (default 2000).
    #[serde(default)]
    pub limit: Option<usize>,
}

pub struct ReadTool;

/// Longest line kept whole; longer ones are cut (minified files).
const MAX_LINE: usize = 2000;

impl Tool for ReadTool {
    type Input = Input;
    const NAME: &'static str = "read";
    const KIND: Kind = Kind::Read;
    const GROUP: Group = Group::Read;

    fn describe(&self, input: &Input, cx: &ToolCx) -> Describe {
        let path = cx.resolve(&input.path);
        Describe::read(
            format!("Read {}", cx.display(&path)),
            path,
            input.offset.map(|o| o as u32),
        )
    }

    fn run(&self, input: Input, cx: ToolCx) -> BoxFuture<'static, Result<Output, String>> {
        blocking(move || {
            let path = cx.resolve(&input.path);
            if path.is_dir() {
                return super::list::listing(&cx, &path, 1).map(Output::text);
            }
            let read = cx.files.read(&path).map_err(|e| cx.read_error(&e))?;
            Ok(Output::text(number_lines(
                &read.text,
                input.offset.unwrap_or(1),
                input.limit.unwrap_or(cx.limits.read_lines),
                cx.limits.max_output_bytes,
            )))
        })
    }
}

/// Lines `offset..offset+limit` (one-based) with numbers, capped at `max_bytes`, with a
/// note saying how to read on when anything was left out.
pub fn number_lines(text: &str, offset: usize, limit: usize, max_bytes: usize) -> String {
    let offset = offset.max(1);
    let n_lines = text.lines().count();
    if text.is_empty() {
        return "(empty file)".to_owned();
    }
    if offset > n_lines {
        return format!("(the file has {n_lines} lines; offset {offset} is past the end)");
    }
    let width = (offset + limit).min(n_lines).to_string().len().max(4);
    let mut out = String::new();
    let mut last = offset - 1;
    for (idx, line) in text.lines().enumerate().skip(offset - 1).take(limit) {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let shown = if line.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            format!("{}… [line cut at {MAX_LINE} bytes]", &line[..cut])
        } else {
            line.to_owned()
        };
        let entry = format!("{:>width$}│{shown}\n", idx + 1);
        if out.len() + entry.len() > max_bytes {
            break;
        }
        out.push_str(&entry);
        last = idx + 1;
    }
    if last < n_lines {
        out.push_str(&format!(
            "[showing lines {offset}-{last} of {n_lines}; read on with offset {}]\n",
            last + 1
        ));
    }
    out
}
