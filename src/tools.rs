//! What the model can do: read, list, glob, grep, edit, write, apply_patch, bash, todo.
//!
//! Each tool is one file with a typed `Input` (`Deserialize + JsonSchema`; its doc comment
//! is what the model reads), a `NAME`, a `KIND` in ACP's vocabulary, the `Group` modes
//! allow or forbid, and `run`. The registry erases them to `dyn DynTool` once and hands
//! the model their JSON Schemas. Tools know no editor protocol and no session.
//!
//! A tool failure is an `Err(String)` the model reads ("file not found: src/x.rs"), never a
//! panic or an ended turn. Tools that change files do not write: they return
//! [`FileChange`]s, and the agent decides whether and how to apply them (one path for
//! every change, see `agent::apply`).

pub mod apply_patch;
pub mod bash;
pub mod edit;
pub mod glob;
pub mod grep;
pub mod list;
pub mod read;
pub mod todo;
pub mod write;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::workspace::{Identity, ReadError, ReadResult, paths::normalize};

/// What a tool does, in ACP's `ToolKind` vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Read,
    Edit,
    Delete,
    Move,
    Search,
    Execute,
    Think,
    Fetch,
    Other,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Read => "read",
            Kind::Edit => "edit",
            Kind::Delete => "delete",
            Kind::Move => "move",
            Kind::Search => "search",
            Kind::Execute => "execute",
            Kind::Think => "think",
            Kind::Fetch => "fetch",
            Kind::Other => "other",
        }
    }
}

/// Tool groups, as modes name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    Read,
    Edit,
    Command,
    Mcp,
    /// Always available (the todo list).
    Always,
}

impl Group {
    pub fn parse(name: &str) -> Option<Group> {
        Some(match name {
            "read" => Group::Read,
            "edit" => Group::Edit,
            "command" => Group::Command,
            "mcp" => Group::Mcp,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Group::Read => "read",
            Group::Edit => "edit",
            Group::Command => "command",
            Group::Mcp => "mcp",
            Group::Always => "always",
        }
    }
}

/// Reads files the way the editor sees them: the open buffer when there is one.
pub trait Files: Send + Sync {
    /// The open buffer for `path`, else the disk (blocking IO is fine: tools run on
    /// blocking threads).
    fn read(&self, path: &Path) -> Result<ReadResult, ReadError>;
}

/// Files straight from disk (the terminal frontend has no open buffers).
pub struct DiskFiles;

impl Files for DiskFiles {
    fn read(&self, path: &Path) -> Result<ReadResult, ReadError> {
        crate::workspace::read_disk(path)
    }
}

/// Everything a tool may use while it runs.
#[derive(Clone)]
pub struct ToolCx {
    /// The workspace root; relative paths are resolved against it.
    pub root: PathBuf,
    pub files: Arc<dyn Files>,
    pub cancel: CancellationToken,
    /// Partial output for the frontend (a command's output as it arrives).
    pub progress: Arc<dyn Fn(String) + Send + Sync>,
    pub limits: Limits,
}

impl ToolCx {
    /// A context that reads from disk, with default limits, no progress and no
    /// cancellation (a tool run by hand, a replayed call).
    pub fn on_disk(root: PathBuf) -> ToolCx {
        ToolCx {
            root,
            files: Arc::new(DiskFiles),
            cancel: CancellationToken::new(),
            progress: Arc::new(|_| {}),
            limits: Limits::default(),
        }
    }

    /// `path` from the model, resolved against the root and normalised lexically.
    pub fn resolve(&self, path: &str) -> PathBuf {
        resolve_path(&self.root, path)
    }

    /// `path` relative to the root when inside it, for titles and results.
    pub fn display(&self, path: &Path) -> String {
        display_path(&self.root, path)
    }

    /// A read failure in the model's terms: the path as the model wrote it (relative to
    /// the root), not the absolute one.
    pub fn read_error(&self, err: &ReadError) -> String {
        let (what, path) = match err {
            ReadError::NotFound { path } => ("file not found".to_owned(), path),
            ReadError::NotAFile { path } => ("not a regular file".to_owned(), path),
            ReadError::NotUtf8 { path } => ("file is not UTF-8 text".to_owned(), path),
            ReadError::Io { path, source } => (format!("cannot read it ({source})"), path),
        };
        format!("{what}: {}", self.display(path))
    }
}

pub fn resolve_path(root: &Path, path: &str) -> PathBuf {
    let path = path.trim();
    let expanded = match path.strip_prefix("~/") {
        Some(rest) => dirs::home_dir().map(|h| h.join(rest)),
        None => None,
    };
    normalize(&expanded.unwrap_or_else(|| root.join(path)))
}

pub fn display_path(root: &Path, path: &Path) -> String {
    match path.strip_prefix(root) {
        Ok(rel) if rel.as_os_str().is_empty() => ".".to_owned(),
        Ok(rel) => rel.display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

/// Caps that keep tool results within what a model can use.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest tool result sent to the model, in bytes.
    pub max_output_bytes: usize,
    /// Lines `read` returns when no range is given.
    pub read_lines: usize,
    /// Matches `grep` returns.
    pub grep_matches: usize,
    /// Entries `list` and `glob` return.
    pub list_entries: usize,
    /// A command's default timeout.
    pub bash_timeout: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_output_bytes: 50 * 1024,
            read_lines: 2000,
            grep_matches: 200,
            list_entries: 1000,
            bash_timeout: std::time::Duration::from_secs(120),
        }
    }
}

/// What the agent needs to know about a call before running it.
#[derive(Clone, Debug, PartialEq)]
pub struct Describe {
    pub title: String,
    /// Files the call is about (ACP `locations`).
    pub locations: Vec<Location>,
    /// What the permission policy decides on.
    pub action: Action,
}

impl Describe {
    /// A call that reads one path (a file, or the folder it searches).
    pub fn read(title: String, path: PathBuf, line: Option<u32>) -> Describe {
        Describe {
            title,
            locations: vec![Location {
                path: path.clone(),
                line,
            }],
            action: Action::Read { paths: vec![path] },
        }
    }

    /// A call that changes one file.
    pub fn edit(title: String, path: PathBuf) -> Describe {
        Describe {
            title,
            locations: vec![Location {
                path: path.clone(),
                line: None,
            }],
            action: Action::Edit { paths: vec![path] },
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    /// One-based line, when the call is about one.
    pub line: Option<u32>,
}

/// The thing a call would do, in the policy's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Read {
        paths: Vec<PathBuf>,
    },
    Edit {
        paths: Vec<PathBuf>,
    },
    Command {
        command: String,
    },
    /// Needs no permission (the todo list).
    Note,
}

/// A file change a tool wants; applied by the agent after the policy allows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileChange {
    pub path: PathBuf,
    /// What the change was computed from; `None` when the file did not exist.
    pub base: Option<Identity>,
    pub old_text: Option<String>,
    /// The new content; `None` deletes the file.
    pub new_text: Option<String>,
}

/// The result of a successful run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Output {
    /// What the model reads.
    pub text: String,
    /// Changes to apply (file-changing tools only).
    pub changes: Vec<FileChange>,
    /// A todo list to show (ACP `plan`).
    pub plan: Option<Vec<todo::Item>>,
    /// A command's exit code, for the audit log.
    pub exit_code: Option<i32>,
    /// When set, the call failed in a way the model should see as an error, but `text`
    /// still carries useful output (a command that exited non-zero).
    pub is_error: bool,
}

impl Output {
    pub fn text(text: impl Into<String>) -> Output {
        Output {
            text: text.into(),
            ..Output::default()
        }
    }
}

/// A typed tool.
pub trait Tool: Send + Sync + 'static {
    /// The model-facing input; its doc comment is the tool's description.
    type Input: DeserializeOwned + JsonSchema + Send;
    const NAME: &'static str;
    const KIND: Kind;
    const GROUP: Group;

    fn describe(&self, input: &Self::Input, cx: &ToolCx) -> Describe;
    fn run(&self, input: Self::Input, cx: ToolCx) -> BoxFuture<'static, Result<Output, String>>;
}

/// A tool with its input erased to JSON.
pub trait DynTool: Send + Sync {
    fn name(&self) -> &'static str;
    fn kind(&self) -> Kind;
    fn group(&self) -> Group;
    fn description(&self) -> String;
    fn schema(&self) -> serde_json::Value;
    /// Checks the input and says what the call would do.
    fn describe(&self, input: &serde_json::Value, cx: &ToolCx) -> Result<Describe, String>;
    fn run(
        &self,
        input: serde_json::Value,
        cx: ToolCx,
    ) -> BoxFuture<'static, Result<Output, String>>;
}

/// A tool with its description and schema computed once (every request sends them).
struct Erased<T> {
    tool: T,
    description: String,
    schema: serde_json::Value,
}

fn erase<T: Tool>(tool: T) -> Box<dyn DynTool> {
    let full = schema_of::<T::Input>();
    let description = full
        .get("description")
        .and_then(|d| d.as_str())
        .unwrap_or_default()
        .to_owned();
    let mut schema = full;
    if let Some(obj) = schema.as_object_mut() {
        for key in ["$schema", "title", "description"] {
            obj.remove(key);
        }
    }
    Box::new(Erased {
        tool,
        description,
        schema,
    })
}

fn parse<T: Tool>(input: &serde_json::Value) -> Result<T::Input, String> {
    T::Input::deserialize(input).map_err(|err| {
        format!(
            "invalid input for {}: {err}; the expected shape is {}",
            T::NAME,
            serde_json::to_string(&schema_of::<T::Input>()).unwrap_or_default()
        )
    })
}

use serde::Deserialize as _;

impl<T: Tool> DynTool for Erased<T> {
    fn name(&self) -> &'static str {
        T::NAME
    }

    fn kind(&self) -> Kind {
        T::KIND
    }

    fn group(&self) -> Group {
        T::GROUP
    }

    fn description(&self) -> String {
        self.description.clone()
    }

    fn schema(&self) -> serde_json::Value {
        self.schema.clone()
    }

    fn describe(&self, input: &serde_json::Value, cx: &ToolCx) -> Result<Describe, String> {
        let input = parse::<T>(input)?;
        Ok(self.tool.describe(&input, cx))
    }

    fn run(
        &self,
        input: serde_json::Value,
        cx: ToolCx,
    ) -> BoxFuture<'static, Result<Output, String>> {
        match parse::<T>(&input) {
            Ok(input) => self.tool.run(input, cx),
            Err(err) => Box::pin(async move { Err(err) }),
        }
    }
}

fn schema_of<T: JsonSchema>() -> serde_json::Value {
    let settings = schemars::generate::SchemaSettings::draft07().with(|s| {
        s.inline_subschemas = true;
    });
    let schema = settings.into_generator().into_root_schema_for::<T>();
    serde_json::to_value(schema).unwrap_or_default()
}

/// Every built-in tool, in the order the model sees them.
pub struct Registry {
    tools: Vec<Box<dyn DynTool>>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::builtin()
    }
}

impl Registry {
    pub fn builtin() -> Registry {
        Registry {
            tools: vec![
                erase(read::ReadTool),
                erase(list::ListTool),
                erase(glob::GlobTool),
                erase(grep::GrepTool),
                erase(edit::EditTool),
                erase(write::WriteTool),
                erase(apply_patch::ApplyPatchTool),
                erase(bash::BashTool),
                erase(todo::TodoTool),
            ],
        }
    }

    pub fn get(&self, name: &str) -> Option<&dyn DynTool> {
        self.tools
            .iter()
            .find(|t| t.name() == name)
            .map(|t| t.as_ref())
    }

    pub fn iter(&self) -> impl Iterator<Item = &dyn DynTool> {
        self.tools.iter().map(|t| t.as_ref())
    }

    /// The tool reference (`protocol/tools.md`): what each tool is for and its input
    /// schema, exactly as models are sent them.
    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "# Tools\n\nGenerated from the code by `Registry::markdown` (`KILN_UPDATE_DOCS=1 cargo test docs` rewrites it; a test fails when it drifts). The descriptions and schemas are exactly what models are sent. `kiln tool NAME JSON` runs one the way the model would.\n\n| tool | ACP kind | mode group |\n|---|---|---|\n",
        );
        for tool in self.iter() {
            out.push_str(&format!(
                "| `{}` | `{}` | {} |\n",
                tool.name(),
                tool.kind().as_str(),
                tool.group().as_str()
            ));
        }
        for tool in self.iter() {
            let schema = serde_json::to_string_pretty(&tool.schema()).unwrap_or_default();
            out.push_str(&format!(
                "\n## `{}`\n\n{}\n\n```json\n{schema}\n```\n",
                tool.name(),
                tool.description().trim()
            ));
        }
        out
    }
}

/// Runs blocking work (file system walks, searches) off the async threads.
pub(crate) fn blocking<F>(f: F) -> BoxFuture<'static, Result<Output, String>>
where
    F: FnOnce() -> Result<Output, String> + Send + 'static,
{
    Box::pin(async move {
        tokio::task::spawn_blocking(f)
            .await
            .unwrap_or_else(|err| Err(format!("the tool stopped unexpectedly: {err}")))
    })
}

/// `1 line`, `3 lines`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Cuts `text` to at most `max` bytes on a char boundary, keeping the head and the tail,
/// with a note in between saying how much was left out.
pub fn truncate_middle(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let head_len = floor_char(text, max * 2 / 3);
    let tail_start = ceil_char(text, text.len() - (max - head_len));
    let omitted = &text[head_len..tail_start];
    format!(
        "{}\n[… {} lines ({} bytes) left out …]\n{}",
        &text[..head_len],
        omitted.lines().count(),
        omitted.len(),
        &text[tail_start..]
    )
}

fn floor_char(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_head_and_tail_on_char_boundaries() {
        let text: String = (0..1000).map(|i| format!("ligne é {i}\n")).collect();
        let cut = truncate_middle(&text, 300);
        assert!(cut.starts_with("ligne é 0\n"));
        assert!(cut.ends_with("ligne é 999\n"));
        assert!(cut.contains("left out"));
        assert!(cut.len() < 400);
    }

    #[test]
    fn every_tool_has_a_description_and_an_object_schema() {
        for tool in Registry::builtin().iter() {
            assert!(!tool.description().is_empty(), "{}", tool.name());
            assert_eq!(tool.schema()["type"], "object", "{}", tool.name());
        }
    }
}
