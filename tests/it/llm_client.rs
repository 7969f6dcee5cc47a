//! The real HTTP client against the scripted provider on 127.0.0.1: wire shapes of the
//! requests, and every fault (429 with Retry-After, 500, a cut stream, a malformed chunk,
//! a silent server, 401, a refused connection, cancellation).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kiln::config::{self, Api};
use kiln::llm::{
    AssistantPart, Client, CompletionEvent, LlmError, Message, Request, RetryPolicy, Target,
    ToolChoice, ToolSpec, UserPart, decode_all,
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::llm_decode::summarize;
use crate::support::MapEnv;
use crate::support::llm_server::{End, Piece, Reply, ScriptedServer};

const KEY: &str = "sk-mock-secret-4242";

fn target(server: &ScriptedServer, api: Api, extra_options: serde_json::Value) -> Target {
    let mut options = json!({
        "baseURL": server.base_url(),
        "apiKey": "{env:MOCK_KEY}",
        "timeout_ms": 2000,
        "max_retries": 2,
    });
    for (k, v) in extra_options.as_object().unwrap() {
        options[k] = v.clone();
    }
    let content = json!({
        "provider": { "mock": { "type": api.as_str(), "options": options,
            "models": { "m1": { "limit": { "context": 1000, "output": 256 } } } } },
        "model": "mock/m1",
    });
    let env = MapEnv::new(&[
        ("KILN_CONFIG_CONTENT", &content.to_string()),
        ("MOCK_KEY", KEY),
    ]);
    let loaded = config::load(&config::LoadOptions {
        project_dir: PathBuf::from("/nonexistent-project"),
        global_dir: None,
        env: &env,
    });
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    let model = loaded.config.model.clone().unwrap();
    Target::from_config(&loaded.config, &model).unwrap()
}

fn client() -> Client {
    Client::new(RetryPolicy {
        base: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        max_retry_after: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
    })
    .unwrap()
}

fn request() -> Request {
    Request {
        system: vec!["You are kiln.".into()],
        messages: vec![
            Message::User(vec![UserPart::Text("read the readme".into())]),
            Message::Assistant(vec![
                AssistantPart::Text("Reading.".into()),
                AssistantPart::ToolCall {
                    id: "call_1".into(),
                    name: "read".into(),
                    arguments: json!({"path": "README.md"}),
                },
                AssistantPart::ToolCall {
                    id: "call_2".into(),
                    name: "list".into(),
                    arguments: json!({}),
                },
            ]),
            Message::ToolResult {
                call_id: "call_1".into(),
                content: "# kiln".into(),
                is_error: false,
            },
            Message::ToolResult {
                call_id: "call_2".into(),
                content: "no such directory".into(),
                is_error: true,
            },
        ],
        tools: vec![ToolSpec {
            name: "read".into(),
            description: "Read a file".into(),
            parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}}),
        }],
        tool_choice: ToolChoice::Auto,
        max_output_tokens: None,
        temperature: Some(0.2),
    }
}

async fn collect(client: &Client, target: &Target) -> Vec<CompletionEvent> {
    let mut rx = client.stream(
        target,
        std::sync::Arc::new(request()),
        CancellationToken::new(),
    );
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        events.push(event);
    }
    events
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/llm")
            .join(name),
    )
    .unwrap()
}

fn final_error(events: &[CompletionEvent]) -> &LlmError {
    match events.last() {
        Some(CompletionEvent::Error(err)) => err,
        other => panic!("expected a final error, got {other:?}"),
    }
}

fn retries(events: &[CompletionEvent]) -> Vec<(u32, Duration)> {
    events
        .iter()
        .filter_map(|e| match e {
            CompletionEvent::Retrying { attempt, wait, .. } => Some((*attempt, *wait)),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_stream_over_http_matches_the_decoded_fixture_and_sends_the_documented_request() {
    let server =
        ScriptedServer::start(vec![Reply::sse_fixture("openai-tool-call-split.sse", 7)]).await;
    let target = target(&server, Api::OpenAiCompatible, json!({}));
    let events = collect(&client(), &target).await;
    let expected = decode_all(
        &mut kiln::llm::openai::Decoder::new("mock"),
        &fixture("openai-tool-call-split.sse"),
    );
    assert_eq!(events, expected);

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let req = &requests[0];
    assert_eq!(
        (req.method.as_str(), req.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    let body = req.json();
    insta::assert_snapshot!(
        "openai-request-body",
        serde_json::to_string_pretty(&body).unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_stream_over_http_matches_the_decoded_fixture_and_sends_the_documented_request() {
    let server =
        ScriptedServer::start(vec![Reply::sse_fixture("anthropic-thinking-tools.sse", 5)]).await;
    let target = target(&server, Api::Anthropic, json!({}));
    let events = collect(&client(), &target).await;
    let expected = decode_all(
        &mut kiln::llm::anthropic::Decoder::new("mock"),
        &fixture("anthropic-thinking-tools.sse"),
    );
    assert_eq!(events, expected);
    let req = &server.requests()[0];
    assert_eq!(req.path, "/v1/messages");
    assert_eq!(req.header("x-api-key"), Some(KEY));
    assert_eq!(req.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(req.header("authorization"), None);
    insta::assert_snapshot!(
        "anthropic-request-body",
        serde_json::to_string_pretty(&req.json()).unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_with_retry_after_is_waited_out_then_succeeds() {
    let server = ScriptedServer::start(vec![
        Reply::json(
            429,
            r#"{"error":{"message":"slow down","code":"rate_limit_exceeded"}}"#,
        )
        .with_header("retry-after", "1"),
        Reply::sse_fixture("openai-text-crlf.sse", 64),
    ])
    .await;
    let target = target(&server, Api::OpenAiCompatible, json!({}));
    let events = collect(&client(), &target).await;
    assert_eq!(retries(&events), vec![(1, Duration::from_secs(1))]);
    assert!(
        matches!(events.last(), Some(CompletionEvent::Finish(_))),
        "{events:?}"
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let gap = requests[1].at - requests[0].at;
    assert!(
        gap >= Duration::from_millis(950),
        "retried after {gap:?}, before Retry-After"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_error_is_retried_with_backoff_then_succeeds() {
    let server = ScriptedServer::start(vec![
        Reply::json(500, r#"{"error":{"message":"internal"}}"#),
        Reply::json(503, "upstream unavailable"),
        Reply::sse_fixture("openai-text-crlf.sse", 64),
    ])
    .await;
    let target = target(&server, Api::OpenAiCompatible, json!({}));
    let events = collect(&client(), &target).await;
    let waits = retries(&events);
    assert_eq!(
        waits.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
        vec![1, 2]
    );
    // Backoff doubles (20 ms, then 40 ms), with jitter in the upper half.
    assert!(
        waits[0].1 >= Duration::from_millis(10) && waits[0].1 <= Duration::from_millis(20),
        "{waits:?}"
    );
    assert!(
        waits[1].1 >= Duration::from_millis(20) && waits[1].1 <= Duration::from_millis(40),
        "{waits:?}"
    );
    assert!(matches!(events.last(), Some(CompletionEvent::Finish(_))));
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_that_persists_ends_with_an_error_after_max_retries() {
    let body = r#"{"error":{"message":"Rate limit reached","code":"rate_limit_exceeded"}}"#;
    let server = ScriptedServer::start(vec![
        Reply::json(429, body),
        Reply::json(429, body),
        Reply::json(429, body),
        Reply::sse_fixture("openai-text-crlf.sse", 64),
    ])
    .await;
    let target = target(&server, Api::OpenAiCompatible, json!({}));
    let events = collect(&client(), &target).await;
    assert_eq!(retries(&events).len(), 2);
    let message = final_error(&events).to_string();
    insta::assert_snapshot!(message, @"mock is rate limiting requests (HTTP 429: rate_limit_exceeded: Rate limit reached); gave up after 3 attempt(s); wait a minute, or check your plan's limits");
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_longer_than_kiln_waits_is_reported_at_once() {
    let server = ScriptedServer::start(vec![
        Reply::json(429, "{}").with_header("retry-after", "120"),
    ])
    .await;
    let target = target(&server, Api::OpenAiCompatible, json!({}));
    let events = collect(&client(), &target).await;
    assert_eq!(events.len(), 1);
    insta::assert_snapshot!(final_error(&events).to_string(), @"mock is rate limiting requests (HTTP 429); it asks to wait 2 min, more than kiln waits by itself (1 attempt(s) made); try again then");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_cut_midway_keeps_the_partial_text_and_is_not_retried() {
    let bytes = fixture("openai-text-crlf.sse");
    let reply = Reply::sse_bytes(&bytes, 200).truncated(3).ending(End::Cut);
    let server =
        ScriptedServer::start(vec![reply, Reply::sse_fixture("openai-text-crlf.sse", 64)]).await;
    let target = target(&server, Api::OpenAiCompatible, json!({}));
    let events = collect(&client(), &target).await;
    let text: String = events
        .iter()
        .filter_map(|e| match e {
            CompletionEvent::TextDelta(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        !text.is_empty() && "Hello, wörld 😀!".starts_with(&text),
        "partial text {text:?}"
    );
    let err = final_error(&events);
    assert!(matches!(err, LlmError::Interrupted { .. }), "{err:?}");
    assert!(
        err.to_string().contains("the partial answer is kept"),
        "{err}"
    );
    assert_eq!(
        server.requests().len(),
        1,
        "never retried after partial output"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_chunk_is_skipped_with_a_warning() {
    let text = String::from_utf8(fixture("openai-text-crlf.sse")).unwrap();
    let cut = text.find("data:").unwrap()
        + text[text.find("data:").unwrap()..]
            .find("\r\n\r\n")
            .unwrap()
        + 4;
    let broken = format!(
        "{}data: {{\"choices\": [{{\"delta\": \r\n\r\n{}",
        &text[..cut],
        &text[cut..]
    );
    let server = ScriptedServer::start(vec![Reply::sse_bytes(broken.as_bytes(), 13)]).await;
    let target = target(&server, Api::OpenAiCompatible, json!({}));
    let events = collect(&client(), &target).await;
    let summary = summarize(&events);
    assert!(summary.contains("text: \"Hello, wörld 😀!\""), "{summary}");
    assert!(
        summary.contains("warning: skipped a chunk from mock that is not valid JSON"),
        "{summary}"
    );
    assert!(matches!(events.last(), Some(CompletionEvent::Finish(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_server_times_out_before_and_during_the_answer() {
    let bytes = fixture("openai-text-crlf.sse");
    let server = ScriptedServer::start(vec![
        Reply::Stall(Duration::from_secs(5)),
        Reply::sse_bytes(&bytes, 200)
            .truncated(3)
            .ending(End::Hang(Duration::from_secs(5))),
    ])
    .await;
    let target = target(&server, Api::OpenAiCompatible, json!({ "timeout_ms": 300 }));
    let client = client();

    let start = Instant::now();
    let events = collect(&client, &target).await;
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(290) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    insta::assert_snapshot!(final_error(&events).to_string(), @"mock sent nothing for 300 ms after the request was sent; raise provider.mock.options.timeout_ms if the model is just slow");

    let events = collect(&client, &target).await;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, CompletionEvent::TextDelta(_))),
        "{events:?}"
    );
    insta::assert_snapshot!(final_error(&events).to_string(), @"mock sent nothing for 300 ms in the middle of the answer; the partial answer is kept; raise provider.mock.options.timeout_ms if the model is just slow");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_names_the_key_source_and_never_the_key() {
    let body = format!(
        r#"{{"error":{{"message":"Incorrect API key provided: {KEY}","code":"invalid_api_key"}}}}"#
    );
    let server = ScriptedServer::start(vec![Reply::json(401, &body)]).await;
    let target = target(&server, Api::OpenAiCompatible, json!({}));
    let events = collect(&client(), &target).await;
    assert_eq!(events.len(), 1, "no retry on 401");
    let message = final_error(&events).to_string();
    assert!(!message.contains(KEY));
    insta::assert_snapshot!(message, @"mock rejected the API key (HTTP 401: invalid_api_key: Incorrect API key provided: [redacted]); kiln sent the key from $MOCK_KEY; check it, or set a valid one with `export MOCK_KEY=…`");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connection_is_retried_then_reported() {
    let server = ScriptedServer::start(vec![]).await;
    let target_refused = {
        let mut t = target(&server, Api::OpenAiCompatible, json!({}));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        t.provider.base_url = format!("http://127.0.0.1:{port}/v1");
        t
    };
    let events = collect(&client(), &target_refused).await;
    assert_eq!(retries(&events).len(), 2);
    let err = final_error(&events);
    assert!(
        matches!(err, LlmError::Connect { attempts: 3, .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("is the server at http://127.0.0.1:"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_drops_the_connection_at_once() {
    let pieces: Vec<Piece> = (0..200)
        .map(|i| Piece {
            bytes: format!(
                "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"w{i} \"}}}}]}}\n\n"
            )
            .into_bytes(),
            pause: Duration::from_millis(20),
        })
        .collect();
    let server = ScriptedServer::start(vec![Reply::Stream {
        pieces,
        end: End::Complete,
    }])
    .await;
    let target = target(&server, Api::OpenAiCompatible, json!({}));
    let cancel = CancellationToken::new();
    let mut rx = client().stream(&target, std::sync::Arc::new(request()), cancel.clone());
    let first = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap();
    assert!(matches!(first, Some(CompletionEvent::TextDelta(_))));
    let cancelled_at = Instant::now();
    cancel.cancel();
    // The channel closes without a final event once the task has dropped the stream.
    let mut after = Vec::new();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(2), rx.recv())
        .await
        .unwrap()
    {
        after.push(event);
    }
    assert!(after.len() <= 1, "events after cancel: {after:?}");
    assert!(
        cancelled_at.elapsed() < Duration::from_millis(100),
        "{:?}",
        cancelled_at.elapsed()
    );
    // The server sees the connection gone on its next write.
    let deadline = Instant::now() + Duration::from_secs(2);
    while server.disconnects().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let gone = server.disconnects();
    assert!(!gone.is_empty(), "the server never saw the connection drop");
    assert!(
        gone[0] - cancelled_at < Duration::from_millis(500),
        "{:?}",
        gone[0] - cancelled_at
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_asking_for_max_completion_tokens_gets_it() {
    let server = ScriptedServer::start(vec![
        Reply::json(
            400,
            r#"{"error":{"message":"Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.","type":"invalid_request_error","param":"max_tokens","code":"unsupported_parameter"}}"#,
        ),
        Reply::sse_fixture("openai-text-crlf.sse", 64),
    ])
    .await;
    let target = target(&server, Api::OpenAiCompatible, json!({}));
    let events = collect(&client(), &target).await;
    assert!(
        matches!(events.last(), Some(CompletionEvent::Finish(_))),
        "{events:?}"
    );
    assert!(retries(&events).is_empty());
    let requests = server.requests();
    assert_eq!(requests[0].json()["max_tokens"], 256);
    assert_eq!(requests[1].json()["max_completion_tokens"], 256);
    assert!(requests[1].json().get("max_tokens").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_key_for_a_keyed_preset_is_reported_without_a_request() {
    let server = ScriptedServer::start(vec![]).await;
    let content =
        json!({ "provider": { "openai": { "options": { "baseURL": server.base_url() } } } });
    let env = MapEnv::new(&[("KILN_CONFIG_CONTENT", &content.to_string())]);
    let loaded = config::load(&config::LoadOptions {
        project_dir: PathBuf::from("/nonexistent-project"),
        global_dir: None,
        env: &env,
    });
    let target = Target::from_config(
        &loaded.config,
        &config::ModelRef::parse("openai/gpt-5").unwrap(),
    )
    .unwrap();
    let events = collect(&client(), &target).await;
    insta::assert_snapshot!(final_error(&events).to_string(), @"openai needs an API key and none is set: set one with `export OPENAI_API_KEY=…` (create a key at https://platform.openai.com/api-keys), or provider.openai.options.apiKey in kiln.jsonc");
    assert!(server.requests().is_empty());
}

#[test]
fn request_bodies_follow_model_capabilities() {
    use kiln::config::{Limit, ModelInfo};
    use kiln::llm::{anthropic, openai};
    let mut model = ModelInfo::unknown("vision-1");
    model.attachment = true;
    model.temperature = false;
    model.limit = Limit {
        context: Some(1000),
        input: None,
        output: Some(100),
    };
    let req = Request {
        messages: vec![Message::User(vec![
            UserPart::Text("what is this?".into()),
            UserPart::Image {
                media_type: "image/png".into(),
                data: "iVBORw0KGgo=".into(),
            },
        ])],
        temperature: Some(0.5),
        tool_choice: ToolChoice::Required,
        ..Request::default()
    };
    let body = openai::request_body(
        &openai::BodyOptions {
            model: &model,
            max_completion_tokens: true,
        },
        &req,
    );
    assert_eq!(
        body["messages"][0]["content"][1]["image_url"]["url"],
        "data:image/png;base64,iVBORw0KGgo="
    );
    assert!(
        body.get("temperature").is_none(),
        "temperature: false omits it"
    );
    assert_eq!(body["max_completion_tokens"], 100);
    assert!(body.get("tools").is_none(), "no tools, no tool_choice");

    model.attachment = false;
    let body = openai::request_body(
        &openai::BodyOptions {
            model: &model,
            max_completion_tokens: false,
        },
        &req,
    );
    let text = body["messages"][0]["content"][1]["text"].as_str().unwrap();
    assert!(text.contains("does not accept images"), "{text}");
    assert_eq!(body["max_tokens"], 100);

    let mut claude = ModelInfo::unknown("claude-x");
    claude.reasoning = true;
    claude.attachment = true;
    let body = anthropic::request_body(&claude, &req);
    assert_eq!(body["thinking"]["type"], "enabled");
    assert!(
        body.get("temperature").is_none(),
        "extended thinking needs the default temperature"
    );
    assert_eq!(
        body["messages"][0]["content"][1]["source"]["media_type"],
        "image/png"
    );
    assert_eq!(body["max_tokens"], 8192);
}
