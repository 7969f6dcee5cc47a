//! Talking to model providers: one adapter per wire API (OpenAI-compatible chat
//! completions, Anthropic Messages), each with its own lenient wire types, all adapted
//! into one stream of [`CompletionEvent`]s. `llm` knows no sessions and no editor protocol.
//!
//! The decoders (`openai::Decoder`, `anthropic::Decoder`) are pure and synchronous: SSE
//! events in, completion events out. `client` does the HTTP: retries before the first
//! byte, timeouts, cancellation, and turning HTTP errors into messages that say what to do.

pub mod anthropic;
pub mod client;
pub mod error;
pub mod openai;
pub mod resolve;
pub mod sse;
mod tool_calls;

use std::time::Duration;

pub use client::{Client, RetryPolicy, Target};
pub use error::LlmError;

/// A request in kiln's terms; each adapter writes it in its provider's shape.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// System prompt parts, in order (sent as one system message / Anthropic's `system`).
    pub system: Vec<String>,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolSpec>,
    pub tool_choice: ToolChoice,
    /// Output cap; the model's `limit.output` when `None`.
    pub max_output_tokens: Option<u32>,
    /// Omitted for models whose entry says `temperature: false`.
    pub temperature: Option<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    User(Vec<UserPart>),
    Assistant(Vec<AssistantPart>),
    /// The result of one tool call; consecutive results belong to the same turn.
    ToolResult {
        call_id: String,
        content: String,
        is_error: bool,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum UserPart {
    Text(String),
    /// Base64 data; sent only to models that accept attachments.
    Image {
        media_type: String,
        data: String,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum AssistantPart {
    Text(String),
    /// Model reasoning; `signature` is Anthropic's, needed to send thinking back.
    Reasoning {
        text: String,
        signature: Option<String>,
    },
    ToolCall {
        id: String,
        name: String,
        arguments: serde_json::Value,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the input object.
    pub parameters: serde_json::Value,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ToolChoice {
    #[default]
    Auto,
    None,
    /// The model must call some tool.
    Required,
    Tool(String),
}

/// Why the model stopped. Unknown provider values are kept in `Other`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FinishReason {
    EndTurn,
    MaxTokens,
    ToolCalls,
    Refusal,
    ContentFilter,
    Other(String),
}

/// Token counts, normalised across providers; `None` when the provider did not say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// All prompt tokens, cached ones included.
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cache_read_tokens: Option<u64>,
    pub cache_write_tokens: Option<u64>,
    pub reasoning_tokens: Option<u64>,
}

impl Usage {
    /// Fields `other` knows replace ours (later usage reports are more complete).
    pub fn merge(&mut self, other: Usage) {
        self.input_tokens = other.input_tokens.or(self.input_tokens);
        self.output_tokens = other.output_tokens.or(self.output_tokens);
        self.cache_read_tokens = other.cache_read_tokens.or(self.cache_read_tokens);
        self.cache_write_tokens = other.cache_write_tokens.or(self.cache_write_tokens);
        self.reasoning_tokens = other.reasoning_tokens.or(self.reasoning_tokens);
    }

    pub fn is_empty(&self) -> bool {
        *self == Usage::default()
    }
}

/// Tool-call arguments that are not a JSON object: reported, never a crash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidToolJson {
    pub raw: String,
    pub error: String,
}

/// What a completion stream yields. A stream ends with exactly one `Finish` or `Error`
/// (or simply stops when cancelled).
#[derive(Clone, Debug, PartialEq)]
pub enum CompletionEvent {
    TextDelta(String),
    ReasoningDelta(String),
    /// Anthropic's signature for the thinking just streamed.
    ReasoningSignature(String),
    /// `index` counts tool calls in this response from 0, whatever the provider uses.
    ToolCallStart {
        index: usize,
        id: String,
        name: String,
    },
    ToolCallDelta {
        index: usize,
        arguments: String,
    },
    ToolCallEnd {
        index: usize,
        id: String,
        name: String,
        arguments: Result<serde_json::Value, InvalidToolJson>,
    },
    Usage(Usage),
    /// A request failed before any output and will be tried again after `wait`.
    Retrying {
        attempt: u32,
        wait: Duration,
        reason: String,
    },
    /// Something odd the stream survived (a chunk that was not JSON, skipped).
    Warning(String),
    Finish(FinishReason),
    Error(LlmError),
}

/// Where decoders write events; a `Vec` for tests and benches, a channel in the client.
pub type Events = Vec<CompletionEvent>;

/// The part of a decoder the client drives: feed SSE events, then end the stream.
pub trait Decoder: Send {
    fn event(&mut self, event: sse::SseEvent<'_>, out: &mut Events);
    /// The body ended (cleanly or not); emits pending tool calls and the final event.
    fn end(&mut self, out: &mut Events);
    /// The transport failed: ends open tool calls and emits `error` as the final event.
    fn abort(&mut self, error: LlmError, out: &mut Events);
    /// Whether a final `Finish` or `Error` has been emitted.
    fn done(&self) -> bool;
}

/// Decodes a whole recorded stream (tests, benches, the fixture corpus).
pub fn decode_all(decoder: &mut dyn Decoder, bytes: &[u8]) -> Events {
    let mut parser = sse::SseParser::new();
    let mut out = Vec::new();
    parser.feed(bytes, &mut |ev| decoder.event(ev, &mut out));
    parser.finish(&mut |ev| decoder.event(ev, &mut out));
    decoder.end(&mut out);
    out
}
