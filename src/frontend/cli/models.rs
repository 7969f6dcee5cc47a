//! `kiln models`: every model kiln can use (presets and config), with its limits and
//! whether its provider's key is present; `--refresh` asks each reachable endpoint's
//! `GET /models` (Ollama and LM Studio list what is installed).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::{Format, key_state, runtime, workspace_dir};
use crate::config::{self, Config, Diagnostic, Provider};
use crate::llm::{Client, LlmError, RetryPolicy};

pub struct ModelsCommand {
    pub refresh: bool,
    pub format: Format,
}

const LIST_TIMEOUT: Duration = Duration::from_secs(5);

/// `kiln models --format json`; see protocol/cli.md.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelsOutput {
    pub models: Vec<ModelRow>,
    pub providers: Vec<ProviderRow>,
    pub diagnostics: Vec<DiagnosticRow>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelRow {
    /// `provider/model`, what `model` in kiln.jsonc takes.
    pub id: String,
    pub provider: String,
    pub model: String,
    pub name: String,
    pub context: Option<u32>,
    pub input: Option<u32>,
    pub output: Option<u32>,
    pub tool_call: bool,
    pub reasoning: bool,
    pub attachment: bool,
    pub temperature: bool,
    /// `present`, `missing` or `not_needed`.
    pub key: &'static str,
    /// `preset` (built in), `config` (a kiln.jsonc entry) or `listed` (the endpoint's list).
    pub source: &'static str,
    /// Listed by the endpoint on `--refresh`; `null` without it.
    pub listed: Option<bool>,
    pub default: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderRow {
    pub id: String,
    pub name: String,
    pub api: &'static str,
    pub base_url: String,
    pub key: &'static str,
    /// Where the key comes from (`$OPENAI_API_KEY`, `set at file:line`), never its value.
    pub key_source: String,
    /// `--refresh` only: the endpoint answered its model list.
    pub reachable: Option<bool>,
    pub error: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiagnosticRow {
    pub severity: &'static str,
    pub file: Option<String>,
    pub line: Option<usize>,
    pub key: String,
    pub message: String,
}

impl From<&Diagnostic> for DiagnosticRow {
    fn from(d: &Diagnostic) -> Self {
        DiagnosticRow {
            severity: match d.severity {
                config::Severity::Warning => "warning",
                config::Severity::Error => "error",
            },
            file: d.origin.as_ref().map(|o| o.source.to_string()),
            line: d.origin.as_ref().and_then(|o| match &*o.source {
                config::SourceName::File(_) => Some(o.line),
                _ => None,
            }),
            key: d.key.clone(),
            message: d.message.clone(),
        }
    }
}

pub fn run(cmd: ModelsCommand) -> i32 {
    let loaded = config::load_for(&workspace_dir());
    let listed = if cmd.refresh {
        match list_all(&loaded.config) {
            Ok(listed) => listed,
            Err(err) => {
                eprintln!("kiln models: {err:#}");
                return 2;
            }
        }
    } else {
        BTreeMap::new()
    };
    let output = build(&loaded.config, &loaded.diagnostics, &listed, cmd.refresh);
    match cmd.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&output).unwrap_or_default()
        ),
        Format::Text => print_text(&output, cmd.refresh),
    }
    i32::from(loaded.has_errors())
}

/// Asks every provider that can answer (a key present, or none needed) for its models.
fn list_all(config: &Config) -> anyhow::Result<BTreeMap<String, Result<Vec<String>, LlmError>>> {
    let rt = runtime()?;
    let client = Client::new(RetryPolicy::default())?;
    let providers: Vec<&Provider> = config
        .providers
        .values()
        .filter(|p| p.api_key.is_some() || p.keyless)
        .collect();
    if !providers.is_empty() {
        eprintln!(
            "asking {} for their models…",
            providers
                .iter()
                .map(|p| p.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let results = rt.block_on(futures::future::join_all(
        providers
            .iter()
            .map(|p| client.list_models(p, LIST_TIMEOUT)),
    ));
    Ok(providers
        .iter()
        .map(|p| p.id.clone())
        .zip(results)
        .collect())
}

fn build(
    config: &Config,
    diagnostics: &[Diagnostic],
    listed: &BTreeMap<String, Result<Vec<String>, LlmError>>,
    refreshed: bool,
) -> ModelsOutput {
    let mut models = Vec::new();
    let mut providers = Vec::new();
    for provider in config.providers.values() {
        let (key, key_source) = key_state(provider);
        let listed_ids = match listed.get(&provider.id) {
            Some(Ok(ids)) => Some(ids.as_slice()),
            _ => None,
        };
        providers.push(ProviderRow {
            id: provider.id.clone(),
            name: provider.name.clone(),
            api: provider.api.as_str(),
            base_url: provider.base_url.clone(),
            key,
            key_source,
            reachable: refreshed.then(|| listed_ids.is_some()),
            error: match listed.get(&provider.id) {
                Some(Err(err)) => Some(err.to_string()),
                _ => None,
            },
        });
        let mut ids: Vec<(&str, &'static str)> = provider
            .models
            .values()
            .map(|m| {
                (
                    m.id.as_str(),
                    if provider.preset
                        && config::PRESETS
                            .iter()
                            .any(|p| p.id == provider.id && p.models.iter().any(|pm| pm.id == m.id))
                    {
                        "preset"
                    } else {
                        "config"
                    },
                )
            })
            .collect();
        for id in listed_ids.unwrap_or_default() {
            if !provider.models.contains_key(id) {
                ids.push((id.as_str(), "listed"));
            }
        }
        for (id, source) in ids {
            let info = provider.model_info(id);
            let is_default = config
                .model
                .as_ref()
                .is_some_and(|m| m.provider == provider.id && m.model == id);
            models.push(ModelRow {
                id: format!("{}/{}", provider.id, id),
                provider: provider.id.clone(),
                model: id.to_owned(),
                name: info.name,
                context: info.limit.context,
                input: info.limit.input,
                output: info.limit.output,
                tool_call: info.tool_call,
                reasoning: info.reasoning,
                attachment: info.attachment,
                temperature: info.temperature,
                key,
                source,
                listed: listed_ids.map(|ids| ids.iter().any(|l| l == id)),
                default: is_default,
            });
        }
    }
    ModelsOutput {
        models,
        providers,
        diagnostics: diagnostics.iter().map(DiagnosticRow::from).collect(),
    }
}

fn tokens(n: Option<u32>) -> String {
    match n {
        None => "-".to_owned(),
        Some(n) if n >= 1_000_000 => {
            let m = format!("{:.1}", f64::from(n) / 1_000_000.0);
            format!("{}M", m.trim_end_matches(".0"))
        }
        Some(n) if n >= 1000 => format!("{}k", (n + 500) / 1000),
        Some(n) => n.to_string(),
    }
}

fn print_text(output: &ModelsOutput, refreshed: bool) {
    for d in &output.diagnostics {
        let place = match (&d.file, d.line) {
            (Some(file), Some(line)) => format!("{file}:{line}: "),
            (Some(file), None) => format!("{file}: "),
            _ => String::new(),
        };
        let key = if d.key.is_empty() {
            String::new()
        } else {
            format!("{}: ", d.key)
        };
        eprintln!("{}: {place}{key}{}", d.severity, d.message);
    }
    let width = output
        .models
        .iter()
        .map(|m| m.id.len())
        .max()
        .unwrap_or(5)
        .max(5);
    println!(
        "{:<width$}  {:>7}  {:>6}  {:<8}  NOTES",
        "MODEL", "CONTEXT", "OUTPUT", "KEY"
    );
    for provider in &output.providers {
        let rows: Vec<&ModelRow> = output
            .models
            .iter()
            .filter(|m| m.provider == provider.id)
            .collect();
        let key = match provider.key {
            "present" => "present",
            "not_needed" => "-",
            _ => "missing",
        };
        if rows.is_empty() {
            let note = match (&provider.error, refreshed) {
                (Some(err), _) => format!("unreachable: {}", err.split("; ").next().unwrap_or(err)),
                (None, true) => "lists no models".to_owned(),
                (None, false) => "run `kiln models --refresh` to list what it has".to_owned(),
            };
            println!(
                "{:<width$}  {:>7}  {:>6}  {:<8}  {note}",
                format!("{}/*", provider.id),
                "-",
                "-",
                key
            );
            continue;
        }
        for m in rows {
            let mut notes = Vec::new();
            if m.default {
                notes.push("default".to_owned());
            }
            if provider.key == "missing" {
                notes.push(provider.key_source.clone());
            }
            match m.listed {
                Some(true) if m.source == "listed" => notes.push("listed by the server".to_owned()),
                Some(false) => notes.push("not in the server's list".to_owned()),
                _ => {}
            }
            if let Some(err) = &provider.error {
                notes.push(format!(
                    "unreachable: {}",
                    err.split("; ").next().unwrap_or(err)
                ));
            }
            println!(
                "{:<width$}  {:>7}  {:>6}  {:<8}  {}",
                m.id,
                tokens(m.context),
                tokens(m.output),
                key,
                notes.join(", ")
            );
        }
    }
}
