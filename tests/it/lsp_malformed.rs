//! Malformed input through the real binary: each case gets the JSON-RPC error the spec
//! asks for (or none, for notifications), and the server keeps answering.

use serde_json::{Value, json};

use crate::support::{TestClient, frame};

/// Sends `bytes`, expects `expected` error responses (code, id), then checks that a valid
/// request is still answered.
fn check(bytes: &[u8], expected: &[(i64, Value)]) {
    let mut client = TestClient::spawn();
    client.send_raw(bytes);
    for (code, id) in expected {
        let message = client.recv();
        assert_eq!(message["error"]["code"], *code, "{message}");
        assert_eq!(message["id"], *id, "{message}");
        assert!(
            message["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let status = client
        .request("kiln/status", json!({}))
        .expect("server still answers");
    assert_eq!(status["positionEncoding"], "utf-16");
    assert_eq!(client.shutdown(), 0);
}

#[test]
fn body_that_is_not_json() {
    check(
        &frame(b"{\"jsonrpc\": \"2.0\", \"id\": 1, "),
        &[(-32700, Value::Null)],
    );
    check(&frame(b"\xff\xfe not utf-8"), &[(-32700, Value::Null)]);
}

#[test]
fn missing_content_length() {
    check(b"Content-Type: application/vscode-jsonrpc\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\"}", &[(-32700, Value::Null)]);
}

#[test]
fn invalid_content_length_value() {
    check(
        b"Content-Length: twelve\r\n\r\n{}",
        &[(-32700, Value::Null)],
    );
}

#[test]
fn content_length_too_short() {
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"kiln/status"}"#;
    let mut bytes = format!("Content-Length: {}\r\n\r\n", body.len() - 10).into_bytes();
    bytes.extend_from_slice(body);
    check(&bytes, &[(-32700, Value::Null)]);
}

#[test]
fn content_length_too_long_is_answered_for_that_request() {
    // The next valid message follows right away; the server must not swallow it.
    let body = br#"{"jsonrpc":"2.0","id":"long","method":"kiln/status"}"#;
    let mut bytes = format!("Content-Length: {}\r\n\r\n", body.len() + 500).into_bytes();
    bytes.extend_from_slice(body);
    bytes.extend(frame(
        br#"{"jsonrpc":"2.0","id":"next","method":"kiln/status"}"#,
    ));
    let mut client = TestClient::spawn();
    client.send_raw(&bytes);
    let first = client.recv();
    assert_eq!(first["id"], "long");
    assert_eq!(first["error"]["code"], -32600);
    let next = client
        .response(&json!("next"))
        .expect("the following request is answered");
    assert_eq!(next["positionEncoding"], "utf-16");
    assert_eq!(client.shutdown(), 0);
}

#[test]
fn bodies_that_are_not_json_rpc() {
    check(
        &frame(br#"[{"jsonrpc":"2.0","id":1,"method":"x"}]"#),
        &[(-32600, Value::Null)],
    );
    check(&frame(br#""just a string""#), &[(-32600, Value::Null)]);
    check(
        &frame(br#"{"id":2,"method":"kiln/status"}"#),
        &[(-32600, json!(2))],
    );
    check(
        &frame(br#"{"jsonrpc":"2.0","id":2.5,"method":"kiln/status"}"#),
        &[(-32600, Value::Null)],
    );
    check(
        &frame(br#"{"jsonrpc":"2.0","id":3,"method":7}"#),
        &[(-32600, json!(3))],
    );
    check(
        &frame(br#"{"jsonrpc":"2.0","id":{"a":1},"method":"x"}"#),
        &[(-32600, Value::Null)],
    );
    check(&frame(br#"{"jsonrpc":"2.0"}"#), &[(-32600, Value::Null)]);
}

#[test]
fn malformed_notifications_are_not_answered() {
    // JSON-RPC forbids answering notifications; the server logs and carries on.
    check(
        &frame(br#"{"jsonrpc":"2.0","method":"textDocument/didChange","params":"oops"}"#),
        &[],
    );
    // A response to a request the server never sent is ignored too.
    check(&frame(br#"{"jsonrpc":"2.0","id":77,"result":null}"#), &[]);
}

#[test]
fn notification_with_wrong_params_is_reported_in_the_log() {
    let mut client = TestClient::spawn();
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": "untitled:a" } }),
    );
    let log = client.notification("window/logMessage");
    assert_eq!(log["type"], 1);
    assert!(
        log["message"]
            .as_str()
            .unwrap()
            .contains("invalid params for textDocument/didOpen"),
        "{log}"
    );
    assert_eq!(client.shutdown(), 0);
}

#[test]
fn garbage_between_messages() {
    let mut bytes = b"hello there\r\n\r\n".to_vec();
    bytes.extend(b"\x00\x01\x02 binary noise");
    check(&bytes, &[(-32700, Value::Null)]);
}

#[test]
fn huge_message_is_skipped() {
    let limit = kiln::frontend::lsp::DEFAULT_MAX_MESSAGE_BYTES;
    let mut bytes = format!("Content-Length: {}\r\n\r\n", limit + 1).into_bytes();
    bytes.resize(bytes.len() + limit + 1, b' ');
    check(&bytes, &[(-32600, Value::Null)]);
}
