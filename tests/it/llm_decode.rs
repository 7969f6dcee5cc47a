//! The stream decoders over recorded streams: our own fixtures (`fixtures/llm/`) and, when
//! present, the shared corpus of real provider recordings. Each stream is decoded whole
//! and re-decoded with the bytes split at many points; the events must not change.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use kiln::config;
use kiln::llm::error::{ErrorContext, classify};
use kiln::llm::{CompletionEvent, Decoder, anthropic, decode_all, openai, sse::SseParser};

use crate::support::MapEnv;

fn decoder_for(name: &str) -> Box<dyn Decoder> {
    if name.starts_with("anthropic-") && !name.contains("openai-compat") {
        Box::new(anthropic::Decoder::new("test"))
    } else {
        Box::new(openai::Decoder::new("test"))
    }
}

/// The events in a form a person can review in a snapshot.
pub fn summarize(events: &[CompletionEvent]) -> String {
    let mut text = String::new();
    let mut reasoning = String::new();
    let (mut n_text, mut n_reasoning, mut n_args) = (0, 0, 0);
    let mut out = String::new();
    let mut lines = Vec::new();
    for (idx, event) in events.iter().enumerate() {
        let last = idx + 1 == events.len();
        match event {
            CompletionEvent::TextDelta(t) => {
                n_text += 1;
                text.push_str(t)
            }
            CompletionEvent::ReasoningDelta(t) => {
                n_reasoning += 1;
                reasoning.push_str(t)
            }
            CompletionEvent::ReasoningSignature(s) => lines.push(format!("signature: {s}")),
            CompletionEvent::ToolCallStart { index, id, name } => {
                lines.push(format!("tool {index} start: {name} ({id})"))
            }
            CompletionEvent::ToolCallDelta { .. } => n_args += 1,
            CompletionEvent::ToolCallEnd {
                index,
                id,
                name,
                arguments,
            } => lines.push(match arguments {
                Ok(args) => format!("tool {index} end: {name} ({id}) {args}"),
                Err(bad) => format!(
                    "tool {index} end: {name} ({id}) INVALID JSON ({}): {}",
                    bad.error, bad.raw
                ),
            }),
            CompletionEvent::Usage(u) => lines.push(format!("usage: {u:?}")),
            CompletionEvent::Retrying { attempt, .. } => lines.push(format!("retrying: {attempt}")),
            CompletionEvent::Warning(w) => lines.push(format!("warning: {w}")),
            CompletionEvent::Finish(reason) => {
                assert!(last, "Finish must be the last event");
                lines.push(format!("finish: {reason:?}"))
            }
            CompletionEvent::Error(err) => {
                assert!(last, "Error must be the last event");
                lines.push(format!("error: {err}"))
            }
        }
    }
    assert!(
        matches!(
            events.last(),
            Some(CompletionEvent::Finish(_) | CompletionEvent::Error(_))
        ),
        "a stream ends with Finish or Error"
    );
    writeln!(out, "text: {text:?}").unwrap();
    if !reasoning.is_empty() {
        writeln!(out, "reasoning: {reasoning:?}").unwrap();
    }
    writeln!(
        out,
        "deltas: text {n_text}, reasoning {n_reasoning}, tool arguments {n_args}"
    )
    .unwrap();
    for line in lines {
        writeln!(out, "{line}").unwrap();
    }
    out
}

fn decode_split(name: &str, bytes: &[u8], cuts: &[usize]) -> Vec<CompletionEvent> {
    let mut decoder = decoder_for(name);
    let mut parser = SseParser::new();
    let mut out = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain([bytes.len()].iter()) {
        parser.feed(&bytes[start..cut], &mut |ev| decoder.event(ev, &mut out));
        start = cut;
    }
    parser.finish(&mut |ev| decoder.event(ev, &mut out));
    decoder.end(&mut out);
    out
}

/// Decodes `path` whole, then split at many points and byte by byte; returns the summary.
fn check_stream(path: &Path) -> String {
    let name = path.file_name().unwrap().to_str().unwrap();
    let bytes = std::fs::read(path).unwrap();
    let whole = decode_all(decoder_for(name).as_mut(), &bytes);
    let n = bytes.len();
    for k in 1..40 {
        let cut = n * k / 40;
        let split = decode_split(name, &bytes, &[cut]);
        assert_eq!(
            split, whole,
            "{name}: split at byte {cut} changed the events"
        );
    }
    let every: Vec<usize> = (1..n).collect();
    assert_eq!(
        decode_split(name, &bytes, &every),
        whole,
        "{name}: byte-by-byte feeding changed the events"
    );
    summarize(&whole)
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    out
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/llm")
}

/// The shared corpus of real recordings, if this checkout has it next to it.
fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("KILN_LLM_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/llm-streams")
        });
    dir.is_dir().then_some(dir)
}

#[test]
fn own_fixtures_decode_to_expected_events() {
    for path in files(&fixture_dir(), "sse") {
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let summary = check_stream(&path);
        insta::assert_snapshot!(format!("stream-{name}"), summary);
    }
}

#[test]
fn recorded_provider_streams_decode_to_expected_events() {
    let Some(dir) = corpus_dir() else {
        eprintln!("shared stream corpus not found; set KILN_LLM_CORPUS to run this test");
        return;
    };
    let streams = files(&dir, "sse");
    assert!(
        streams.len() >= 20,
        "corpus at {} looks incomplete",
        dir.display()
    );
    for path in streams {
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let summary = check_stream(&path);
        assert!(
            !summary.contains("warning:"),
            "{name}: a real recording produced a warning:\n{summary}"
        );
        insta::assert_snapshot!(format!("corpus-{name}"), summary);
    }
    // NDJSON is Ollama's native /api protocol; kiln speaks Ollama's OpenAI-compatible
    // /v1 (covered by ollama-v1-parallel-tool-calls.sse), so these are not decoded.
    for path in files(&dir, "ndjson") {
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with("ollama-api-"),
            "unexpected NDJSON stream {name}"
        );
    }
}

fn error_message(provider_id: &str, status: u16, body: &str) -> String {
    let env = MapEnv::new(&[
        ("OPENAI_API_KEY", "sk-test-abcdef123456"),
        ("ANTHROPIC_API_KEY", "sk-ant-test-0987654321"),
    ]);
    let loaded = config::load(&config::LoadOptions {
        project_dir: PathBuf::from("/nonexistent-project"),
        global_dir: None,
        env: &env,
    });
    let provider = loaded.config.provider(provider_id).unwrap();
    let cx = ErrorContext {
        provider,
        model: "gpt-4.1",
        context_limit: Some(128_000),
    };
    let message = classify(&cx, status, body, None, 1).to_string();
    assert!(
        !message.contains("sk-test-abcdef123456"),
        "the key leaked: {message}"
    );
    assert!(
        !message.contains("sk-ant-test-0987654321"),
        "the key leaked: {message}"
    );
    message
}

fn status_of(name: &str) -> u16 {
    name.trim_end_matches(".json")
        .split('-')
        .find_map(|part| part.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no status in {name}"))
}

#[test]
fn error_bodies_become_messages_that_say_what_to_do() {
    let mut dirs = vec![fixture_dir()];
    dirs.extend(corpus_dir());
    let mut out = String::new();
    for dir in dirs {
        for path in files(&dir, "json") {
            let name = path.file_name().unwrap().to_str().unwrap();
            let provider = if name.starts_with("anthropic") {
                "anthropic"
            } else if name.starts_with("openrouter") {
                "openrouter"
            } else {
                "openai"
            };
            let body = std::fs::read_to_string(&path).unwrap();
            let message = error_message(provider, status_of(name), &body);
            if dir == fixture_dir() {
                writeln!(out, "{name}:\n  {message}").unwrap();
            }
            let expect = match status_of(name) {
                401 => "API key",
                404 => "kiln models --refresh",
                429 => "rate limiting",
                400 => "context window",
                _ => "",
            };
            assert!(message.contains(expect), "{name}: {message}");
        }
    }
    insta::assert_snapshot!(out);
    // The key an OpenAI 401 body echoes is scrubbed even when the body shows it whole.
    let echoed = error_message(
        "openai",
        401,
        r#"{"error":{"message":"Incorrect API key provided: sk-test-abcdef123456.","code":"invalid_api_key"}}"#,
    );
    assert!(echoed.contains("[redacted]"), "{echoed}");
    assert!(echoed.contains("$OPENAI_API_KEY"), "{echoed}");
}
