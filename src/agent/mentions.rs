//! Context mentions in a prompt: `@path/to/file` (its text, from the open buffer when the
//! editor has it), `@folder/` (a listing), `@problems` and `@selection` (what the client
//! sent with the prompt), `@git-changes` (the working tree's diff) and `@terminal` (when the
//! client sent terminal output). Each becomes a context block after the prompt; a mention
//! that names nothing is reported, never silently dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::tools::{self, Files};

/// What the client sent along with a prompt.
#[derive(Clone, Debug, Default)]
pub struct PromptContext {
    pub selection: Option<Selection>,
    pub problems: Vec<Problem>,
    pub terminal: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Selection {
    pub path: PathBuf,
    /// One-based, inclusive.
    pub start_line: u32,
    pub end_line: u32,
    pub text: String,
}

#[derive(Clone, Debug)]
pub struct Problem {
    pub path: PathBuf,
    /// One-based.
    pub line: u32,
    pub severity: String,
    pub message: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expanded {
    /// Context blocks to send after the prompt text.
    pub blocks: Vec<String>,
    /// `@x: why it names nothing`.
    pub unknown: Vec<String>,
}

/// The mentions in `text`, in order, each once: `@` at the start or after whitespace,
/// up to the next whitespace, without trailing punctuation.
pub fn find(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut prev_ws = true;
    for (idx, ch) in text.char_indices() {
        if ch == '@' && prev_ws {
            let rest = &text[idx + 1..];
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let token =
                rest[..end].trim_end_matches([',', '.', ';', ':', '!', '?', ')', '"', '\'', '`']);
            if !token.is_empty() && !out.iter().any(|t| t == token) {
                out.push(token.to_owned());
            }
        }
        prev_ws = ch.is_whitespace() || matches!(ch, '(' | '"' | '\'' | '`');
    }
    out
}

/// Turns the mentions in `text` into context blocks (blocking IO: run off the async threads).
pub fn expand(text: &str, root: &Path, files: &dyn Files, cx: &PromptContext) -> Expanded {
    let mut out = Expanded::default();
    for mention in find(text) {
        match expand_one(&mention, root, files, cx) {
            Ok(block) => out.blocks.push(block),
            Err(why) => out.unknown.push(format!("@{mention}: {why}")),
        }
    }
    out
}

fn expand_one(
    mention: &str,
    root: &Path,
    files: &dyn Files,
    cx: &PromptContext,
) -> Result<String, String> {
    match mention {
        "problems" => {
            if cx.problems.is_empty() {
                return Ok("<problems>\n(none reported by the editor)\n</problems>".to_owned());
            }
            let lines: Vec<String> = cx
                .problems
                .iter()
                .map(|p| {
                    format!(
                        "{}:{}: {}: {}",
                        tools::display_path(root, &p.path),
                        p.line,
                        p.severity,
                        p.message
                    )
                })
                .collect();
            Ok(format!("<problems>\n{}\n</problems>", lines.join("\n")))
        }
        "selection" => match &cx.selection {
            Some(sel) => Ok(format!(
                "<selection path=\"{}\" lines=\"{}-{}\">\n{}\n</selection>",
                tools::display_path(root, &sel.path),
                sel.start_line,
                sel.end_line,
                sel.text.trim_end_matches('\n')
            )),
            None => Err("the editor sent no selection with this prompt".to_owned()),
        },
        "terminal" => match &cx.terminal {
            Some(output) => Ok(format!(
                "<terminal>\n{}\n</terminal>",
                tools::truncate_middle(output, 20_000).trim_end()
            )),
            None => Err("the client sent no terminal output (this client cannot)".to_owned()),
        },
        "git-changes" => git_changes(root),
        path => {
            let resolved = tools::resolve_path(root, path);
            let action = crate::tools::Action::Read {
                paths: vec![resolved.clone()],
            };
            let facts = crate::agent::policy::classify(&[root.to_path_buf()], &action);
            if !resolved.starts_with(root) || !facts.outside.is_empty() {
                return Err(
                    "outside the workspace (mentions only reach workspace files)".to_owned(),
                );
            }
            if resolved.is_dir() {
                let listing = tools::list::listing_in(root, &resolved, 2, 500)?;
                return Ok(format!(
                    "<folder path=\"{}\">\n{}</folder>",
                    tools::display_path(root, &resolved),
                    listing
                ));
            }
            if crate::agent::policy::is_secret(&resolved) {
                return Err(
                    "may hold secrets; ask the agent to read it instead, which asks first"
                        .to_owned(),
                );
            }
            match files.read(&resolved) {
                Ok(read) => Ok(format!(
                    "<file path=\"{}\">\n{}</file>",
                    tools::display_path(root, &resolved),
                    tools::read::number_lines(&read.text, 1, 2000, 100 * 1024)
                )),
                Err(crate::workspace::ReadError::NotFound { .. }) => {
                    Err("no such file or folder".to_owned())
                }
                Err(err) => Err(err.to_string()),
            }
        }
    }
}

fn git_changes(root: &Path) -> Result<String, String> {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(root)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .env("GIT_PAGER", "cat")
            .output()
    };
    let status = git(&["status", "--porcelain"]).map_err(|e| format!("cannot run git: {e}"))?;
    if !status.status.success() {
        return Err("not a git repository".to_owned());
    }
    // Secret-looking files are named in the status but their changes are left out.
    const NO_SECRETS: [&str; 7] = [
        ":(exclude,glob)**/.env",
        ":(exclude,glob)**/.env.*",
        ":(exclude,glob)**/*.pem",
        ":(exclude,glob)**/*.key",
        ":(exclude,glob)**/id_*",
        ":(exclude,glob)**/.netrc",
        ":(exclude,glob)**/.npmrc",
    ];
    let with_excludes = |base: &[&str]| -> Vec<String> {
        base.iter()
            .map(|s| s.to_string())
            .chain(["--".to_owned(), ".".to_owned()])
            .chain(NO_SECRETS.iter().map(|s| s.to_string()))
            .collect()
    };
    let head_args = with_excludes(&["diff", "HEAD", "--no-color", "--no-ext-diff"]);
    let plain_args = with_excludes(&["diff", "--no-color", "--no-ext-diff"]);
    let diff = git(&head_args.iter().map(String::as_str).collect::<Vec<_>>())
        .ok()
        .filter(|o| o.status.success())
        .map(Ok)
        .unwrap_or_else(|| git(&plain_args.iter().map(String::as_str).collect::<Vec<_>>()))
        .map_err(|e| format!("cannot run git: {e}"))?;
    let status = String::from_utf8_lossy(&status.stdout);
    let diff = String::from_utf8_lossy(&diff.stdout);
    if status.trim().is_empty() {
        return Ok("<git-changes>\n(no changes in the working tree)\n</git-changes>".to_owned());
    }
    Ok(format!(
        "<git-changes>\n{}\n{}</git-changes>",
        status.trim_end(),
        tools::truncate_middle(&diff, 50_000)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_mentions_but_not_emails() {
        assert_eq!(
            find("fix @src/a.rs, see @problems. mail me@x.org (@docs/)"),
            ["src/a.rs", "problems", "docs/"]
        );
    }
}
