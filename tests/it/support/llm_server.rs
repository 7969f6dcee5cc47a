//! A scripted model provider on 127.0.0.1: real HTTP/1.1 (keep-alive, chunked bodies),
//! replaying scripted replies in order and recording every request. Faults are replies:
//! an error status with headers, a stream cut off mid-way, a stream that goes silent.
//! Shared with `benches/llm_stream.rs`, which includes this file by path.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone)]
pub enum Reply {
    /// A complete response with a `Content-Length` body.
    Status {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// `200 text/event-stream`, chunked: each piece is written (and flushed) after its
    /// pause.
    Stream { pieces: Vec<Piece>, end: End },
    /// Reads the request and sends nothing for this long, then closes the connection.
    Stall(Duration),
}

#[derive(Clone)]
pub struct Piece {
    pub bytes: Vec<u8>,
    pub pause: Duration,
}

#[derive(Clone)]
pub enum End {
    /// The terminating chunk; the connection stays open for the next request.
    Complete,
    /// The socket is closed mid-body (no terminating chunk).
    Cut,
    /// Nothing more is sent for this long, then the socket is closed.
    Hang(Duration),
}

impl Reply {
    pub fn json(status: u16, body: &str) -> Reply {
        Reply::Status {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_owned(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        if let Reply::Status { headers, .. } = &mut self {
            headers.push((name.to_owned(), value.to_owned()));
        }
        self
    }

    /// Replays `bytes` in pieces of `piece_len` bytes (splitting lines, `\r\n` and UTF-8
    /// characters wherever they fall), with no pauses.
    pub fn sse_bytes(bytes: &[u8], piece_len: usize) -> Reply {
        Reply::Stream {
            pieces: bytes
                .chunks(piece_len.max(1))
                .map(|c| Piece {
                    bytes: c.to_vec(),
                    pause: Duration::ZERO,
                })
                .collect(),
            end: End::Complete,
        }
    }

    pub fn sse_fixture(name: &str, piece_len: usize) -> Reply {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/llm")
            .join(name);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Reply::sse_bytes(&bytes, piece_len)
    }

    pub fn ending(mut self, new_end: End) -> Reply {
        if let Reply::Stream { end, .. } = &mut self {
            *end = new_end;
        }
        self
    }

    /// Keeps only the first `n` pieces.
    pub fn truncated(mut self, n: usize) -> Reply {
        if let Reply::Stream { pieces, .. } = &mut self {
            pieces.truncate(n);
        }
        self
    }
}

#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub at: Instant,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[derive(Default)]
struct Shared {
    replies: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<Recorded>>,
    /// When each stream piece finished writing (for latency measurements).
    piece_times: Mutex<Vec<Instant>>,
    /// When a write failed because the client had gone.
    disconnects: Mutex<Vec<Instant>>,
    fallback: Mutex<Option<Reply>>,
    /// Drop request bodies after reading them (long benchmarks would keep gigabytes).
    forget_bodies: std::sync::atomic::AtomicBool,
}

pub struct ScriptedServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ScriptedServer {
    pub async fn start(replies: Vec<Reply>) -> ScriptedServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        shared.replies.lock().unwrap().extend(replies);
        let accept_shared = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let _ = socket.set_nodelay(true);
                tokio::spawn(serve(socket, accept_shared.clone()));
            }
        });
        ScriptedServer { addr, shared, task }
    }

    /// The `/v1` base URL to put in a provider's `baseURL`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn push(&self, reply: Reply) {
        self.shared.replies.lock().unwrap().push_back(reply);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn piece_times(&self) -> Vec<Instant> {
        self.shared.piece_times.lock().unwrap().clone()
    }

    pub fn disconnects(&self) -> Vec<Instant> {
        self.shared.disconnects.lock().unwrap().clone()
    }

    /// Answers every request with `reply` once the script runs out.
    pub fn set_fallback(&self, reply: Reply) {
        *self.shared.fallback.lock().unwrap() = Some(reply);
    }

    /// Keeps only the method, path, headers and time of each request from now on.
    pub fn forget_bodies(&self) {
        self.shared
            .forget_bodies
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn replies_left(&self) -> usize {
        self.shared.replies.lock().unwrap().len()
    }
}

async fn serve(mut socket: TcpStream, shared: Arc<Shared>) {
    let mut buf = Vec::with_capacity(8192);
    loop {
        let Some(request) = read_request(&mut socket, &mut buf).await else {
            return;
        };
        let mut request = request;
        if shared
            .forget_bodies
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            request.body = String::new();
        }
        shared.requests.lock().unwrap().push(request);
        let reply = shared.replies.lock().unwrap().pop_front();
        let reply = reply.or_else(|| shared.fallback.lock().unwrap().clone());
        let reply = reply.unwrap_or_else(|| {
            Reply::json(
                500,
                r#"{"error":{"message":"the scripted server has no reply left"}}"#,
            )
        });
        let keep_going = match reply {
            Reply::Status {
                status,
                headers,
                body,
            } => {
                let mut head = format!(
                    "HTTP/1.1 {status} {}\r\ncontent-length: {}\r\n",
                    reason(status),
                    body.len()
                );
                for (k, v) in headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                socket.write_all(head.as_bytes()).await.is_ok()
                    && socket.write_all(body.as_bytes()).await.is_ok()
            }
            Reply::Stall(wait) => {
                tokio::time::sleep(wait).await;
                false
            }
            Reply::Stream { pieces, end } => {
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                for piece in pieces {
                    if !piece.pause.is_zero() {
                        tokio::time::sleep(piece.pause).await;
                    }
                    let mut frame = format!("{:x}\r\n", piece.bytes.len()).into_bytes();
                    frame.extend_from_slice(&piece.bytes);
                    frame.extend_from_slice(b"\r\n");
                    if socket.write_all(&frame).await.is_err() {
                        shared.disconnects.lock().unwrap().push(Instant::now());
                        return;
                    }
                    shared.piece_times.lock().unwrap().push(Instant::now());
                }
                match end {
                    End::Complete => socket.write_all(b"0\r\n\r\n").await.is_ok(),
                    End::Cut => false,
                    End::Hang(wait) => {
                        tokio::time::sleep(wait).await;
                        false
                    }
                }
            }
        };
        if !keep_going {
            return;
        }
    }
}

async fn read_request(socket: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Recorded> {
    let header_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        let mut chunk = [0u8; 8192];
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let path = first.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let body_start = header_end + 4;
    while buf.len() < body_start + len {
        let mut chunk = [0u8; 8192];
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[body_start..body_start + len]).into_owned();
    buf.drain(..body_start + len);
    Some(Recorded {
        method,
        path,
        headers,
        body,
        at: Instant::now(),
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
