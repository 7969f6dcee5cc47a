//! Configuration loading: layers, substitution, environment overrides and every error
//! message, as snapshots of the effective configuration and the diagnostics.

use kiln::config::{self, KeySource, Loaded};
use std::fmt::Write as _;

use crate::support::MapEnv;

/// Writes `//- /path` sections of `fixture` under a temporary root; `/global/…` is the
/// global config dir, everything else the project.
fn check(fixture: &str, env: &[(&str, &str)]) -> (String, Loaded) {
    let root = tempfile::tempdir().unwrap();
    let mut current: Option<(String, String)> = None;
    let mut files = Vec::new();
    for line in fixture.lines() {
        if let Some(path) = line.strip_prefix("//- ") {
            files.extend(current.take());
            current = Some((path.trim().to_owned(), String::new()));
        } else if let Some((_, text)) = &mut current {
            text.push_str(line);
            text.push('\n');
        }
    }
    files.extend(current);
    for (path, text) in files {
        let path = root.path().join(path.trim_start_matches('/'));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let project = root.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    let env = MapEnv::new(env).with_home(&root.path().join("home"));
    let loaded = config::load(&config::LoadOptions {
        project_dir: project,
        global_dir: Some(root.path().join("global")),
        env: &env,
    });
    let text = render(&loaded).replace(&root.path().display().to_string(), "<root>");
    (text, loaded)
}

fn render(loaded: &Loaded) -> String {
    let mut out = String::new();
    for source in &loaded.sources {
        writeln!(
            out,
            "{} {}",
            if source.found { "read" } else { "none" },
            source.name
        )
        .unwrap();
    }
    let c = &loaded.config;
    writeln!(
        out,
        "model: {:?} (set at {:?})",
        c.model.as_ref().map(|m| m.to_string()),
        c.model_origin.as_ref().map(|o| o.to_string())
    )
    .unwrap();
    writeln!(
        out,
        "small_model: {:?}",
        c.small_model.as_ref().map(|m| m.to_string())
    )
    .unwrap();
    writeln!(out, "compaction: {}%", c.compaction.threshold_percent).unwrap();
    for (name, (value, origin)) in &c.sections {
        writeln!(out, "section {name} ({origin}): {value}").unwrap();
    }
    let providers: Vec<_> = c.providers.keys().cloned().collect();
    writeln!(out, "providers: {}", providers.join(" ")).unwrap();
    for p in c.providers.values() {
        let defaults = config::PRESETS
            .iter()
            .find(|pr| pr.id == p.id)
            .is_some_and(|pr| {
                pr.base_url == p.base_url
                    && p.timeout == config::DEFAULT_TIMEOUT
                    && p.max_retries == config::DEFAULT_MAX_RETRIES
                    && p.models.len() == pr.models.len()
                    && p.headers.len() == pr.headers.len()
            })
            && p.key_source == KeySource::None;
        if defaults {
            continue;
        }
        let key = match &p.key_source {
            KeySource::Env(var) => format!("from ${var}"),
            KeySource::Config(origin) => format!("written at {origin}"),
            KeySource::None if p.keyless => "not needed".to_owned(),
            KeySource::None => "missing".to_owned(),
        };
        writeln!(
            out,
            "provider {} ({}): {} key {key}, timeout {:?}, retries {}, headers [{}]",
            p.id,
            p.api.as_str(),
            p.base_url,
            p.timeout,
            p.max_retries,
            p.headers
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
        .unwrap();
        for m in p.models.values() {
            writeln!(
                out,
                "  model {} \"{}\" tools={} reasoning={} temperature={} attachment={} limit={:?}",
                m.id, m.name, m.tool_call, m.reasoning, m.temperature, m.attachment, m.limit
            )
            .unwrap();
        }
    }
    for d in &loaded.diagnostics {
        writeln!(out, "{d}").unwrap();
    }
    out
}

#[test]
fn layers_merge_in_order_with_comments_and_trailing_commas() {
    let (text, _) = check(
        r#"
//- /global/kiln.jsonc
{
  // the person's default everywhere
  "model": "anthropic/claude-sonnet-4-5",
  "provider": { "openai": { "options": { "timeout_ms": 60000 } } },
}
//- /project/kiln.jsonc
{
  /* this project runs a local vLLM */
  "model": "vllm/qwen3-coder",
  "provider": {
    "vllm": {
      "type": "openai-compatible",
      "name": "vLLM on the GPU box",
      "options": { "baseURL": "http://localhost:8000/v1/", "max_retries": 1 },
      "models": {
        "qwen3-coder": { "name": "Qwen3 Coder", "reasoning": false, "temperature": false, "limit": { "context": 65536, "output": 8192 } },
      },
    },
  },
  "permission": { "bash": "ask" },
}
//- /project/.kiln/kiln.jsonc
{ "compaction": { "threshold_percent": 70 } }
//- /elsewhere/extra.jsonc
{ "small_model": "vllm/qwen3-coder" }
"#,
        &[
            ("KILN_CONFIG", "../elsewhere/extra.jsonc"),
            (
                "KILN_CONFIG_CONTENT",
                r#"{"provider":{"vllm":{"options":{"max_retries":3}}}}"#,
            ),
        ],
    );
    insta::assert_snapshot!(text);
}

#[test]
fn env_and_file_substitution_and_key_sources() {
    let (text, loaded) = check(
        r#"
//- /project/kiln.jsonc
{
  "provider": {
    "corp": {
      "type": "anthropic",
      "options": {
        "baseURL": "https://llm.corp.example/{env:CORP_REGION}/v1",
        "apiKey": "{env:CORP_KEY}",
        "headers": { "X-Team": "{file:team.txt}", "X-Token": "{file:~/token}" },
      },
    },
    "openai": { "options": { "apiKey": "{env:NOT_SET_ANYWHERE}" } },
    "groq": { "options": { "apiKey": "gsk-written-in-the-file" } },
  },
  "mcp": { "files": { "command": ["{env:CORP_REGION}-mcp"] } },
}
//- /project/team.txt
platform
//- /home/token
tok-123
"#,
        &[
            ("CORP_REGION", "eu"),
            ("CORP_KEY", "sk-corp-secret-value"),
            ("OPENAI_API_KEY", "sk-openai-from-env"),
        ],
    );
    insta::assert_snapshot!(text);
    let debug = format!("{loaded:?}");
    for secret in [
        "sk-corp-secret-value",
        "sk-openai-from-env",
        "gsk-written-in-the-file",
        "tok-123",
    ] {
        assert!(!debug.contains(secret), "{secret} appears in Debug output");
    }
    let corp = loaded.config.provider("corp").unwrap();
    assert_eq!(
        corp.api_key.as_ref().unwrap().expose(),
        "sk-corp-secret-value"
    );
    assert_eq!(corp.headers[1].1.expose(), "tok-123");
}

#[test]
fn every_problem_names_file_line_key_and_what_is_expected() {
    let (text, loaded) = check(
        r#"
//- /global/kiln.jsonc
{
  "model": "gpt-4.1",
  "modle": "x",
  "provider": {
    "openai": { "options": { "timeout_ms": "30s", "baseUrl": "https://x" } },
    "local": { "options": { "baseURL": "http://localhost:9000/v1" } },
    "mine": { "type": "openai", "options": { "baseURL": "https://api.example.com/v1/chat/completions" } },
    "bad": { "type": "grpc", "options": { "baseURL": "ftp://example.com" } },
    "nourl": { "type": "anthropic" },
    "models": { "type": "anthropic", "options": { "baseURL": "http://127.0.0.1:1/v1" }, "models": { "m": { "limit": { "context": -5 }, "tool_call": "yes" } } },
  },
  "compaction": { "threshold_percent": 150 },
  "enabled_providers": ["openai", "mine", "antropic", "models"],
  "small_model": "openrouter/some-model",
}
//- /project/kiln.jsonc
{
  "model": "anthropic/claude-sonnet-4-5",
  "model": "opnai/gpt-5",
}
//- /project/.kiln/kiln.jsonc
{ "provider": { "x": [1, 2 }
"#,
        &[],
    );
    insta::assert_snapshot!(text);
    assert!(loaded.has_errors());
}

#[test]
fn kiln_endpoint_defines_an_ad_hoc_provider_and_kiln_model_picks_its_model() {
    let (text, loaded) = check(
        "",
        &[
            ("KILN_ENDPOINT", "http://127.0.0.1:8080/v1"),
            ("KILN_API_KEY", "sk-adhoc-secret"),
            ("KILN_MODEL", "qwen2.5-coder:7b"),
        ],
    );
    insta::assert_snapshot!(text);
    assert!(!format!("{loaded:?}").contains("sk-adhoc-secret"));
}

#[test]
fn top_level_that_is_not_an_object_and_empty_files_are_handled() {
    let (text, _) = check(
        "//- /global/kiln.jsonc\n[1, 2]\n//- /project/kiln.jsonc\n// only a comment\n",
        &[("KILN_MODEL", "ollama/qwen2.5-coder")],
    );
    insta::assert_snapshot!(text);
}

#[test]
fn a_missing_kiln_config_file_is_an_error() {
    let (text, _) = check("", &[("KILN_CONFIG", "nope.jsonc")]);
    assert!(
        text.contains("error: cannot read <root>/project/nope.jsonc (named by $KILN_CONFIG)"),
        "{text}"
    );
}

#[test]
fn config_loading_never_panics_on_mangled_input() {
    let base = r#"{"model":"a/b","provider":{"p":{"type":"anthropic","options":{"baseURL":"http://x","headers":{"a":"{env:"}},"models":{"m":{"limit":{"context":1}}}}},"compaction":{"threshold_percent":5}}"#;
    let mut rng = crate::support::rng::Rng::from_env();
    let project = tempfile::tempdir().unwrap();
    for _ in 0..300 {
        let mut bytes = base.as_bytes().to_vec();
        for _ in 0..rng.below(4) + 1 {
            let at = rng.below(bytes.len());
            match rng.below(3) {
                0 => {
                    bytes.remove(at);
                }
                1 => bytes.insert(at, b"{}[]\",:0a-/"[rng.below(11)]),
                _ => bytes[at] = b"{}[]\",:0a-/"[rng.below(11)],
            }
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let env = MapEnv::new(&[("KILN_CONFIG_CONTENT", &text)]);
        let loaded = config::load(&config::LoadOptions {
            project_dir: project.path().to_path_buf(),
            global_dir: None,
            env: &env,
        });
        for d in &loaded.diagnostics {
            assert!(!d.message.is_empty(), "seed {}: empty message", rng.seed());
        }
    }
}
