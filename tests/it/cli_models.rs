//! `kiln models` and `kiln doctor` as a person runs them: the binary in a project
//! directory with a clean environment, providers pointed at scripted servers.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::support::llm_server::{Reply, ScriptedServer};

const CORP_KEY: &str = "sk-corp-do-not-print-7731";

struct Setup {
    _rt: tokio::runtime::Runtime,
    root: tempfile::TempDir,
    _ollama: ScriptedServer,
    _corp: ScriptedServer,
}

/// A project whose config points Ollama at a server listing two models and defines a
/// `corp` provider whose server rejects the key.
fn setup() -> Setup {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (ollama, corp) = rt.block_on(async {
        (
            ScriptedServer::start(vec![]).await,
            ScriptedServer::start(vec![]).await,
        )
    });
    ollama.set_fallback(Reply::json(
        200,
        r#"{"object":"list","data":[{"id":"qwen2.5-coder:7b","object":"model","owned_by":"library"},{"id":"llama3.2:3b","object":"model"}]}"#,
    ));
    corp.set_fallback(Reply::json(
        401,
        r#"{"error":{"message":"Invalid token","type":"auth"}}"#,
    ));
    let root = tempfile::tempdir().unwrap();
    let project = root.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    // "compactoin" first: line 3 of the file whatever order the JSON keys are written in.
    let config = json!({
        "compactoin": {},
        "provider": {
            "ollama": { "options": { "baseURL": ollama.base_url() } },
            "corp": { "type": "openai-compatible", "options": { "baseURL": corp.base_url(), "apiKey": "{env:CORP_KEY}", "max_retries": 0 } },
        },
        "disabled_providers": ["lmstudio"],
    });
    std::fs::write(
        project.join("kiln.jsonc"),
        format!("// project config\n{config:#}\n"),
    )
    .unwrap();
    Setup {
        _rt: rt,
        root,
        _ollama: ollama,
        _corp: corp,
    }
}

fn kiln(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
    cmd.args(args)
        .current_dir(root.join("project"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", root.join("home"))
        .env("XDG_CONFIG_HOME", root.join("config"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stdout_json(output: &Output) -> Value {
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(!text.contains(CORP_KEY), "the key was printed:\n{text}");
    assert!(!String::from_utf8_lossy(&output.stderr).contains(CORP_KEY));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn doctor_finds_the_local_model_and_reports_the_rejected_key_with_a_next_step() {
    let s = setup();
    let output = kiln(
        s.root.path(),
        &["doctor", "--format", "json"],
        &[("CORP_KEY", CORP_KEY)],
    );
    let doc = stdout_json(&output);
    assert_eq!(doc["model"]["id"], "ollama/qwen2.5-coder:7b", "{doc:#}");
    assert!(
        doc["model"]["why"]
            .as_str()
            .unwrap()
            .starts_with("found on Ollama"),
        "{doc:#}"
    );
    let provider = |id: &str| {
        doc["providers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .unwrap()
            .clone()
    };
    let corp = provider("corp");
    assert_eq!(corp["status"], "auth_failed", "{corp:#}");
    assert_eq!(corp["keySource"], "$CORP_KEY");
    assert!(
        corp["nextStep"]
            .as_str()
            .unwrap()
            .contains("kiln sent the key from $CORP_KEY"),
        "{corp:#}"
    );
    let ollama = provider("ollama");
    assert_eq!(
        (ollama["status"].as_str(), ollama["models"].as_u64()),
        (Some("ok"), Some(2))
    );
    assert_eq!(provider("openai")["status"], "no_key");
    assert!(
        doc["providers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["id"] != "lmstudio")
    );
    let warning = &doc["diagnostics"][0];
    assert_eq!(warning["line"], 3, "{warning:#}");
    assert!(
        warning["message"]
            .as_str()
            .unwrap()
            .contains("did you mean \"compaction\"?")
    );
    assert_eq!(doc["ok"], true);
    assert_eq!(output.status.code(), Some(0));

    let text = kiln(s.root.path(), &["doctor"], &[("CORP_KEY", CORP_KEY)]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(
        stdout.contains("✓ ollama/qwen2.5-coder:7b (found on Ollama"),
        "{stdout}"
    );
    assert!(stdout.contains("✗ corp"), "{stdout}");
    assert!(stdout.contains("kiln is ready."), "{stdout}");
    assert!(!stdout.contains(CORP_KEY));
}

#[test]
fn models_refresh_lists_installed_models_and_never_prints_keys() {
    let s = setup();
    let output = kiln(
        s.root.path(),
        &["models", "--refresh", "--format", "json"],
        &[
            ("CORP_KEY", CORP_KEY),
            ("ANTHROPIC_API_KEY", "sk-ant-never-shown"),
        ],
    );
    let doc = stdout_json(&output);
    assert!(!doc.to_string().contains("sk-ant-never-shown"));
    let ids: Vec<&str> = doc["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"ollama/qwen2.5-coder:7b") && ids.contains(&"ollama/llama3.2:3b"),
        "{ids:?}"
    );
    let sonnet = doc["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "anthropic/claude-sonnet-4-5")
        .unwrap();
    assert_eq!(
        (sonnet["key"].as_str(), sonnet["context"].as_u64()),
        (Some("present"), Some(200_000))
    );
    let corp = doc["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "corp")
        .unwrap();
    assert_eq!(corp["reachable"], false);
    assert!(
        corp["error"].as_str().unwrap().contains("HTTP 401"),
        "{corp:#}"
    );
    assert_eq!(output.status.code(), Some(0), "warnings only");

    let text = kiln(s.root.path(), &["models"], &[]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(
        stdout.lines().next().unwrap().starts_with("MODEL"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ollama/*") && stdout.contains("kiln models --refresh"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&text.stderr);
    assert!(
        stderr.contains("kiln.jsonc:3: compactoin: unknown key"),
        "{stderr}"
    );
}

#[test]
fn doctor_without_any_model_says_how_to_get_one() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("project")).unwrap();
    // Nothing listens on these ports: the local servers are "not running".
    let closed = || {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let config = json!({ "provider": {
        "ollama": { "options": { "baseURL": format!("http://127.0.0.1:{}/v1", closed()) } },
        "lmstudio": { "options": { "baseURL": format!("http://127.0.0.1:{}/v1", closed()) } },
    }});
    let output = kiln(
        root.path(),
        &["doctor"],
        &[("KILN_CONFIG_CONTENT", &config.to_string())],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    for expected in [
        "kiln found no model to use",
        "export ANTHROPIC_API_KEY=",
        "ollama pull qwen2.5-coder",
        "KILN_ENDPOINT=http://host:port/v1",
        "Tried: nothing answers at http://127.0.0.1:",
        "kiln is not ready: it has no model",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}

#[test]
fn broken_config_file_is_reported_with_its_line_and_the_command_still_runs() {
    let root = tempfile::tempdir().unwrap();
    let project = root.path().join("project");
    std::fs::create_dir_all(project.join(".kiln")).unwrap();
    std::fs::write(
        project.join(".kiln/kiln.jsonc"),
        "{\n  \"model\": \"anthropic/claude-sonnet-4-5\"\n  \"oops\" \n}\n",
    )
    .unwrap();
    let output = kiln(root.path(), &["models"], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(".kiln/kiln.jsonc:2: not valid JSONC: Expected comma"),
        "{stderr}"
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stdout).contains("anthropic/claude-sonnet-4-5"));
}

#[test]
fn remote_providers_go_through_the_http_proxy_and_local_ones_never_do() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (proxy, ollama) = rt.block_on(async {
        (
            ScriptedServer::start(vec![]).await,
            ScriptedServer::start(vec![]).await,
        )
    });
    proxy.set_fallback(Reply::json(200, r#"{"data":[{"id":"remote-model-1"}]}"#));
    ollama.set_fallback(Reply::json(200, r#"{"data":[{"id":"local-model-1"}]}"#));
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("project")).unwrap();
    // "compactoin" first: line 3 of the file whatever order the JSON keys are written in.
    let config = json!({
        "compactoin": {},
        "provider": {
            "far": { "type": "openai-compatible", "options": { "baseURL": "http://models.example.invalid/v1", "apiKey": "{env:FAR_KEY}" } },
            "ollama": { "options": { "baseURL": ollama.base_url() } },
        },
        "enabled_providers": ["far", "ollama"],
    });
    let proxy_url = format!("http://{}", proxy.addr);
    let output = kiln(
        root.path(),
        &["models", "--refresh", "--format", "json"],
        &[
            ("KILN_CONFIG_CONTENT", &config.to_string()),
            ("FAR_KEY", CORP_KEY),
            ("HTTP_PROXY", &proxy_url),
            ("http_proxy", &proxy_url),
        ],
    );
    let doc = stdout_json(&output);
    let ids: Vec<&str> = doc["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec!["far/remote-model-1", "ollama/local-model-1"],
        "{doc:#}"
    );
    let through_proxy = proxy.requests();
    assert_eq!(through_proxy.len(), 1);
    assert_eq!(
        through_proxy[0].path, "http://models.example.invalid/v1/models",
        "absolute-form request to the proxy"
    );
    assert_eq!(
        through_proxy[0].header("authorization"),
        Some(format!("Bearer {CORP_KEY}").as_str())
    );
    assert_eq!(
        ollama.requests().len(),
        1,
        "the local server was reached directly"
    );
}
