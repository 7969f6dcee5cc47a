//! One turn: the prompt goes in, then model requests and tool calls alternate until the
//! model ends the turn, a cap is hit, the provider fails, or the person cancels. Every
//! completed message is persisted as it completes; whatever happens, the session is left
//! valid to continue (every tool call has a result).

use std::sync::Arc;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::update::{
    NoticeLevel, ToolCall, ToolCallUpdate, ToolContent, ToolLocation, ToolStatus, UsageUpdate,
};
use super::{
    Agent, Outcome, PermissionRequest, Prompt, Session, StopReason, TurnResult, TurnUsage, Update,
    apply, compaction, instructions, mentions, mode, policy, store,
};
use crate::llm::{
    AssistantPart, CompletionEvent, FinishReason, Message, Request, Target, ToolSpec, UserPart,
};
use crate::tools::{Action, Describe, Output, ToolCx};

/// The base of every system prompt; the mode's prompt and the instructions follow.
const SYSTEM: &str = "You are kiln, a coding agent working in the person's workspace through tools. Read before you change: look at the files involved, then make focused edits with the edit tool (exact text) or apply_patch. Run commands to check your work when it helps. Paths are relative to the workspace root. When you are done, say briefly what you changed.";

pub(super) async fn run(
    agent: &Agent,
    session: &mut Session,
    prompt: Prompt,
    cancel: CancellationToken,
) -> TurnResult {
    let mut usage = TurnUsage::default();
    session.turn_checkpointed = false;
    session.turn_changes = super::verify::TurnChanges::default();
    let user = build_user_message(agent, session, &prompt).await;
    session.audit.record("prompt", json!({ "text": prompt.text, "mode": session.mode, "model": session.target.model_ref().to_string() }));
    session.push_message(user);
    let (stop, denied) = loop_requests(agent, session, &cancel, &mut usage).await;
    let stop_name = match &stop {
        Ok(reason) => reason.as_str().to_owned(),
        Err(_) => "error".to_owned(),
    };
    if let Err(message) = &stop {
        session.audit.record("error", json!({ "message": message }));
    }
    session.persist(&store::Record::TurnEnd {
        stop_reason: stop_name.clone(),
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
    });
    session.audit.record(
        "turn_end",
        json!({
            "stop_reason": stop_name,
            "denied": denied,
            "requests": usage.requests,
            "tool_calls": usage.tool_calls,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cache_read_tokens": usage.cache_read_tokens,
            "model": session.target.model_ref().to_string(),
        }),
    );
    TurnResult {
        stop,
        denied,
        usage,
    }
}

/// The prompt text, the context its mentions name, and the attachments.
async fn build_user_message(agent: &Agent, session: &Session, prompt: &Prompt) -> Message {
    let files = agent.port.files(&session.id);
    let root = session.root.clone();
    let text = prompt.text.clone();
    let context = prompt.context.clone();
    let expanded = tokio::task::spawn_blocking(move || {
        mentions::expand(&text, &root, files.as_ref(), &context)
    })
    .await
    .unwrap_or_default();
    for unknown in &expanded.unknown {
        agent.port.update(
            &session.id,
            Update::Notice {
                level: NoticeLevel::Warning,
                message: format!("mention not resolved: {unknown}"),
            },
        );
    }
    let mut parts = vec![UserPart::Text(prompt.text.clone())];
    for block in expanded.blocks {
        parts.push(UserPart::Text(block));
    }
    if !expanded.unknown.is_empty() {
        parts.push(UserPart::Text(format!(
            "(These mentions name nothing: {})",
            expanded.unknown.join("; ")
        )));
    }
    parts.extend(prompt.attachments.iter().cloned());
    Message::User(parts)
}

async fn loop_requests(
    agent: &Agent,
    session: &mut Session,
    cancel: &CancellationToken,
    usage: &mut TurnUsage,
) -> (Result<StopReason, String>, Option<String>) {
    loop {
        if usage.requests >= agent.max_turn_requests {
            return (Ok(StopReason::MaxTurnRequests), None);
        }
        if cancel.is_cancelled() {
            return (Ok(StopReason::Cancelled), None);
        }
        maybe_compact(agent, session, cancel).await;
        let request = build_request(agent, session);
        usage.requests += 1;
        let response = stream_response(agent, session, Arc::new(request), cancel, usage).await;
        let Response {
            parts,
            calls,
            finish,
            error,
        } = response;
        if !parts.is_empty() {
            session.push_message(Message::Assistant(parts));
        }
        if cancel.is_cancelled() {
            answer_unrun(session, &calls, "cancelled by the person before it ran");
            return (Ok(StopReason::Cancelled), None);
        }
        if let Some(error) = error {
            answer_unrun(session, &calls, "not run: the model's answer broke off");
            return (Err(error), None);
        }
        if calls.is_empty() {
            let stop = match finish {
                Some(FinishReason::MaxTokens) => StopReason::MaxTokens,
                Some(FinishReason::Refusal | FinishReason::ContentFilter) => StopReason::Refusal,
                _ => StopReason::EndTurn,
            };
            return (Ok(stop), None);
        }
        for (idx, call) in calls.iter().enumerate() {
            usage.tool_calls += 1;
            match run_call(agent, session, call, cancel).await {
                CallEnd::Continue => {}
                CallEnd::Stop(reason) => {
                    answer_unrun(
                        session,
                        &calls[idx + 1..],
                        "not run: the turn stopped at an earlier call",
                    );
                    return (Ok(StopReason::EndTurn), Some(reason));
                }
                CallEnd::Cancelled => {
                    answer_unrun(
                        session,
                        &calls[idx + 1..],
                        "cancelled by the person before it ran",
                    );
                    return (Ok(StopReason::Cancelled), None);
                }
            }
        }
    }
}

struct Call {
    id: String,
    name: String,
    arguments: Result<serde_json::Value, String>,
}

struct Response {
    parts: Vec<AssistantPart>,
    calls: Vec<Call>,
    finish: Option<FinishReason>,
    /// The provider failed; what came before is in `parts`.
    error: Option<String>,
}

async fn stream_response(
    agent: &Agent,
    session: &mut Session,
    request: Arc<Request>,
    cancel: &CancellationToken,
    usage: &mut TurnUsage,
) -> Response {
    let mut rx = agent
        .client
        .stream(&session.target, request, cancel.child_token());
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut signature = None;
    let mut calls: Vec<Call> = Vec::new();
    let mut finish = None;
    let mut error = None;
    let mut response_usage = crate::llm::Usage::default();
    // An event taken off the queue while merging deltas, handled next.
    let mut next: Option<CompletionEvent> = None;
    loop {
        let event = match next.take() {
            Some(e) => e,
            None => tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                event = rx.recv() => match event { Some(e) => e, None => break },
            },
        };
        match event {
            CompletionEvent::TextDelta(mut delta) => {
                // Deltas that queued up while the frontend was busy go out as one update:
                // the same text, a fraction of the messages (nothing waits for more).
                while delta.len() < 16 << 10 {
                    match rx.try_recv() {
                        Ok(CompletionEvent::TextDelta(more)) => delta.push_str(&more),
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                text.push_str(&delta);
                agent.port.update(&session.id, Update::AgentMessage(delta));
            }
            CompletionEvent::ReasoningDelta(delta) => {
                reasoning.push_str(&delta);
                agent.port.update(&session.id, Update::AgentThought(delta));
            }
            CompletionEvent::ReasoningSignature(sig) => signature = Some(sig),
            CompletionEvent::ToolCallStart { .. } | CompletionEvent::ToolCallDelta { .. } => {}
            CompletionEvent::ToolCallEnd {
                id,
                name,
                arguments,
                ..
            } => {
                let arguments = arguments.map_err(|bad| {
                    format!(
                        "the arguments of this {name} call were not valid JSON ({}); nothing was run. Send the call again with a JSON object that matches the tool's schema",
                        bad.error
                    )
                });
                calls.push(Call {
                    id,
                    name,
                    arguments,
                });
            }
            CompletionEvent::Usage(u) => response_usage.merge(u),
            CompletionEvent::Retrying {
                attempt,
                wait,
                reason,
            } => agent.port.update(
                &session.id,
                Update::Notice {
                    level: NoticeLevel::Warning,
                    message: format!(
                        "{reason}; retrying in {} (attempt {})",
                        crate::llm::error::human(wait),
                        attempt + 1
                    ),
                },
            ),
            CompletionEvent::Warning(message) => agent.port.update(
                &session.id,
                Update::Notice {
                    level: NoticeLevel::Warning,
                    message,
                },
            ),
            CompletionEvent::Finish(reason) => finish = Some(reason),
            CompletionEvent::Error(err) => error = Some(err.to_string()),
        }
    }
    // What the provider said it used, for the window and the turn's totals.
    let input = response_usage.input_tokens.unwrap_or(0);
    let output = response_usage.output_tokens.unwrap_or(0);
    usage.input_tokens += input;
    usage.output_tokens += output;
    usage.cache_read_tokens += response_usage.cache_read_tokens.unwrap_or(0);
    let mut parts = Vec::new();
    if !reasoning.is_empty() {
        parts.push(AssistantPart::Reasoning {
            text: reasoning,
            signature,
        });
    }
    if !text.is_empty() {
        parts.push(AssistantPart::Text(text));
    }
    for call in &calls {
        parts.push(AssistantPart::ToolCall {
            id: call.id.clone(),
            name: call.name.clone(),
            arguments: call.arguments.clone().unwrap_or_else(|_| json!({})),
        });
    }
    let n_messages = session.messages.len() + usize::from(!parts.is_empty());
    let used = if input + output > 0 {
        session.last_context = Some((input + output, n_messages));
        input + output
    } else {
        context_tokens(session)
    };
    agent.port.update(
        &session.id,
        Update::Usage(UsageUpdate {
            used,
            size: session.target.model.limit.context.map(u64::from),
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cache_read_tokens: usage.cache_read_tokens,
        }),
    );
    if finish.is_none() && error.is_none() && !cancel.is_cancelled() {
        error = Some(format!(
            "the answer from {} ended without saying why; the partial answer is kept",
            session.target.provider.id
        ));
    }
    Response {
        parts,
        calls,
        finish,
        error,
    }
}

/// Tokens the conversation takes: the provider's last count plus an estimate of what came
/// after it, or an estimate of all of it.
fn context_tokens(session: &Session) -> u64 {
    match session.last_context {
        Some((tokens, n)) if n <= session.messages.len() => {
            tokens + compaction::estimate(&session.messages[n..])
        }
        _ => compaction::estimate(&session.messages),
    }
}

fn input_limit(target: &Target) -> Option<u64> {
    let limit = target.model.limit;
    limit
        .input
        .map(u64::from)
        .or_else(|| {
            limit
                .context
                .map(|c| u64::from(c).saturating_sub(u64::from(limit.output.unwrap_or(0))))
        })
        .filter(|l| *l > 0)
}

async fn maybe_compact(agent: &Agent, session: &mut Session, cancel: &CancellationToken) {
    let Some(limit) = input_limit(&session.target) else {
        return;
    };
    let threshold = limit * u64::from(agent.config.compaction.threshold_percent.min(100)) / 100;
    let used = context_tokens(session);
    if used <= threshold {
        return;
    }
    let Some(split) = compaction::split_point(&session.messages) else {
        return;
    };
    let target = agent
        .config
        .small_model
        .as_ref()
        .and_then(|m| Target::from_config(&agent.config, m))
        .unwrap_or_else(|| session.target.clone());
    agent.port.update(&session.id, Update::Notice {
        level: NoticeLevel::Info,
        message: format!("compacting the conversation: {used} of {limit} tokens in use; summarising {split} older messages with {}", target.model_ref()),
    });
    let request = Request {
        system: vec![compaction::SUMMARY_PROMPT.to_owned()],
        messages: vec![Message::User(vec![UserPart::Text(compaction::transcript(
            &session.messages[..split],
        ))])],
        ..Request::default()
    };
    let mut rx = agent
        .client
        .stream(&target, Arc::new(request), cancel.child_token());
    let mut summary = String::new();
    let mut failure = None;
    while let Some(event) =
        tokio::select! { biased; _ = cancel.cancelled() => None, e = rx.recv() => e }
    {
        match event {
            CompletionEvent::TextDelta(delta) => summary.push_str(&delta),
            CompletionEvent::Error(err) => failure = Some(err.to_string()),
            _ => {}
        }
    }
    if cancel.is_cancelled() {
        return;
    }
    if let Some(err) = failure.or_else(|| {
        summary
            .trim()
            .is_empty()
            .then(|| "the summary came back empty".to_owned())
    }) {
        agent.port.update(
            &session.id,
            Update::Notice {
                level: NoticeLevel::Warning,
                message: format!("compaction failed, going on with the full conversation: {err}"),
            },
        );
        return;
    }
    session.messages.drain(..split);
    compaction::prepend_summary(&mut session.messages, summary.trim());
    session.persist(&store::Record::Compaction {
        summary: summary.trim().to_owned(),
        replaced: split,
    });
    session.last_context = None;
    let after = context_tokens(session);
    session.audit.record(
        "compaction",
        json!({ "replaced_messages": split, "tokens_before": used, "tokens_after": after }),
    );
    agent.port.update(
        &session.id,
        Update::Notice {
            level: NoticeLevel::Info,
            message: format!(
                "compacted: {split} messages replaced by a summary; about {after} tokens now"
            ),
        },
    );
}

fn build_request(agent: &Agent, session: &Session) -> Request {
    // An unknown mode (a mode removed from the config) fails closed: the read-only one.
    let mode = mode::find(&agent.modes, &session.mode).or_else(|| mode::find(&agent.modes, "ask"));
    let mut system = vec![format!(
        "{SYSTEM}\n\nWorkspace root: {}\nPlatform: {}\nDate: {}",
        session.root.display(),
        std::env::consts::OS,
        &store::iso8601(store::now_ms())[..10]
    )];
    if let Some(mode) = mode
        && !mode.prompt.is_empty()
    {
        system.push(mode.prompt.clone());
    }
    let rules = instructions::render(&session.root, &session.instructions);
    if !rules.is_empty() {
        system.push(rules);
    }
    let tools = if session.target.model.tool_call {
        agent
            .registry
            .iter()
            .filter(|t| mode.is_none_or(|m| m.allows(t.group())))
            .map(|t| ToolSpec {
                name: t.name().to_owned(),
                description: t.description(),
                parameters: t.schema(),
            })
            .collect()
    } else {
        Vec::new()
    };
    Request {
        system,
        messages: session.messages.clone(),
        tools,
        ..Request::default()
    }
}

/// An "always" answer: for a command, its patterns (see `policy::always_patterns`); for
/// other tools, the tool. With `save`, also written to the project's kiln.jsonc.
fn remember_always(agent: &Agent, session: &mut Session, tool: &str, action: &Action, save: bool) {
    let (key, patterns) = match action {
        Action::Command { command } => {
            let patterns = policy::always_patterns(command);
            let table = &mut session.policy.always_commands;
            for p in &patterns {
                let _ = table.add(p, policy::Rule::Allow);
            }
            ("bash", patterns)
        }
        Action::Edit { .. } => {
            session.policy.always_allow.insert(tool.to_owned());
            ("edit", Vec::new())
        }
        Action::Read { .. } | Action::Note => {
            session.policy.always_allow.insert(tool.to_owned());
            ("read", Vec::new())
        }
    };
    if !save {
        return;
    }
    let message = match crate::config::edit::allow_permission(&session.root, key, &patterns) {
        Ok(path) if patterns.is_empty() => {
            format!("saved \"{key}\": \"allow\" in {}", path.display())
        }
        Ok(path) => format!(
            "saved {} as allowed commands in {}",
            patterns.join(", "),
            path.display()
        ),
        Err(err) => format!("the permission holds for this session but was not saved: {err}"),
    };
    session.audit.record(
        "permission_saved",
        json!({ "key": key, "patterns": patterns, "result": message }),
    );
    agent.port.update(
        &session.id,
        Update::Notice {
            level: NoticeLevel::Info,
            message,
        },
    );
}

/// Tool results for calls that will not run, so that every call has one.
fn answer_unrun(session: &mut Session, calls: &[Call], why: &str) {
    for call in calls {
        session.push_message(Message::ToolResult {
            call_id: call.id.clone(),
            content: why.to_owned(),
            is_error: true,
        });
    }
}

enum CallEnd {
    Continue,
    /// A permission nobody could grant, or a plain rejection: the turn stops.
    Stop(String),
    Cancelled,
}

async fn run_call(
    agent: &Agent,
    session: &mut Session,
    call: &Call,
    cancel: &CancellationToken,
) -> CallEnd {
    let port = agent.port.clone();
    let sid = session.id.clone();
    let cx = tool_cx(agent, session, &call.id, cancel);
    let arguments = match &call.arguments {
        Ok(args) => args.clone(),
        Err(message) => {
            session.audit.record(
                "tool_call",
                json!({ "call_id": call.id, "tool": call.name, "error": "invalid JSON" }),
            );
            return rejected_early(
                agent,
                session,
                call,
                &call.name,
                crate::tools::Kind::Other,
                json!(null),
                message.clone(),
            );
        }
    };
    let Some(tool) = agent.registry.get(&call.name) else {
        let names: Vec<&str> = agent.registry.iter().map(|t| t.name()).collect();
        return rejected_early(
            agent,
            session,
            call,
            &call.name,
            crate::tools::Kind::Other,
            arguments,
            format!(
                "there is no tool named {:?}; the tools are {}",
                call.name,
                names.join(", ")
            ),
        );
    };
    session.audit.record(
        "tool_call",
        json!({ "call_id": call.id, "tool": call.name, "input": arguments }),
    );
    let describe = match tool.describe(&arguments, &cx) {
        Ok(d) => d,
        Err(message) => {
            return rejected_early(
                agent,
                session,
                call,
                tool.name(),
                tool.kind(),
                arguments,
                message,
            );
        }
    };
    let locations: Vec<ToolLocation> = describe
        .locations
        .iter()
        .map(|l| ToolLocation {
            path: l.path.clone(),
            line: l.line,
        })
        .collect();
    let tool_call = announce(
        agent,
        session,
        call,
        &describe.title,
        tool.kind(),
        locations,
        arguments.clone(),
    );
    let mode = mode::find(&agent.modes, &session.mode)
        .cloned()
        .unwrap_or_else(mode::fallback);
    let facts = policy::classify(std::slice::from_ref(&session.root), &describe.action);
    let decision = policy::decide(
        &session.policy,
        &mode,
        tool.name(),
        tool.group(),
        &describe.action,
        &facts,
    );
    let by = if session.policy.auto {
        "auto"
    } else {
        "policy"
    };
    let is_edit = matches!(describe.action, Action::Edit { .. });

    // Edits are computed first so that the person reviews the diff, then applied.
    let mut computed: Option<Result<Output, String>> = None;
    // What the person accepted of a change, told to the model with the result.
    let mut review_note: Option<String> = None;
    match &decision {
        policy::Decision::Deny(reason) => {
            session.audit.record("permission", json!({ "call_id": call.id, "tool": call.name, "decision": "deny", "by": by, "reason": reason }));
            return finish(
                agent,
                session,
                call,
                Err(format!("permission denied: {reason}")),
            );
        }
        policy::Decision::Allow => {
            session.audit.record(
                "permission",
                json!({ "call_id": call.id, "tool": call.name, "decision": "allow", "by": by }),
            );
        }
        policy::Decision::Ask(reason) => {
            let content = if is_edit {
                let result = run_tool(tool, arguments.clone(), cx.clone(), cancel).await;
                let content = match &result {
                    Some(Ok(out)) => diff_content(out),
                    _ => Vec::new(),
                };
                match result {
                    None => return cancelled(agent, session, call),
                    Some(Err(message)) => return finish(agent, session, call, Err(message)),
                    Some(Ok(out)) => {
                        let stats: Vec<apply::Stats> =
                            out.changes.iter().map(apply::stats).collect();
                        if let Err(message) = blast_radius(agent, session, &out.changes, &stats) {
                            return finish(agent, session, call, Err(message));
                        }
                        computed = Some(Ok(out))
                    }
                }
                content
            } else if let Action::Command { command } = &describe.action {
                vec![ToolContent::Text(format!("$ {command}"))]
            } else {
                Vec::new()
            };
            if !content.is_empty() {
                port.update(
                    &sid,
                    Update::ToolCallUpdate(ToolCallUpdate {
                        id: call.id.clone(),
                        content: Some(content.clone()),
                        ..Default::default()
                    }),
                );
            }
            let request = PermissionRequest {
                session_id: sid.clone(),
                tool_call: tool_call.clone(),
                content,
                reason: reason.clone(),
            };
            let outcome = tokio::select! {
                biased;
                _ = cancel.cancelled() => Outcome::Cancelled,
                outcome = port.request_permission(request) => outcome,
            };
            let (decision, feedback) = match &outcome {
                Outcome::AllowOnce => ("allow_once", None),
                Outcome::AllowAlways => ("allow_always", None),
                Outcome::AllowAlwaysSave => ("allow_always_save", None),
                Outcome::AcceptHunks { feedback, .. } => ("accept_hunks", feedback.clone()),
                Outcome::RejectOnce { feedback } => ("reject_once", feedback.clone()),
                Outcome::RejectAlways { feedback } => ("reject_always", feedback.clone()),
                Outcome::Unanswerable(why) => ("deny", Some(why.clone())),
                Outcome::Cancelled => ("cancelled", None),
            };
            session.audit.record("permission", json!({ "call_id": call.id, "tool": call.name, "decision": decision, "by": if matches!(outcome, Outcome::Unanswerable(_)) { "policy" } else { "person" }, "feedback": feedback }));
            match outcome {
                Outcome::AllowOnce => {}
                Outcome::AcceptHunks { hunks, feedback } => {
                    let Some(Ok(out)) = computed.take() else {
                        return finish(
                            agent,
                            session,
                            call,
                            Err("the hunks accepted belong to no change".to_owned()),
                        );
                    };
                    match review_hunks(session, out, &hunks, feedback.as_deref()) {
                        Ok((out, note)) => {
                            computed = Some(Ok(out));
                            review_note = Some(note);
                        }
                        Err(message) => {
                            finish(agent, session, call, Err(message.clone()));
                            if feedback.as_deref().is_none_or(|f| f.trim().is_empty()) {
                                return CallEnd::Stop(format!(
                                    "the person rejected every hunk of {}",
                                    describe.title
                                ));
                            }
                            return CallEnd::Continue;
                        }
                    }
                }
                Outcome::AllowAlways => {
                    remember_always(agent, session, &call.name, &describe.action, false)
                }
                Outcome::AllowAlwaysSave => {
                    remember_always(agent, session, &call.name, &describe.action, true)
                }
                Outcome::Cancelled => return cancelled(agent, session, call),
                Outcome::Unanswerable(why) => {
                    finish(
                        agent,
                        session,
                        call,
                        Err(format!("permission denied: {why}")),
                    );
                    return CallEnd::Stop(format!("{}: {why}", describe.title));
                }
                Outcome::RejectOnce { feedback } | Outcome::RejectAlways { feedback } => {
                    if decision == "reject_always" {
                        session.policy.always_reject.insert(call.name.clone());
                    }
                    return match feedback.filter(|f| !f.trim().is_empty()) {
                        Some(feedback) => finish(
                            agent,
                            session,
                            call,
                            Err(format!(
                                "the person rejected this call and said: {feedback}"
                            )),
                        ),
                        None => {
                            finish(
                                agent,
                                session,
                                call,
                                Err("the person rejected this call".to_owned()),
                            );
                            CallEnd::Stop(format!("the person rejected {}", describe.title))
                        }
                    };
                }
            }
        }
    }
    port.update(
        &sid,
        Update::ToolCallUpdate(ToolCallUpdate {
            id: call.id.clone(),
            status: Some(ToolStatus::InProgress),
            ..Default::default()
        }),
    );
    // Only edits that were asked about were computed (and their radius checked) already.
    let radius_checked = computed.is_some();
    let result = match computed {
        // Cancelled while the person was answering: nothing is written.
        Some(_) if cancel.is_cancelled() => None,
        Some(result) => Some(result),
        None => run_tool(tool, arguments, cx.clone(), cancel).await,
    };
    let Some(result) = result else {
        return cancelled(agent, session, call);
    };
    let result = match result {
        Ok(out) => {
            let decided = Decided {
                inside: facts.outside.is_empty(),
                radius_checked,
            };
            apply_output(agent, session, &describe, out, decided, &cx).await
        }
        Err(message) => Err(message),
    };
    let result = result.map(|mut out| {
        if let Some(note) = review_note {
            out.text.push_str(&format!("\n{note}"));
        }
        out
    });
    finish(agent, session, call, result)
}

/// Keeps the accepted hunks of each change; says what the person rejected. `Err` when
/// nothing was accepted.
fn review_hunks(
    session: &Session,
    mut out: Output,
    accepted: &[crate::text::diff::HunkId],
    feedback: Option<&str>,
) -> Result<(Output, String), String> {
    let mut kept = Vec::new();
    let mut rejected = Vec::new();
    for change in std::mem::take(&mut out.changes) {
        let name = crate::tools::display_path(&session.root, &change.path);
        let mut proposal = super::proposal::Proposal::new(change);
        match proposal.decide(Some(accepted))? {
            Some(change) => {
                let not = proposal.rejected_hunks();
                if !not.is_empty() {
                    rejected.push(format!("{name}: {}", not.join(", ")));
                }
                kept.push(change);
            }
            None => rejected.push(format!("{name}: all of it")),
        }
        session.audit.record(
            "proposal",
            json!({ "path": name, "state": proposal.state.as_str(), "hunks": proposal.diff.hunks.len() }),
        );
    }
    let feedback = feedback
        .filter(|f| !f.trim().is_empty())
        .map(|f| format!(" They said: {f}"))
        .unwrap_or_default();
    if kept.is_empty() {
        return Err(format!(
            "the person rejected every hunk of this change.{feedback}"
        ));
    }
    out.changes = kept;
    let note = if rejected.is_empty() {
        format!("The person accepted all of it.{feedback}")
    } else {
        format!(
            "The person accepted only part of this change; not applied: {}. The file now has only the accepted hunks; read it before changing it again.{feedback}",
            rejected.join("; ")
        )
    };
    Ok((out, note))
}

/// Runs a tool; `None` when cancelled first.
async fn run_tool(
    tool: &dyn crate::tools::DynTool,
    arguments: serde_json::Value,
    cx: ToolCx,
    cancel: &CancellationToken,
) -> Option<Result<Output, String>> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => None,
        result = tool.run(arguments, cx) => if cancel.is_cancelled() { None } else { Some(result) },
    }
}

fn diff_content(out: &Output) -> Vec<ToolContent> {
    out.changes
        .iter()
        .map(|c| ToolContent::Diff {
            path: c.path.clone(),
            old_text: c.old_text.clone(),
            new_text: c.new_text.clone(),
        })
        .collect()
}

/// Applies the output's file changes, records the plan and the command, adds nested
/// instructions; returns what the model reads.
async fn apply_output(
    agent: &Agent,
    session: &mut Session,
    describe: &Describe,
    mut out: Output,
    decided: Decided,
    cx: &ToolCx,
) -> Result<Output, String> {
    // One diff per change, for the limits, the log and the checks.
    let stats: Vec<apply::Stats> = out.changes.iter().map(apply::stats).collect();
    if !decided.radius_checked {
        blast_radius(agent, session, &out.changes, &stats)?;
    }
    if !out.changes.is_empty() && !session.turn_checkpointed {
        session.turn_checkpointed = true;
        checkpoint(
            agent,
            session,
            super::checkpoint::Kind::BeforeTurn,
            "before the agent's changes",
        )
        .await;
    }
    // The checkpoint that undoes this change (taken before it).
    let undo_point = session.last_checkpoint.clone();
    let mut notes = Vec::new();
    let mut applied = Vec::new();
    let mut failure = None;
    for (change, stats) in std::mem::take(&mut out.changes).into_iter().zip(stats) {
        let display = crate::tools::display_path(&session.root, &change.path);
        let written = match moved_outside(session, &change, decided.inside) {
            Some(err) => Err(err),
            None => {
                agent
                    .port
                    .apply_change(&session.id, change.clone(), display.clone())
                    .await
            }
        };
        match written {
            Ok(()) => {
                session.audit.record("file_change", json!({ "path": display, "added": stats.added, "removed": stats.removed, "created": stats.created, "deleted": stats.deleted }));
                notes.push(format!("{display}: +{} −{}", stats.added, stats.removed));
                out.changes.push(change);
                applied.push(stats);
            }
            Err(err) => {
                session
                    .audit
                    .record("error", json!({ "message": err, "path": display }));
                failure = Some(err);
                break;
            }
        }
    }
    if !notes.is_empty() {
        if failure.is_none() {
            out.text
                .push_str(&format!("\n(applied: {})", notes.join(", ")));
        }
        // What was written counts, is checkpointed and is checked, even when a later file
        // of the same change failed.
        let message = format!("after {}", notes.join(", "));
        checkpoint(
            agent,
            session,
            super::checkpoint::Kind::AfterChange,
            &message,
        )
        .await;
        run_checks(
            agent,
            session,
            &mut out,
            &applied,
            undo_point.as_deref(),
            cx,
        )
        .await;
    }
    if let Some(err) = failure {
        return Err(if notes.is_empty() {
            err
        } else {
            format!("{err}\n(already applied: {})", notes.join(", "))
        });
    }
    if let Action::Command { command } = &describe.action {
        session.audit.record(
            "command",
            json!({ "command": command, "exit_code": out.exit_code }),
        );
    }
    if let Some(plan) = &out.plan {
        agent.port.update(&session.id, Update::Plan(plan.clone()));
    }
    if let Action::Read { paths } | Action::Edit { paths } = &describe.action {
        let mut nested = Vec::new();
        for path in paths {
            nested.extend(instructions::nested_for(
                &session.root,
                path,
                &mut session.loaded_instructions,
            ));
        }
        if !nested.is_empty() {
            out.text.push_str("\n\n");
            out.text
                .push_str(&instructions::render(&session.root, &nested));
        }
    }
    Ok(out)
}

/// What the decision established, for `apply_output`.
#[derive(Clone, Copy)]
struct Decided {
    /// Every path was inside the workspace when the policy decided.
    inside: bool,
    /// The blast radius was checked already (before asking the person).
    radius_checked: bool,
}

/// A path that was inside at the decision and now leads outside (swapped for a symlink
/// after the permission was given): the error that refuses it.
fn moved_outside(
    session: &Session,
    change: &crate::tools::FileChange,
    inside_at_decision: bool,
) -> Option<String> {
    if !inside_at_decision {
        return None;
    }
    let action = Action::Edit {
        paths: vec![change.path.clone()],
    };
    let facts = policy::classify(std::slice::from_ref(&session.root), &action);
    (!facts.outside.is_empty()).then(|| {
        format!(
            "{} now leads outside the workspace (it was replaced after the permission was given); nothing was written",
            crate::tools::display_path(&session.root, &change.path)
        )
    })
}

/// The blast radius of changes against the limits (per proposal and turn).
fn blast_radius(
    agent: &Agent,
    session: &Session,
    changes: &[crate::tools::FileChange],
    stats: &[apply::Stats],
) -> Result<(), String> {
    let files: Vec<std::path::PathBuf> = changes.iter().map(|c| c.path.clone()).collect();
    let lines = stats.iter().map(|s| s.added + s.removed).sum();
    agent
        .verify
        .blast_radius(&files, lines, &session.turn_changes)
}

/// Counts what was applied toward the turn's limits and runs the check commands for the
/// changed files; a failure is appended to the result with the way back.
async fn run_checks(
    agent: &Agent,
    session: &mut Session,
    out: &mut Output,
    stats: &[apply::Stats],
    undo_point: Option<&str>,
    cx: &ToolCx,
) {
    let mut relative = Vec::new();
    for (change, s) in out.changes.iter().zip(stats) {
        session.turn_changes.changed_lines += s.added + s.removed;
        session.turn_changes.files.insert(change.path.clone());
        relative.push(crate::tools::display_path(&session.root, &change.path));
    }
    for command in agent.verify.checks_for(&relative) {
        let result =
            crate::tools::bash::run_command(command, std::time::Duration::from_secs(600), cx).await;
        let (ok, code, output) = match result {
            Ok(o) => (!o.is_error, o.exit_code, o.text),
            Err(e) => (false, None, e),
        };
        session.audit.record(
            "check",
            json!({ "command": command, "exit_code": code, "passed": ok }),
        );
        if ok {
            out.text.push_str(&format!("\n(check `{command}` passed)"));
            continue;
        }
        let back = match undo_point {
            Some(id) => format!(
                " The person can roll it back with `kiln checkpoints restore {}`.",
                super::checkpoint::short(id)
            ),
            None => String::new(),
        };
        out.text.push_str(&format!(
            "\n\nThe check `{command}` failed after this change; the change is applied. Its output:\n{}\nFix the problem before going on.{back}",
            crate::tools::truncate_middle(&output, 8_000).trim_end()
        ));
        agent.port.update(
            &session.id,
            Update::Notice {
                level: NoticeLevel::Warning,
                message: format!(
                    "check `{command}` failed after {}{back}",
                    relative.join(", ")
                ),
            },
        );
    }
}

/// Takes a checkpoint off the async threads; a failure is a warning, never the end of
/// the turn.
async fn checkpoint(
    agent: &Agent,
    session: &mut Session,
    kind: super::checkpoint::Kind,
    message: &str,
) {
    let Some(cp) = session.checkpoints.clone() else {
        return;
    };
    let (message, sid) = (message.to_owned(), session.id.clone());
    let taken = tokio::task::spawn_blocking(move || cp.snapshot(kind, &message, Some(&sid)))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    match taken {
                Ok(c) => {
            session.audit.record("checkpoint", json!({ "id": c.id, "kind": kind.as_str() }));
            session.last_checkpoint = Some(c.id);
        }
        Err(err) => agent.port.update(&session.id, Update::Notice {
            level: NoticeLevel::Warning,
            message: format!("no checkpoint was taken ({err}); this change cannot be rolled back with kiln checkpoints"),
        }),
    }
}

fn cancelled(agent: &Agent, session: &mut Session, call: &Call) -> CallEnd {
    agent.port.update(
        &session.id,
        Update::ToolCallUpdate(ToolCallUpdate {
            id: call.id.clone(),
            status: Some(ToolStatus::Cancelled),
            ..Default::default()
        }),
    );
    session.push_message(Message::ToolResult {
        call_id: call.id.clone(),
        content: "cancelled by the person".to_owned(),
        is_error: true,
    });
    CallEnd::Cancelled
}

/// Records the call's result, tells the frontend, and goes on with the turn.
fn finish(
    agent: &Agent,
    session: &mut Session,
    call: &Call,
    result: Result<Output, String>,
) -> CallEnd {
    let (text, is_error, content) = match result {
        Ok(out) => {
            let mut content = diff_content(&out);
            if out.changes.is_empty() {
                content.push(ToolContent::Text(out.text.clone()));
            }
            (out.text, out.is_error, content)
        }
        Err(message) => (message.clone(), true, vec![ToolContent::Text(message)]),
    };
    let status = if is_error {
        ToolStatus::Failed
    } else {
        ToolStatus::Completed
    };
    agent.port.update(
        &session.id,
        Update::ToolCallUpdate(ToolCallUpdate {
            id: call.id.clone(),
            status: Some(status),
            content: Some(content),
            ..Default::default()
        }),
    );
    let text = crate::tools::truncate_middle(&text, agent.limits.max_output_bytes);
    session.push_message(Message::ToolResult {
        call_id: call.id.clone(),
        content: text,
        is_error,
    });
    CallEnd::Continue
}

/// A call that cannot even start (arguments not JSON, an unknown tool, bad input): shown
/// to the frontend and answered with the reason.
fn rejected_early(
    agent: &Agent,
    session: &mut Session,
    call: &Call,
    title: &str,
    kind: crate::tools::Kind,
    raw_input: serde_json::Value,
    message: String,
) -> CallEnd {
    announce(agent, session, call, title, kind, Vec::new(), raw_input);
    finish(agent, session, call, Err(message))
}

fn announce(
    agent: &Agent,
    session: &Session,
    call: &Call,
    title: &str,
    kind: crate::tools::Kind,
    locations: Vec<ToolLocation>,
    raw_input: serde_json::Value,
) -> ToolCall {
    let tool_call = ToolCall {
        id: call.id.clone(),
        title: title.to_owned(),
        kind,
        status: ToolStatus::Pending,
        locations,
        raw_input,
    };
    agent
        .port
        .update(&session.id, Update::ToolCall(tool_call.clone()));
    tool_call
}

fn tool_cx(agent: &Agent, session: &Session, call_id: &str, cancel: &CancellationToken) -> ToolCx {
    let port: Arc<dyn super::Port> = agent.port.clone();
    let sid = session.id.clone();
    let id = call_id.to_owned();
    ToolCx {
        root: session.root.clone(),
        files: agent.port.files(&session.id),
        cancel: cancel.child_token(),
        progress: Arc::new(move |chunk: String| {
            port.update(
                &sid,
                Update::ToolCallUpdate(ToolCallUpdate {
                    id: id.clone(),
                    output_chunk: Some(chunk),
                    ..Default::default()
                }),
            );
        }),
        limits: agent.limits,
    }
}
