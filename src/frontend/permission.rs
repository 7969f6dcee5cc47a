//! Permission questions on the wire: ACP's `RequestPermissionRequest` (sent as
//! `session/request_permission` over ACP and `kiln/requestPermission` over LSP) and the
//! answer back to an [`Outcome`]. kiln's extensions ride in `_meta.kiln`: the reason, and
//! in the answer the accepted hunk ids, feedback for the model, and `save` (write an
//! "always" rule to kiln.jsonc).

use serde_json::{Value, json};

use super::updates::{tool_call, tool_content};
use crate::agent::{Outcome, PermissionRequest};
use crate::text::diff::HunkId;

pub const ALLOW_ONCE: &str = "allow_once";
pub const ALLOW_ALWAYS: &str = "allow_always";
pub const REJECT_ONCE: &str = "reject_once";
pub const REJECT_ALWAYS: &str = "reject_always";

/// The request's params (ACP `RequestPermissionRequest`).
pub fn request(request: &PermissionRequest) -> Value {
    let mut call = tool_call(&request.tool_call);
    call.as_object_mut().map(|o| o.remove("sessionUpdate"));
    call["content"] = json!(request.content.iter().map(tool_content).collect::<Vec<_>>());
    let always = match request.tool_call.kind {
        crate::tools::Kind::Execute => "Always allow this command",
        crate::tools::Kind::Edit | crate::tools::Kind::Delete | crate::tools::Kind::Move => {
            "Always allow edits this session"
        }
        _ => "Always allow",
    };
    let mut params = json!({
        "sessionId": request.session_id,
        "toolCall": call,
        "options": [
            { "optionId": ALLOW_ONCE, "name": "Allow", "kind": ALLOW_ONCE },
            { "optionId": ALLOW_ALWAYS, "name": always, "kind": ALLOW_ALWAYS },
            { "optionId": REJECT_ONCE, "name": "Reject", "kind": REJECT_ONCE },
            { "optionId": REJECT_ALWAYS, "name": "Always reject", "kind": REJECT_ALWAYS },
        ],
    });
    if !request.reason.is_empty() {
        params["_meta"] = json!({ "kiln": { "reason": request.reason } });
    }
    params
}

/// The answer (ACP `RequestPermissionResponse`, with kiln's `_meta.kiln`) as an outcome.
/// Anything that cannot be read is a rejection, never an approval.
pub fn outcome(response: &Value) -> Outcome {
    let kiln = &response["_meta"]["kiln"];
    let feedback = kiln["feedback"]
        .as_str()
        .filter(|f| !f.trim().is_empty())
        .map(str::to_owned);
    let outcome = &response["outcome"];
    if outcome["outcome"] == "cancelled" {
        return Outcome::Cancelled;
    }
    if outcome["outcome"] != "selected" {
        return Outcome::RejectOnce {
            feedback: Some(format!(
                "the editor's answer could not be read: {}",
                truncate(&response.to_string())
            )),
        };
    }
    if let Some(hunks) = kiln["acceptedHunks"].as_array() {
        let ids: Option<Vec<HunkId>> = hunks
            .iter()
            .map(|h| {
                h.as_str()
                    .and_then(|s| u64::from_str_radix(s, 16).ok())
                    .map(HunkId)
            })
            .collect();
        return match ids {
            Some(hunks) => Outcome::AcceptHunks { hunks, feedback },
            None => Outcome::RejectOnce {
                feedback: Some("the editor sent hunk ids that are not kiln's".to_owned()),
            },
        };
    }
    match outcome["optionId"].as_str() {
        Some(ALLOW_ONCE) => Outcome::AllowOnce,
        Some(ALLOW_ALWAYS) if kiln["save"] == true => Outcome::AllowAlwaysSave,
        Some(ALLOW_ALWAYS) => Outcome::AllowAlways,
        Some(REJECT_ALWAYS) => Outcome::RejectAlways { feedback },
        _ => Outcome::RejectOnce { feedback },
    }
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_map_to_outcomes_and_unknown_answers_reject() {
        let sel = |id: &str| json!({ "outcome": { "outcome": "selected", "optionId": id } });
        assert_eq!(outcome(&sel("allow_once")), Outcome::AllowOnce);
        assert_eq!(outcome(&sel("allow_always")), Outcome::AllowAlways);
        assert_eq!(
            outcome(&sel("reject_always")),
            Outcome::RejectAlways { feedback: None }
        );
        assert_eq!(
            outcome(&sel("something")),
            Outcome::RejectOnce { feedback: None }
        );
        assert_eq!(
            outcome(&json!({ "outcome": { "outcome": "cancelled" } })),
            Outcome::Cancelled
        );
        assert!(matches!(
            outcome(&json!({ "nonsense": 1 })),
            Outcome::RejectOnce { feedback: Some(_) }
        ));
        let mut saved = sel("allow_always");
        saved["_meta"] = json!({ "kiln": { "save": true } });
        assert_eq!(outcome(&saved), Outcome::AllowAlwaysSave);
        let mut hunks = sel("allow_once");
        hunks["_meta"] =
            json!({ "kiln": { "acceptedHunks": ["00000000000000ff"], "feedback": "only that" } });
        assert_eq!(
            outcome(&hunks),
            Outcome::AcceptHunks {
                hunks: vec![HunkId(255)],
                feedback: Some("only that".into())
            }
        );
        hunks["_meta"]["kiln"]["acceptedHunks"] = json!([7]);
        assert!(matches!(outcome(&hunks), Outcome::RejectOnce { .. }));
    }
}
