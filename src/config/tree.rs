//! A JSON tree where every value remembers where it came from (file and line), so that
//! a problem found after layers are merged still names the line the person wrote.
//!
//! Parsing is JSONC (comments, trailing commas) through `jsonc-parser`; `{env:VAR}` and
//! `{file:path}` are substituted in every string as a file is read, before layers merge.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jsonc_parser::ast;

use super::{Diagnostic, Severity};

/// Where a layer of configuration came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceName {
    File(PathBuf),
    /// An environment variable holding inline JSON or a single setting.
    Env(&'static str),
    Builtin,
}

impl fmt::Display for SourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceName::File(path) => write!(f, "{}", path.display()),
            SourceName::Env(var) => write!(f, "${var}"),
            SourceName::Builtin => f.write_str("built-in defaults"),
        }
    }
}

/// The file (or variable) and 1-based line a value was written on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub source: Arc<SourceName>,
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.source {
            SourceName::File(_) => write!(f, "{}:{}", self.source, self.line),
            _ => write!(f, "{}", self.source),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Node {
    pub value: Value,
    pub origin: Origin,
}

#[derive(Clone, Debug)]
pub enum Value {
    Null,
    Bool(bool),
    /// The number as written; typed readers parse it.
    Number(String),
    Str(Str),
    Array(Vec<Node>),
    /// Keys in the order written; a repeated key replaces the earlier one (with a warning).
    Object(Vec<(String, Node)>),
}

#[derive(Clone, Debug)]
pub struct Str {
    pub text: String,
    /// Set when the whole string was `{env:VAR}`: the variable the value came from, so
    /// messages can name it instead of the value.
    pub whole_env_var: Option<String>,
}

impl Value {
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::Str(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }
}

/// What substitution needs from the outside world; tests pass a fixed map.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
    fn home(&self) -> Option<PathBuf>;
}

/// Parses one layer. `base_dir` anchors relative `{file:…}` paths. Returns `None` (with
/// an error diagnostic) when the text is not JSONC or is not an object.
pub fn parse(
    text: &str,
    source: SourceName,
    base_dir: &Path,
    env: &dyn Env,
    diags: &mut Vec<Diagnostic>,
) -> Option<Node> {
    let source = Arc::new(source);
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let options = jsonc_parser::ParseOptions {
        allow_comments: true,
        allow_trailing_commas: true,
        allow_loose_object_property_names: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    };
    let parsed = match jsonc_parser::parse_to_ast(text, &Default::default(), &options) {
        Ok(parsed) => parsed,
        Err(err) => {
            diags.push(Diagnostic {
                severity: Severity::Error,
                origin: Some(Origin {
                    source: source.clone(),
                    line: err.line_display(),
                }),
                key: String::new(),
                message: format!(
                    "not valid JSONC: {} (column {}); the whole file is ignored until it is fixed",
                    err.kind(),
                    err.column_display()
                ),
            });
            return None;
        }
    };
    let Some(root) = parsed.value else {
        // An empty file (or only comments) is an empty layer.
        return Some(Node {
            value: Value::Object(Vec::new()),
            origin: Origin { source, line: 1 },
        });
    };
    let lines = LineIndex::new(text);
    let mut cx = Convert {
        source,
        lines: &lines,
        base_dir,
        env,
        diags,
    };
    let node = cx.value(&root, "");
    if !matches!(node.value, Value::Object(_)) {
        cx.diags.push(Diagnostic {
            severity: Severity::Error,
            origin: Some(node.origin.clone()),
            key: String::new(),
            message: format!(
                "expected an object at the top level, found {}",
                node.value.kind()
            ),
        });
        return None;
    }
    Some(node)
}

struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(idx, _)| idx + 1));
        LineIndex { starts }
    }

    fn line(&self, byte: usize) -> usize {
        self.starts.partition_point(|&start| start <= byte)
    }
}

struct Convert<'a> {
    source: Arc<SourceName>,
    lines: &'a LineIndex,
    base_dir: &'a Path,
    env: &'a dyn Env,
    diags: &'a mut Vec<Diagnostic>,
}

impl Convert<'_> {
    fn origin(&self, byte: usize) -> Origin {
        Origin {
            source: self.source.clone(),
            line: self.lines.line(byte),
        }
    }

    fn value(&mut self, value: &ast::Value<'_>, key: &str) -> Node {
        use jsonc_parser::common::Ranged;
        let origin = self.origin(value.range().start);
        let value = match value {
            ast::Value::NullKeyword(_) => Value::Null,
            ast::Value::BooleanLit(lit) => Value::Bool(lit.value),
            ast::Value::NumberLit(lit) => Value::Number(lit.value.to_owned()),
            ast::Value::StringLit(lit) => Value::Str(self.substitute(&lit.value, key, &origin)),
            ast::Value::Array(array) => Value::Array(
                array
                    .elements
                    .iter()
                    .enumerate()
                    .map(|(idx, element)| self.value(element, &format!("{key}[{idx}]")))
                    .collect(),
            ),
            ast::Value::Object(object) => {
                let mut entries: Vec<(String, Node)> = Vec::with_capacity(object.properties.len());
                for prop in &object.properties {
                    let name = prop.name.as_str().to_owned();
                    let child_key = join_key(key, &name);
                    let child = self.value(&prop.value, &child_key);
                    if let Some(existing) = entries.iter_mut().find(|(k, _)| *k == name) {
                        self.diags.push(Diagnostic {
                            severity: Severity::Warning,
                            origin: Some(child.origin.clone()),
                            key: child_key,
                            message: format!(
                                "set twice in this file; the later value wins (the first is on line {})",
                                existing.1.origin.line
                            ),
                        });
                        existing.1 = child;
                    } else {
                        entries.push((name, child));
                    }
                }
                Value::Object(entries)
            }
        };
        Node { value, origin }
    }

    /// Replaces `{env:VAR}` and `{file:path}` in one string.
    fn substitute(&mut self, text: &str, key: &str, origin: &Origin) -> Str {
        if !text.contains('{') {
            return Str {
                text: text.to_owned(),
                whole_env_var: None,
            };
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        let mut whole_env_var = None;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let tail = &rest[open..];
            let Some(close) = tail.find('}') else {
                out.push_str(tail);
                rest = "";
                break;
            };
            let token = &tail[1..close];
            if let Some(var) = token.strip_prefix("env:") {
                let var = var.trim();
                if open == 0 && close + 1 == tail.len() && out.is_empty() {
                    whole_env_var = Some(var.to_owned());
                }
                match self.env.var(var) {
                    Some(value) => out.push_str(&value),
                    None => self.diags.push(Diagnostic {
                        severity: Severity::Warning,
                        origin: Some(origin.clone()),
                        key: key.to_owned(),
                        message: format!(
                            "{{env:{var}}}: ${var} is not set, so an empty string is used"
                        ),
                    }),
                }
            } else if let Some(path) = token.strip_prefix("file:") {
                let path = self.resolve_path(path.trim());
                match std::fs::read_to_string(&path) {
                    Ok(content) => out.push_str(content.trim_end_matches(['\n', '\r'])),
                    Err(err) => self.diags.push(Diagnostic {
                        severity: Severity::Error,
                        origin: Some(origin.clone()),
                        key: key.to_owned(),
                        message: format!("{{file:…}}: cannot read {}: {err}", path.display()),
                    }),
                }
            } else {
                out.push_str(&tail[..=close]);
            }
            rest = &tail[close + 1..];
        }
        out.push_str(rest);
        Str {
            text: out,
            whole_env_var,
        }
    }

    fn resolve_path(&self, path: &str) -> PathBuf {
        if let Some(rest) = path.strip_prefix("~/")
            && let Some(home) = self.env.home()
        {
            return home.join(rest);
        }
        self.base_dir.join(path)
    }
}

pub fn join_key(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_owned()
    } else {
        format!("{parent}.{child}")
    }
}

/// Layers `over` on top of `base`: objects merge key by key, anything else replaces.
pub fn merge(base: &mut Node, over: Node) {
    match (&mut base.value, over.value) {
        (Value::Object(base_entries), Value::Object(over_entries)) => {
            for (key, over_child) in over_entries {
                match base_entries.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, base_child)) => merge(base_child, over_child),
                    None => base_entries.push((key, over_child)),
                }
            }
        }
        (_, value) => {
            base.value = value;
            base.origin = over.origin;
        }
    }
}

/// The tree as plain JSON (for sections a later layer of kiln interprets).
pub fn to_json(node: &Node) -> serde_json::Value {
    match &node.value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Number(n) => serde_json::from_str(n).unwrap_or(serde_json::Value::Null),
        Value::Str(s) => serde_json::Value::String(s.text.clone()),
        Value::Array(items) => serde_json::Value::Array(items.iter().map(to_json).collect()),
        Value::Object(entries) => serde_json::Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect(),
        ),
    }
}
