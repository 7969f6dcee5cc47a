//! The editor frontends' own costs (the release binary, driven over its real stdio):
//!
//! 1. Spawn → `initialize` answered, for `kiln acp` and `kiln lsp` (median and p90 of 20
//!    spawns), and the resident memory of the idle server afterwards.
//! 2. Streaming: a scripted model streams 20,000 text deltas; the time from the prompt to
//!    its answer over `kiln acp` (`session/update`s) and `kiln lsp` (`kiln/sessionUpdate`s),
//!    minus the time the same stream takes to download in this process (the reference,
//!    measured in the same minute), per delta: kiln's added cost per delta. Deltas that
//!    queue up while the client is busy are forwarded merged (the same text in fewer
//!    messages); the line says how many updates carried them.
//!
//! Run: `cargo bench --bench editors`. Targets: initialize < 15 ms, idle RSS < 15 MB,
//! < 5 µs per delta. The peers, measured on these machines: `kilo acp` answers
//! initialize after 3.3–3.9 s with ~550 MB resident, `opencode acp` after 1.4–2.3 s with
//! ~320 MB, and they add 50–280 µs per delta.

#[path = "../tests/it/support/llm_server.rs"]
mod llm_server;
#[path = "../tests/it/support/script.rs"]
mod script;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use llm_server::{Reply, ScriptedServer};
use serde_json::{Value, json};

const DELTAS: usize = 20_000;

fn kiln(mode: &str, dir: &Path, endpoint: Option<&str>) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
    cmd.arg(mode)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.join("home"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("KILN_DATA_DIR", dir.join("data"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(url) = endpoint {
        cmd.env("KILN_ENDPOINT", url)
            .env("KILN_MODEL", "scripted-coder")
            .env("KILN_API_KEY", "sk-bench");
    }
    cmd.spawn().expect("kiln starts")
}

/// One side of a connection: newline-delimited JSON (ACP) or Content-Length frames (LSP).
struct Wire {
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    framed: bool,
    last: String,
}

impl Wire {
    fn new(child: &mut Child, framed: bool) -> Wire {
        Wire {
            stdin: child.stdin.take().unwrap(),
            stdout: BufReader::with_capacity(1 << 16, child.stdout.take().unwrap()),
            framed,
            last: String::new(),
        }
    }

    fn send(&mut self, message: &Value) {
        let body = message.to_string();
        if self.framed {
            write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        } else {
            writeln!(self.stdin, "{body}").unwrap();
        }
        self.stdin.flush().unwrap();
    }

    /// The next message's raw text.
    fn recv(&mut self) -> String {
        if !self.framed {
            let mut line = String::new();
            self.stdout.read_line(&mut line).unwrap();
            assert!(!line.is_empty(), "kiln closed its output");
            return line;
        }
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            self.stdout.read_line(&mut header).unwrap();
            assert!(!header.is_empty(), "kiln closed its output");
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some(v) = header.strip_prefix("Content-Length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0u8; length];
        self.stdout.read_exact(&mut body).unwrap();
        String::from_utf8(body).unwrap()
    }

    /// Reads until the response to `id`; counts the messages containing `marker` on the way
    /// and keeps the last one.
    fn until_response(&mut self, id: u64, marker: &str) -> (Value, usize) {
        let mut seen = 0;
        let id_key = format!("\"id\":{id}");
        loop {
            let text = self.recv();
            if text.contains(marker) {
                seen += 1;
                self.last = text;
                continue;
            }
            if text.contains(&id_key) {
                let v: Value = serde_json::from_str(&text).unwrap();
                if v.get("method").is_none() && v["id"] == id {
                    return (v, seen);
                }
            }
        }
    }
}

fn initialize(mode: &str) -> Value {
    if mode == "acp" {
        json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": { "protocolVersion": 1, "clientCapabilities": {} } })
    } else {
        json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": { "processId": null, "rootUri": null, "capabilities": {} } })
    }
}

fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn startup(dir: &Path) {
    for mode in ["acp", "lsp"] {
        let mut times = Vec::new();
        let mut rss = Vec::new();
        for i in 0..20 {
            let started = Instant::now();
            let mut child = kiln(mode, dir, None);
            let mut wire = Wire::new(&mut child, mode == "lsp");
            wire.send(&initialize(mode));
            let (reply, _) = wire.until_response(1, "\u{0}");
            times.push(started.elapsed());
            assert!(reply.get("result").is_some(), "{reply}");
            if i < 3 {
                std::thread::sleep(Duration::from_millis(500));
                rss.push(rss_mb(child.id()));
            }
            drop(wire);
            let _ = child.kill();
            let _ = child.wait();
        }
        times.sort();
        rss.sort_by(f64::total_cmp);
        println!(
            "kiln {mode}: spawn → initialize answered: median {:.1} ms, p90 {:.1} ms (20 spawns); idle RSS {:.1} MB (median of 3)",
            ms(times[times.len() / 2]),
            ms(times[times.len() * 9 / 10]),
            rss[rss.len() / 2],
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn stream_body() -> Vec<u8> {
    let text: String = (0..DELTAS).map(|i| format!("w{i} ")).collect();
    script::body(&text, &[], Some((100, DELTAS as u64))).into_bytes()
}

/// The time to download the stream once, in this process (the reference).
fn reference(rt: &tokio::runtime::Runtime, server: &ScriptedServer) -> Duration {
    rt.block_on(async {
        let client = reqwest::Client::new();
        let started = Instant::now();
        let mut response = client
            .post(format!("{}/chat/completions", server.base_url()))
            .body("{}")
            .send()
            .await
            .unwrap();
        let mut n = 0usize;
        while let Some(chunk) = response.chunk().await.unwrap() {
            n += chunk.len();
        }
        assert!(n > DELTAS);
        started.elapsed()
    })
}

fn streaming(rt: &tokio::runtime::Runtime, dir: &Path) {
    let body = stream_body();
    let server = rt.block_on(ScriptedServer::start(Vec::new()));
    server.set_fallback(Reply::sse_bytes(&body, 16 << 10));
    let project = dir.join("project");
    std::fs::create_dir_all(&project).unwrap();
    let project_uri = format!("file://{}", project.display());
    for mode in ["acp", "lsp"] {
        let mut added = Vec::new();
        for _ in 0..5 {
            let base = reference(rt, &server);
            let mut child = kiln(mode, dir, Some(&server.base_url()));
            let mut wire = Wire::new(&mut child, mode == "lsp");
            let (new, prompt, marker) = if mode == "acp" {
                wire.send(&initialize(mode));
                wire.until_response(1, "\u{0}");
                (
                    json!({ "jsonrpc": "2.0", "id": 2, "method": "session/new", "params": { "cwd": project, "mcpServers": [] } }),
                    "session/prompt",
                    "agent_message_chunk",
                )
            } else {
                wire.send(&json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                    "processId": null, "rootUri": project_uri, "capabilities": { "experimental": { "kiln": {} } } } }));
                wire.until_response(1, "\u{0}");
                wire.send(&json!({ "jsonrpc": "2.0", "method": "initialized", "params": {} }));
                (
                    json!({ "jsonrpc": "2.0", "id": 2, "method": "kiln/newSession", "params": { "cwd": project } }),
                    "kiln/prompt",
                    "agent_message_chunk",
                )
            };
            wire.send(&new);
            let (session, _) = wire.until_response(2, "\u{0}");
            let id = session["result"]["sessionId"].as_str().unwrap().to_owned();
            let started = Instant::now();
            wire.send(
                &json!({ "jsonrpc": "2.0", "id": 3, "method": prompt, "params": {
                "sessionId": id, "prompt": [{ "type": "text", "text": "stream" }] } }),
            );
            let (done, seen) = wire.until_response(3, marker);
            let took = started.elapsed();
            assert!(done.get("result").is_some(), "{done}");
            let last_word = format!("w{} ", DELTAS - 1);
            assert!(
                wire.last.contains(&last_word),
                "the whole text reached the client"
            );
            added.push((took.saturating_sub(base), took, base, seen));
            drop(wire);
            let _ = child.kill();
            let _ = child.wait();
        }
        added.sort();
        let (extra, took, base, seen) = added[added.len() / 2];
        println!(
            "kiln {mode}: {DELTAS} deltas in {:.0} ms (download alone {:.0} ms), forwarded in {seen} updates: added {:.2} µs per delta (median of 5)",
            ms(took),
            ms(base),
            extra.as_secs_f64() * 1e6 / DELTAS as f64,
        );
    }
}

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    if wanted("startup") {
        startup(dir.path());
    }
    if wanted("streaming") {
        streaming(&rt, dir.path());
    }
}
