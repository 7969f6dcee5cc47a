//! Instructions the person wrote for agents, gathered into the system prompt: the global
//! `rules/*.md` in kiln's config directory, then in the workspace `AGENTS.md`, `CLAUDE.md`,
//! `.kilocode/rules/*.md`, `.clinerules` (a file or a folder), `.kiln/rules/*.md`, and the
//! files the config's `instructions` globs name. `AGENTS.md` files in subfolders are added
//! when the agent first reads or edits a file below them ([`nested_for`]).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::config::Config;

/// Longest instruction file taken whole; longer ones are cut with a note.
const MAX_BYTES: usize = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instruction {
    pub path: PathBuf,
    pub text: String,
}

/// Every instruction file that applies to the workspace, in the order given above, each
/// once. Problems (an unreadable file, a bad glob) are returned as messages.
pub fn collect(
    root: &Path,
    global_dir: Option<&Path>,
    config: &Config,
) -> (Vec<Instruction>, Vec<String>) {
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut problems = Vec::new();
    if let Some(global) = global_dir {
        paths.extend(md_files(&global.join("rules")));
    }
    for name in ["AGENTS.md", "CLAUDE.md"] {
        let path = root.join(name);
        if path.is_file() {
            paths.push(path);
        }
    }
    paths.extend(md_files(&root.join(".kilocode/rules")));
    let clinerules = root.join(".clinerules");
    if clinerules.is_file() {
        paths.push(clinerules);
    } else if clinerules.is_dir() {
        paths.extend(sorted_files(&clinerules, |_| true));
    }
    paths.extend(md_files(&root.join(".kiln/rules")));
    if let Some((value, origin)) = config.sections.get("instructions") {
        match value {
            Value::Array(items) => {
                for item in items {
                    match item.as_str() {
                        Some(pattern) => match glob_files(root, pattern) {
                            Ok(found) => paths.extend(found),
                            Err(err) => problems.push(format!("{origin}: instructions: {err}")),
                        },
                        None => problems.push(format!(
                            "{origin}: instructions: expected file paths or globs as strings, got {item}"
                        )),
                    }
                }
            }
            _ => problems.push(format!(
                "{origin}: instructions: expected an array of file paths or globs"
            )),
        }
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for path in paths {
        if !seen.insert(path.clone()) {
            continue;
        }
        match read_capped(&path) {
            Ok(text) => out.push(Instruction { path, text }),
            Err(err) => problems.push(format!("cannot read {}: {err}", path.display())),
        }
    }
    (out, problems)
}

/// `AGENTS.md` files in the folders between `root` (exclusive) and `file`'s folder
/// (inclusive) that are not in `loaded` yet; they are added to `loaded`.
pub fn nested_for(root: &Path, file: &Path, loaded: &mut BTreeSet<PathBuf>) -> Vec<Instruction> {
    let Ok(rel) = file.strip_prefix(root) else {
        return Vec::new();
    };
    let mut dir = root.to_path_buf();
    let mut out = Vec::new();
    let components: Vec<_> = rel.components().collect();
    for component in components.iter().take(components.len().saturating_sub(1)) {
        dir.push(component);
        let candidate = dir.join("AGENTS.md");
        if candidate.is_file()
            && loaded.insert(candidate.clone())
            && let Ok(text) = read_capped(&candidate)
        {
            out.push(Instruction {
                path: candidate,
                text,
            });
        }
    }
    out
}

/// The instructions as one system prompt section.
pub fn render(root: &Path, instructions: &[Instruction]) -> String {
    let mut out = String::new();
    for ins in instructions {
        let name = ins
            .path
            .strip_prefix(root)
            .unwrap_or(&ins.path)
            .display()
            .to_string();
        out.push_str(&format!(
            "Instructions from {name}:\n{}\n\n",
            ins.text.trim_end()
        ));
    }
    out
}

fn read_capped(path: &Path) -> std::io::Result<String> {
    let bytes = std::fs::read(path)?;
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if text.len() > MAX_BYTES {
        let mut cut = MAX_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("\n[… the rest of this file was left out: it is over 64 KiB]");
    }
    Ok(text)
}

fn md_files(dir: &Path) -> Vec<PathBuf> {
    sorted_files(dir, |p| p.extension().is_some_and(|e| e == "md"))
}

fn sorted_files(dir: &Path, keep: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && keep(p))
        .collect();
    files.sort();
    files
}

fn glob_files(root: &Path, pattern: &str) -> Result<Vec<PathBuf>, String> {
    let expanded = match pattern.strip_prefix("~/") {
        Some(rest) => dirs::home_dir()
            .map(|h| h.join(rest).display().to_string())
            .unwrap_or_else(|| pattern.to_owned()),
        None => pattern.to_owned(),
    };
    let is_glob = expanded.contains(['*', '?', '[', '{']);
    let path = root.join(&expanded);
    if !is_glob {
        return Ok(if path.is_file() {
            vec![path]
        } else {
            Vec::new()
        });
    }
    let matcher = globset::GlobBuilder::new(&expanded)
        .literal_separator(true)
        .build()
        .map_err(|e| format!("invalid glob {pattern:?}: {e}"))?
        .compile_matcher();
    let mut found: Vec<PathBuf> = ignore::WalkBuilder::new(root)
        .max_depth(Some(8))
        .build()
        .flatten()
        .map(|e| e.into_path())
        .filter(|p| p.is_file())
        .filter(|p| p.strip_prefix(root).is_ok_and(|rel| matcher.is_match(rel)))
        .collect();
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_agents_files_are_added_once_on_the_way_down() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("AGENTS.md"), "root").unwrap();
        std::fs::write(root.join("a/AGENTS.md"), "in a").unwrap();
        std::fs::write(root.join("a/b/AGENTS.md"), "in b").unwrap();
        let mut loaded = BTreeSet::from([root.join("AGENTS.md")]);
        let first = nested_for(root, &root.join("a/b/x.rs"), &mut loaded);
        let texts: Vec<&str> = first.iter().map(|i| i.text.as_str()).collect();
        assert_eq!(texts, ["in a", "in b"]);
        assert!(nested_for(root, &root.join("a/y.rs"), &mut loaded).is_empty());
    }
}
