//! Provider failures as errors a person can act on: each says what happened and what to
//! do next. API keys never appear in them (provider error bodies are scrubbed).

use std::time::Duration;

use crate::config::{KeySource, Provider};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    #[error("{provider} needs an API key and none is set: {advice}")]
    MissingKey { provider: String, advice: String },

    #[error("{provider} rejected the API key (HTTP {status}{detail}); {advice}")]
    Auth {
        provider: String,
        status: u16,
        detail: String,
        advice: String,
    },

    #[error(
        "{provider} has no model \"{model}\" (HTTP 404{detail}); run `kiln models --refresh` to list the ids it offers, then set \"model\" in kiln.jsonc or KILN_MODEL"
    )]
    ModelNotFound {
        provider: String,
        model: String,
        detail: String,
    },

    #[error(
        "the conversation no longer fits {model}'s context window{} (HTTP {status}{detail}); start a new session, compact the conversation, or pick a model with a larger window",
        limit.map(|l| format!(" of {l} tokens")).unwrap_or_default()
    )]
    ContextLength {
        provider: String,
        model: String,
        status: u16,
        limit: Option<u32>,
        detail: String,
    },

    #[error(
        "{provider} is rate limiting requests (HTTP 429{detail}); {}",
        match retry_after {
            Some(wait) => format!("it asks to wait {}, more than kiln waits by itself ({attempts} attempt(s) made); try again then", human(*wait)),
            None => format!("gave up after {attempts} attempt(s); wait a minute, or check your plan's limits"),
        }
    )]
    RateLimited {
        provider: String,
        retry_after: Option<Duration>,
        attempts: u32,
        detail: String,
    },

    #[error(
        "{provider} failed with HTTP {status}{detail} ({attempts} attempt(s)); the provider is having trouble: try again later or pick another model"
    )]
    Server {
        provider: String,
        status: u16,
        attempts: u32,
        detail: String,
    },

    #[error("{provider} refused the request (HTTP {status}{detail})")]
    Request {
        provider: String,
        status: u16,
        detail: String,
    },

    #[error("cannot reach {provider} at {url} ({attempts} attempt(s)): {detail}; {advice}")]
    Connect {
        provider: String,
        url: String,
        attempts: u32,
        detail: String,
        advice: String,
    },

    #[error(
        "{provider} sent nothing for {} {}; {}raise provider.{provider}.options.timeout_ms if the model is just slow",
        human(*waited),
        if *first_byte { "after the request was sent" } else { "in the middle of the answer" },
        if *first_byte { "" } else { "the partial answer is kept; " }
    )]
    Timeout {
        provider: String,
        waited: Duration,
        first_byte: bool,
    },

    #[error("the answer from {provider} broke off: {detail}; the partial answer is kept")]
    Interrupted { provider: String, detail: String },

    #[error("{provider} reported an error mid-answer: {detail}; the partial answer is kept")]
    Provider { provider: String, detail: String },
}

impl LlmError {
    /// Rate limits and server errors that may pass when tried again later.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            LlmError::RateLimited { .. }
                | LlmError::Server { .. }
                | LlmError::Connect { .. }
                | LlmError::Timeout { .. }
                | LlmError::Interrupted { .. }
        )
    }
}

pub fn human(wait: Duration) -> String {
    let ms = wait.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 120_000 {
        format!("{:.0} s", wait.as_secs_f64())
    } else {
        format!("{:.0} min", wait.as_secs_f64() / 60.0)
    }
}

/// The parts of a provider error body worth showing: OpenAI `{error:{message,type,code}}`,
/// Anthropic `{type:"error",error:{type,message}}`, OpenRouter's numeric `code` and
/// `metadata.raw`, or a bare `{error:"…"}`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ErrorBody {
    pub message: String,
    pub kind: String,
    pub code: String,
}

impl ErrorBody {
    pub fn parse(body: &str) -> ErrorBody {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else {
            let text = body.trim();
            return ErrorBody {
                message: clip(text, 300),
                ..ErrorBody::default()
            };
        };
        let error = value.get("error").unwrap_or(&value);
        if let Some(text) = error.as_str() {
            return ErrorBody {
                message: clip(text, 300),
                ..ErrorBody::default()
            };
        }
        let text = |v: Option<&serde_json::Value>| match v {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        let mut message = text(error.get("message"));
        if let Some(raw) = error.pointer("/metadata/raw").and_then(|v| v.as_str()) {
            let from = error
                .pointer("/metadata/provider_name")
                .and_then(|v| v.as_str())
                .map(|name| format!(" ({name})"))
                .unwrap_or_default();
            message = format!("{message}; upstream{from}: {raw}");
        }
        ErrorBody {
            message: clip(&message, 300),
            kind: text(error.get("type")),
            code: text(error.get("code")),
        }
    }

    /// `": message"` for the error texts, empty when the body said nothing.
    pub fn detail(&self) -> String {
        let mut parts = Vec::new();
        if !self.code.is_empty() && !self.code.chars().all(|c| c.is_ascii_digit()) {
            parts.push(self.code.clone());
        } else if !self.kind.is_empty() {
            parts.push(self.kind.clone());
        }
        if !self.message.is_empty() {
            parts.push(self.message.clone());
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!(": {}", parts.join(": "))
        }
    }

    fn is_context_length(&self) -> bool {
        let m = self.message.to_lowercase();
        self.code == "context_length_exceeded"
            || m.contains("prompt is too long")
            || m.contains("context length")
            || m.contains("context window")
            || m.contains("maximum context")
            || m.contains("too many tokens")
    }
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max).collect();
    format!("{cut}…")
}

/// What the classifier needs to know about the request that failed.
pub struct ErrorContext<'a> {
    pub provider: &'a Provider,
    pub model: &'a str,
    pub context_limit: Option<u32>,
}

/// Advice for a key problem: which key was used and how to set another.
pub fn key_advice(provider: &Provider) -> String {
    let var = provider
        .key_env
        .first()
        .cloned()
        .unwrap_or_else(|| format!("{}_API_KEY", provider.id.to_uppercase().replace('-', "_")));
    let get_it = provider
        .get_it
        .map(|g| format!(" ({g})"))
        .unwrap_or_default();
    match &provider.key_source {
        KeySource::Env(used) => format!(
            "kiln sent the key from ${used}; check it, or set a valid one with `export {used}=…`{get_it}"
        ),
        KeySource::Config(origin) => format!(
            "kiln sent the apiKey set at {origin}; fix it there, or use \"{{env:{var}}}\" and `export {var}=…`{get_it}"
        ),
        KeySource::None => format!(
            "set one with `export {var}=…`{get_it}, or provider.{}.options.apiKey in kiln.jsonc",
            provider.id
        ),
    }
}

/// Advice when a server cannot be reached at all.
pub fn connect_advice(provider: &Provider) -> String {
    if provider.is_local() {
        match provider.get_it {
            Some(get_it) => format!("is the server running? {get_it}"),
            None => format!("is the server at {} running?", provider.base_url),
        }
    } else {
        "check the network, a proxy (HTTPS_PROXY) or the baseURL".to_owned()
    }
}

/// Turns an HTTP error status and body into the error to report. `attempts` counts the
/// requests made so far.
pub fn classify(
    cx: &ErrorContext<'_>,
    status: u16,
    body: &str,
    retry_after: Option<Duration>,
    attempts: u32,
) -> LlmError {
    let body = match &cx.provider.api_key {
        Some(key) => key.scrub(body),
        None => body.to_owned(),
    };
    let parsed = ErrorBody::parse(&body);
    let detail = parsed.detail();
    let provider = cx.provider.id.clone();
    match status {
        401 | 403 => LlmError::Auth {
            provider,
            status,
            detail,
            advice: key_advice(cx.provider),
        },
        404 => LlmError::ModelNotFound {
            provider,
            model: cx.model.to_owned(),
            detail,
        },
        429 => LlmError::RateLimited {
            provider,
            retry_after,
            attempts,
            detail,
        },
        400 | 413 | 422 if parsed.is_context_length() => LlmError::ContextLength {
            provider,
            model: cx.model.to_owned(),
            status,
            limit: cx.context_limit,
            detail,
        },
        500..=599 => LlmError::Server {
            provider,
            status,
            attempts,
            detail,
        },
        _ => LlmError::Request {
            provider,
            status,
            detail,
        },
    }
}
