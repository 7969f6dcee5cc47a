//! Decoding OpenAI chat-completion streams: SSE parsing, the lenient chunk types and
//! tool-call merging, over recorded streams. Reported as chunks (SSE events) per second
//! on one core; the target is 500,000.
//!
//! Inputs: the recorded OpenAI streams of the shared corpus when this checkout has it next
//! to it (`../shared/fixtures/llm-streams`, or `KILN_LLM_CORPUS`), and kiln's own
//! fixtures. Run: `cargo bench --bench llm_decode`.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kiln::llm::{decode_all, openai, sse::SseParser};

fn inputs() -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = std::env::var_os("KILN_LLM_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/fixtures/llm-streams"));
    let mut out = Vec::new();
    for name in [
        "openai-chat-text-include-usage.sse",
        "openai-chat-parallel-tool-calls.sse",
    ] {
        if let Ok(bytes) = std::fs::read(corpus.join(name)) {
            out.push((format!("recorded/{name}"), bytes));
        }
    }
    for name in ["openai-tool-call-split.sse", "openai-text-crlf.sse"] {
        let bytes = std::fs::read(root.join("fixtures/llm").join(name)).unwrap();
        out.push((format!("fixture/{name}"), bytes));
    }
    out
}

fn count_events(bytes: &[u8]) -> u64 {
    let mut n = 0;
    let mut parser = SseParser::new();
    parser.feed(bytes, &mut |_| n += 1);
    parser.finish(&mut |_| n += 1);
    n
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("openai_decode");
    for (name, bytes) in inputs() {
        // One decode of the whole stream per iteration; throughput in chunks.
        group.throughput(Throughput::Elements(count_events(&bytes)));
        group.bench_function(&name, |b| {
            b.iter(|| {
                let events = decode_all(&mut openai::Decoder::new("bench"), black_box(&bytes));
                black_box(events.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
