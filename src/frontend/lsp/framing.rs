//! The framing layer in front of async-lsp's main loop.
//!
//! async-lsp's `MainLoop::run` returns on the first undecodable message or bad header,
//! which would end the server. So this layer owns the input stream: it parses
//! `Content-Length` frames itself, checks that each body is a JSON-RPC 2.0 message of a shape
//! the main loop accepts, answers what it cannot accept with a JSON-RPC error written through
//! the same output channel, and feeds the main loop only valid frames. It resynchronises
//! after broken frames by looking for the next header, so one bad message costs one message.
//!
//! Error answers follow JSON-RPC 2.0: unparsable JSON gets -32700 (Parse error) with id
//! `null`; a body that is JSON but not a valid message gets -32600 (Invalid Request) with the
//! request's id when one can be read, else `null`. Responses and notifications are never
//! answered; a malformed one is logged and dropped.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc::UnboundedSender;

/// The default largest message body accepted; bigger ones are skipped and answered with an
/// error. VS Code does not sync files over 50 MB to extensions, so this leaves headroom.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 << 20;
/// A header block longer than this is garbage, not a header.
const MAX_HEADER_BYTES: usize = 8 << 10;
/// How long a body may sit incomplete before the layer checks whether its
/// `Content-Length` overstated it and the next message already follows.
const STALL: Duration = Duration::from_millis(50);
const READ_CHUNK: usize = 16 << 10;

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;

/// What the reader produces: a body to hand to the main loop, or an error to answer.
#[derive(Debug, PartialEq)]
pub enum Incoming {
    Message(Vec<u8>),
    Reject(Reject),
}

/// A message the layer refuses. `reply` is false when JSON-RPC forbids an answer (a
/// malformed response or notification); the problem is still logged.
#[derive(Debug, PartialEq)]
pub struct Reject {
    pub id: Value,
    pub code: i64,
    pub message: String,
    pub reply: bool,
}

impl Reject {
    fn answer(id: Value, code: i64, message: impl Into<String>) -> Incoming {
        Incoming::Reject(Reject {
            id,
            code,
            message: message.into(),
            reply: true,
        })
    }

    fn silent(message: impl Into<String>) -> Incoming {
        Incoming::Reject(Reject {
            id: Value::Null,
            code: 0,
            message: message.into(),
            reply: false,
        })
    }

    /// The JSON-RPC error response, framed.
    pub fn to_frame(&self) -> Vec<u8> {
        let body = serde_json::json!({
            "jsonrpc": "2.0",
            "id": self.id,
            "error": { "code": self.code, "message": self.message },
        });
        frame(&serde_json::to_vec(&body).unwrap_or_default())
    }
}

/// Wraps a body in a `Content-Length` header.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

enum State {
    Header,
    Body(usize),
    Discard(usize),
}

/// Reads frames from a byte stream, tolerating everything a broken client can send.
pub struct FrameReader<R> {
    reader: R,
    buf: Vec<u8>,
    pos: usize,
    state: State,
    max_body: usize,
    /// Set after an error, so that the leftovers of the same broken message are skipped
    /// without a second answer.
    after_error: bool,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(reader: R, max_body: usize) -> Self {
        FrameReader {
            reader,
            buf: Vec::with_capacity(READ_CHUNK),
            pos: 0,
            state: State::Header,
            max_body,
            after_error: false,
        }
    }

    fn avail(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Reads more bytes; returns false at end of input. Cancel-safe: a read abandoned
    /// by the stall timeout leaves the buffer as it was.
    async fn fill(&mut self) -> bool {
        if self.pos > 0 && self.pos * 2 >= self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.reserve(READ_CHUNK);
        match self.reader.read_buf(&mut self.buf).await {
            Ok(n) => n > 0,
            Err(err) => {
                tracing::error!("reading the client's messages failed: {err}");
                false
            }
        }
    }

    /// The next message or error; `None` at end of input.
    pub async fn next(&mut self) -> Option<Incoming> {
        let incoming = self.next_inner().await?;
        self.after_error = matches!(incoming, Incoming::Reject(_));
        Some(incoming)
    }

    async fn next_inner(&mut self) -> Option<Incoming> {
        loop {
            match self.state {
                State::Discard(n) => {
                    let take = n.min(self.avail().len());
                    self.pos += take;
                    if take == n {
                        self.state = State::Header;
                    } else {
                        self.state = State::Discard(n - take);
                        if !self.fill().await {
                            return None;
                        }
                    }
                }
                State::Header => {
                    let blank = self
                        .avail()
                        .iter()
                        .take_while(|b| matches!(b, b'\r' | b'\n'))
                        .count();
                    self.pos += blank;
                    if self.avail().is_empty() {
                        if !self.fill().await {
                            return None;
                        }
                        continue;
                    }
                    match header_start(self.avail()) {
                        HeaderStart::Yes => {}
                        HeaderStart::NeedMore => {
                            if !self.fill().await {
                                return self.skip_at_eof();
                            }
                            continue;
                        }
                        HeaderStart::No => {
                            if let Some(reject) = self.skip_junk().await {
                                return Some(reject);
                            }
                            continue;
                        }
                    }
                    let Some((header_len, block_len)) = header_end(self.avail()) else {
                        if self.avail().len() > MAX_HEADER_BYTES {
                            // Not a header after all; skip past the false start.
                            self.pos += 1;
                            if let Some(reject) = self.skip_junk().await {
                                return Some(reject);
                            }
                            continue;
                        }
                        if !self.fill().await {
                            return self.skip_at_eof();
                        }
                        continue;
                    };
                    let parsed = parse_header(&self.avail()[..header_len]);
                    self.pos += block_len;
                    match parsed {
                        Err(problem) => {
                            return Some(Reject::answer(Value::Null, PARSE_ERROR, problem));
                        }
                        Ok(len) if len > self.max_body => {
                            self.state = State::Discard(len);
                            return Some(Reject::answer(
                                Value::Null,
                                INVALID_REQUEST,
                                format!(
                                    "message of {len} bytes is larger than the limit of {} bytes (KILN_MAX_MESSAGE_BYTES); it was skipped",
                                    self.max_body
                                ),
                            ));
                        }
                        Ok(len) => self.state = State::Body(len),
                    }
                }
                State::Body(len) => {
                    if self.avail().len() >= len {
                        self.state = State::Header;
                        return Some(self.take_body(len));
                    }
                    let (more, stalled) = if self.avail().is_empty() {
                        (self.fill().await, false)
                    } else {
                        match tokio::time::timeout(STALL, self.fill()).await {
                            Ok(more) => (more, !more),
                            Err(_elapsed) => (true, true),
                        }
                    };
                    if stalled && let Some(at) = embedded_frame(self.avail()) {
                        self.state = State::Header;
                        let incoming = overstated(&self.avail()[..at], len);
                        self.pos += at;
                        return Some(incoming);
                    }
                    if !more {
                        tracing::warn!(
                            "input ended inside a message body ({} of {len} bytes)",
                            self.avail().len()
                        );
                        return None;
                    }
                }
            }
        }
    }

    /// Skips bytes that cannot start a header: up to the next header, or all that has
    /// arrived (never waiting for more, so the client gets its answer at once).
    async fn skip_junk(&mut self) -> Option<Incoming> {
        let skipped = match find_header_name(self.avail()) {
            Some(at) => at,
            None => {
                // Keep a tail that may be the start of a header split across reads.
                let avail = self.avail();
                let keep = (1..HEADER_NAMES[0].len().min(avail.len() + 1))
                    .rev()
                    .find(|&n| {
                        HEADER_NAMES.iter().any(|name| {
                            avail[avail.len() - n..]
                                .eq_ignore_ascii_case(&name[..n.min(name.len())])
                        })
                    })
                    .unwrap_or(0);
                avail.len() - keep
            }
        };
        self.pos += skipped;
        if skipped == 0 {
            // Only a possible header prefix is left: wait for the rest.
            if !self.fill().await {
                self.pos = self.buf.len();
            }
            return None;
        }
        tracing::warn!("skipped {skipped} bytes that were not a message header");
        if self.after_error {
            return None;
        }
        Some(Reject::answer(
            Value::Null,
            PARSE_ERROR,
            format!("skipped {skipped} bytes that were not a `Content-Length` header"),
        ))
    }

    fn skip_at_eof(&mut self) -> Option<Incoming> {
        tracing::warn!("input ended inside a message header");
        None
    }

    fn take_body(&mut self, len: usize) -> Incoming {
        let body = &self.avail()[..len];
        match envelope(body).map_or_else(|| serde_json::from_slice::<Value>(body), Ok) {
            Ok(value) => {
                let incoming = match validate(&value) {
                    Ok(()) => Incoming::Message(body.to_vec()),
                    Err(reject) => reject,
                };
                self.pos += len;
                incoming
            }
            Err(err) => {
                // A `Content-Length` that overstates the body swallows the start of the next
                // message: give those bytes back and answer for this one only.
                if let Some(at) = find_header_name(body).filter(|&at| at > 0) {
                    let incoming = overstated(&body[..at], len);
                    self.pos += at;
                    return incoming;
                }
                self.pos += len;
                Reject::answer(
                    Value::Null,
                    PARSE_ERROR,
                    format!("message body is not valid JSON: {err}"),
                )
            }
        }
    }
}

/// The answer for a message whose real length is `actual.len()` but whose header said `len`.
fn overstated(actual: &[u8], len: usize) -> Incoming {
    let id = serde_json::from_slice::<Value>(actual)
        .ok()
        .and_then(|v| v.get("id").filter(|id| valid_id(id)).cloned())
        .unwrap_or(Value::Null);
    Reject::answer(
        id,
        INVALID_REQUEST,
        format!(
            "`Content-Length: {len}` does not match the message, which ended after {} bytes; it was not processed",
            actual.len()
        ),
    )
}

const HEADER_NAMES: [&[u8]; 2] = [b"content-length:", b"content-type:"];

/// Offset of the first `Content-Length:` or `Content-Type:` (any case) in `bytes`.
fn find_header_name(bytes: &[u8]) -> Option<usize> {
    (0..bytes.len()).find(|&i| {
        HEADER_NAMES.iter().any(|name| {
            bytes.len() - i >= name.len() && bytes[i..i + name.len()].eq_ignore_ascii_case(name)
        })
    })
}

enum HeaderStart {
    Yes,
    No,
    NeedMore,
}

/// Whether `bytes` begins with `Token:` (a header name).
fn header_start(bytes: &[u8]) -> HeaderStart {
    for (i, &b) in bytes.iter().enumerate().take(64) {
        if b == b':' {
            return if i > 0 {
                HeaderStart::Yes
            } else {
                HeaderStart::No
            };
        }
        if !(b.is_ascii_alphanumeric() || b == b'-') {
            return HeaderStart::No;
        }
    }
    if bytes.len() >= 64 {
        HeaderStart::No
    } else {
        HeaderStart::NeedMore
    }
}

/// Length of the header lines and of the whole block including the blank line.
fn header_end(bytes: &[u8]) -> Option<(usize, usize)> {
    let window = &bytes[..bytes.len().min(MAX_HEADER_BYTES + 4)];
    for i in 0..window.len() {
        if window[i..].starts_with(b"\r\n\r\n") {
            return Some((i, i + 4));
        }
        if window[i..].starts_with(b"\n\n") {
            return Some((i, i + 2));
        }
    }
    None
}

/// Parses the header lines and returns the `Content-Length`.
fn parse_header(block: &[u8]) -> Result<usize, String> {
    let text =
        std::str::from_utf8(block).map_err(|_| "message header is not ASCII text".to_owned())?;
    let mut length = None;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!(
                "malformed header line {line:?}: expected `Name: value`"
            ));
        };
        if name.trim().eq_ignore_ascii_case("content-length") {
            let value = value.trim();
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| format!("invalid `Content-Length` value {value:?}"))?,
            );
        }
    }
    length.ok_or_else(|| "message header has no `Content-Length`".to_owned())
}

/// Offset of a complete frame (header and body) inside a stalled, incomplete body.
fn embedded_frame(partial: &[u8]) -> Option<usize> {
    let at = find_header_name(partial).filter(|&at| at > 0)?;
    let rest = &partial[at..];
    let (header_len, block_len) = header_end(rest)?;
    let len = parse_header(&rest[..header_len]).ok()?;
    (rest.len() >= block_len + len).then_some(at)
}

/// An id the main loop accepts: a string, or an integer that fits in `i32`.
fn valid_id(id: &Value) -> bool {
    match id {
        Value::String(_) => true,
        Value::Number(n) => n.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
        _ => false,
    }
}

/// The message's top level with `params` and `result` reduced to their shape, parsed
/// without building their trees (they can be megabytes: a whole file in `didOpen`).
/// `None` when the body is not a JSON object; the caller then parses it fully to say why.
fn envelope(body: &[u8]) -> Option<Value> {
    let fields: std::collections::HashMap<String, &serde_json::value::RawValue> =
        serde_json::from_slice(body).ok()?;
    let mut obj = serde_json::Map::with_capacity(fields.len());
    for (key, raw) in fields {
        let text = raw.get();
        let value = match key.as_str() {
            "params" | "result" if text.starts_with('{') || text.starts_with('[') => {
                Value::Object(serde_json::Map::new())
            }
            _ => serde_json::from_str(text).ok()?,
        };
        obj.insert(key, value);
    }
    Some(Value::Object(obj))
}

/// Checks that `value` is a JSON-RPC 2.0 request, notification or response of the shape
/// the main loop can decode.
fn validate(value: &Value) -> Result<(), Incoming> {
    let Some(obj) = value.as_object() else {
        let what = if value.is_array() {
            "batch messages are not part of LSP"
        } else {
            "a message must be a JSON object"
        };
        return Err(Reject::answer(Value::Null, INVALID_REQUEST, what));
    };
    let id = obj.get("id");
    let reply_id = id.filter(|id| valid_id(id)).cloned().unwrap_or(Value::Null);
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(Reject::answer(
            reply_id,
            INVALID_REQUEST,
            "`jsonrpc` must be \"2.0\"",
        ));
    }
    if let Some(id) = id
        && !valid_id(id)
    {
        return Err(Reject::answer(
            Value::Null,
            INVALID_REQUEST,
            format!("invalid `id` {id}: expected a string or a 32-bit integer"),
        ));
    }
    match obj.get("method") {
        Some(Value::String(_)) => {
            if let Some(params) = obj.get("params")
                && !(params.is_object() || params.is_array() || params.is_null())
            {
                if id.is_none() {
                    return Err(Reject::silent(format!(
                        "dropped a notification whose `params` is {params}, not an object or array"
                    )));
                }
                return Err(Reject::answer(
                    reply_id,
                    INVALID_REQUEST,
                    "`params` must be an object or an array",
                ));
            }
            Ok(())
        }
        Some(other) => Err(Reject::answer(
            reply_id,
            INVALID_REQUEST,
            format!("`method` must be a string, not {other}"),
        )),
        None => {
            // A response to one of our requests.
            let ok = id.is_some()
                && (obj.contains_key("result")
                    || obj.get("error").is_some_and(|e| {
                        serde_json::from_value::<async_lsp::ResponseError>(e.clone()).is_ok()
                    }));
            if ok {
                Ok(())
            } else if id.is_none() && !obj.contains_key("result") && !obj.contains_key("error") {
                Err(Reject::answer(
                    Value::Null,
                    INVALID_REQUEST,
                    "a message needs a `method` (request or notification) or an `id` with `result`/`error` (response)",
                ))
            } else {
                Err(Reject::silent("dropped a malformed response"))
            }
        }
    }
}

/// Pumps frames from `input` into the main loop's input, and errors into `replies`.
pub async fn pump(
    input: impl AsyncRead + Unpin,
    mut to_main_loop: impl AsyncWrite + Unpin,
    replies: UnboundedSender<Vec<u8>>,
    max_body: usize,
) {
    let mut reader = FrameReader::new(input, max_body);
    while let Some(incoming) = reader.next().await {
        match incoming {
            Incoming::Message(body) => {
                if to_main_loop.write_all(&frame(&body)).await.is_err() {
                    break;
                }
            }
            Incoming::Reject(reject) => {
                tracing::warn!("rejected a client message: {}", reject.message);
                if reject.reply && replies.send(reject.to_frame()).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to_main_loop.shutdown().await;
}

/// The main loop's output: collects each message's bytes until the loop flushes, then
/// sends them as one chunk, so frames from the main loop and from [`pump`] never interleave.
pub struct ChannelWriter {
    tx: UnboundedSender<Vec<u8>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    pub fn new(tx: UnboundedSender<Vec<u8>>) -> Self {
        ChannelWriter {
            tx,
            buf: Vec::new(),
        }
    }
}

impl futures::io::AsyncWrite for ChannelWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.get_mut().buf.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if !this.buf.is_empty() {
            let chunk = std::mem::take(&mut this.buf);
            if this.tx.send(chunk).is_err() {
                return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()));
            }
        }
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.poll_flush(cx)
    }
}

/// Writes chunks to `output` in order: whatever is queued goes out in one write (each
/// write to the process's stdout is a trip to a blocking thread, so a stream of small
/// messages is batched), flushed whenever the queue runs dry.
pub async fn write_out(
    mut chunks: tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
    mut output: impl AsyncWrite + Unpin,
) {
    const BATCH: usize = 1 << 20;
    let mut batch = Vec::new();
    while let Some(chunk) = chunks.recv().await {
        batch.clear();
        batch.extend_from_slice(&chunk);
        while batch.len() < BATCH
            && let Ok(chunk) = chunks.try_recv()
        {
            batch.extend_from_slice(&chunk);
        }
        if output.write_all(&batch).await.is_err() || output.flush().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the reader over `input` and returns what it produced.
    fn read_all(input: &[u8], max_body: usize) -> Vec<Incoming> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut reader = FrameReader::new(input, max_body);
            let mut out = Vec::new();
            while let Some(incoming) = reader.next().await {
                out.push(incoming);
            }
            out
        })
    }

    fn msg(body: &str) -> Vec<u8> {
        frame(body.as_bytes())
    }

    fn summary(items: &[Incoming]) -> Vec<String> {
        items
            .iter()
            .map(|i| match i {
                Incoming::Message(b) => format!("msg {}", String::from_utf8_lossy(b)),
                Incoming::Reject(r) => format!(
                    "{} {} {}",
                    if r.reply { "reply" } else { "drop" },
                    r.code,
                    r.id
                ),
            })
            .collect()
    }

    const PING: &str = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;

    #[test]
    fn valid_frames_pass_through() {
        let mut input = msg(PING);
        input.extend(msg(r#"{"jsonrpc":"2.0","method":"note","params":{}}"#));
        input.extend(b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\ncontent-length: 2\r\n\r\n{}");
        let got = summary(&read_all(&input, 1 << 20));
        assert_eq!(got[0], format!("msg {PING}"));
        assert_eq!(
            got[1],
            r#"msg {"jsonrpc":"2.0","method":"note","params":{}}"#
        );
        assert_eq!(got[2], "reply -32600 null");
    }

    #[test]
    fn broken_frames_cost_one_message() {
        let mut input = b"Content-Length: 5\r\n\r\n{\"jsonrpc\"".to_vec(); // too short
        input.extend(msg(PING));
        input.extend(b"Content-Length: 999\r\n\r\n"); // overstated, followed by a message
        input.extend(br#"{"jsonrpc":"2.0","id":7,"method":"x"}"#);
        input.extend(msg(PING));
        input.extend(b"X-Nonsense\r\n\r\n"); // header line without colon
        input.extend(msg(PING));
        input.extend(b"garbage typed by hand\n");
        input.extend(msg(PING));
        let got = summary(&read_all(&input, 1 << 20));
        let ping = format!("msg {PING}");
        assert_eq!(
            got,
            vec![
                "reply -32700 null".to_owned(),
                ping.clone(),
                "reply -32600 7".to_owned(),
                ping.clone(),
                "reply -32700 null".to_owned(),
                ping.clone(),
                "reply -32700 null".to_owned(),
                ping,
            ]
        );
    }

    #[test]
    fn huge_messages_are_skipped_without_buffering() {
        let mut input = b"Content-Length: 4096\r\n\r\n".to_vec();
        input.extend(vec![b'x'; 4096]);
        input.extend(msg(PING));
        let got = summary(&read_all(&input, 1024));
        assert_eq!(
            got,
            vec!["reply -32600 null".to_owned(), format!("msg {PING}")]
        );
    }

    #[test]
    fn invalid_json_rpc_shapes() {
        let cases = [
            (r#"[1,2]"#, "reply -32600 null"),
            (r#"{"jsonrpc":"1.0","id":3,"method":"x"}"#, "reply -32600 3"),
            (
                r#"{"jsonrpc":"2.0","id":1.5,"method":"x"}"#,
                "reply -32600 null",
            ),
            (r#"{"jsonrpc":"2.0","id":4,"method":12}"#, "reply -32600 4"),
            (
                r#"{"jsonrpc":"2.0","id":5,"method":"x","params":3}"#,
                "reply -32600 5",
            ),
            (
                r#"{"jsonrpc":"2.0","method":"x","params":"s"}"#,
                "drop 0 null",
            ),
            (
                r#"{"jsonrpc":"2.0","id":6,"error":{"code":"bad"}}"#,
                "drop 0 null",
            ),
            (r#"{"jsonrpc":"2.0"}"#, "reply -32600 null"),
            (
                r#"{"jsonrpc":"2.0","id":"a","result":null}"#,
                r#"msg {"jsonrpc":"2.0","id":"a","result":null}"#,
            ),
        ];
        for (body, expected) in cases {
            let got = summary(&read_all(&msg(body), 1 << 20));
            assert_eq!(got, vec![expected.to_owned()], "for {body}");
        }
    }
}
