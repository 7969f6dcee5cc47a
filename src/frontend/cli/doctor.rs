//! `kiln doctor`: which config files were read and what is wrong in them, the model kiln
//! would use and why, and each provider's reachability and key (one cheap `GET /models`
//! per provider that has a key or needs none), each failure with its next step.

use std::time::Duration;

use serde::Serialize;

use super::models::DiagnosticRow;
use super::{Format, key_state, runtime, workspace_dir};
use crate::config::{self, Provider};
use crate::llm::resolve::{self, Resolved};
use crate::llm::{Client, LlmError, RetryPolicy};

pub struct DoctorCommand {
    pub format: Format,
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// `kiln doctor --format json`; see protocol/cli.md.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DoctorOutput {
    version: &'static str,
    workspace: String,
    config_files: Vec<ConfigFile>,
    diagnostics: Vec<DiagnosticRow>,
    model: ModelCheck,
    providers: Vec<ProviderCheck>,
    /// Instruction files the agent reads (AGENTS.md, rules folders, `instructions`).
    instructions: Vec<String>,
    /// Modes available (built in and from config).
    modes: Vec<String>,
    /// Problems with the `mode` and `instructions` sections.
    agent_problems: Vec<String>,
    ok: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConfigFile {
    source: String,
    found: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ModelCheck {
    /// `provider/model`, or null when none could be found.
    id: Option<String>,
    why: Option<String>,
    error: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProviderCheck {
    id: String,
    base_url: String,
    key: &'static str,
    key_source: String,
    /// `ok`, `no_key` (not probed), `unreachable`, `auth_failed` or `error`.
    status: &'static str,
    /// Models the endpoint listed (when it answered).
    models: Option<usize>,
    /// The chosen model's provider, or one defined in config: a failure here matters.
    in_use: bool,
    detail: Option<String>,
    next_step: Option<String>,
}

pub fn run(cmd: DoctorCommand) -> i32 {
    let workspace = workspace_dir();
    let loaded = config::load_for(&workspace);
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("kiln doctor: {err}");
            return 2;
        }
    };
    let client = match Client::new(RetryPolicy::default()) {
        Ok(client) => client,
        Err(err) => {
            eprintln!("kiln doctor: {err:#}");
            return 2;
        }
    };
    let probed: Vec<&Provider> = loaded
        .config
        .providers
        .values()
        .filter(|p| p.api_key.is_some() || p.keyless)
        .collect();
    if cmd.format == Format::Text && !probed.is_empty() {
        eprintln!(
            "checking {}…",
            probed
                .iter()
                .map(|p| p.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let (results, resolved) = rt.block_on(async {
        let probes =
            futures::future::join_all(probed.iter().map(|p| client.list_models(p, PROBE_TIMEOUT)));
        let resolution = resolve::resolve(&client, &loaded.config);
        futures::join!(probes, resolution)
    });

    let mut providers = Vec::new();
    for provider in loaded.config.providers.values() {
        let (key, key_source) = key_state(provider);
        let result = probed
            .iter()
            .position(|p| p.id == provider.id)
            .map(|idx| &results[idx]);
        let in_use = !provider.preset
            || resolved
                .as_ref()
                .is_ok_and(|r| r.target.provider.id == provider.id);
        providers.push(check(provider, key, key_source, result, in_use));
    }
    let model = match &resolved {
        Ok(Resolved { target, why }) => ModelCheck {
            id: Some(target.model_ref().to_string()),
            why: Some(why.clone()),
            error: None,
        },
        Err(no_model) => ModelCheck {
            id: None,
            why: None,
            error: Some(no_model.to_string()),
        },
    };
    let model_provider_ok = match &resolved {
        Ok(r) => providers
            .iter()
            .any(|p| p.id == r.target.provider.id && p.status == "ok"),
        Err(_) => false,
    };
    let (instructions, mut agent_problems) = crate::agent::instructions::collect(
        &workspace,
        config::global_dir().as_deref(),
        &loaded.config,
    );
    let (modes, mode_problems) = crate::agent::mode::from_config(&loaded.config);
    agent_problems.extend(mode_problems);
    agent_problems.extend(crate::agent::Policy::from_config(&loaded.config).1);
    agent_problems.extend(crate::agent::verify::Verify::from_config(&loaded.config).1);
    let output = DoctorOutput {
        instructions: instructions
            .iter()
            .map(|i| crate::tools::display_path(&workspace, &i.path))
            .collect(),
        modes: modes.iter().map(|m| m.slug.clone()).collect(),
        agent_problems,
        version: env!("CARGO_PKG_VERSION"),
        workspace: workspace.display().to_string(),
        config_files: loaded
            .sources
            .iter()
            .map(|s| ConfigFile {
                source: s.name.to_string(),
                found: s.found,
            })
            .collect(),
        diagnostics: loaded.diagnostics.iter().map(DiagnosticRow::from).collect(),
        ok: !loaded.has_errors() && model_provider_ok,
        model,
        providers,
    };
    match cmd.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&output).unwrap_or_default()
        ),
        Format::Text => print_text(&output),
    }
    i32::from(!output.ok)
}

fn check(
    provider: &Provider,
    key: &'static str,
    key_source: String,
    result: Option<&Result<Vec<String>, LlmError>>,
    in_use: bool,
) -> ProviderCheck {
    let (status, models, detail, next_step) = match result {
        None => (
            "no_key",
            None,
            None,
            Some(match provider.key_env.first() {
                Some(var) => format!(
                    "to use it: `export {var}=…`{}",
                    provider
                        .get_it
                        .map(|g| format!(" ({g})"))
                        .unwrap_or_default()
                ),
                None => format!("set provider.{}.options.apiKey", provider.id),
            }),
        ),
        Some(Ok(ids)) => ("ok", Some(ids.len()), None, None),
        Some(Err(err)) => {
            let text = err.to_string();
            let (detail, next) = match text.split_once("; ") {
                Some((head, tail)) => (head.to_owned(), tail.to_owned()),
                None => (text.clone(), String::new()),
            };
            let status = match err {
                LlmError::Auth { .. } => "auth_failed",
                LlmError::Connect { .. } | LlmError::Timeout { .. } => "unreachable",
                _ => "error",
            };
            (
                status,
                None,
                Some(detail),
                (!next.is_empty()).then_some(next),
            )
        }
    };
    ProviderCheck {
        id: provider.id.clone(),
        base_url: provider.base_url.clone(),
        key,
        key_source,
        status,
        models,
        in_use,
        detail,
        next_step,
    }
}

fn print_text(out: &DoctorOutput) {
    println!("kiln {} · workspace {}", out.version, out.workspace);
    println!();
    println!("Config");
    for file in &out.config_files {
        println!(
            "  {}  {}",
            if file.found { "read" } else { "none" },
            file.source
        );
    }
    if out.diagnostics.is_empty() {
        println!("  ✓ no problems");
    }
    for d in &out.diagnostics {
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
        let mark = if d.severity == "error" { "✗" } else { "!" };
        println!("  {mark} {}: {place}{key}{}", d.severity, d.message);
    }
    println!();
    println!("Model");
    match (&out.model.id, &out.model.error) {
        (Some(id), _) => println!("  ✓ {id} ({})", out.model.why.as_deref().unwrap_or("")),
        (None, Some(err)) => {
            for line in err.lines() {
                println!("  {line}");
            }
        }
        _ => {}
    }
    println!();
    println!("Agent");
    if out.instructions.is_empty() {
        println!(
            "  instructions: none (AGENTS.md, CLAUDE.md, .kiln/rules/*.md, … are read when present)"
        );
    } else {
        println!("  instructions: {}", out.instructions.join(", "));
    }
    println!("  modes: {}", out.modes.join(", "));
    for p in &out.agent_problems {
        println!("  ! {p}");
    }
    println!();
    println!("Providers");
    let width = out.providers.iter().map(|p| p.id.len()).max().unwrap_or(8);
    for p in &out.providers {
        let (mark, what) = match p.status {
            "ok" => (
                "✓",
                format!(
                    "reachable, {}; {} model(s) listed",
                    match p.key {
                        "present" => format!("key accepted ({})", p.key_source),
                        _ => "no key needed".to_owned(),
                    },
                    p.models.unwrap_or(0)
                ),
            ),
            "no_key" if p.in_use => ("✗", format!("no key: {}", p.key_source)),
            "no_key" => ("-", format!("not set up: {}", p.key_source)),
            // A local server nobody asked for that is not running is not a problem.
            "unreachable" if !p.in_use && p.key == "not_needed" => {
                ("-", format!("not running at {}", p.base_url))
            }
            _ => ("✗", p.detail.clone().unwrap_or_default()),
        };
        println!("  {mark} {:<width$}  {what}", p.id);
        if let Some(next) = &p.next_step {
            println!("    {:<width$}  → {next}", "");
        }
    }
    println!();
    if out.ok {
        println!("kiln is ready.");
    } else if out.model.id.is_none() {
        println!("kiln is not ready: it has no model (see Model above).");
    } else {
        println!("kiln is not ready yet: see the ✗ lines above.");
    }
}
