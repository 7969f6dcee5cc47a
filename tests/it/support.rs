//! Test support: an LSP client that drives the real `kiln` binary (or the same server
//! in-process), a seeded random generator, and small helpers.

pub mod env;
pub mod llm_server;
pub mod rng;
pub mod script;
pub mod workspace;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};

pub use env::MapEnv;
pub use rng::Rng;

/// How long any single wait for the server may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Checks a file generated from the code against the copy in the repository;
/// `KILN_UPDATE_DOCS=1 cargo test docs` rewrites the copies.
pub fn assert_generated(relative: &str, generated: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    if std::env::var_os("KILN_UPDATE_DOCS").is_some() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(&path, generated).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == generated,
        "{relative} is out of date: run `KILN_UPDATE_DOCS=1 cargo test docs`"
    );
}

pub fn kiln_bin() -> &'static str {
    env!("CARGO_BIN_EXE_kiln")
}

/// Wraps a body in a `Content-Length` header.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

/// How the test client answers server-to-client requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerRequests {
    /// Answer with a `null` result.
    Accept,
    /// Answer with an error.
    Refuse,
}

#[derive(Clone, Debug)]
pub struct Options {
    /// `initialize` params; `None` skips initialization.
    pub initialize: Option<Value>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub server_requests: ServerRequests,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            initialize: Some(json!({ "processId": null, "rootUri": null, "capabilities": {} })),
            args: Vec::new(),
            env: Vec::new(),
            server_requests: ServerRequests::Accept,
        }
    }
}

impl Options {
    pub fn with_encodings(encodings: &[&str]) -> Self {
        Options {
            initialize: Some(json!({
                "processId": null,
                "rootUri": null,
                "capabilities": { "general": { "positionEncodings": encodings } },
            })),
            ..Options::default()
        }
    }

    pub fn uninitialized() -> Self {
        Options {
            initialize: None,
            ..Options::default()
        }
    }
}

enum Server {
    Process(Child),
    InProcess(Option<JoinHandle<i32>>),
}

/// An LSP client for tests. It initializes the server itself; on drop it sends
/// `shutdown`/`exit`, checks that the server exits with 0, and asserts that no server
/// message was left unread.
pub struct TestClient {
    writer: Option<Box<dyn Write + Send>>,
    incoming: mpsc::Receiver<Value>,
    server: Server,
    next_id: i64,
    unread: VecDeque<Value>,
    server_requests: ServerRequests,
    /// Requests the server sent us, in order.
    pub received_requests: Vec<Value>,
    /// The `initialize` result.
    pub init_result: Value,
    finished: bool,
}

fn read_frames(reader: impl Read, tx: mpsc::Sender<Value>) {
    let mut reader = BufReader::new(reader);
    loop {
        let mut length = None;
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse::<usize>().ok();
            }
        }
        let length = length.expect("server sent a header without Content-Length");
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let value: Value = serde_json::from_slice(&body).expect("server sent invalid JSON");
        if tx.send(value).is_err() {
            return;
        }
    }
}

impl TestClient {
    pub fn spawn() -> Self {
        Self::spawn_with(Options::default())
    }

    /// Starts the real binary as `kiln lsp`.
    pub fn spawn_with(options: Options) -> Self {
        let mut cmd = Command::new(kiln_bin());
        cmd.arg("lsp")
            .args(&options.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .env("KILN_LOG_LEVEL", "warn");
        for (k, v) in &options.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("cannot start kiln");
        let stdout = child.stdout.take().expect("stdout");
        let stdin = child.stdin.take().expect("stdin");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || read_frames(stdout, tx));
        Self::start(Box::new(stdin), rx, Server::Process(child), options)
    }

    /// Runs the same server in this process, over in-memory pipes.
    pub fn in_process(options: Options) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let handle = runtime.handle().clone();
        let (client_io, server_io) = tokio::io::duplex(1 << 16);
        let (server_read, server_write) = tokio::io::split(server_io);
        let server = std::thread::spawn(move || {
            let code = runtime.block_on(kiln::frontend::lsp::serve(
                server_read,
                server_write,
                Default::default(),
            ));
            runtime.shutdown_background();
            code
        });
        let (client_read, client_write) = tokio::io::split(client_io);
        let reader = tokio_util::io::SyncIoBridge::new_with_handle(client_read, handle.clone());
        let writer = tokio_util::io::SyncIoBridge::new_with_handle(client_write, handle);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || read_frames(reader, tx));
        Self::start(
            Box::new(writer),
            rx,
            Server::InProcess(Some(server)),
            options,
        )
    }

    fn start(
        writer: Box<dyn Write + Send>,
        incoming: mpsc::Receiver<Value>,
        server: Server,
        options: Options,
    ) -> Self {
        let mut client = TestClient {
            writer: Some(writer),
            incoming,
            server,
            next_id: 1,
            unread: VecDeque::new(),
            server_requests: options.server_requests,
            received_requests: Vec::new(),
            init_result: Value::Null,
            finished: false,
        };
        if let Some(params) = options.initialize {
            client.init_result = client
                .request("initialize", params)
                .expect("initialize failed");
            client.notify("initialized", json!({}));
        }
        client
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        let writer = self.writer.as_mut().expect("connection closed");
        writer.write_all(bytes).expect("write to server");
        writer.flush().expect("flush to server");
    }

    pub fn send(&mut self, message: &Value) {
        self.send_raw(&frame(&serde_json::to_vec(message).unwrap()));
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    /// Sends a request and returns its id without waiting.
    pub fn send_request(&mut self, method: &str, params: Value) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        id
    }

    /// Sends a request and waits for its response: `Ok(result)` or `Err(error)`.
    pub fn request(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        let id = self.send_request(method, params);
        self.response(&json!(id))
    }

    /// Waits for the response with `id`, keeping other messages unread.
    pub fn response(&mut self, id: &Value) -> Result<Value, Value> {
        if let Some(at) = self.unread.iter().position(|m| is_response_to(m, id)) {
            return into_result(self.unread.remove(at).unwrap());
        }
        loop {
            let message = self.next_from_server();
            if is_response_to(&message, id) {
                return into_result(message);
            }
            self.unread.push_back(message);
        }
    }

    /// The next message that is not a request to us (those are answered automatically).
    pub fn recv(&mut self) -> Value {
        match self.unread.pop_front() {
            Some(message) => message,
            None => self.next_from_server(),
        }
    }

    /// Waits for the next notification with `method` and returns its params.
    pub fn notification(&mut self, method: &str) -> Value {
        if let Some(at) = self
            .unread
            .iter()
            .position(|m| m["method"] == method && m.get("id").is_none())
        {
            return self.unread.remove(at).unwrap()["params"].take();
        }
        loop {
            let message = self.next_from_server();
            if message["method"] == method && message.get("id").is_none() {
                return message["params"].clone();
            }
            self.unread.push_back(message);
        }
    }

    /// Waits until the server has sent a request with `method` to us.
    pub fn wait_for_server_request(&mut self, method: &str) -> Value {
        loop {
            if let Some(found) = self
                .received_requests
                .iter()
                .find(|r| r["method"] == method)
            {
                return found.clone();
            }
            if let Some(message) = self.receive_one() {
                self.unread.push_back(message);
            }
        }
    }

    fn next_from_server(&mut self) -> Value {
        loop {
            if let Some(message) = self.receive_one() {
                return message;
            }
        }
    }

    /// Receives one message; answers it and returns `None` if it is a request to us.
    fn receive_one(&mut self) -> Option<Value> {
        {
            let message = match self.incoming.recv_timeout(TIMEOUT) {
                Ok(message) => message,
                Err(err) => panic!("no message from the server within {TIMEOUT:?}: {err}"),
            };
            if message.get("method").is_some() && message.get("id").is_some() {
                let reply = match self.server_requests {
                    ServerRequests::Accept => {
                        json!({ "jsonrpc": "2.0", "id": message["id"], "result": null })
                    }
                    ServerRequests::Refuse => json!({
                        "jsonrpc": "2.0", "id": message["id"],
                        "error": { "code": -32601, "message": "not supported by this test client" },
                    }),
                };
                self.send(&reply);
                self.received_requests.push(message);
                return None;
            }
            Some(message)
        }
    }

    /// Polls `kiln/status` until `check` holds (bounded by [`TIMEOUT`]).
    pub fn wait_for_status(&mut self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + TIMEOUT;
        loop {
            let status = self.request("kiln/status", json!({})).expect("kiln/status");
            if check(&status) {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}; last status: {status:#}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Sends `shutdown` and `exit`; returns the server's exit code.
    pub fn shutdown(mut self) -> i32 {
        let result = self.request("shutdown", Value::Null);
        assert_eq!(result, Ok(Value::Null), "shutdown");
        self.notify("exit", Value::Null);
        self.finish()
    }

    /// Sends only `exit` (no `shutdown`); returns the exit code.
    pub fn exit_without_shutdown(mut self) -> i32 {
        self.notify("exit", Value::Null);
        self.finish()
    }

    /// Closes the server's input; returns the exit code.
    pub fn close_input(mut self) -> i32 {
        self.finish()
    }

    fn finish(&mut self) -> i32 {
        self.finished = true;
        self.writer = None;
        let code = match &mut self.server {
            Server::Process(child) => wait_with_timeout(child),
            Server::InProcess(handle) => handle
                .take()
                .unwrap()
                .join()
                .expect("server thread panicked"),
        };
        // Whatever the server still sent must have been read by the test.
        while let Ok(message) = self.incoming.recv_timeout(Duration::from_millis(200)) {
            self.unread.push_back(message);
        }
        assert!(
            self.unread.is_empty(),
            "the test left server messages unread: {:#?}",
            self.unread
        );
        code
    }
}

fn wait_with_timeout(child: &mut Child) -> i32 {
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().expect("wait for kiln") {
            return status.code().unwrap_or(-1);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("kiln did not exit within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

impl Drop for TestClient {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if std::thread::panicking() {
            if let Server::Process(child) = &mut self.server {
                let _ = child.kill();
            }
            return;
        }
        let result = self.request("shutdown", Value::Null);
        assert_eq!(result, Ok(Value::Null), "shutdown on drop");
        self.notify("exit", Value::Null);
        let code = self.finish();
        assert_eq!(code, 0, "kiln should exit with 0 after shutdown and exit");
    }
}

fn is_response_to(message: &Value, id: &Value) -> bool {
    message.get("method").is_none() && message.get("id") == Some(id)
}

fn into_result(mut message: Value) -> Result<Value, Value> {
    match message.get_mut("error") {
        Some(error) => Err(error.take()),
        None => Ok(message["result"].take()),
    }
}

/// A `file://` URI for a path.
pub fn file_uri(path: &std::path::Path) -> String {
    format!("file://{}", path.display())
}

/// Opens a document in the client.
pub fn did_open(client: &mut TestClient, uri: &str, version: i32, text: &str) {
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "plaintext", "version": version, "text": text } }),
    );
}

/// Reads a document's text through `kiln/read`.
pub fn read_text(client: &mut TestClient, uri: &str) -> Value {
    client
        .request("kiln/read", json!({ "uri": uri }))
        .expect("kiln/read")
}
