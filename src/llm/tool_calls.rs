//! Assembles streamed tool calls for both adapters: calls are keyed by the provider's
//! own number (OpenAI's `index`, Anthropic's content block index), numbered from 0 in
//! the order they start, and their argument fragments are joined and checked as JSON
//! when they end.

use super::{CompletionEvent, Events, InvalidToolJson};

struct Call {
    key: u64,
    id: String,
    name: String,
    arguments: String,
    /// Input given whole at the start (Anthropic's `input`), used if no fragment comes.
    initial: Option<String>,
    ended: bool,
}

#[derive(Default)]
pub struct ToolCalls {
    calls: Vec<Call>,
}

impl ToolCalls {
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    fn position(&self, key: u64) -> Option<usize> {
        self.calls.iter().rposition(|c| c.key == key && !c.ended)
    }

    pub fn is_open(&self, key: u64) -> bool {
        self.position(key).is_some()
    }

    /// The id of the open call with this key.
    pub fn open_id(&self, key: u64) -> Option<&str> {
        self.position(key).map(|idx| self.calls[idx].id.as_str())
    }

    /// The key of the most recently started call still open.
    pub fn last_open_key(&self) -> Option<u64> {
        self.calls.iter().rev().find(|c| !c.ended).map(|c| c.key)
    }

    pub fn start(
        &mut self,
        key: u64,
        id: &str,
        name: &str,
        initial: Option<String>,
        out: &mut Events,
    ) {
        let index = self.calls.len();
        let id = if id.is_empty() {
            format!("call_{index}")
        } else {
            id.to_owned()
        };
        out.push(CompletionEvent::ToolCallStart {
            index,
            id: id.clone(),
            name: name.to_owned(),
        });
        self.calls.push(Call {
            key,
            id,
            name: name.to_owned(),
            arguments: String::new(),
            initial,
            ended: false,
        });
    }

    /// A late name for a call that started without one (some servers send it second).
    pub fn set_name_if_missing(&mut self, key: u64, name: &str) {
        if let Some(idx) = self.position(key)
            && self.calls[idx].name.is_empty()
        {
            self.calls[idx].name = name.to_owned();
        }
    }

    pub fn delta(&mut self, key: u64, fragment: &str, out: &mut Events) {
        if fragment.is_empty() {
            return;
        }
        if let Some(idx) = self.position(key) {
            self.calls[idx].arguments.push_str(fragment);
            out.push(CompletionEvent::ToolCallDelta {
                index: idx,
                arguments: fragment.to_owned(),
            });
        }
    }

    pub fn end(&mut self, key: u64, out: &mut Events) {
        if let Some(idx) = self.position(key) {
            self.end_at(idx, out);
        }
    }

    pub fn end_all(&mut self, out: &mut Events) {
        for idx in 0..self.calls.len() {
            if !self.calls[idx].ended {
                self.end_at(idx, out);
            }
        }
    }

    fn end_at(&mut self, idx: usize, out: &mut Events) {
        let call = &mut self.calls[idx];
        call.ended = true;
        let raw = if call.arguments.trim().is_empty() {
            call.initial.take().unwrap_or_default()
        } else {
            std::mem::take(&mut call.arguments)
        };
        out.push(CompletionEvent::ToolCallEnd {
            index: idx,
            id: call.id.clone(),
            name: call.name.clone(),
            arguments: parse_arguments(raw),
        });
    }
}

/// Arguments must be a JSON object; empty means no arguments (`{}`).
fn parse_arguments(raw: String) -> Result<serde_json::Value, InvalidToolJson> {
    if raw.trim().is_empty() {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    match serde_json::from_str::<serde_json::Value>(&raw) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(value),
        Ok(other) => Err(InvalidToolJson {
            error: format!("expected a JSON object, found {}", json_kind(&other)),
            raw,
        }),
        Err(err) => Err(InvalidToolJson {
            error: err.to_string(),
            raw,
        }),
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
