//! `list`: a directory tree, honouring `.gitignore`, to a depth.

use std::path::Path;

use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Describe, Group, Kind, Output, Tool, ToolCx, blocking};
use crate::workspace::paths::ALWAYS_IGNORED_DIRS;

/// List a directory of the workspace as an indented tree (directories end with `/`).
/// Files ignored by `.gitignore`, `.git`, `target` and `node_modules` are left out.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The directory, relative to the workspace root (default: the root).
    #[serde(default)]
    pub path: Option<String>,
    /// How deep to descend (default 2; 1 lists only the directory's own entries).
    #[serde(default)]
    pub depth: Option<usize>,
}

pub struct ListTool;

impl Tool for ListTool {
    type Input = Input;
    const NAME: &'static str = "list";
    const KIND: Kind = Kind::Search;
    const GROUP: Group = Group::Read;

    fn describe(&self, input: &Input, cx: &ToolCx) -> Describe {
        let path = cx.resolve(input.path.as_deref().unwrap_or("."));
        Describe::read(format!("List {}", cx.display(&path)), path, None)
    }

    fn run(&self, input: Input, cx: ToolCx) -> BoxFuture<'static, Result<Output, String>> {
        blocking(move || {
            let path = cx.resolve(input.path.as_deref().unwrap_or("."));
            listing(&cx, &path, input.depth.unwrap_or(2).max(1)).map(Output::text)
        })
    }
}

/// A walker over `dir` that honours `.gitignore` (also outside git repositories), shows
/// hidden files, and skips the directories kiln always ignores.
pub fn walker(dir: &Path) -> ignore::WalkBuilder {
    let mut builder = ignore::WalkBuilder::new(dir);
    builder
        .hidden(false)
        .require_git(false)
        .filter_entry(|entry| {
            !(entry.file_type().is_some_and(|t| t.is_dir())
                && ALWAYS_IGNORED_DIRS.iter().any(|d| entry.file_name() == *d))
        });
    builder
}

/// The tree under `dir` to `depth`, sorted, capped at the entry limit.
pub fn listing(cx: &ToolCx, dir: &Path, depth: usize) -> Result<String, String> {
    listing_in(&cx.root, dir, depth, cx.limits.list_entries)
}

/// [`listing`] with the root (for display) and the entry cap given.
pub fn listing_in(
    root: &Path,
    dir: &Path,
    depth: usize,
    max_entries: usize,
) -> Result<String, String> {
    let display = |p: &Path| super::display_path(root, p);
    if !dir.exists() {
        return Err(format!("directory not found: {}", display(dir)));
    }
    if !dir.is_dir() {
        return Err(format!(
            "not a directory: {} (use read for files)",
            display(dir)
        ));
    }
    let mut entries: Vec<(String, bool)> = Vec::new();
    let mut total = 0usize;
    for entry in walker(dir)
        .max_depth(Some(depth))
        .sort_by_file_path(|a, b| a.cmp(b))
        .build()
        .flatten()
    {
        if entry.depth() == 0 {
            continue;
        }
        total += 1;
        if entries.len() >= max_entries {
            continue;
        }
        let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
        entries.push((rel.display().to_string(), is_dir));
    }
    let mut out = format!("{}/\n", display(dir));
    for (rel, is_dir) in &entries {
        let depth = Path::new(rel).components().count();
        let name = Path::new(rel)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.push_str(&"  ".repeat(depth));
        out.push_str(&name);
        if *is_dir {
            out.push('/');
        }
        out.push('\n');
    }
    if entries.is_empty() {
        out.push_str("  (empty)\n");
    }
    if total > entries.len() {
        out.push_str(&format!(
            "[{} more entries not shown; list a subdirectory or use glob]\n",
            total - entries.len()
        ));
    }
    Ok(out)
}
