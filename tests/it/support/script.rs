//! Model replies written the way OpenAI-compatible servers stream them: text deltas,
//! tool calls whose arguments arrive in fragments, a finish reason, a usage chunk, and
//! `[DONE]`. The scripted server replays them; the code under test is kiln's real client.

#![allow(dead_code)]

use serde_json::{Value, json};

use super::llm_server::Reply;

/// The tool results in a chat-completions request body, in order: (call id, content).
pub fn tool_results(request: &Value) -> Vec<(String, String)> {
    request["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| {
            (
                m["tool_call_id"].as_str().unwrap().to_owned(),
                m["content"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The contents of those results.
pub fn tool_contents(request: &Value) -> Vec<String> {
    tool_results(request).into_iter().map(|(_, c)| c).collect()
}

fn chunk(delta: Value, finish: Option<&str>) -> String {
    let body = json!({
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "scripted",
        "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
    });
    format!("data: {body}\n\n")
}

fn usage(prompt: u64, completion: u64) -> String {
    let body = json!({
        "id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1, "model": "scripted",
        "choices": [],
        "usage": { "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion },
    });
    format!("data: {body}\n\n")
}

/// A tool call in a scripted reply; `raw` arguments are sent as they are (for invalid JSON).
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

pub fn call(id: &str, name: &str, arguments: Value) -> ToolCall {
    ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: arguments.to_string(),
    }
}

pub fn raw_call(id: &str, name: &str, arguments: &str) -> ToolCall {
    ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: arguments.into(),
    }
}

/// The SSE body of a reply: optional text, then the tool calls (arguments in two
/// fragments each), the finish reason and, when given, usage.
pub fn body(text: &str, calls: &[ToolCall], tokens: Option<(u64, u64)>) -> String {
    let mut out = chunk(json!({ "role": "assistant", "content": "" }), None);
    let words: Vec<&str> = text.split_inclusive(' ').collect();
    for word in words {
        out.push_str(&chunk(json!({ "content": word }), None));
    }
    for (index, call) in calls.iter().enumerate() {
        out.push_str(&chunk(
            json!({ "tool_calls": [{ "index": index, "id": call.id, "type": "function", "function": { "name": call.name, "arguments": "" } }] }),
            None,
        ));
        let mut mid = call.arguments.len() / 2;
        while !call.arguments.is_char_boundary(mid) {
            mid += 1;
        }
        for part in [&call.arguments[..mid], &call.arguments[mid..]] {
            out.push_str(&chunk(
                json!({ "tool_calls": [{ "index": index, "function": { "arguments": part } }] }),
                None,
            ));
        }
    }
    let finish = if calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    out.push_str(&chunk(json!({}), Some(finish)));
    if let Some((prompt, completion)) = tokens {
        out.push_str(&usage(prompt, completion));
    }
    out.push_str("data: [DONE]\n\n");
    out
}

pub fn text(text: &str) -> Reply {
    Reply::sse_bytes(body(text, &[], Some((120, 12))).as_bytes(), 64)
}

pub fn tools(calls: &[ToolCall]) -> Reply {
    Reply::sse_bytes(body("", calls, Some((150, 30))).as_bytes(), 64)
}

/// Without a usage chunk (kiln then estimates the context size).
pub fn tools_no_usage(calls: &[ToolCall]) -> Reply {
    Reply::sse_bytes(body("", calls, None).as_bytes(), 64)
}

pub fn text_no_usage(t: &str) -> Reply {
    Reply::sse_bytes(body(t, &[], None).as_bytes(), 64)
}

/// An Anthropic Messages stream: optional text, then tool_use blocks (input in two
/// `input_json_delta`s), `message_delta` with the stop reason and usage, `message_stop`.
pub fn anthropic_body(text: &str, calls: &[ToolCall]) -> String {
    let mut out = String::new();
    let mut event =
        |name: &str, data: Value| out.push_str(&format!("event: {name}\ndata: {data}\n\n"));
    event(
        "message_start",
        json!({ "type": "message_start", "message": { "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-scripted", "content": [], "usage": { "input_tokens": 200, "output_tokens": 1 } } }),
    );
    let mut index = 0;
    if !text.is_empty() {
        event(
            "content_block_start",
            json!({ "type": "content_block_start", "index": index, "content_block": { "type": "text", "text": "" } }),
        );
        event(
            "content_block_delta",
            json!({ "type": "content_block_delta", "index": index, "delta": { "type": "text_delta", "text": text } }),
        );
        event(
            "content_block_stop",
            json!({ "type": "content_block_stop", "index": index }),
        );
        index += 1;
    }
    for call in calls {
        event(
            "content_block_start",
            json!({ "type": "content_block_start", "index": index, "content_block": { "type": "tool_use", "id": call.id, "name": call.name, "input": {} } }),
        );
        let mut mid = call.arguments.len() / 2;
        while !call.arguments.is_char_boundary(mid) {
            mid += 1;
        }
        for part in [&call.arguments[..mid], &call.arguments[mid..]] {
            event(
                "content_block_delta",
                json!({ "type": "content_block_delta", "index": index, "delta": { "type": "input_json_delta", "partial_json": part } }),
            );
        }
        event(
            "content_block_stop",
            json!({ "type": "content_block_stop", "index": index }),
        );
        index += 1;
    }
    let stop = if calls.is_empty() {
        "end_turn"
    } else {
        "tool_use"
    };
    event(
        "message_delta",
        json!({ "type": "message_delta", "delta": { "stop_reason": stop, "stop_sequence": null }, "usage": { "output_tokens": 20 } }),
    );
    event("message_stop", json!({ "type": "message_stop" }));
    out
}
