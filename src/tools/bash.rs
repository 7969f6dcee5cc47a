//! `bash`: a shell command in the workspace (`sh -c`), in its own process group so that
//! a timeout or a cancellation kills everything it started. stdin is closed; stdout and
//! stderr are merged in arrival order, streamed to the frontend as they come, and capped
//! for the model with the head and the tail kept.

use std::process::Stdio;
use std::time::Duration;

use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use super::{Action, Describe, Group, Kind, Output, Tool, ToolCx};

/// Run a shell command (`sh -c`) in the workspace root and return its exit code and output
/// (stdout and stderr together). No stdin: interactive programs fail. Long output is cut
/// in the middle. Use `timeout_ms` for commands that take long (default 2 minutes, at most
/// 10).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The command line.
    pub command: String,
    /// Give up (and kill the command) after this many milliseconds.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// What the command does, in a few words (shown to the person).
    #[serde(default)]
    pub description: Option<String>,
}

pub struct BashTool;

const MAX_TIMEOUT: Duration = Duration::from_secs(600);

impl Tool for BashTool {
    type Input = Input;
    const NAME: &'static str = "bash";
    const KIND: Kind = Kind::Execute;
    const GROUP: Group = Group::Command;

    fn describe(&self, input: &Input, _cx: &ToolCx) -> Describe {
        Describe {
            title: match &input.description {
                Some(d) if !d.trim().is_empty() => format!("{} (`{}`)", d.trim(), input.command),
                _ => format!("`{}`", input.command),
            },
            locations: Vec::new(),
            action: Action::Command {
                command: input.command.clone(),
            },
        }
    }

    fn run(&self, input: Input, cx: ToolCx) -> BoxFuture<'static, Result<Output, String>> {
        Box::pin(async move {
            let timeout = input
                .timeout_ms
                .map(Duration::from_millis)
                .unwrap_or(cx.limits.bash_timeout)
                .min(MAX_TIMEOUT);
            run_command(&input.command, timeout, &cx).await
        })
    }
}

/// Variables holding API keys: every preset's key variable, `KILN_API_KEY`, and any
/// `*_API_KEY`.
fn is_key_variable(name: &str) -> bool {
    name == "KILN_API_KEY"
        || name.ends_with("_API_KEY")
        || crate::config::PRESETS
            .iter()
            .any(|p| p.key_env.contains(&name))
}

/// Runs `command` as the tool does (process group, no stdin, capped output, keys removed);
/// also the verification gate's check commands.
pub async fn run_command(command: &str, timeout: Duration, cx: &ToolCx) -> Result<Output, String> {
    let mut cmd = tokio::process::Command::new("sh");
    // The provider keys kiln itself uses stay out of commands: a model that runs `env`
    // must not read them (they would go to the provider and into the session file).
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(is_key_variable) {
            cmd.env_remove(&name);
        }
    }
    let mut child = cmd
        .arg("-c")
        .arg(command)
        .current_dir(&cx.root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("PAGER", "cat")
        .env("GIT_PAGER", "cat")
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start sh: {e}"))?;
    let pgid = child.id();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(64);
    for reader in [
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        tokio::spawn(pump(reader, tx));
    }
    drop(tx);

    let mut out = Capped::new(cx.limits.max_output_bytes);
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut ended: Option<&str> = None;
    let mut status = None;
    let mut pipes_open = true;
    // After the command exits, what it left running in the background gets a moment to
    // finish writing, then goes with the group.
    let grace = tokio::time::sleep(Duration::from_secs(3600));
    tokio::pin!(grace);
    while pipes_open || status.is_none() {
        tokio::select! {
            chunk = rx.recv(), if pipes_open => match chunk {
                Some(bytes) => {
                    (cx.progress)(String::from_utf8_lossy(&bytes).into_owned());
                    out.push(&bytes);
                }
                None => pipes_open = false,
            },
            exit = child.wait(), if status.is_none() => {
                status = Some(exit.map_err(|e| format!("cannot wait for the command: {e}"))?);
                grace.as_mut().reset(tokio::time::Instant::now() + Duration::from_millis(200));
            }
            _ = &mut grace, if status.is_some() => break,
            _ = &mut deadline => { ended = Some("timed out"); break; }
            _ = cx.cancel.cancelled() => { ended = Some("cancelled"); break; }
        }
    }
    kill_group(pgid);
    if let Some(why) = ended {
        let _ = child.wait().await;
        let text = out.finish();
        return match why {
            "cancelled" => Err(format!("cancelled; the command was stopped\n{text}")),
            _ => Ok(Output {
                text: format!(
                    "the command timed out after {} s and was killed; output so far:\n{text}",
                    timeout.as_secs_f32()
                ),
                exit_code: None,
                is_error: true,
                ..Output::default()
            }),
        };
    }
    let Some(status) = status else {
        return Err("the command ended without an exit status".to_owned());
    };
    let code = status.code();
    let text = out.finish();
    let head = match code {
        Some(0) => String::new(),
        Some(code) => format!("exit code {code}\n"),
        None => "killed by a signal\n".to_owned(),
    };
    Ok(Output {
        text: if text.is_empty() {
            format!("{head}(no output)")
        } else {
            format!("{head}{text}")
        },
        exit_code: code,
        is_error: code != Some(0),
        ..Output::default()
    })
}

async fn pump(mut reader: Box<dyn tokio::io::AsyncRead + Send + Unpin>, tx: mpsc::Sender<Vec<u8>>) {
    let mut buf = vec![0u8; 8192];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if tx.send(buf[..n].to_vec()).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn kill_group(pgid: Option<u32>) {
    if let Some(pgid) = pgid.and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: killpg only sends a signal; a group that is gone yields ESRCH.
        unsafe {
            libc::killpg(pgid, libc::SIGKILL);
        }
    }
}

/// Keeps the first and last `max / 2` bytes of a stream and counts what fell between.
struct Capped {
    max: usize,
    head: Vec<u8>,
    tail: std::collections::VecDeque<u8>,
    dropped: usize,
}

impl Capped {
    fn new(max: usize) -> Capped {
        Capped {
            max,
            head: Vec::new(),
            tail: std::collections::VecDeque::new(),
            dropped: 0,
        }
    }

    fn push(&mut self, mut bytes: &[u8]) {
        let half = self.max / 2;
        if self.head.len() < half {
            let n = (half - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
        self.tail.extend(bytes);
        while self.tail.len() > half {
            self.tail.pop_front();
            self.dropped += 1;
        }
    }

    fn finish(self) -> String {
        let head = String::from_utf8_lossy(&self.head).into_owned();
        let tail: Vec<u8> = self.tail.into_iter().collect();
        let tail = String::from_utf8_lossy(&tail);
        if self.dropped == 0 {
            format!("{head}{tail}")
        } else {
            format!(
                "{head}\n[… {} bytes of output left out …]\n{tail}",
                self.dropped
            )
        }
    }
}
