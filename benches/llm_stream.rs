//! End to end over loopback: the scripted provider (the test suite's, included by path)
//! streams OpenAI chunks to kiln's real client, which parses them and emits events.
//!
//! Prints, for the same stream in the same run:
//! - throughput: deltas/s through kiln (HTTP + SSE + decode + channel) against a raw
//!   reference that only reads the HTTP body chunks with reqwest;
//! - added latency: from the server finishing the write of a chunk to kiln emitting its
//!   event (p50/p99), against the same for the raw reference.
//!
//! Run: `cargo bench --bench llm_stream`. Targets: ≥ 100,000 deltas/s; p99 < 1 ms.

#[path = "../tests/it/support/env.rs"]
mod env;
#[path = "../tests/it/support/llm_server.rs"]
mod llm_server;

use std::time::{Duration, Instant};

use env::MapEnv;
use kiln::config::{self};
use kiln::llm::{Client, CompletionEvent, Request, RetryPolicy, Target};
use llm_server::{End, Piece, Reply, ScriptedServer};
use tokio_util::sync::CancellationToken;

const N_THROUGHPUT: usize = 200_000;
const N_LATENCY: usize = 2_000;

fn chunk(i: usize) -> Vec<u8> {
    format!(
        "data: {{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1763800000,\"model\":\"bench-1\",\"system_fingerprint\":\"fp_bench\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" w{i}\"}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n"
    )
    .into_bytes()
}

fn stream(n: usize, pause: Duration) -> Reply {
    let mut pieces: Vec<Piece> = (0..n)
        .map(|i| Piece {
            bytes: chunk(i),
            pause,
        })
        .collect();
    pieces.push(Piece {
        bytes: b"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n".to_vec(),
        pause: Duration::ZERO,
    });
    Reply::Stream {
        pieces,
        end: End::Complete,
    }
}

fn target(server: &ScriptedServer) -> Target {
    let content = format!(
        r#"{{"provider":{{"bench":{{"type":"openai-compatible","options":{{"baseURL":"{}"}}}}}},"model":"bench/bench-1"}}"#,
        server.base_url()
    );
    let loaded = config::load(&config::LoadOptions {
        project_dir: std::path::PathBuf::from("/nonexistent"),
        global_dir: None,
        env: &MapEnv::new(&[("KILN_CONFIG_CONTENT", &content)]),
    });
    Target::from_config(&loaded.config, loaded.config.model.as_ref().unwrap()).unwrap()
}

/// kiln: returns the receive time of every text delta.
async fn through_kiln(client: &Client, target: &Target) -> Vec<Instant> {
    let mut rx = client.stream(
        target,
        std::sync::Arc::new(Request::default()),
        CancellationToken::new(),
    );
    let mut times = Vec::with_capacity(N_THROUGHPUT);
    while let Some(event) = rx.recv().await {
        match event {
            CompletionEvent::TextDelta(_) => times.push(Instant::now()),
            CompletionEvent::Error(err) => panic!("{err}"),
            _ => {}
        }
    }
    times
}

/// Reference: the same HTTP body read chunk by chunk with no parsing; returns the
/// receive time of each body chunk.
async fn raw(url: &str) -> Vec<Instant> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let mut response = http
        .post(format!("{url}/chat/completions"))
        .body("{}")
        .send()
        .await
        .unwrap();
    let mut times = Vec::new();
    while let Some(_bytes) = response.chunk().await.unwrap() {
        times.push(Instant::now());
    }
    times
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn latencies(written: &[Instant], received: &[Instant]) -> Vec<Duration> {
    let mut lat: Vec<Duration> = written
        .iter()
        .zip(received)
        .map(|(w, r)| r.saturating_duration_since(*w))
        .collect();
    lat.sort();
    lat
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = Client::new(RetryPolicy::default()).unwrap();
        println!("end to end over loopback ({} deltas, one SSE event per HTTP chunk)", N_THROUGHPUT);
        for round in 0..3 {
            let server = ScriptedServer::start(vec![stream(N_THROUGHPUT, Duration::ZERO)]).await;
            let start = Instant::now();
            let n = through_kiln(&client, &target(&server)).await.len();
            let kiln_rate = n as f64 / start.elapsed().as_secs_f64();
            assert_eq!(n, N_THROUGHPUT);

            let server = ScriptedServer::start(vec![stream(N_THROUGHPUT, Duration::ZERO)]).await;
            let start = Instant::now();
            let chunks = raw(&server.base_url()).await.len();
            let raw_rate = N_THROUGHPUT as f64 / start.elapsed().as_secs_f64();
            println!(
                "  round {round}: kiln {:>9.0} deltas/s | raw body read {:>9.0} chunks/s ({chunks} reads) | kiln/raw {:.2}",
                kiln_rate,
                raw_rate,
                kiln_rate / raw_rate
            );
        }

        println!("added latency, server write done → event ({N_LATENCY} chunks, 500 µs apart)");
        for round in 0..3 {
            let server = ScriptedServer::start(vec![stream(N_LATENCY, Duration::from_micros(500))]).await;
            let received = through_kiln(&client, &target(&server)).await;
            let kiln = latencies(&server.piece_times(), &received);

            let server = ScriptedServer::start(vec![stream(N_LATENCY, Duration::from_micros(500))]).await;
            let received = raw(&server.base_url()).await;
            let reference = latencies(&server.piece_times(), &received);
            println!(
                "  round {round}: kiln p50 {:>6.1} µs p99 {:>6.1} µs max {:>7.1} µs | raw p50 {:>6.1} µs p99 {:>6.1} µs",
                percentile(&kiln, 0.5).as_secs_f64() * 1e6,
                percentile(&kiln, 0.99).as_secs_f64() * 1e6,
                kiln.last().unwrap().as_secs_f64() * 1e6,
                percentile(&reference, 0.5).as_secs_f64() * 1e6,
                percentile(&reference, 0.99).as_secs_f64() * 1e6,
            );
        }
    });
}
