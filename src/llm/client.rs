//! HTTP for the adapters: one request per completion, streamed into a channel of
//! [`CompletionEvent`]s by a spawned task.
//!
//! - Retries (exponential backoff with jitter, `Retry-After` / `retry-after-ms` honoured)
//!   happen only before the first byte of a successful response: on 429, 5xx and
//!   connection errors. Once output has started, a failure ends the stream with an error
//!   and what was received stays with the caller.
//! - `timeout` (per provider) bounds the wait for the response and between two chunks.
//! - Cancelling the token drops the connection at once; the channel then closes.
//! - Loopback servers (Ollama, LM Studio) are reached directly; everything else goes
//!   through the proxy named by `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` when set.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::error::{self, ErrorContext, LlmError};
use super::sse::SseParser;
use super::{CompletionEvent, Decoder, Request, anthropic, openai};
use crate::config::{Api, Config, ModelInfo, ModelRef, Provider};

/// The provider and model a request goes to.
#[derive(Clone, Debug)]
pub struct Target {
    pub provider: Provider,
    pub model: ModelInfo,
}

impl Target {
    /// Looks up `provider/model` in the configuration; unknown model ids of a known
    /// provider are allowed (with default capabilities).
    pub fn from_config(config: &Config, model: &ModelRef) -> Option<Target> {
        let provider = config.provider(&model.provider)?.clone();
        let model = provider.model_info(&model.model);
        Some(Target { provider, model })
    }

    pub fn model_ref(&self) -> ModelRef {
        ModelRef {
            provider: self.provider.id.clone(),
            model: self.model.id.clone(),
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// The first backoff; doubled on each retry, with jitter.
    pub base: Duration,
    /// Longest single backoff.
    pub max_backoff: Duration,
    /// A `Retry-After` longer than this is not waited out: the error says when to retry.
    pub max_retry_after: Duration,
    pub connect_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_millis(500),
            max_backoff: Duration::from_secs(20),
            max_retry_after: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Clone)]
pub struct Client {
    /// For loopback servers: never through a proxy.
    direct: reqwest::Client,
    proxied: reqwest::Client,
    retry: RetryPolicy,
}

/// Largest error body read (they are short JSON; this bounds a misbehaving server).
const MAX_ERROR_BODY: usize = 64 * 1024;
const CHANNEL_CAPACITY: usize = 256;

impl Client {
    pub fn new(retry: RetryPolicy) -> anyhow::Result<Client> {
        let builder = || {
            reqwest::Client::builder()
                .connect_timeout(retry.connect_timeout)
                .tcp_nodelay(true)
                .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
        };
        Ok(Client {
            direct: builder().no_proxy().build()?,
            proxied: builder().build()?,
            retry,
        })
    }

    fn http(&self, provider: &Provider) -> &reqwest::Client {
        if provider.is_local() {
            &self.direct
        } else {
            &self.proxied
        }
    }

    fn request(
        &self,
        provider: &Provider,
        method: reqwest::Method,
        url: &str,
    ) -> reqwest::RequestBuilder {
        let mut builder = self.http(provider).request(method, url);
        match provider.api {
            Api::OpenAiCompatible => {
                if let Some(key) = &provider.api_key {
                    builder = builder.bearer_auth(key.expose());
                }
            }
            Api::Anthropic => {
                if let Some(key) = &provider.api_key {
                    builder = builder.header("x-api-key", key.expose());
                }
                builder = builder.header("anthropic-version", anthropic::API_VERSION);
            }
        }
        for (name, value) in &provider.headers {
            builder = builder.header(name.as_str(), value.expose());
        }
        builder
    }

    /// Starts a completion; events arrive on the returned channel, which closes after the
    /// final `Finish`/`Error` or when `cancel` fires.
    pub fn stream(
        &self,
        target: &Target,
        req: std::sync::Arc<Request>,
        cancel: CancellationToken,
    ) -> mpsc::Receiver<CompletionEvent> {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let client = self.clone();
        let target = target.clone();
        tokio::spawn(async move {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => {}
                _ = client.run(&target, &req, &tx) => {}
            }
        });
        rx
    }

    async fn run(&self, target: &Target, req: &Request, tx: &mpsc::Sender<CompletionEvent>) {
        let provider = &target.provider;
        if provider.api_key.is_none() && !provider.keyless {
            let _ = tx
                .send(CompletionEvent::Error(LlmError::MissingKey {
                    provider: provider.id.clone(),
                    advice: error::key_advice(provider),
                }))
                .await;
            return;
        }
        let Some(response) = self.connect(target, req, tx).await else {
            return;
        };
        self.read(target, response, tx).await;
    }

    /// Sends the request until a successful response arrives, retrying what may pass.
    async fn connect(
        &self,
        target: &Target,
        req: &Request,
        tx: &mpsc::Sender<CompletionEvent>,
    ) -> Option<reqwest::Response> {
        let provider = &target.provider;
        let url = provider.endpoint();
        let mut max_completion_tokens = provider.max_completion_tokens;
        let mut switched_field = false;
        let mut attempt = 0u32;
        let cx = ErrorContext {
            provider,
            model: &target.model.id,
            context_limit: target.model.limit.context,
        };
        loop {
            if tx.is_closed() {
                return None; // nobody is listening any more
            }
            attempt += 1;
            let body = match provider.api {
                Api::OpenAiCompatible => openai::request_bytes(
                    &openai::BodyOptions {
                        model: &target.model,
                        max_completion_tokens,
                    },
                    req,
                ),
                Api::Anthropic => serde_json::to_vec(&anthropic::request_body(&target.model, req))
                    .unwrap_or_default(),
            };
            let sent = self
                .request(provider, reqwest::Method::POST, &url)
                .header("content-type", "application/json")
                .header("accept", "text/event-stream")
                .body(body)
                .send();
            let retryable;
            let failure = match tokio::time::timeout(provider.timeout, sent).await {
                Err(_) => {
                    let _ = tx
                        .send(CompletionEvent::Error(LlmError::Timeout {
                            provider: provider.id.clone(),
                            waited: provider.timeout,
                            first_byte: true,
                        }))
                        .await;
                    return None;
                }
                Ok(Err(err)) => {
                    retryable = None;
                    LlmError::Connect {
                        provider: provider.id.clone(),
                        url: url.clone(),
                        attempts: attempt,
                        detail: transport_detail(&err),
                        advice: error::connect_advice(provider),
                    }
                }
                Ok(Ok(response)) if response.status().is_success() => return Some(response),
                Ok(Ok(response)) => {
                    let status = response.status().as_u16();
                    let wait = retry_after(response.headers());
                    let text = read_error_body(response, provider.timeout).await;
                    if status == 400 && !switched_field && mentions_max_tokens_field(&text) {
                        // The server wants the other name for the output cap: switch once.
                        switched_field = true;
                        max_completion_tokens = !max_completion_tokens;
                        attempt -= 1;
                        continue;
                    }
                    retryable = Some(wait);
                    let err = error::classify(&cx, status, &text, wait, attempt);
                    if !matches!(err, LlmError::RateLimited { .. } | LlmError::Server { .. }) {
                        let _ = tx.send(CompletionEvent::Error(err)).await;
                        return None;
                    }
                    err
                }
            };
            let server_wait = retryable.flatten();
            if attempt > provider.max_retries {
                let _ = tx.send(CompletionEvent::Error(failure)).await;
                return None;
            }
            let wait = match server_wait {
                Some(wait) if wait > self.retry.max_retry_after => {
                    let _ = tx.send(CompletionEvent::Error(failure)).await;
                    return None;
                }
                Some(wait) => wait,
                None => backoff(&self.retry, attempt),
            };
            let reason = failure.to_string();
            tracing::info!(provider = %provider.id, attempt, wait_ms = wait.as_millis() as u64, "retrying: {reason}");
            if tx
                .send(CompletionEvent::Retrying {
                    attempt,
                    wait,
                    reason,
                })
                .await
                .is_err()
            {
                return None;
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Reads the event stream and forwards decoded events until the final one.
    async fn read(
        &self,
        target: &Target,
        mut response: reqwest::Response,
        tx: &mpsc::Sender<CompletionEvent>,
    ) {
        let provider = &target.provider;
        let mut decoder: Box<dyn Decoder> = match provider.api {
            Api::OpenAiCompatible => Box::new(openai::Decoder::new(&provider.id)),
            Api::Anthropic => Box::new(anthropic::Decoder::new(&provider.id)),
        };
        let is_json = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/json"));
        if is_json {
            // A server that ignored `stream: true` or answered an error with 200.
            let text = read_error_body(response, provider.timeout).await;
            let body = error::ErrorBody::parse(&text);
            let detail = if body.message.is_empty() {
                "expected an event stream but the server answered with plain JSON; does this endpoint support streaming?".to_owned()
            } else {
                body.detail().trim_start_matches(": ").to_owned()
            };
            let _ = tx
                .send(CompletionEvent::Error(LlmError::Provider {
                    provider: provider.id.clone(),
                    detail,
                }))
                .await;
            return;
        }
        let mut parser = SseParser::new();
        let mut events = Vec::with_capacity(16);
        let mut received_any = false;
        loop {
            let chunk = tokio::time::timeout(provider.timeout, response.chunk()).await;
            match chunk {
                Ok(Ok(Some(bytes))) => {
                    received_any = true;
                    parser.feed(&bytes, &mut |ev| decoder.event(ev, &mut events));
                }
                Ok(Ok(None)) => {
                    parser.finish(&mut |ev| decoder.event(ev, &mut events));
                    decoder.end(&mut events);
                }
                Ok(Err(err)) => {
                    parser.finish(&mut |ev| decoder.event(ev, &mut events));
                    decoder.abort(
                        LlmError::Interrupted {
                            provider: provider.id.clone(),
                            detail: transport_detail(&err),
                        },
                        &mut events,
                    );
                }
                Err(_) => decoder.abort(
                    LlmError::Timeout {
                        provider: provider.id.clone(),
                        waited: provider.timeout,
                        first_byte: !received_any,
                    },
                    &mut events,
                ),
            }
            for event in events.drain(..) {
                if tx.send(event).await.is_err() {
                    return;
                }
            }
            if decoder.done() {
                return;
            }
        }
    }

    /// `GET {baseURL}/models`: the model ids an endpoint offers (Ollama and LM Studio list
    /// what is installed). Also a cheap check of reachability and the key.
    pub async fn list_models(
        &self,
        provider: &Provider,
        timeout: Duration,
    ) -> Result<Vec<String>, LlmError> {
        let url = format!("{}/models", provider.base_url);
        let cx = ErrorContext {
            provider,
            model: "",
            context_limit: None,
        };
        let sent = self
            .request(provider, reqwest::Method::GET, &url)
            .timeout(timeout)
            .send();
        let response = match tokio::time::timeout(timeout, sent).await {
            Err(_) => {
                return Err(LlmError::Timeout {
                    provider: provider.id.clone(),
                    waited: timeout,
                    first_byte: true,
                });
            }
            Ok(Err(err)) => {
                return Err(LlmError::Connect {
                    provider: provider.id.clone(),
                    url,
                    attempts: 1,
                    detail: transport_detail(&err),
                    advice: error::connect_advice(provider),
                });
            }
            Ok(Ok(response)) => response,
        };
        let status = response.status().as_u16();
        let wait = retry_after(response.headers());
        let text = read_error_body(response, timeout).await;
        if !(200..300).contains(&status) {
            return Err(match error::classify(&cx, status, &text, wait, 1) {
                // A 404 here means the endpoint has no model list, not a missing model.
                LlmError::ModelNotFound {
                    provider, detail, ..
                } => LlmError::Request {
                    provider,
                    status,
                    detail: format!("{detail} (no model list at {url})"),
                },
                other => other,
            });
        }
        #[derive(serde::Deserialize)]
        struct List {
            #[serde(default)]
            data: Vec<Entry>,
            /// Ollama's native `/api/tags` shape, in case a base URL points there.
            #[serde(default)]
            models: Vec<Entry>,
        }
        #[derive(serde::Deserialize)]
        struct Entry {
            #[serde(alias = "name")]
            id: String,
        }
        let list: List = serde_json::from_str(&text).map_err(|err| LlmError::Request {
            provider: provider.id.clone(),
            status,
            detail: format!(": the model list at {url} is not the expected JSON ({err})"),
        })?;
        // In the server's order: Ollama lists the most recently pulled model first.
        let mut ids: Vec<String> = Vec::new();
        for entry in list.data.into_iter().chain(list.models) {
            if !ids.contains(&entry.id) {
                ids.push(entry.id);
            }
        }
        Ok(ids)
    }
}

fn transport_detail(err: &reqwest::Error) -> String {
    // reqwest's Display hides the cause ("error sending request for url …"); the causes
    // below it say what happened ("tcp connect error: Connection refused").
    let mut parts: Vec<String> = Vec::new();
    let mut source: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = source {
        let text = e.to_string();
        let generic = text.starts_with("error sending request")
            || text.starts_with("client error")
            || text.starts_with("error decoding response body");
        if !generic && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    if parts.is_empty() {
        err.to_string()
    } else {
        parts.join(": ")
    }
}

fn mentions_max_tokens_field(body: &str) -> bool {
    body.contains("max_completion_tokens")
        || body.contains("'max_tokens'")
        || body.contains("\"max_tokens\"")
}

/// `retry-after-ms` (OpenAI) or `retry-after` in seconds. An HTTP-date is ignored (the
/// backoff applies).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = get("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    get("retry-after")
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let exp = policy
        .base
        .saturating_mul(1u32 << (attempt - 1).min(16))
        .min(policy.max_backoff);
    // Full jitter in [exp/2, exp]: many clients retrying together spread out.
    exp.mul_f64(0.5 + 0.5 * jitter())
}

fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

async fn read_error_body(mut response: reqwest::Response, timeout: Duration) -> String {
    let mut body = Vec::new();
    let read = async {
        while let Ok(Some(chunk)) = response.chunk().await {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_ERROR_BODY {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(timeout.min(Duration::from_secs(10)), read).await;
    String::from_utf8_lossy(&body).into_owned()
}
