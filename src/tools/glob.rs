//! `glob`: files whose workspace-relative path matches a glob, honouring `.gitignore`.

use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Describe, Group, Kind, Output, Tool, ToolCx, blocking};

/// Find files by name pattern, e.g. `**/*.rs` or `src/**/mod*.ts`. Paths are matched
/// relative to the searched directory; `.gitignore`d files are skipped. Returns matching
/// paths, sorted.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The glob (`*` within a path segment, `**` across segments, `{a,b}`, `[abc]`).
    pub pattern: String,
    /// Directory to search (default: the workspace root).
    #[serde(default)]
    pub path: Option<String>,
}

pub struct GlobTool;

impl Tool for GlobTool {
    type Input = Input;
    const NAME: &'static str = "glob";
    const KIND: Kind = Kind::Search;
    const GROUP: Group = Group::Read;

    fn describe(&self, input: &Input, cx: &ToolCx) -> Describe {
        let dir = cx.resolve(input.path.as_deref().unwrap_or("."));
        Describe::read(
            format!("Find {} in {}", input.pattern, cx.display(&dir)),
            dir,
            None,
        )
    }

    fn run(&self, input: Input, cx: ToolCx) -> BoxFuture<'static, Result<Output, String>> {
        blocking(move || {
            let dir = cx.resolve(input.path.as_deref().unwrap_or("."));
            if !dir.is_dir() {
                return Err(format!("directory not found: {}", cx.display(&dir)));
            }
            let matcher = globset::GlobBuilder::new(&input.pattern)
                .literal_separator(true)
                .build()
                .map_err(|e| format!("invalid glob {:?}: {e}", input.pattern))?
                .compile_matcher();
            // A pattern with no separator matches the file name at any depth, as people
            // expect from `*.rs`.
            let by_name = !input.pattern.contains('/');
            let mut found = Vec::new();
            let mut total = 0usize;
            for entry in super::list::walker(&dir)
                .sort_by_file_path(|a, b| a.cmp(b))
                .build()
                .flatten()
            {
                if cx.cancel.is_cancelled() {
                    return Err("cancelled".to_owned());
                }
                if !entry.file_type().is_some_and(|t| t.is_file()) {
                    continue;
                }
                let rel = entry.path().strip_prefix(&dir).unwrap_or(entry.path());
                let hit = if by_name {
                    entry
                        .path()
                        .file_name()
                        .is_some_and(|n| matcher.is_match(n))
                } else {
                    matcher.is_match(rel)
                };
                if hit {
                    total += 1;
                    if found.len() < cx.limits.list_entries {
                        found.push(cx.display(entry.path()));
                    }
                }
            }
            if found.is_empty() {
                return Ok(Output::text(format!(
                    "no files match {} in {}",
                    input.pattern,
                    cx.display(&dir)
                )));
            }
            let mut out = found.join("\n");
            out.push('\n');
            if total > found.len() {
                out.push_str(&format!(
                    "[{} not shown; narrow the pattern]\n",
                    super::count(total - found.len(), "more match", "more matches")
                ));
            }
            Ok(Output::text(out))
        })
    }
}
