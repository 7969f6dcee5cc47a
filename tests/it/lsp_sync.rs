//! Buffer synchronisation through the real binary: ordering, encodings, clamping, bad
//! ranges, and the workspace overlay as seen through `kiln/read`.

use serde_json::{Value, json};

use crate::support::{Options, TestClient, did_open, file_uri, frame, read_text};

fn change(uri: &str, version: i32, range: Option<[u32; 4]>, text: &str) -> Value {
    let change = match range {
        Some([l0, c0, l1, c1]) => json!({
            "range": { "start": { "line": l0, "character": c0 }, "end": { "line": l1, "character": c1 } },
            "text": text,
        }),
        None => json!({ "text": text }),
    };
    json!({
        "jsonrpc": "2.0",
        "method": "textDocument/didChange",
        "params": { "textDocument": { "uri": uri, "version": version }, "contentChanges": [change] },
    })
}

#[test]
fn ten_thousand_changes_back_to_back_are_applied_in_order() {
    let mut client = TestClient::spawn();
    let uri = "untitled:order";
    did_open(&mut client, uri, 0, "\n");
    let mut model = String::from("\n");
    let mut burst = Vec::new();
    for i in 0..10_000u32 {
        let ch = char::from(b'a' + (i % 26) as u8);
        // Each edit depends on all the previous ones: insert at the end of line 0, and now
        // and then delete the first character.
        let line_len = model.find('\n').unwrap() as u32;
        let message = if i % 7 == 6 && line_len > 0 {
            model.remove(0);
            change(uri, i as i32 + 1, Some([0, 0, 0, 1]), "")
        } else {
            model.insert(line_len as usize, ch);
            change(
                uri,
                i as i32 + 1,
                Some([0, line_len, 0, line_len]),
                &ch.to_string(),
            )
        };
        burst.extend(frame(&serde_json::to_vec(&message).unwrap()));
    }
    client.send_raw(&burst);
    let read = read_text(&mut client, uri);
    assert_eq!(
        read["identity"],
        json!({ "kind": "buffer", "version": 10_000 })
    );
    assert_eq!(read["text"].as_str().unwrap(), model);
}

#[test]
fn positions_in_each_encoding() {
    // "a😀b": the emoji is 4 UTF-8 bytes, 2 UTF-16 units, 1 UTF-32 unit.
    for (encoding, after_emoji) in [("utf-8", 5), ("utf-16", 3), ("utf-32", 2)] {
        let mut client = TestClient::spawn_with(Options::with_encodings(&[encoding]));
        let uri = "untitled:enc";
        did_open(&mut client, uri, 1, "a😀b\r\nsecond\n");
        client.send(&change(
            uri,
            2,
            Some([0, after_emoji, 0, after_emoji + 1]),
            "B",
        ));
        client.send(&change(uri, 3, Some([1, 0, 1, 6]), "2nd"));
        assert_eq!(
            read_text(&mut client, uri)["text"],
            "a😀B\r\n2nd\n",
            "{encoding}"
        );
        client.send(&change(uri, 4, None, "full text"));
        assert_eq!(
            read_text(&mut client, uri)["text"],
            "full text",
            "{encoding}"
        );
    }
}

#[test]
fn out_of_range_positions_clamp_as_the_spec_says() {
    let mut client = TestClient::spawn();
    let uri = "untitled:clamp";
    did_open(&mut client, uri, 1, "one\ntwo\n");
    // Character past the end of line 0 → end of line 0.
    client.send(&change(uri, 2, Some([0, 99, 0, 99]), "!"));
    // Line past the end → end of document.
    client.send(&change(uri, 3, Some([42, 0, 42, 7]), "three"));
    assert_eq!(read_text(&mut client, uri)["text"], "one!\ntwo\nthree");
}

#[test]
fn range_ending_before_it_starts_is_rejected_and_logged() {
    let mut client = TestClient::spawn();
    let uri = "untitled:bad";
    did_open(&mut client, uri, 1, "keep me\n");
    client.send(&change(uri, 2, Some([0, 4, 0, 1]), "X"));
    let log = client.notification("window/logMessage");
    assert_eq!(log["type"], 1, "an error");
    let message = log["message"].as_str().unwrap();
    assert!(
        message.contains("ends (0:1) before it starts (0:4)"),
        "{message}"
    );
    let read = read_text(&mut client, uri);
    assert_eq!(read["text"], "keep me\n");
    assert_eq!(read["identity"]["version"], 1);
    // The document keeps working.
    client.send(&change(uri, 3, Some([0, 0, 0, 4]), "KEEP"));
    assert_eq!(read_text(&mut client, uri)["text"], "KEEP me\n");
}

#[test]
fn version_going_backwards_is_applied_and_changes_to_unknown_documents_reported() {
    let mut client = TestClient::spawn();
    let uri = "untitled:v";
    did_open(&mut client, uri, 10, "x");
    client.send(&change(uri, 3, Some([0, 1, 0, 1]), "y"));
    let read = read_text(&mut client, uri);
    assert_eq!(
        (read["text"].as_str(), read["identity"]["version"].as_i64()),
        (Some("xy"), Some(3))
    );

    client.send(&change("untitled:never-opened", 1, None, "lost"));
    let log = client.notification("window/logMessage");
    assert!(
        log["message"].as_str().unwrap().contains("not open"),
        "{log}"
    );
}

#[test]
fn read_prefers_the_buffer_and_falls_back_to_disk_with_a_content_hash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("main.rs");
    std::fs::write(&path, "fn main() {}\n").unwrap();
    let uri = file_uri(&path);
    let mut client = TestClient::spawn();

    let disk = read_text(&mut client, &uri);
    assert_eq!(disk["text"], "fn main() {}\n");
    let hash = format!("{:016x}", kiln::text::hash::stable_hash(b"fn main() {}\n"));
    assert_eq!(
        disk["identity"],
        json!({ "kind": "disk", "hash": hash, "length": 13 })
    );

    did_open(&mut client, &uri, 4, "fn main() { unsaved(); }\n");
    let buffer = read_text(&mut client, &uri);
    assert_eq!(buffer["text"], "fn main() { unsaved(); }\n");
    assert_eq!(
        buffer["identity"],
        json!({ "kind": "buffer", "version": 4 })
    );
    assert_eq!(buffer["languageId"], "plaintext");

    // A save that reports different text than kiln's copy resynchronises the copy.
    client.notify(
        "textDocument/didSave",
        json!({ "textDocument": { "uri": uri }, "text": "fn main() { saved(); }\n" }),
    );
    assert_eq!(
        read_text(&mut client, &uri)["text"],
        "fn main() { saved(); }\n"
    );

    client.notify(
        "textDocument/didClose",
        json!({ "textDocument": { "uri": uri } }),
    );
    assert_eq!(read_text(&mut client, &uri)["identity"]["kind"], "disk");

    let err = client
        .request(
            "kiln/read",
            json!({ "uri": file_uri(&dir.path().join("missing.rs")) }),
        )
        .unwrap_err();
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .starts_with("file not found: "),
        "{err}"
    );
    let err = client
        .request("kiln/read", json!({ "uri": file_uri(dir.path()) }))
        .unwrap_err();
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .starts_with("not a regular file: "),
        "{err}"
    );
}

#[test]
fn status_lists_open_documents() {
    let mut client = TestClient::spawn();
    did_open(&mut client, "untitled:b", 2, "two\nlines");
    did_open(&mut client, "untitled:a", 1, "");
    let status = client.request("kiln/status", json!({})).unwrap();
    let docs = status["openDocuments"].as_array().unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0]["uri"], "untitled:a");
    assert_eq!(docs[1]["lineCount"], 2);
    assert_eq!(docs[1]["byteLength"], 9);
    assert_eq!(status["watching"], "off");
}

#[test]
fn changes_sent_out_of_order_are_put_back_in_version_order() {
    // Helix 25.01 can send version 3 before version 2; each change depends on the last.
    let mut client = TestClient::spawn();
    let uri = "untitled:reorder";
    did_open(&mut client, uri, 1, "");
    let v2 = change(uri, 2, Some([0, 0, 0, 0]), "ab");
    let v3 = change(uri, 3, Some([0, 2, 0, 2]), "c");
    let v4 = change(uri, 4, Some([0, 1, 0, 2]), "B");
    for message in [&v3, &v4, &v2] {
        client.send(message);
    }
    let read = read_text(&mut client, uri);
    assert_eq!(read["text"], "aBc");
    assert_eq!(read["identity"]["version"], 4);
}

#[test]
fn versions_that_skip_numbers_are_applied_without_waiting_for_the_gap() {
    // Neovim's versions are its changedtick, which may jump; the held change must still
    // be applied, in order, before anyone reads the document.
    let mut client = TestClient::spawn();
    let uri = "untitled:gaps";
    did_open(&mut client, uri, 1, "x");
    client.send(&change(uri, 5, Some([0, 1, 0, 1]), "y"));
    client.send(&change(uri, 9, Some([0, 2, 0, 2]), "z"));
    let read = read_text(&mut client, uri);
    assert_eq!(
        (read["text"].as_str(), read["identity"]["version"].as_i64()),
        (Some("xyz"), Some(9))
    );
    // A held change never holds back the changes after it.
    client.send(&change(uri, 20, Some([0, 3, 0, 3]), "!"));
    std::thread::sleep(std::time::Duration::from_millis(150));
    client.send(&change(uri, 21, Some([0, 4, 0, 4]), "?"));
    assert_eq!(read_text(&mut client, uri)["text"], "xyz!?");
}
