//! `initialize`, encodings, `shutdown`/`exit`, unknown methods, cancellation.

use serde_json::{Value, json};

use crate::support::{Options, TestClient, did_open, read_text};

#[test]
fn initialize_advertises_sync_encoding_and_workspace_folders() {
    let client = TestClient::spawn_with(Options::with_encodings(&["utf-16", "utf-8"]));
    let result = &client.init_result;
    assert_eq!(result["serverInfo"]["name"], "kiln");
    assert_eq!(result["serverInfo"]["version"], env!("CARGO_PKG_VERSION"));
    let caps = &result["capabilities"];
    assert_eq!(caps["positionEncoding"], "utf-8");
    assert_eq!(caps["textDocumentSync"]["change"], 2, "incremental sync");
    assert_eq!(caps["textDocumentSync"]["openClose"], true);
    assert!(caps["textDocumentSync"]["save"].is_object());
    assert_eq!(caps["workspace"]["workspaceFolders"]["supported"], true);
    assert_eq!(
        caps["experimental"]["kiln"]["methods"],
        json!([
            "kiln/read",
            "kiln/status",
            "kiln/newSession",
            "kiln/loadSession",
            "kiln/listSessions",
            "kiln/prompt",
            "kiln/cancel",
            "kiln/setMode",
            "kiln/setModel",
            "kiln/listModels",
            "kiln/checkpoints",
            "kiln/restoreCheckpoint"
        ])
    );
    assert_eq!(caps["codeActionProvider"]["resolveProvider"], true);
    assert_eq!(
        caps["executeCommandProvider"]["commands"],
        json!([
            "kiln.prompt",
            "kiln.cancel",
            "kiln.accept",
            "kiln.reject",
            "kiln.undo",
            "kiln.action"
        ])
    );
    assert_eq!(client.shutdown(), 0);
}

#[test]
fn encoding_negotiation() {
    for (offered, expected) in [
        (vec![], "utf-16"),
        (vec!["utf-16"], "utf-16"),
        (vec!["utf-32", "utf-16"], "utf-16"),
        (vec!["utf-32"], "utf-32"),
        (vec!["utf-32", "utf-8"], "utf-8"),
    ] {
        let client = TestClient::in_process(Options::with_encodings(&offered));
        assert_eq!(
            client.init_result["capabilities"]["positionEncoding"], expected,
            "offered {offered:?}"
        );
    }
}

#[test]
fn exit_codes_follow_the_spec() {
    assert_eq!(TestClient::spawn().shutdown(), 0);
    assert_eq!(TestClient::spawn().exit_without_shutdown(), 1);
    assert_eq!(TestClient::spawn().close_input(), 1);
}

#[test]
fn requests_before_initialize_and_after_shutdown_are_refused() {
    let mut client = TestClient::spawn_with(Options::uninitialized());
    let err = client.request("kiln/status", json!({})).unwrap_err();
    assert_eq!(err["code"], -32002);
    // A notification before initialize is dropped, not applied.
    did_open(&mut client, "untitled:early", 1, "too early");
    client
        .request("initialize", json!({ "capabilities": {} }))
        .unwrap();
    let err = client
        .request("initialize", json!({ "capabilities": {} }))
        .unwrap_err();
    assert_eq!(err["code"], -32600);
    let err = client
        .request("kiln/read", json!({ "uri": "untitled:early" }))
        .unwrap_err();
    assert!(
        err["message"].as_str().unwrap().contains("not open"),
        "{err}"
    );

    assert_eq!(client.request("shutdown", Value::Null), Ok(Value::Null));
    let err = client.request("kiln/status", json!({})).unwrap_err();
    assert_eq!(err["code"], -32600);
    assert_eq!(
        client.exit_without_shutdown(),
        0,
        "exit after shutdown is a clean exit"
    );
}

#[test]
fn unknown_methods_and_notifications() {
    let mut client = TestClient::spawn();
    let err = client
        .request("textDocument/frobnicate", json!({}))
        .unwrap_err();
    assert_eq!(err["code"], -32601);
    client.notify("workspace/somethingNew", json!({ "x": 1 }));
    client.notify("$/setTrace", json!({ "value": "verbose" }));
    // Cancelling a request that does not exist (or finished) is harmless.
    client.notify("$/cancelRequest", json!({ "id": 999 }));
    client.request("kiln/status", json!({})).unwrap();
}

#[test]
fn bad_request_params_get_invalid_params() {
    let mut client = TestClient::spawn();
    let err = client
        .request("kiln/read", json!({ "uri": 5 }))
        .unwrap_err();
    assert_eq!(err["code"], -32602);
    assert!(
        err["message"].as_str().unwrap().contains("kiln/read"),
        "{err}"
    );
}

#[test]
fn stdout_carries_only_protocol_messages_even_with_trace_logging() {
    let mut options = Options::default();
    options.env.push(("KILN_LOG_LEVEL".into(), "trace".into()));
    let mut client = TestClient::spawn_with(options);
    did_open(&mut client, "untitled:a", 1, "text");
    assert_eq!(read_text(&mut client, "untitled:a")["text"], "text");
    // Every byte on stdout was framed JSON, or the reader thread would have failed.
    assert_eq!(client.shutdown(), 0);
}

#[test]
fn in_process_client_has_the_same_lifecycle() {
    let mut client = TestClient::in_process(Options::default());
    did_open(&mut client, "untitled:a", 1, "hello");
    assert_eq!(
        read_text(&mut client, "untitled:a")["identity"],
        json!({ "kind": "buffer", "version": 1 })
    );
    assert_eq!(client.shutdown(), 0);
    assert_eq!(
        TestClient::in_process(Options::default()).exit_without_shutdown(),
        1
    );
}

#[test]
fn logs_go_to_the_log_file_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kiln.log");
    let options = Options {
        args: vec!["--log-file".into(), log.display().to_string()],
        env: vec![("KILN_LOG_LEVEL".into(), "debug".into())],
        ..Options::default()
    };
    let mut client = TestClient::spawn_with(options);
    client.notify("workspace/notAThing", json!({}));
    client.request("kiln/status", json!({})).unwrap();
    assert_eq!(client.shutdown(), 0);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("position encoding utf-16"), "{text}");
    assert!(
        text.contains("ignoring unknown notification workspace/notAThing"),
        "{text}"
    );
    assert!(!text.contains('\x1b'), "no colour codes in a log file");
}
