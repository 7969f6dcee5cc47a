//! The agent's own costs, against the scripted provider (the test suite's, included by
//! path) answering instantly on 127.0.0.1:
//!
//! 1. kiln's time per model round trip: from the server finishing a response (a `read`
//!    tool call) to the next request arriving: decoding the tail, the policy, running the
//!    tool, persisting, building and sending the next request (p50/p99 over 200 trips).
//! 2. `kiln run` (the release binary) on a three-tool-call task (read, grep, edit, then
//!    the answer): wall time and peak RSS of the process, median of 10 runs.
//! 3. A 1,000-turn session in one process with compaction on a small window: peak RSS.
//!
//! Run: `cargo bench --bench agent`. Targets: p50 < 1 ms; < 100 ms and < 30 MB; < 60 MB.

#[path = "../tests/it/support/env.rs"]
mod env;
#[path = "../tests/it/support/llm_server.rs"]
mod llm_server;
#[path = "../tests/it/support/script.rs"]
mod script;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use env::MapEnv;
use futures::future::BoxFuture;
use kiln::agent::{
    Agent, NewSession, Outcome, PermissionRequest, Policy, Port, Prompt, Session, SessionHandle,
    Update,
};
use kiln::config::{self};
use kiln::llm::{Client, RetryPolicy, Target};
use kiln::tools::{DiskFiles, Files};
use llm_server::{Reply, ScriptedServer};
use serde_json::json;

/// Drops updates (counting compactions), allows everything.
#[derive(Default)]
struct NullPort {
    compactions: AtomicUsize,
    /// When each usage update (the end of a response) and each completed tool call
    /// arrived, for the breakdown of a round trip.
    marks: std::sync::Mutex<Vec<(&'static str, Instant)>>,
}

impl Port for NullPort {
    fn update(&self, _session_id: &str, update: Update) {
        let mark = match &update {
            Update::Usage(_) => Some("response end"),
            Update::ToolCall(_) => Some("call announced"),
            Update::ToolCallUpdate(u)
                if u.status == Some(kiln::agent::update::ToolStatus::Completed) =>
            {
                Some("call done")
            }
            _ => None,
        };
        if let Some(mark) = mark {
            self.marks.lock().unwrap().push((mark, Instant::now()));
        }
        if let Update::Notice { message, .. } = &update
            && message.starts_with("compacted")
        {
            self.compactions.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn request_permission(&self, _request: PermissionRequest) -> BoxFuture<'static, Outcome> {
        Box::pin(async { Outcome::AllowOnce })
    }
    fn files(&self, _session_id: &str) -> Arc<dyn Files> {
        Arc::new(DiskFiles)
    }
}

fn agent(
    server: &ScriptedServer,
    limit: &str,
    port: Arc<NullPort>,
    max_turn_requests: u32,
    sessions_dir: &Path,
) -> (Arc<Agent>, Target) {
    let content = format!(
        r#"{{ "compaction": {{ "threshold_percent": 80 }}, "provider": {{ "bench": {{ "type": "openai-compatible", "options": {{ "baseURL": "{}", "apiKey": "k", "max_retries": 0 }}, "models": {{ "m": {{ "limit": {limit} }} }} }} }} }}"#,
        server.base_url()
    );
    let loaded = config::load(&config::LoadOptions {
        project_dir: std::env::temp_dir(),
        global_dir: None,
        env: &MapEnv::new(&[("KILN_CONFIG_CONTENT", &content)]),
    });
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let target =
        Target::from_config(&loaded.config, &config::ModelRef::parse("bench/m").unwrap()).unwrap();
    let (mut agent, problems) = Agent::new(
        loaded.config,
        Client::new(RetryPolicy::default()).unwrap(),
        port,
    );
    assert!(problems.is_empty(), "{problems:?}");
    agent.max_turn_requests = max_turn_requests;
    agent.sessions_dir = Some(sessions_dir.to_path_buf());
    agent.audit_dir = Some(sessions_dir.join("logs"));
    (Arc::new(agent), target)
}

/// A code-mode session in `root`, owned by its task.
fn start(agent: &Arc<Agent>, root: &Path, target: Target, policy: Policy) -> SessionHandle {
    let new = NewSession {
        root: root.to_path_buf(),
        mode: "code".into(),
        target,
        policy,
    };
    let (session, _) = Session::create(agent, new).unwrap();
    SessionHandle::spawn(agent.clone(), session)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// This process's peak RSS (`VmHWM`: getrusage's maxrss would include what the process
/// held before exec, i.e. cargo's memory).
fn peak_rss_self_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn round_trips(rt: &tokio::runtime::Runtime) {
    const N: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("small.rs"),
        "fn main() {\n    println!(\"hi\");\n}\n",
    )
    .unwrap();
    let mut replies: Vec<Reply> = (0..N)
        .map(|i| {
            Reply::sse_bytes(
                script::body(
                    "",
                    &[script::call(
                        &format!("c{i}"),
                        "read",
                        json!({ "path": "small.rs" }),
                    )],
                    Some((100, 10)),
                )
                .as_bytes(),
                1 << 20,
            )
        })
        .collect();
    replies.push(Reply::sse_bytes(
        script::body("done", &[], Some((100, 1))).as_bytes(),
        1 << 20,
    ));
    let server = rt.block_on(ScriptedServer::start(replies));
    let port = Arc::new(NullPort::default());
    let (agent, target) = agent(
        &server,
        r#"{ "context": 1000000 }"#,
        port.clone(),
        (N + 10) as u32,
        &dir.path().join("data"),
    );
    let started = Instant::now();
    let result = rt.block_on(async {
        let handle = start(
            &agent,
            dir.path(),
            target,
            Policy {
                auto: true,
                ..Policy::default()
            },
        );
        handle
            .prompt(Prompt {
                text: "read small.rs many times".into(),
                ..Prompt::default()
            })
            .await
    });
    let total = started.elapsed();
    assert_eq!(
        result.stop,
        Ok(kiln::agent::StopReason::EndTurn),
        "{result:?}"
    );
    let requests = server.requests();
    let ends = server.piece_times();
    assert_eq!(requests.len(), N + 1);
    let marks = port.marks.lock().unwrap().clone();
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1e6
    };
    let nth = |name: &str| {
        marks
            .iter()
            .filter(|(m, _)| *m == name)
            .map(|(_, t)| *t)
            .collect::<Vec<_>>()
    };
    let (resp, ann, done) = (nth("response end"), nth("call announced"), nth("call done"));
    println!(
        "  breakdown (p50): server end → response end {:.0} µs, → call announced {:.0} µs, → call done {:.0} µs, → next request at server {:.0} µs",
        median(
            (0..N)
                .map(|i| resp[i].saturating_duration_since(ends[i]))
                .collect()
        ),
        median(
            (0..N)
                .map(|i| ann[i].saturating_duration_since(resp[i]))
                .collect()
        ),
        median(
            (0..N)
                .map(|i| done[i].saturating_duration_since(ann[i]))
                .collect()
        ),
        median(
            (0..N)
                .map(|i| requests[i + 1].at.saturating_duration_since(done[i]))
                .collect()
        ),
    );
    let mut gaps: Vec<Duration> = (0..N)
        .map(|i| requests[i + 1].at.saturating_duration_since(ends[i]))
        .collect();
    gaps.sort();
    println!(
        "round trip, kiln's own time (response end → next request), {N} trips with a read each: p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs (whole turn {:.0} ms; target p50 < 1 ms)",
        percentile(&gaps, 0.5).as_secs_f64() * 1e6,
        percentile(&gaps, 0.99).as_secs_f64() * 1e6,
        gaps.last().unwrap().as_secs_f64() * 1e6,
        total.as_secs_f64() * 1e3
    );
}

fn kiln_run(rt: &tokio::runtime::Runtime) {
    const RUNS: usize = 10;
    let mut walls = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..RUNS {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("p");
        std::fs::create_dir_all(project.join("src")).unwrap();
        std::fs::write(
            project.join("src/lib.rs"),
            "pub fn total(v: &[u32]) -> u32 {\n    v.iter().sum()\n}\n",
        )
        .unwrap();
        std::fs::write(
            project.join("src/main.rs"),
            "fn main() {\n    println!(\"{}\", total(&[1, 2]));\n}\n",
        )
        .unwrap();
        let server = rt.block_on(ScriptedServer::start(vec![
            Reply::sse_bytes(script::body("", &[script::call("a", "read", json!({ "path": "src/lib.rs" }))], Some((100, 10))).as_bytes(), 1 << 20),
            Reply::sse_bytes(script::body("", &[script::call("b", "grep", json!({ "pattern": "total" }))], Some((100, 10))).as_bytes(), 1 << 20),
            Reply::sse_bytes(script::body("", &[script::call("c", "edit", json!({ "path": "src/lib.rs", "old_string": "pub fn total", "new_string": "pub fn sum" }))], Some((100, 10))).as_bytes(), 1 << 20),
            Reply::sse_bytes(script::body("Renamed it.", &[], Some((100, 10))).as_bytes(), 1 << 20),
        ]));
        let base_url = server.base_url();
        let data = dir.path().join("data");
        let path = std::env::var("PATH").unwrap_or_default();
        let env = [
            ("PATH", path.as_str()),
            ("HOME", dir.path().to_str().unwrap()),
            ("KILN_DATA_DIR", data.to_str().unwrap()),
            ("KILN_ENDPOINT", base_url.as_str()),
            ("KILN_MODEL", "m"),
            ("KILN_API_KEY", "k"),
        ];
        let started = Instant::now();
        let (ok, peak) = spawn_measured(
            env!("CARGO_BIN_EXE_kiln"),
            &["run", "--auto", "rename total"],
            &env,
            &project,
        );
        walls.push(started.elapsed());
        rss.extend(peak);
        assert!(ok, "kiln run failed");
        assert!(
            std::fs::read_to_string(project.join("src/lib.rs"))
                .unwrap()
                .contains("pub fn sum")
        );
        assert_eq!(server.requests().len(), 4);
    }
    walls.sort();
    rss.sort_by(|a, b| a.total_cmp(b));
    let rss = match (rss.get(rss.len() / 2), rss.last()) {
        (Some(mid), Some(max)) => format!("peak RSS p50 {mid:.1} MB (max {max:.1})"),
        _ => "peak RSS not measured (install GNU time: apt-get install time)".to_owned(),
    };
    println!(
        "kiln run, three tool calls + answer, instant provider: wall p50 {:.1} ms (min {:.1}, max {:.1}, GNU time's fork included); {rss}; {RUNS} runs (targets < 100 ms, < 30 MB)",
        percentile(&walls, 0.5).as_secs_f64() * 1e3,
        walls[0].as_secs_f64() * 1e3,
        walls.last().unwrap().as_secs_f64() * 1e3,
    );
}

/// Runs `program args` and returns its exit status and its own peak RSS in MB. The
/// peak comes from GNU time (`/usr/bin/time -f %M`): `ru_maxrss` of a child this process
/// spawns directly would start at this process's size (Linux keeps the larger of the old
/// and the new image's peak across exec), so it would say more about the bench than
/// about kiln.
fn spawn_measured(
    program: &str,
    args: &[&str],
    env: &[(&str, &str)],
    cwd: &Path,
) -> (bool, Option<f64>) {
    let time = Path::new("/usr/bin/time");
    let rss_file = cwd.join("rss.txt");
    let mut cmd = if time.exists() {
        let mut cmd = std::process::Command::new(time);
        cmd.arg("-f")
            .arg("%M")
            .arg("-o")
            .arg(&rss_file)
            .arg(program);
        cmd
    } else {
        std::process::Command::new(program)
    };
    let status = cmd
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    let rss = std::fs::read_to_string(&rss_file)
        .ok()
        .and_then(|t| t.trim().lines().last()?.trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0);
    (status.success(), rss)
}

fn long_session(rt: &tokio::runtime::Runtime) {
    const TURNS: usize = 1000;
    let dir = tempfile::tempdir().unwrap();
    let server = rt.block_on(ScriptedServer::start(vec![]));
    server.forget_bodies();
    let answer: String = (0..60)
        .map(|i| format!("word{i} "))
        .collect::<String>()
        .repeat(4);
    server.set_fallback(Reply::sse_bytes(
        script::body(&answer, &[], None).as_bytes(),
        1 << 20,
    ));
    let port = Arc::new(NullPort::default());
    let (agent, target) = agent(
        &server,
        r#"{ "context": 32000, "output": 4000 }"#,
        port.clone(),
        10,
        &dir.path().join("data"),
    );
    let before = peak_rss_self_mb();
    let started = Instant::now();
    let n_messages = rt.block_on(async {
        let handle = start(&agent, dir.path(), target, Policy::default());
        let prompt: String =
            "please look at the next part of the plan and tell me what you think of it. "
                .repeat(20);
        for turn in 0..TURNS {
            let result = handle
                .prompt(Prompt {
                    text: format!("turn {turn}: {prompt}"),
                    ..Prompt::default()
                })
                .await;
            assert!(result.stop.is_ok(), "turn {turn}: {result:?}");
        }
        server.requests().len()
    });
    println!(
        "1,000-turn session in one process (2 KB prompts, 1.5 KB answers, 32k window): peak RSS {:.1} MB (process before: {:.1} MB), {} compactions, {} requests, {:.1} s (target < 60 MB)",
        peak_rss_self_mb(),
        before,
        port.compactions.load(Ordering::Relaxed),
        n_messages,
        started.elapsed().as_secs_f64()
    );
}

fn checkpoints() {
    use kiln::agent::checkpoint::{Checkpoints, Kind};
    const N: usize = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    for i in 0..N {
        let d = ws.join(format!("pkg{:03}/src", i / 50));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join(format!("file{i:05}.rs")),
            format!("// file {i}\n{}", "fn body() { let x = 1; }\n".repeat(30)),
        )
        .unwrap();
    }
    let cp = Checkpoints::open(&dir.path().join("data"), &ws).unwrap();
    let t = Instant::now();
    let first = cp.snapshot(Kind::Manual, "first", None).unwrap();
    let cold = t.elapsed();
    let mut snaps = Vec::new();
    let mut restores = Vec::new();
    for round in 0..5 {
        for i in 0..10 {
            let f = ws.join(format!(
                "pkg{:03}/src/file{:05}.rs",
                (i * 997) % N / 50,
                (i * 997) % N
            ));
            std::fs::write(f, format!("// changed in round {round}\n")).unwrap();
        }
        let t = Instant::now();
        cp.snapshot(Kind::AfterChange, "after", None).unwrap();
        snaps.push(t.elapsed());
        let t = Instant::now();
        let r = cp.restore(&first.id, None, None).unwrap();
        restores.push(t.elapsed());
        assert_eq!(r.written.len(), 10);
    }
    snaps.sort();
    restores.sort();
    println!(
        "checkpoint of a {N}-file workspace after 10 files changed: p50 {:.0} ms (first, cold: {:.0} ms); restore of those 10 files (with its own checkpoint first): p50 {:.0} ms (targets < 300 ms, < 1 s)",
        snaps[2].as_secs_f64() * 1e3,
        cold.as_secs_f64() * 1e3,
        restores[2].as_secs_f64() * 1e3
    );
}

fn proposal() {
    use kiln::text::diff::{Diff, DiffOptions, RenderOptions, render_unified};
    use kiln::workspace::{Identity, read_disk};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.rs");
    let old: String = (0..10_000)
        .map(|i| format!("    let value_{i} = compute({i}, \"text\");\n"))
        .collect();
    let new: String = old
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i % 200 == 7 {
                format!("{l} // changed\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&path, &old).unwrap();
    let base = read_disk(&path).unwrap().identity;
    let mut times = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        let diff = Diff::new(&old, &new, DiffOptions::default());
        let patch = render_unified(
            &diff,
            &RenderOptions {
                old_path: "big.rs",
                new_path: "big.rs",
                color: false,
            },
        );
        let now: Identity = read_disk(&path).unwrap().identity;
        assert_eq!(now, base);
        times.push(t.elapsed());
        assert_eq!(diff.n_added(), 50);
        assert!(patch.len() > 1000);
    }
    times.sort();
    println!(
        "proposal for a 10,000-line file with 50 changed lines (diff with intra-line spans + unified render + staleness check by re-reading the file): p50 {:.2} ms, max {:.2} ms (target < 5 ms)",
        times[25].as_secs_f64() * 1e3,
        times.last().unwrap().as_secs_f64() * 1e3
    );
}

fn main() {
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |name: &str| which.is_empty() || which.iter().any(|w| name.contains(w.as_str()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if want("round_trips") {
        round_trips(&rt);
    }
    if want("kiln_run") {
        kiln_run(&rt);
    }
    if want("long_session") {
        long_session(&rt);
    }
    if want("checkpoints") {
        checkpoints();
    }
    if want("proposal") {
        proposal();
    }
}
