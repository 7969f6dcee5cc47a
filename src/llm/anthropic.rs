//! The Anthropic Messages adapter: `system` as a top-level field, tool use and results as
//! content blocks, `thinking` blocks with their signatures, `ping` and mid-stream `error`
//! events, and prompt caching (`cache_control` on the system prompt, the last tool and
//! the last two messages: four breakpoints, Anthropic's maximum).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{Value, json};

use super::openai::lenient_u64;
use super::sse::SseEvent;
use super::tool_calls::ToolCalls;
use super::{
    AssistantPart, CompletionEvent, Events, FinishReason, LlmError, Message, Request, ToolChoice,
    Usage, UserPart,
};
use crate::config::ModelInfo;

pub const API_VERSION: &str = "2023-06-01";
/// Used when neither the request nor the model entry gives an output cap (Anthropic
/// requires `max_tokens`).
const DEFAULT_MAX_TOKENS: u32 = 8192;
const THINKING_BUDGET: u32 = 4096;

pub fn request_body(model: &ModelInfo, req: &Request) -> Value {
    let mut messages: Vec<Value> = Vec::new();
    for message in &req.messages {
        let (role, blocks) = match message {
            Message::User(parts) => ("user", parts.iter().map(|p| user_block(model, p)).collect()),
            Message::Assistant(parts) => (
                "assistant",
                parts
                    .iter()
                    .filter_map(|part| match part {
                        AssistantPart::Text(text) if text.is_empty() => None,
                        AssistantPart::Text(text) => Some(json!({ "type": "text", "text": text })),
                        // Thinking can only be sent back with its signature.
                        AssistantPart::Reasoning {
                            text,
                            signature: Some(signature),
                        } => Some(json!({ "type": "thinking", "thinking": text, "signature": signature })),
                        AssistantPart::Reasoning { .. } => None,
                        AssistantPart::ToolCall {
                            id,
                            name,
                            arguments,
                        } => Some(json!({ "type": "tool_use", "id": id, "name": name, "input": arguments })),
                    })
                    .collect::<Vec<_>>(),
            ),
            Message::ToolResult {
                call_id,
                content,
                is_error,
            } => (
                "user",
                vec![json!({ "type": "tool_result", "tool_use_id": call_id, "content": content, "is_error": is_error })],
            ),
        };
        if blocks.is_empty() {
            continue;
        }
        // Consecutive messages of one role merge (tool results share one user turn).
        match messages.last_mut() {
            Some(last) if last["role"] == role => {
                if let Some(content) = last["content"].as_array_mut() {
                    content.extend(blocks);
                }
            }
            _ => messages.push(json!({ "role": role, "content": blocks })),
        }
    }
    for message in messages.iter_mut().rev().take(2) {
        if let Some(last_block) = message["content"].as_array_mut().and_then(|c| c.last_mut()) {
            last_block["cache_control"] = json!({ "type": "ephemeral" });
        }
    }
    let max_tokens = req
        .max_output_tokens
        .or(model.limit.output)
        .unwrap_or(DEFAULT_MAX_TOKENS);
    let mut body = json!({
        "model": model.id,
        "max_tokens": max_tokens,
        "messages": messages,
        "stream": true,
    });
    if !req.system.is_empty() {
        body["system"] = json!([{
            "type": "text",
            "text": req.system.join("\n\n"),
            "cache_control": { "type": "ephemeral" },
        }]);
    }
    if model.tool_call && !req.tools.is_empty() {
        let mut tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| json!({ "name": t.name, "description": t.description, "input_schema": t.parameters }))
            .collect();
        if let Some(last) = tools.last_mut() {
            last["cache_control"] = json!({ "type": "ephemeral" });
        }
        body["tools"] = Value::Array(tools);
        body["tool_choice"] = match &req.tool_choice {
            ToolChoice::Auto => json!({ "type": "auto" }),
            ToolChoice::None => json!({ "type": "none" }),
            ToolChoice::Required => json!({ "type": "any" }),
            ToolChoice::Tool(name) => json!({ "type": "tool", "name": name }),
        };
    }
    let thinking = model.reasoning && max_tokens > THINKING_BUDGET + 1024;
    if thinking {
        body["thinking"] = json!({ "type": "enabled", "budget_tokens": THINKING_BUDGET });
    } else if model.temperature
        && let Some(t) = req.temperature
    {
        // Extended thinking requires the default temperature.
        body["temperature"] = json!(t);
    }
    body
}

fn user_block(model: &ModelInfo, part: &UserPart) -> Value {
    match part {
        UserPart::Text(text) => json!({ "type": "text", "text": text }),
        UserPart::Image { media_type, data } if model.attachment => json!({
            "type": "image",
            "source": { "type": "base64", "media_type": media_type, "data": data },
        }),
        UserPart::Image { media_type, .. } => json!({
            "type": "text",
            "text": format!("[an image ({media_type}) was attached, but {} does not accept images]", model.id),
        }),
    }
}

// ---- wire types (responses) ----

#[derive(Deserialize, Default)]
#[serde(default)]
struct Event<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    index: Option<u64>,
    message: Option<MessageWire>,
    #[serde(borrow)]
    content_block: Option<Block<'a>>,
    #[serde(borrow)]
    delta: Option<DeltaWire<'a>>,
    usage: Option<UsageWire>,
    error: Option<ErrorWire>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct MessageWire {
    usage: Option<UsageWire>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Block<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    input: Option<Value>,
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow)]
    thinking: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DeltaWire<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow)]
    thinking: Option<Cow<'a, str>>,
    #[serde(borrow)]
    signature: Option<Cow<'a, str>>,
    #[serde(borrow)]
    partial_json: Option<Cow<'a, str>>,
    #[serde(borrow)]
    stop_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct UsageWire {
    #[serde(deserialize_with = "lenient_u64")]
    input_tokens: Option<u64>,
    #[serde(deserialize_with = "lenient_u64")]
    output_tokens: Option<u64>,
    #[serde(deserialize_with = "lenient_u64")]
    cache_creation_input_tokens: Option<u64>,
    #[serde(deserialize_with = "lenient_u64")]
    cache_read_input_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ErrorWire {
    #[serde(rename = "type")]
    kind: String,
    message: String,
}

impl UsageWire {
    /// Anthropic's `input_tokens` excludes cached tokens; kiln's counts all prompt tokens.
    fn to_usage(&self) -> Usage {
        let input = self.input_tokens.map(|n| {
            n + self.cache_creation_input_tokens.unwrap_or(0)
                + self.cache_read_input_tokens.unwrap_or(0)
        });
        Usage {
            input_tokens: input,
            output_tokens: self.output_tokens,
            cache_read_tokens: self.cache_read_input_tokens,
            cache_write_tokens: self.cache_creation_input_tokens,
            reasoning_tokens: None,
        }
    }
}

fn stop_reason(text: &str) -> Option<FinishReason> {
    Some(match text {
        "" => return None,
        "end_turn" | "stop_sequence" => FinishReason::EndTurn,
        "max_tokens" | "model_context_window_exceeded" => FinishReason::MaxTokens,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::Refusal,
        other => FinishReason::Other(other.to_owned()),
    })
}

pub struct Decoder {
    provider: String,
    tools: ToolCalls,
    usage: Usage,
    finish: Option<FinishReason>,
    done: bool,
    produced: bool,
}

impl Decoder {
    pub fn new(provider: &str) -> Decoder {
        Decoder {
            provider: provider.to_owned(),
            tools: ToolCalls::default(),
            usage: Usage::default(),
            finish: None,
            done: false,
            produced: false,
        }
    }

    fn complete(&mut self, out: &mut Events) {
        self.tools.end_all(out);
        if !self.usage.is_empty() {
            out.push(CompletionEvent::Usage(self.usage));
        }
        let reason = self.finish.take().unwrap_or(FinishReason::EndTurn);
        out.push(CompletionEvent::Finish(reason));
        self.done = true;
    }

    fn fail(&mut self, error: LlmError, out: &mut Events) {
        self.tools.end_all(out);
        if !self.usage.is_empty() {
            out.push(CompletionEvent::Usage(self.usage));
        }
        out.push(CompletionEvent::Error(error));
        self.done = true;
    }

    fn handle(&mut self, event: Event<'_>, out: &mut Events) {
        match &*event.kind {
            "message_start" => {
                if let Some(usage) = event.message.and_then(|m| m.usage) {
                    self.usage.merge(usage.to_usage());
                }
            }
            "content_block_start" => {
                let (Some(index), Some(block)) = (event.index, event.content_block) else {
                    return;
                };
                match &*block.kind {
                    "tool_use" | "server_tool_use" => {
                        self.produced = true;
                        let initial = block
                            .input
                            .filter(|v| v.as_object().is_some_and(|o| !o.is_empty()))
                            .map(|v| v.to_string());
                        self.tools.start(
                            index,
                            block.id.as_deref().unwrap_or(""),
                            block.name.as_deref().unwrap_or(""),
                            initial,
                            out,
                        );
                    }
                    "text" => self.text(block.text, out),
                    "thinking" => self.thinking(block.thinking, out),
                    _ => {}
                }
            }
            "content_block_delta" => {
                let Some(delta) = event.delta else { return };
                match delta.kind.as_deref().unwrap_or("") {
                    "text_delta" => self.text(delta.text, out),
                    "thinking_delta" => self.thinking(delta.thinking, out),
                    "signature_delta" => {
                        if let Some(signature) = delta.signature.filter(|s| !s.is_empty()) {
                            out.push(CompletionEvent::ReasoningSignature(signature.into_owned()));
                        }
                    }
                    "input_json_delta" => {
                        if let (Some(index), Some(json)) = (event.index, delta.partial_json) {
                            self.tools.delta(index, &json, out);
                        }
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                if let Some(index) = event.index {
                    self.tools.end(index, out);
                }
            }
            "message_delta" => {
                if let Some(reason) = event
                    .delta
                    .and_then(|d| d.stop_reason)
                    .as_deref()
                    .and_then(stop_reason)
                {
                    self.finish = Some(reason);
                }
                if let Some(usage) = event.usage {
                    self.usage.merge(usage.to_usage());
                }
            }
            "message_stop" => self.complete(out),
            "error" => {
                let error = event.error.unwrap_or_default();
                let detail = match (error.kind.is_empty(), error.message.is_empty()) {
                    (false, false) => format!("{}: {}", error.kind, error.message),
                    (false, true) => error.kind,
                    _ => error.message,
                };
                let provider = self.provider.clone();
                self.fail(LlmError::Provider { provider, detail }, out);
            }
            _ => {} // ping and anything newer
        }
    }

    fn text(&mut self, text: Option<Cow<'_, str>>, out: &mut Events) {
        if let Some(text) = text.filter(|t| !t.is_empty()) {
            self.produced = true;
            out.push(CompletionEvent::TextDelta(text.into_owned()));
        }
    }

    fn thinking(&mut self, text: Option<Cow<'_, str>>, out: &mut Events) {
        if let Some(text) = text.filter(|t| !t.is_empty()) {
            self.produced = true;
            out.push(CompletionEvent::ReasoningDelta(text.into_owned()));
        }
    }
}

impl super::Decoder for Decoder {
    fn event(&mut self, event: SseEvent<'_>, out: &mut Events) {
        if self.done {
            return;
        }
        let data = event.data.trim();
        if data.is_empty() {
            return;
        }
        match serde_json::from_str::<Event<'_>>(data) {
            Ok(mut parsed) => {
                if parsed.kind.is_empty() {
                    parsed.kind = Cow::Owned(event.event.to_owned());
                }
                self.handle(parsed, out)
            }
            Err(err) => out.push(CompletionEvent::Warning(format!(
                "skipped an event from {} that is not valid JSON ({err})",
                self.provider
            ))),
        }
    }

    fn end(&mut self, out: &mut Events) {
        if self.done {
            return;
        }
        if self.finish.is_some() {
            // `message_delta` said why it stopped, but `message_stop` never came.
            self.complete(out);
            return;
        }
        let provider = self.provider.clone();
        let detail = if self.produced {
            "the stream ended before the model finished".to_owned()
        } else {
            "the stream ended before any output".to_owned()
        };
        self.fail(LlmError::Interrupted { provider, detail }, out);
    }

    fn abort(&mut self, error: LlmError, out: &mut Events) {
        if !self.done {
            self.fail(error, out);
        }
    }

    fn done(&self) -> bool {
        self.done
    }
}
