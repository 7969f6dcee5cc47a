//! Which model to use when the person did not say: the configured `model`; else a
//! provider defined in config or by `KILN_ENDPOINT` (its first model); else the first
//! built-in provider whose key is set; else a local Ollama or LM Studio that answers,
//! with its first installed model. With none, the error lists every way to get one.

use std::fmt;
use std::time::Duration;

use super::{Client, LlmError, Target};
use crate::config::{Config, PRESETS};

/// How long a local server may take to list its models before kiln moves on.
pub const LOCAL_PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

#[derive(Debug)]
pub struct Resolved {
    pub target: Target,
    /// Why this model, in words ("set at kiln.jsonc:3", "$ANTHROPIC_API_KEY is set").
    pub why: String,
}

/// No model could be found; `Display` says every way to get one.
#[derive(Debug)]
pub struct NoModel {
    /// What was tried and why it did not work.
    pub tried: Vec<String>,
}

impl fmt::Display for NoModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keyed: Vec<String> = PRESETS
            .iter()
            .flat_map(|p| p.key_env.first())
            .map(|v| format!("${v}"))
            .collect();
        writeln!(f, "kiln found no model to use. Any one of these works:")?;
        writeln!(
            f,
            "  - a cloud key: `export ANTHROPIC_API_KEY=…` (or one of {})",
            keyed[1..].join(", ")
        )?;
        writeln!(
            f,
            "  - a local model: install Ollama (https://ollama.com) and run `ollama pull qwen2.5-coder`, or start LM Studio's server (port 1234) with a model loaded; kiln finds either by itself"
        )?;
        writeln!(
            f,
            "  - any OpenAI-compatible server: `export KILN_ENDPOINT=http://host:port/v1 KILN_MODEL=<model id>` (and KILN_API_KEY if it needs one)"
        )?;
        write!(
            f,
            "  - or set \"model\": \"provider/model\" in kiln.jsonc (`kiln models` lists them)"
        )?;
        if !self.tried.is_empty() {
            write!(f, "\nTried: {}", self.tried.join("; "))?;
        }
        Ok(())
    }
}

impl std::error::Error for NoModel {}

pub async fn resolve(client: &Client, config: &Config) -> Result<Resolved, NoModel> {
    let mut tried = Vec::new();
    if let Some(model) = &config.model {
        if let Some(target) = Target::from_config(config, model) {
            let why = match &config.model_origin {
                Some(origin) => format!("set at {origin}"),
                None => "configured".to_owned(),
            };
            return Ok(Resolved { target, why });
        }
        tried.push(format!("the configured model {model} has no provider"));
    }
    // Providers the person defined: they meant to use them.
    for provider in config.providers.values().filter(|p| !p.preset) {
        if let Some(model) = provider.models.keys().next() {
            return Ok(Resolved {
                target: Target {
                    provider: provider.clone(),
                    model: provider.model_info(model),
                },
                why: format!("the first model of provider {}", provider.id),
            });
        }
        match client.list_models(provider, LOCAL_PROBE_TIMEOUT).await {
            Ok(ids) if !ids.is_empty() => {
                return Ok(Resolved {
                    target: Target {
                        provider: provider.clone(),
                        model: provider.model_info(&ids[0]),
                    },
                    why: format!("the first model {} lists", provider.id),
                });
            }
            Ok(_) => tried.push(format!("{} lists no models", provider.id)),
            Err(err) => tried.push(short(&err)),
        }
    }
    for preset in PRESETS {
        let Some(provider) = config.provider(preset.id) else {
            continue;
        };
        if let (Some(_), Some(model), crate::config::KeySource::Env(var)) = (
            &provider.api_key,
            &provider.default_model,
            &provider.key_source,
        ) {
            return Ok(Resolved {
                target: Target {
                    provider: provider.clone(),
                    model: provider.model_info(model),
                },
                why: format!("${var} is set"),
            });
        }
    }
    let locals: Vec<_> = PRESETS
        .iter()
        .filter(|p| p.key_env.is_empty())
        .filter_map(|p| config.provider(p.id))
        .collect();
    let listed = futures::future::join_all(
        locals
            .iter()
            .map(|p| client.list_models(p, LOCAL_PROBE_TIMEOUT)),
    )
    .await;
    for (provider, result) in locals.iter().zip(listed) {
        match result {
            Ok(ids) if !ids.is_empty() => {
                return Ok(Resolved {
                    target: Target {
                        provider: (*provider).clone(),
                        model: provider.model_info(&ids[0]),
                    },
                    why: format!("found on {} at {}", provider.name, provider.base_url),
                });
            }
            Ok(_) => tried.push(format!(
                "{} is running but has no model installed",
                provider.id
            )),
            Err(LlmError::Connect { .. }) => tried.push(format!(
                "nothing answers at {} ({})",
                provider.base_url, provider.id
            )),
            Err(err) => tried.push(short(&err)),
        }
    }
    Err(NoModel { tried })
}

fn short(err: &LlmError) -> String {
    let text = err.to_string();
    match text.split_once("; ") {
        Some((head, _)) => head.to_owned(),
        None => text,
    }
}
