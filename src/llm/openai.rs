//! The OpenAI-compatible chat completions adapter (OpenAI, OpenRouter, DeepSeek, Mistral,
//! Groq, Gemini's compatible endpoint, xAI, Ollama, LM Studio, vLLM, llama.cpp, …).
//!
//! Wire types are lenient on purpose: every field is optional, unknown values are kept
//! as text, `choices` may be empty or null, `index` may be missing (Gemini, Mistral), the
//! tool `id`/`name` may repeat in every fragment (OpenRouter), `content` may be a string
//! or an array of parts (Mistral's thinking), and `usage` may come with the finish chunk,
//! in a `choices: []` chunk, or under `x_groq`.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::sse::SseEvent;
use super::tool_calls::ToolCalls;
use super::{
    AssistantPart, CompletionEvent, Events, FinishReason, LlmError, Message, Request, ToolChoice,
    Usage, UserPart,
};
use crate::config::ModelInfo;

/// Request knobs that come from the provider's config rather than the request.
pub struct BodyOptions<'a> {
    pub model: &'a ModelInfo,
    pub max_completion_tokens: bool,
}

/// The JSON body of a streaming chat completion request, as a value (tests, snapshots).
pub fn request_body(opts: &BodyOptions<'_>, req: &Request) -> Value {
    serde_json::to_value(body(opts, req)).unwrap_or_default()
}

/// The same body, serialized: what the client sends. The wire structs borrow the request,
/// so a long conversation is written without building a JSON tree first (5× faster on a
/// 400-message history, benches/agent.rs).
pub fn request_bytes(opts: &BodyOptions<'_>, req: &Request) -> Vec<u8> {
    serde_json::to_vec(&body(opts, req)).unwrap_or_default()
}

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    stream: bool,
    stream_options: StreamOptions,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<Vec<WireTool<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
#[serde(tag = "role", rename_all = "lowercase")]
enum WireMessage<'a> {
    System {
        content: String,
    },
    User {
        content: Value,
    },
    Assistant {
        content: Option<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<WireCall<'a>>,
    },
    Tool {
        tool_call_id: &'a str,
        content: &'a str,
    },
}

#[derive(Serialize)]
struct WireCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunctionCall<'a>,
}

#[derive(Serialize)]
struct WireFunctionCall<'a> {
    name: &'a str,
    /// OpenAI sends and expects the arguments as a JSON string.
    arguments: String,
}

#[derive(Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunction<'a>,
}

#[derive(Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    description: &'a str,
    parameters: &'a Value,
}

fn body<'a>(opts: &BodyOptions<'a>, req: &'a Request) -> Body<'a> {
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if !req.system.is_empty() {
        messages.push(WireMessage::System {
            content: req.system.join("\n\n"),
        });
    }
    for message in &req.messages {
        messages.push(match message {
            Message::User(parts) => WireMessage::User {
                content: user_content(opts.model, parts),
            },
            Message::Assistant(parts) => {
                let text: String = parts
                    .iter()
                    .filter_map(|p| match p {
                        AssistantPart::Text(t) => Some(t.as_str()),
                        _ => None,
                    })
                    .collect();
                let tool_calls = parts
                    .iter()
                    .filter_map(|p| match p {
                        AssistantPart::ToolCall {
                            id,
                            name,
                            arguments,
                        } => Some(WireCall {
                            id,
                            kind: "function",
                            function: WireFunctionCall {
                                name,
                                arguments: arguments.to_string(),
                            },
                        }),
                        _ => None,
                    })
                    .collect();
                WireMessage::Assistant {
                    content: (!text.is_empty()).then_some(text),
                    tool_calls,
                }
            }
            Message::ToolResult {
                call_id, content, ..
            } => WireMessage::Tool {
                tool_call_id: call_id,
                content,
            },
        });
    }
    let with_tools = opts.model.tool_call && !req.tools.is_empty();
    let tools = with_tools.then(|| {
        req.tools
            .iter()
            .map(|t| WireTool {
                kind: "function",
                function: WireFunction {
                    name: &t.name,
                    description: &t.description,
                    parameters: &t.parameters,
                },
            })
            .collect()
    });
    let tool_choice = with_tools.then(|| match &req.tool_choice {
        ToolChoice::Auto => json!("auto"),
        ToolChoice::None => json!("none"),
        ToolChoice::Required => json!("required"),
        ToolChoice::Tool(name) => json!({ "type": "function", "function": { "name": name } }),
    });
    let max = req.max_output_tokens.or(opts.model.limit.output);
    Body {
        model: &opts.model.id,
        messages,
        stream: true,
        stream_options: StreamOptions {
            include_usage: true,
        },
        tools,
        tool_choice,
        max_tokens: max.filter(|_| !opts.max_completion_tokens),
        max_completion_tokens: max.filter(|_| opts.max_completion_tokens),
        temperature: req.temperature.filter(|_| opts.model.temperature),
    }
}

fn user_content(model: &ModelInfo, parts: &[UserPart]) -> Value {
    if let [UserPart::Text(text)] = parts {
        return Value::String(text.clone());
    }
    parts
        .iter()
        .map(|part| match part {
            UserPart::Text(text) => json!({ "type": "text", "text": text }),
            UserPart::Image { media_type, data } if model.attachment => json!({
                "type": "image_url",
                "image_url": { "url": format!("data:{media_type};base64,{data}") },
            }),
            UserPart::Image { media_type, .. } => json!({
                "type": "text",
                "text": format!("[an image ({media_type}) was attached, but {} does not accept images]", model.id),
            }),
        })
        .collect()
}

// ---- wire types (responses) ----

#[derive(Deserialize, Default)]
#[serde(default)]
struct Chunk<'a> {
    #[serde(borrow)]
    choices: Option<Vec<Choice<'a>>>,
    usage: Option<UsageWire>,
    #[serde(borrow)]
    error: Option<ErrorWire<'a>>,
    x_groq: Option<XGroq>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct XGroq {
    usage: Option<UsageWire>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Choice<'a> {
    index: Option<u64>,
    #[serde(borrow)]
    delta: Option<Delta<'a>>,
    #[serde(borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Delta<'a> {
    #[serde(borrow)]
    content: Option<Content<'a>>,
    #[serde(borrow)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow)]
    reasoning: Option<Cow<'a, str>>,
    #[serde(borrow)]
    refusal: Option<Cow<'a, str>>,
    #[serde(borrow)]
    tool_calls: Option<Vec<ToolCallWire<'a>>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ToolCallWire<'a> {
    index: Option<u64>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    function: Option<FunctionWire<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FunctionWire<'a> {
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    arguments: Option<Arguments<'a>>,
}

/// Arguments are a string of JSON text; a few servers send the object itself.
enum Arguments<'a> {
    Text(Cow<'a, str>),
    Object(String),
}

impl<'de: 'a, 'a> Deserialize<'de> for Arguments<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Arguments<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("tool arguments as a string of JSON or an object")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Arguments::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Arguments::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Arguments::Text(Cow::Owned(v)))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Arguments::Text(Cow::Borrowed("")))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                let value = Value::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(Arguments::Object(value.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<Self::Value, A::Error> {
                let value = Value::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
                Ok(Arguments::Object(value.to_string()))
            }
        }
        d.deserialize_any(Visit)
    }
}

/// `content` is usually a string; Mistral's reasoning models send an array of parts.
enum Content<'a> {
    Text(Cow<'a, str>),
    Parts(Vec<ContentPart>),
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ContentPart {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
    /// Mistral: `{"type":"thinking","thinking":[{"type":"text","text":…}]}`.
    thinking: Option<Vec<ContentPart>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Content<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Content<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or an array of content parts")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Content::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Content::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Content::Text(Cow::Owned(v)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut parts = Vec::new();
                while let Some(part) = seq.next_element::<ContentPart>()? {
                    parts.push(part);
                }
                Ok(Content::Parts(parts))
            }
        }
        d.deserialize_any(Visit)
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct UsageWire {
    #[serde(deserialize_with = "lenient_u64")]
    prompt_tokens: Option<u64>,
    #[serde(deserialize_with = "lenient_u64")]
    completion_tokens: Option<u64>,
    prompt_tokens_details: Option<PromptDetails>,
    completion_tokens_details: Option<CompletionDetails>,
    /// DeepSeek.
    #[serde(deserialize_with = "lenient_u64")]
    prompt_cache_hit_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PromptDetails {
    #[serde(deserialize_with = "lenient_u64")]
    cached_tokens: Option<u64>,
    #[serde(deserialize_with = "lenient_u64")]
    cache_write_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CompletionDetails {
    #[serde(deserialize_with = "lenient_u64")]
    reasoning_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ErrorWire<'a> {
    #[serde(borrow)]
    message: Option<Cow<'a, str>>,
    code: Option<Value>,
}

/// A count that may be written as an integer, a float, a string or null.
pub(super) fn lenient_u64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    struct Visit;
    impl<'de> serde::de::Visitor<'de> for Visit {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a token count")
        }
        fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
            Ok(u64::try_from(v).ok())
        }
        fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
            Ok((v >= 0.0).then_some(v as u64))
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(v.trim().parse().ok())
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            while map
                .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                .is_some()
            {}
            Ok(None)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    }
    d.deserialize_any(Visit)
}

impl UsageWire {
    fn to_usage(&self) -> Usage {
        Usage {
            input_tokens: self.prompt_tokens,
            output_tokens: self.completion_tokens,
            cache_read_tokens: self
                .prompt_tokens_details
                .as_ref()
                .and_then(|d| d.cached_tokens)
                .or(self.prompt_cache_hit_tokens),
            cache_write_tokens: self
                .prompt_tokens_details
                .as_ref()
                .and_then(|d| d.cache_write_tokens),
            reasoning_tokens: self
                .completion_tokens_details
                .as_ref()
                .and_then(|d| d.reasoning_tokens),
        }
    }
}

fn finish_reason(text: &str) -> Option<FinishReason> {
    Some(match text {
        "" => return None,
        "stop" | "end_turn" | "eos" => FinishReason::EndTurn,
        "length" | "max_tokens" => FinishReason::MaxTokens,
        "tool_calls" | "function_call" | "tool_use" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        "refusal" => FinishReason::Refusal,
        other => FinishReason::Other(other.to_owned()),
    })
}

/// Decodes one chat completion stream (choice 0; other choices of an `n > 1` request
/// are ignored).
pub struct Decoder {
    provider: String,
    tools: ToolCalls,
    usage: Usage,
    finish: Option<FinishReason>,
    refused: bool,
    saw_done: bool,
    done: bool,
    /// Any output at all (for the "broke off" message).
    produced: bool,
}

impl Decoder {
    pub fn new(provider: &str) -> Decoder {
        Decoder {
            provider: provider.to_owned(),
            tools: ToolCalls::default(),
            usage: Usage::default(),
            finish: None,
            refused: false,
            saw_done: false,
            done: false,
            produced: false,
        }
    }

    fn fail(&mut self, error: LlmError, out: &mut Events) {
        self.tools.end_all(out);
        out.push(CompletionEvent::Error(error));
        self.done = true;
    }

    fn chunk(&mut self, chunk: Chunk<'_>, out: &mut Events) {
        if let Some(error) = chunk.error {
            let mut detail = error.message.map(Cow::into_owned).unwrap_or_default();
            if let Some(code) = error.code {
                let code = match code {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                detail = format!("{code}: {detail}");
            }
            if let Some(usage) = chunk.usage {
                self.usage.merge(usage.to_usage());
            }
            if !self.usage.is_empty() {
                out.push(CompletionEvent::Usage(self.usage));
            }
            let provider = self.provider.clone();
            self.fail(LlmError::Provider { provider, detail }, out);
            return;
        }
        for choice in chunk.choices.into_iter().flatten() {
            if choice.index.unwrap_or(0) != 0 {
                continue;
            }
            if let Some(delta) = choice.delta {
                self.delta(delta, out);
            }
            if let Some(reason) = choice.finish_reason.as_deref().and_then(finish_reason) {
                self.tools.end_all(out);
                self.finish = Some(reason);
            }
        }
        if let Some(usage) = chunk.usage.or(chunk.x_groq.and_then(|x| x.usage)) {
            self.usage.merge(usage.to_usage());
        }
    }

    fn delta(&mut self, delta: Delta<'_>, out: &mut Events) {
        // DeepSeek and llama.cpp say `reasoning_content`, OpenRouter and Groq `reasoning`;
        // some servers send both with the same text, so only one is used.
        let reasoning = delta
            .reasoning_content
            .filter(|r| !r.is_empty())
            .or(delta.reasoning.filter(|r| !r.is_empty()));
        if let Some(reasoning) = reasoning {
            self.produced = true;
            out.push(CompletionEvent::ReasoningDelta(reasoning.into_owned()));
        }
        match delta.content {
            Some(Content::Text(text)) if !text.is_empty() => {
                self.produced = true;
                out.push(CompletionEvent::TextDelta(text.into_owned()));
            }
            Some(Content::Parts(parts)) => {
                for part in parts {
                    self.content_part(part, out);
                }
            }
            _ => {}
        }
        if let Some(refusal) = delta.refusal
            && !refusal.is_empty()
        {
            self.produced = true;
            self.refused = true;
            out.push(CompletionEvent::TextDelta(refusal.into_owned()));
        }
        for call in delta.tool_calls.into_iter().flatten() {
            self.produced = true;
            self.tool_call(call, out);
        }
    }

    fn content_part(&mut self, part: ContentPart, out: &mut Events) {
        match part.kind.as_str() {
            "thinking" => {
                for inner in part.thinking.into_iter().flatten() {
                    if let Some(text) = inner.text.filter(|t| !t.is_empty()) {
                        self.produced = true;
                        out.push(CompletionEvent::ReasoningDelta(text));
                    }
                }
            }
            _ => {
                if let Some(text) = part.text.filter(|t| !t.is_empty()) {
                    self.produced = true;
                    out.push(CompletionEvent::TextDelta(text));
                }
            }
        }
    }

    fn tool_call(&mut self, call: ToolCallWire<'_>, out: &mut Events) {
        let id = call.id.as_deref().unwrap_or("");
        let (name, arguments) = match call.function {
            Some(f) => (f.name, f.arguments),
            None => (None, None),
        };
        let name = name.as_deref().unwrap_or("");
        // Which call this fragment belongs to: by `index` when given; without one, a new
        // id starts a new call and a fragment with no id continues the last one.
        let key = match call.index {
            Some(index) => {
                if self.tools.is_open(index)
                    && !id.is_empty()
                    && self.tools.open_id(index).is_some_and(|open| open != id)
                {
                    // Same index, different id: the provider reused the slot.
                    self.tools.end(index, out);
                }
                index
            }
            None => match self.tools.last_open_key() {
                Some(key) if id.is_empty() || self.tools.open_id(key) == Some(id) => key,
                Some(key) => key + 1_000_000,
                None => 1_000_000,
            },
        };
        if !self.tools.is_open(key) {
            self.tools.start(key, id, name, None, out);
        } else if !name.is_empty() {
            self.tools.set_name_if_missing(key, name);
        }
        match arguments {
            Some(Arguments::Text(text)) => self.tools.delta(key, &text, out),
            Some(Arguments::Object(text)) => self.tools.delta(key, &text, out),
            None => {}
        }
    }

    fn finish(&mut self, out: &mut Events) {
        self.tools.end_all(out);
        if !self.usage.is_empty() {
            out.push(CompletionEvent::Usage(self.usage));
        }
        let reason = match self.finish.take() {
            Some(FinishReason::EndTurn) if self.refused => FinishReason::Refusal,
            Some(reason) => reason,
            // No finish_reason at all (seen from OpenRouter): infer it.
            None if !self.tools.is_empty() => FinishReason::ToolCalls,
            None => FinishReason::EndTurn,
        };
        out.push(CompletionEvent::Finish(reason));
        self.done = true;
    }
}

impl super::Decoder for Decoder {
    fn event(&mut self, event: SseEvent<'_>, out: &mut Events) {
        if self.done {
            return;
        }
        let data = event.data.trim();
        if data == "[DONE]" {
            self.saw_done = true;
            self.finish(out);
            return;
        }
        if data.is_empty() {
            return;
        }
        if event.event == "error" {
            // Groq: `event: error` with `{"error":{…}}` and HTTP 200.
            let body = super::error::ErrorBody::parse(data);
            let provider = self.provider.clone();
            let detail = body.detail().trim_start_matches(": ").to_owned();
            self.fail(LlmError::Provider { provider, detail }, out);
            return;
        }
        match serde_json::from_str::<Chunk<'_>>(data) {
            Ok(chunk) => self.chunk(chunk, out),
            Err(err) => out.push(CompletionEvent::Warning(format!(
                "skipped a chunk from {} that is not valid JSON ({err}): {}",
                self.provider,
                clip(data)
            ))),
        }
    }

    fn end(&mut self, out: &mut Events) {
        if self.done {
            return;
        }
        if self.finish.is_some() {
            // A finish reason but no `[DONE]` (Ollama's /v1 sometimes): complete.
            self.finish(out);
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

fn clip(text: &str) -> String {
    if text.len() <= 120 {
        return text.to_owned();
    }
    let mut end = 120;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
