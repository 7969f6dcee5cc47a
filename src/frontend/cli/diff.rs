//! `kiln diff OLD NEW`: the diff engine on two files, as a unified diff or as the JSON hunk
//! model. A debugging aid, and the handle the diff benchmarks time.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::text::diff::{
    Diff, DiffLine, DiffOptions, Hunk, LineKind, LineRange, RenderOptions, render_unified,
};

pub use super::Format;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

pub struct DiffCommand {
    pub old: PathBuf,
    pub new: PathBuf,
    pub format: Format,
    pub color: ColorChoice,
    pub context: u32,
}

/// Runs the command; returns 0 (same), 1 (different) or 2 (error).
pub fn run(cmd: DiffCommand) -> i32 {
    match diff_files(&cmd) {
        Ok(differ) => i32::from(differ),
        Err(err) => {
            eprintln!("kiln diff: {err}");
            2
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|err| format!("cannot read {}: {err}", path.display()))
}

fn diff_files(cmd: &DiffCommand) -> Result<bool, String> {
    let old_bytes = read(&cmd.old)?;
    let new_bytes = read(&cmd.new)?;
    let old_path = cmd.old.to_string_lossy();
    let new_path = cmd.new.to_string_lossy();
    let mut stdout = std::io::stdout().lock();
    let (Ok(old), Ok(new)) = (
        std::str::from_utf8(&old_bytes),
        std::str::from_utf8(&new_bytes),
    ) else {
        let differ = old_bytes != new_bytes;
        if differ {
            write_out(
                &mut stdout,
                format!("Binary files {old_path} and {new_path} differ\n").as_bytes(),
            )?;
        }
        return Ok(differ);
    };
    let json = cmd.format == Format::Json;
    let color = match cmd.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            !json && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
        }
    };
    let diff = Diff::new(
        old,
        new,
        DiffOptions {
            context: cmd.context,
            inline_spans: json || color,
        },
    );
    let differ = !diff.is_empty();
    let render = |color| {
        render_unified(
            &diff,
            &RenderOptions {
                old_path: &old_path,
                new_path: &new_path,
                color,
            },
        )
    };
    if json {
        let wire = DiffJson {
            old_path: &old_path,
            new_path: &new_path,
            added: diff.n_added(),
            removed: diff.n_removed(),
            hunks: diff.hunks.iter().map(HunkJson::from).collect(),
            patch: render(false),
        };
        let mut text = serde_json::to_string_pretty(&wire).map_err(|err| err.to_string())?;
        text.push('\n');
        write_out(&mut stdout, text.as_bytes())?;
    } else {
        write_out(&mut stdout, render(color).as_bytes())?;
    }
    Ok(differ)
}

fn write_out(out: &mut impl Write, bytes: &[u8]) -> Result<(), String> {
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        // A closed pipe (`kiln diff a b | head`) is the reader's choice, not an error.
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(err) => Err(format!("cannot write the output: {err}")),
    }
}

/// `kiln diff --format json`: the hunk model. Documented in protocol/diff.md.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DiffJson<'a> {
    old_path: &'a str,
    new_path: &'a str,
    added: usize,
    removed: usize,
    hunks: Vec<HunkJson<'a>>,
    patch: String,
}

#[derive(Serialize)]
struct HunkJson<'a> {
    id: String,
    old: RangeJson,
    new: RangeJson,
    lines: Vec<LineJson<'a>>,
}

#[derive(Serialize)]
struct RangeJson {
    start: u32,
    count: u32,
}

#[derive(Serialize)]
struct LineJson<'a> {
    kind: &'static str,
    text: &'a str,
    eol: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    spans: Vec<[usize; 2]>,
}

impl<'a> From<&'a Hunk> for HunkJson<'a> {
    fn from(hunk: &'a Hunk) -> Self {
        let range = |r: LineRange| RangeJson {
            start: r.start,
            count: r.len,
        };
        HunkJson {
            id: hunk.id.to_string(),
            old: range(hunk.old),
            new: range(hunk.new),
            lines: hunk.lines.iter().map(LineJson::from).collect(),
        }
    }
}

impl<'a> From<&'a DiffLine> for LineJson<'a> {
    fn from(line: &'a DiffLine) -> Self {
        let eol = if line.text.ends_with("\r\n") {
            "crlf"
        } else if line.text.ends_with('\n') {
            "lf"
        } else {
            "none"
        };
        LineJson {
            kind: match line.kind {
                LineKind::Context => "context",
                LineKind::Removed => "removed",
                LineKind::Added => "added",
            },
            text: line.content(),
            eol,
            spans: line.spans.iter().map(|s| [s.start, s.end]).collect(),
        }
    }
}
