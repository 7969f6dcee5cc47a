//! `write`: create a file or replace all of its content.

use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Describe, FileChange, Group, Kind, Output, Tool, ToolCx, blocking};
use crate::workspace::ReadError;

/// Create a file, or replace the whole content of an existing one (read it first; prefer
/// edit for changes to part of a file). Missing parent directories are created.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The file, relative to the workspace root.
    pub path: String,
    /// The complete new content.
    pub content: String,
}

pub struct WriteTool;

impl Tool for WriteTool {
    type Input = Input;
    const NAME: &'static str = "write";
    const KIND: Kind = Kind::Edit;
    const GROUP: Group = Group::Edit;

    fn describe(&self, input: &Input, cx: &ToolCx) -> Describe {
        let path = cx.resolve(&input.path);
        Describe::edit(format!("Write {}", cx.display(&path)), path)
    }

    fn run(&self, input: Input, cx: ToolCx) -> BoxFuture<'static, Result<Output, String>> {
        blocking(move || {
            let path = cx.resolve(&input.path);
            let name = cx.display(&path);
            if path.is_dir() {
                return Err(format!("{name} is a directory"));
            }
            let (base, old_text) = match cx.files.read(&path) {
                Ok(read) => (Some(read.identity), Some(read.text)),
                Err(ReadError::NotFound { .. }) => (None, None),
                Err(err) => return Err(cx.read_error(&err)),
            };
            if old_text.as_deref() == Some(input.content.as_str()) {
                return Ok(Output::text(format!("{name} already has this content")));
            }
            let verb = if old_text.is_some() {
                "wrote"
            } else {
                "created"
            };
            let n_lines = input.content.lines().count();
            Ok(Output {
                text: format!("{verb} {name} ({})", super::count(n_lines, "line", "lines")),
                changes: vec![FileChange {
                    path,
                    base,
                    old_text,
                    new_text: Some(input.content),
                }],
                ..Output::default()
            })
        })
    }
}
