//! `apply_patch`: a unified diff over one or more files, applied with the diff engine
//! (hunks located even when line numbers drifted, every line checked).

use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Action, Describe, FileChange, Group, Kind, Location, Output, Tool, ToolCx, blocking};
use crate::text::diff::patch;
use crate::workspace::ReadError;

/// Apply a unified diff (`--- a/path`, `+++ b/path`, `@@ -a,b +c,d @@` hunks with 3 lines of
/// context) to one or more files. `/dev/null` as the old path creates a file, as the new
/// path deletes it. Every hunk must match the current text; read the files first.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The unified diff.
    pub patch: String,
}

pub struct ApplyPatchTool;

fn target(file: &patch::FilePatch) -> Option<&str> {
    file.new_path.as_deref().or(file.old_path.as_deref())
}

impl Tool for ApplyPatchTool {
    type Input = Input;
    const NAME: &'static str = "apply_patch";
    const KIND: Kind = Kind::Edit;
    const GROUP: Group = Group::Edit;

    fn describe(&self, input: &Input, cx: &ToolCx) -> Describe {
        let paths: Vec<_> = patch::parse(&input.patch)
            .unwrap_or_default()
            .iter()
            .filter_map(target)
            .map(|p| cx.resolve(p))
            .collect();
        let names: Vec<String> = paths.iter().map(|p| cx.display(p)).collect();
        Describe {
            title: format!("Patch {}", names.join(", ")),
            locations: paths
                .iter()
                .map(|p| Location {
                    path: p.clone(),
                    line: None,
                })
                .collect(),
            action: Action::Edit { paths },
        }
    }

    fn run(&self, input: Input, cx: ToolCx) -> BoxFuture<'static, Result<Output, String>> {
        blocking(move || {
            let files = patch::parse(&input.patch).map_err(|e| e.to_string())?;
            let mut changes = Vec::new();
            let mut summary = Vec::new();
            for file in &files {
                let Some(rel) = target(file) else {
                    return Err(
                        "the patch has no file names: start each file with `--- a/path` and `+++ b/path`"
                            .to_owned(),
                    );
                };
                let path = cx.resolve(rel);
                let name = cx.display(&path);
                let (base, old_text) = match cx.files.read(&path) {
                    Ok(read) => (Some(read.identity), Some(read.text)),
                    Err(ReadError::NotFound { .. }) => (None, None),
                    Err(err) => return Err(cx.read_error(&err)),
                };
                if file.old_path.is_none() && old_text.is_some() {
                    return Err(format!(
                        "{name} already exists; the patch creates it (--- /dev/null)"
                    ));
                }
                if file.old_path.is_some() && old_text.is_none() {
                    return Err(format!("file not found: {name}"));
                }
                let new_text = if file.new_path.is_none() {
                    // A deletion's hunks, when it has any, must match and remove the whole
                    // file (as `git apply` checks): a patch made from another version of
                    // the file must not delete this one.
                    if !file.hunks.is_empty() {
                        let rest =
                            patch::apply_hunks(old_text.as_deref().unwrap_or(""), &file.hunks)
                                .map_err(|e| format!("{name}: {e}"))?;
                        if !rest.is_empty() {
                            return Err(format!(
                                "{name}: the patch deletes the file, but its hunks do not remove all of it; re-read the file and make the patch again"
                            ));
                        }
                    }
                    summary.push(format!("deleted {name}"));
                    None
                } else {
                    let text = patch::apply_hunks(old_text.as_deref().unwrap_or(""), &file.hunks)
                        .map_err(|e| format!("{name}: {e}"))?;
                    summary.push(format!(
                        "{} {name} ({})",
                        if old_text.is_some() {
                            "patched"
                        } else {
                            "created"
                        },
                        super::count(file.hunks.len(), "hunk", "hunks")
                    ));
                    Some(text)
                };
                changes.push(FileChange {
                    path,
                    base,
                    old_text,
                    new_text,
                });
            }
            Ok(Output {
                text: summary.join("\n"),
                changes,
                ..Output::default()
            })
        })
    }
}
