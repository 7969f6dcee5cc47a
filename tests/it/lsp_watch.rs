//! Watching closed files: through the client's `workspace/didChangeWatchedFiles` when it
//! can register watchers dynamically, through kiln's own watcher otherwise. Ignored paths
//! (`.gitignore`, `target/`, `node_modules/`, `.git/`) are never reported.

use serde_json::{Value, json};

use crate::support::{Options, ServerRequests, TestClient, file_uri};

fn options(root: &std::path::Path, dynamic_registration: bool) -> Options {
    Options {
        initialize: Some(json!({
            "processId": null,
            "rootUri": file_uri(root),
            "capabilities": {
                "workspace": { "didChangeWatchedFiles": { "dynamicRegistration": dynamic_registration } },
            },
        })),
        ..Options::default()
    }
}

fn recent_paths(status: &Value) -> Vec<String> {
    status["externalChanges"]["recent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap().to_owned())
        .collect()
}

fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".gitignore"), "*.log\n").unwrap();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::create_dir_all(dir.path().join("target")).unwrap();
    std::fs::create_dir_all(dir.path().join("node_modules/pkg")).unwrap();
    dir
}

#[test]
fn kiln_watches_by_itself_when_the_client_cannot() {
    let dir = workspace();
    let root = dir.path().canonicalize().unwrap();
    let mut client = TestClient::spawn_with(options(&root, false));
    client.wait_for_status("the watcher to start", |s| s["watching"] == "notify");

    std::fs::write(root.join("debug.log"), "ignored").unwrap();
    std::fs::write(root.join("target/out.o"), "ignored").unwrap();
    std::fs::write(root.join("node_modules/pkg/index.js"), "ignored").unwrap();
    std::fs::write(root.join("src/lib.rs"), "pub fn x() {}\n").unwrap();
    let wanted = root.join("src/lib.rs").display().to_string();
    let status = client.wait_for_status("the change to src/lib.rs", |s| {
        recent_paths(s).contains(&wanted)
    });
    for path in recent_paths(&status) {
        assert!(
            !path.ends_with(".log") && !path.contains("/target/") && !path.contains("node_modules"),
            "{path} should be ignored"
        );
    }
}

#[test]
fn the_client_watches_when_it_can_register_watchers() {
    let dir = workspace();
    let root = dir.path().to_path_buf();
    let mut client = TestClient::spawn_with(options(&root, true));
    let registration = client.wait_for_server_request("client/registerCapability");
    let reg = &registration["params"]["registrations"][0];
    assert_eq!(reg["method"], "workspace/didChangeWatchedFiles");
    assert_eq!(reg["registerOptions"]["watchers"][0]["globPattern"], "**/*");
    let status = client.request("kiln/status", json!({})).unwrap();
    assert_eq!(status["watching"], "client");

    client.notify(
        "workspace/didChangeWatchedFiles",
        json!({ "changes": [
            { "uri": file_uri(&root.join("node_modules/pkg/index.js")), "type": 2 },
            { "uri": file_uri(&root.join("src/main.rs")), "type": 1 },
            { "uri": file_uri(&root.join("app.log")), "type": 2 },
            { "uri": file_uri(&root.join("old.rs")), "type": 3 },
        ] }),
    );
    let status = client.request("kiln/status", json!({})).unwrap();
    assert_eq!(status["externalChanges"]["total"], 2);
    let recent = &status["externalChanges"]["recent"];
    assert_eq!(
        recent[0],
        json!({ "path": root.join("src/main.rs"), "kind": "created" })
    );
    assert_eq!(
        recent[1],
        json!({ "path": root.join("old.rs"), "kind": "deleted" })
    );
}

#[test]
fn a_refused_registration_falls_back_to_kilns_watcher() {
    let dir = workspace();
    let root = dir.path().canonicalize().unwrap();
    let mut options = options(&root, true);
    options.server_requests = ServerRequests::Refuse;
    let mut client = TestClient::spawn_with(options);
    client.wait_for_server_request("client/registerCapability");
    client.wait_for_status("the fallback watcher", |s| s["watching"] == "notify");
    std::fs::write(root.join("src/new.rs"), "").unwrap();
    let wanted = root.join("src/new.rs").display().to_string();
    client.wait_for_status("the change to src/new.rs", |s| {
        recent_paths(s).contains(&wanted)
    });
}
