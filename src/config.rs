//! Configuration: layered JSONC files plus environment overrides, read into typed data.
//!
//! Layers, later wins: built-in presets ← global `kiln.jsonc` (the user config dir, e.g.
//! `~/.config/kiln/`) ← project `kiln.jsonc` ← project `.kiln/kiln.jsonc` ← `$KILN_CONFIG`
//! (a file) ← `$KILN_CONFIG_CONTENT` (inline JSON) ← `$KILN_MODEL`, `$KILN_ENDPOINT` +
//! `$KILN_API_KEY`. Loading never fails: every problem becomes a [`Diagnostic`] naming the
//! file, line and key, and the setting with the problem is ignored (a broken file is
//! ignored whole). Layers merge first (objects key by key, anything else replaces), so
//! only the value that wins is checked. `config` is data:
//! it does no network IO and knows nothing above it.

pub mod edit;
mod presets;
mod read;
pub mod tree;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use presets::{PRESETS, Preset};
pub use read::suggest;
pub use tree::{Env, Origin, SourceName};

/// A value that must never be printed: API keys and header values. `Debug` and
/// `Display` show `[redacted]`; only [`Secret::expose`] gives the text, for the request.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(text.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Replaces every occurrence of the secret in `text` (provider error bodies sometimes
    /// echo what they were sent).
    pub fn scrub(&self, text: &str) -> String {
        if self.0.len() < 4 {
            return text.to_owned();
        }
        text.replace(&self.0, "[redacted]")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The two wire APIs kiln speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// `POST {baseURL}/chat/completions` (OpenAI, OpenRouter, DeepSeek, Ollama, …).
    OpenAiCompatible,
    /// `POST {baseURL}/messages` (Anthropic Messages).
    Anthropic,
}

impl Api {
    pub fn as_str(self) -> &'static str {
        match self {
            Api::OpenAiCompatible => "openai-compatible",
            Api::Anthropic => "anthropic",
        }
    }

    /// The path kiln appends to a `baseURL`.
    pub fn endpoint_path(self) -> &'static str {
        match self {
            Api::OpenAiCompatible => "/chat/completions",
            Api::Anthropic => "/messages",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// One problem found while loading: where, which key, and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// `None` for problems with no single place (e.g. a model that no layer defines).
    pub origin: Option<Origin>,
    /// Dotted path of the key (`provider.openai.options.timeout_ms`); empty for the file.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(f, "{level}: ")?;
        if let Some(origin) = &self.origin {
            write!(f, "{origin}: ")?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// `provider/model`; the model id may itself contain `/` (OpenRouter's `vendor/model`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ModelRef {
    pub provider: String,
    pub model: String,
}

impl ModelRef {
    pub fn parse(text: &str) -> Option<ModelRef> {
        let (provider, model) = text.split_once('/')?;
        if provider.is_empty() || model.is_empty() {
            return None;
        }
        Some(ModelRef {
            provider: provider.to_owned(),
            model: model.to_owned(),
        })
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.provider, self.model)
    }
}

/// Token limits; `None` when unknown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limit {
    pub context: Option<u32>,
    pub input: Option<u32>,
    pub output: Option<u32>,
}

/// What kiln knows about a model. Unknown ids get [`ModelInfo::unknown`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelInfo {
    pub id: String,
    pub name: String,
    /// Sends tools; `false` for models that cannot call them.
    pub tool_call: bool,
    pub reasoning: bool,
    /// `false` for models that reject a `temperature` parameter.
    pub temperature: bool,
    /// Accepts images.
    pub attachment: bool,
    pub limit: Limit,
    /// Defined by a preset or a config file (rather than assumed for an unknown id).
    pub known: bool,
}

impl ModelInfo {
    pub fn unknown(id: &str) -> ModelInfo {
        ModelInfo {
            id: id.to_owned(),
            name: id.to_owned(),
            tool_call: true,
            reasoning: false,
            temperature: true,
            attachment: false,
            limit: Limit::default(),
            known: false,
        }
    }
}

/// Where a provider's key came from, for messages that must not show the key itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// From this environment variable (a preset's or `{env:VAR}`).
    Env(String),
    /// Written in a config file at this place.
    Config(Origin),
    /// No key: fine for local servers, an error to report for the others.
    None,
}

#[derive(Clone, Debug)]
pub struct Provider {
    pub id: String,
    pub name: String,
    pub api: Api,
    /// The `/v1` base, without a trailing slash.
    pub base_url: String,
    pub api_key: Option<Secret>,
    pub key_source: KeySource,
    /// Variables a preset reads the key from (for "set $X" advice).
    pub key_env: Vec<String>,
    /// A key is not needed (local servers).
    pub keyless: bool,
    pub headers: Vec<(String, Secret)>,
    /// The longest wait for the first byte of a response and between two chunks.
    pub timeout: Duration,
    /// Retries before the first byte on 429, 5xx and connection errors.
    pub max_retries: u32,
    pub max_completion_tokens: bool,
    pub models: BTreeMap<String, ModelInfo>,
    pub default_model: Option<String>,
    /// Built in (possibly adjusted by config) rather than defined only in config.
    pub preset: bool,
    /// What to do to get this provider working (from the preset).
    pub get_it: Option<&'static str>,
}

impl Provider {
    pub fn model_info(&self, model: &str) -> ModelInfo {
        self.models
            .get(model)
            .cloned()
            .unwrap_or_else(|| ModelInfo::unknown(model))
    }

    pub fn endpoint(&self) -> String {
        format!("{}{}", self.base_url, self.api.endpoint_path())
    }

    pub fn is_local(&self) -> bool {
        let rest = self
            .base_url
            .strip_prefix("http://")
            .or_else(|| self.base_url.strip_prefix("https://"))
            .unwrap_or(&self.base_url);
        let host = match rest.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => rest.split(['/', ':']).next().unwrap_or(""),
        };
        matches!(host, "localhost" | "::1" | "0.0.0.0") || host.starts_with("127.")
    }
}

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
pub const DEFAULT_MAX_RETRIES: u32 = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compaction {
    /// Summarise the conversation when it fills this share of the context window.
    pub threshold_percent: u8,
}

impl Default for Compaction {
    fn default() -> Self {
        Compaction {
            threshold_percent: 80,
        }
    }
}

/// The effective configuration.
#[derive(Clone, Debug, Default)]
pub struct Config {
    pub model: Option<ModelRef>,
    /// Where `model` was set (file and line, or the variable).
    pub model_origin: Option<Origin>,
    pub small_model: Option<ModelRef>,
    pub providers: BTreeMap<String, Provider>,
    pub compaction: Compaction,
    /// Sections read by other parts of kiln (`permission`, `mode`, `mcp`,
    /// `instructions`), kept as JSON with the place they were set.
    pub sections: BTreeMap<String, (serde_json::Value, Origin)>,
}

impl Config {
    pub fn provider(&self, id: &str) -> Option<&Provider> {
        self.providers.get(id)
    }
}

/// A file kiln looked for, and whether it was there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceInfo {
    pub name: SourceName,
    pub found: bool,
}

#[derive(Clone, Debug)]
pub struct Loaded {
    pub config: Config,
    /// Every layer looked at, in order.
    pub sources: Vec<SourceInfo>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }
}

/// Where to look and what the environment holds.
pub struct LoadOptions<'a> {
    /// The workspace root (project config lives here).
    pub project_dir: PathBuf,
    /// The directory of the global `kiln.jsonc`; `None` when there is no home.
    pub global_dir: Option<PathBuf>,
    pub env: &'a dyn Env,
}

/// The process environment, and `dirs` for the user config directory.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn home(&self) -> Option<PathBuf> {
        dirs::home_dir()
    }
}

/// The global config directory: `$XDG_CONFIG_HOME/kiln` or `~/.config/kiln` on Linux,
/// the platform's config directory elsewhere.
pub fn global_dir() -> Option<PathBuf> {
    dirs::config_dir().map(|dir| dir.join("kiln"))
}

/// Loads the configuration for a workspace from the real environment.
pub fn load_for(project_dir: &Path) -> Loaded {
    load(&LoadOptions {
        project_dir: project_dir.to_path_buf(),
        global_dir: global_dir(),
        env: &ProcessEnv,
    })
}

pub fn load(options: &LoadOptions<'_>) -> Loaded {
    let mut diags = Vec::new();
    let mut sources = Vec::new();
    let mut merged: Option<tree::Node> = None;
    let mut layer = |node: Option<tree::Node>| {
        if let Some(node) = node {
            match &mut merged {
                Some(base) => tree::merge(base, node),
                None => merged = Some(node),
            }
        }
    };

    let mut files: Vec<PathBuf> = Vec::new();
    if let Some(dir) = &options.global_dir {
        files.push(dir.join("kiln.jsonc"));
    }
    files.push(options.project_dir.join("kiln.jsonc"));
    files.push(options.project_dir.join(".kiln").join("kiln.jsonc"));
    let explicit = options.env.var("KILN_CONFIG").filter(|v| !v.is_empty());
    for path in &files {
        let node = read_file(path, options.env, &mut diags, &mut sources, false);
        layer(node);
    }
    if let Some(path) = explicit {
        let path = options.project_dir.join(path);
        let node = read_file(&path, options.env, &mut diags, &mut sources, true);
        layer(node);
    }
    if let Some(content) = options
        .env
        .var("KILN_CONFIG_CONTENT")
        .filter(|v| !v.is_empty())
    {
        sources.push(SourceInfo {
            name: SourceName::Env("KILN_CONFIG_CONTENT"),
            found: true,
        });
        let node = tree::parse(
            &content,
            SourceName::Env("KILN_CONFIG_CONTENT"),
            &options.project_dir,
            options.env,
            &mut diags,
        );
        layer(node);
    }
    let node = read::env_overrides(options.env, &mut sources);
    layer(node);

    let config = read::config(merged.as_ref(), options.env, &mut diags);
    Loaded {
        config,
        sources,
        diagnostics: diags,
    }
}

fn read_file(
    path: &Path,
    env: &dyn Env,
    diags: &mut Vec<Diagnostic>,
    sources: &mut Vec<SourceInfo>,
    required: bool,
) -> Option<tree::Node> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            sources.push(SourceInfo {
                name: SourceName::File(path.to_path_buf()),
                found: true,
            });
            let base_dir = path.parent().unwrap_or(Path::new("."));
            tree::parse(
                &text,
                SourceName::File(path.to_path_buf()),
                base_dir,
                env,
                diags,
            )
        }
        Err(err) => {
            sources.push(SourceInfo {
                name: SourceName::File(path.to_path_buf()),
                found: false,
            });
            if required || err.kind() != std::io::ErrorKind::NotFound {
                diags.push(Diagnostic {
                    severity: Severity::Error,
                    origin: None,
                    key: String::new(),
                    message: format!(
                        "cannot read {}{}: {err}",
                        path.display(),
                        if required {
                            " (named by $KILN_CONFIG)"
                        } else {
                            ""
                        }
                    ),
                });
            }
            None
        }
    }
}
