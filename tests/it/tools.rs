//! Tool tests: a fixture workspace, one call through the registry (schema-checked input,
//! `describe`, then `run`), and a snapshot of everything the call produced: the title and
//! action, the text the model reads or its error, and each file change as a unified diff.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kiln::text::diff::{Diff, DiffOptions, RenderOptions, render_unified};
use kiln::tools::{Action, DiskFiles, Limits, Registry, ToolCx, display_path};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::support::workspace;

/// How a call is set up beyond its fixture and input.
#[derive(Default)]
struct Setup {
    limits: Limits,
    /// Cancels the call's token this long after it starts.
    cancel_after: Option<Duration>,
}

/// One finished call.
struct Run {
    /// The rendered outcome, the workspace root written as `$ROOT`.
    text: String,
    /// The progress chunks, in order, the root written as `$ROOT`.
    progress: Vec<String>,
    elapsed: Duration,
    dir: tempfile::TempDir,
}

/// Any single call gives up (and fails the test) after this long.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

fn check(fixture: &str, tool: &str, input: Value) -> String {
    run(Setup::default(), fixture, tool, input).text
}

fn check_with(limits: Limits, fixture: &str, tool: &str, input: Value) -> String {
    let setup = Setup {
        limits,
        ..Setup::default()
    };
    run(setup, fixture, tool, input).text
}

fn run(setup: Setup, fixture: &str, tool_name: &str, input: Value) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    workspace::write(&root, fixture);
    let chunks: Arc<Mutex<Vec<String>>> = Arc::default();
    let cx = ToolCx {
        root: root.clone(),
        files: Arc::new(DiskFiles),
        cancel: CancellationToken::new(),
        progress: {
            let chunks = chunks.clone();
            Arc::new(move |chunk| chunks.lock().unwrap().push(chunk))
        },
        limits: setup.limits,
    };
    let registry = Registry::builtin();
    let tool = registry
        .get(tool_name)
        .unwrap_or_else(|| panic!("no tool named {tool_name}"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if let Some(after) = setup.cancel_after {
        let cancel = cx.cancel.clone();
        rt.spawn(async move {
            tokio::time::sleep(after).await;
            cancel.cancel();
        });
    }
    let describe = tool.describe(&input, &cx);
    let started = Instant::now();
    let call = tool.run(input, cx.clone());
    let result = rt
        .block_on(async { tokio::time::timeout(CALL_TIMEOUT, call).await })
        .unwrap_or_else(|_| panic!("{tool_name} did not finish within {CALL_TIMEOUT:?}"));
    let elapsed = started.elapsed();

    let mut out = String::new();
    match &describe {
        Ok(d) => {
            out.push_str(&format!("title: {}\n", d.title));
            let paths = |paths: &[std::path::PathBuf]| {
                paths
                    .iter()
                    .map(|p| display_path(&root, p))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let action = match &d.action {
                Action::Read { paths: p } => format!("read {}", paths(p)),
                Action::Edit { paths: p } => format!("edit {}", paths(p)),
                Action::Command { command } => format!("command {command}"),
                Action::Note => "note".to_owned(),
            };
            out.push_str(&format!("action: {action}\n"));
            if !d.locations.is_empty() {
                let locations: Vec<String> = d
                    .locations
                    .iter()
                    .map(|l| match l.line {
                        Some(line) => format!("{}:{line}", display_path(&root, &l.path)),
                        None => display_path(&root, &l.path),
                    })
                    .collect();
                out.push_str(&format!("locations: {}\n", locations.join(", ")));
            }
        }
        Err(err) => {
            // Input that does not fit the schema fails in both places, the same way.
            assert_eq!(
                result.as_ref().err(),
                Some(err),
                "describe and run disagree"
            );
            out.push_str("describe: failed\n");
        }
    }
    out.push_str("---\n");
    match &result {
        Err(err) => out.push_str(&format!("error: {err}\n")),
        Ok(output) => {
            if output.is_error || output.exit_code.is_some() {
                out.push_str(&format!(
                    "exit code: {}{}\n",
                    output
                        .exit_code
                        .map_or_else(|| "none".to_owned(), |c| c.to_string()),
                    if output.is_error { " (is_error)" } else { "" }
                ));
            }
            out.push_str(&output.text);
            if !output.text.ends_with('\n') {
                out.push('\n');
            }
            for item in output.plan.iter().flatten() {
                out.push_str(&format!(
                    "plan: [{:?}] {} ({:?})\n",
                    item.status, item.content, item.priority
                ));
            }
            for change in &output.changes {
                assert_eq!(
                    change.base.is_some(),
                    change.old_text.is_some(),
                    "a change has a base exactly when the file existed"
                );
                let name = display_path(&root, &change.path);
                let what = match (&change.old_text, &change.new_text) {
                    (None, Some(_)) => "create",
                    (Some(_), None) => "delete",
                    (Some(_), Some(_)) => "modify",
                    (None, None) => "nothing",
                };
                out.push_str(&format!("change: {what} {name}\n"));
                let diff = Diff::new(
                    change.old_text.as_deref().unwrap_or(""),
                    change.new_text.as_deref().unwrap_or(""),
                    DiffOptions::default(),
                );
                out.push_str(&render_unified(
                    &diff,
                    &RenderOptions {
                        old_path: &name,
                        new_path: &name,
                        color: false,
                    },
                ));
            }
        }
    }
    let root_text = root.display().to_string();
    let clean = |s: &str| s.replace(&root_text, "$ROOT").replace('\r', "␍");
    let progress = chunks.lock().unwrap().iter().map(|c| clean(c)).collect();
    Run {
        text: clean(&out),
        progress,
        elapsed,
        dir,
    }
}

// ---------------------------------------------------------------------------------------
// read

const LIB: &str = r#"
//- /src/lib.rs
//! A small library.

pub fn add(a: i32, b: i32) -> i32 {
    a + b
}

pub fn sub(a: i32, b: i32) -> i32 {
    a - b
}

#[cfg(test)]
mod tests {
    #[test]
    fn adds() {
        assert_eq!(super::add(1, 2), 3);
    }
}
//- /src/util/mod_a.rs
pub const A: u8 = 1;
//- /README.md
# lib
"#;

#[test]
fn read_numbers_lines() {
    insta::assert_snapshot!(
        "read-numbered",
        check(LIB, "read", json!({ "path": "src/lib.rs" }))
    );
}

#[test]
fn read_a_range_says_how_to_read_on() {
    insta::assert_snapshot!(
        "read-offset-limit",
        check(
            LIB,
            "read",
            json!({ "path": "src/lib.rs", "offset": 4, "limit": 3 })
        )
    );
    // Without a range, the default line count applies, with the same note.
    let limits = Limits {
        read_lines: 5,
        ..Limits::default()
    };
    insta::assert_snapshot!(
        "read-default-limit",
        check_with(limits, LIB, "read", json!({ "path": "src/lib.rs" }))
    );
    // The byte cap stops at a whole line, with the same note.
    let limits = Limits {
        max_output_bytes: 60,
        ..Limits::default()
    };
    insta::assert_snapshot!(
        "read-byte-cap",
        check_with(limits, LIB, "read", json!({ "path": "src/lib.rs" }))
    );
    insta::assert_snapshot!(
        "read-offset-past-end",
        check(LIB, "read", json!({ "path": "src/lib.rs", "offset": 100 }))
    );
}

#[test]
fn read_a_directory_lists_it() {
    insta::assert_snapshot!(
        "read-directory",
        check(LIB, "read", json!({ "path": "src" }))
    );
}

#[test]
fn read_a_missing_file() {
    insta::assert_snapshot!(
        "read-missing",
        check(LIB, "read", json!({ "path": "src/nope.rs" }))
    );
}

#[test]
fn read_cuts_over_long_lines_on_a_char_boundary() {
    // 2 + 1500 × 2 bytes: the cut at 2000 bytes falls inside an `é` and moves back.
    let fixture = format!("//- /min.js\nx={}\nshort\n", "é".repeat(1500));
    let text = check(&fixture, "read", json!({ "path": "min.js" }));
    let expected_line = format!("   1│x={}… [line cut at 2000 bytes]\n", "é".repeat(999));
    assert!(text.contains(&expected_line), "{text}");
    insta::assert_snapshot!("read-long-line", text.replace(&"é".repeat(999), "é×999"));
}

#[test]
fn read_crlf_and_empty_files() {
    let fixture = "//- /crlf.txt\r\none\r\ntwo\r\n//- /empty.txt\n";
    insta::assert_snapshot!(
        "read-crlf",
        check(fixture, "read", json!({ "path": "crlf.txt" }))
    );
    insta::assert_snapshot!(
        "read-empty",
        check(fixture, "read", json!({ "path": "empty.txt" }))
    );
}

// ---------------------------------------------------------------------------------------
// list

const TREE: &str = r#"
//- /.gitignore
*.log
build/
//- /.env
SECRET=1
//- /Cargo.toml
[package]
//- /debug.log
noise
//- /build/out.txt
built
//- /target/debug/kiln
binary
//- /node_modules/left-pad/index.js
module.exports = 1;
//- /.git/HEAD
ref: refs/heads/main
//- /src/main.rs
fn main() {}
//- /src/lib.rs
pub fn lib() {}
//- /src/deep/er/still.rs
// deep
//- /docs/guide.md
# Guide
"#;

#[test]
fn list_to_a_depth() {
    insta::assert_snapshot!("list-default-depth", check(TREE, "list", json!({})));
    insta::assert_snapshot!("list-depth-1", check(TREE, "list", json!({ "depth": 1 })));
    insta::assert_snapshot!(
        "list-subdirectory-depth-3",
        check(TREE, "list", json!({ "path": "src", "depth": 3 }))
    );
}

#[test]
fn list_leaves_out_ignored_files_and_always_ignored_directories() {
    let text = check(TREE, "list", json!({ "depth": 10 }));
    for hidden in ["debug.log", "build", "target", "node_modules", ".git/"] {
        assert!(!text.contains(hidden), "{hidden} listed:\n{text}");
    }
    for shown in [".gitignore", ".env", "still.rs"] {
        assert!(text.contains(shown), "{shown} not listed:\n{text}");
    }
    insta::assert_snapshot!("list-ignores", text);
}

#[test]
fn list_caps_entries_and_explains_bad_paths() {
    let limits = Limits {
        list_entries: 3,
        ..Limits::default()
    };
    insta::assert_snapshot!("list-capped", check_with(limits, TREE, "list", json!({})));
    insta::assert_snapshot!(
        "list-missing",
        check(TREE, "list", json!({ "path": "nope" }))
    );
    insta::assert_snapshot!(
        "list-a-file",
        check(TREE, "list", json!({ "path": "Cargo.toml" }))
    );
}

// ---------------------------------------------------------------------------------------
// glob

#[test]
fn glob_by_name_and_by_path() {
    // No separator: the file name at any depth.
    insta::assert_snapshot!(
        "glob-by-name",
        check(TREE, "glob", json!({ "pattern": "*.rs" }))
    );
    // With a separator: the path relative to the searched directory; `*` stays in a segment.
    insta::assert_snapshot!(
        "glob-by-path",
        check(TREE, "glob", json!({ "pattern": "src/*.rs" }))
    );
    insta::assert_snapshot!(
        "glob-double-star-and-alternatives",
        check(TREE, "glob", json!({ "pattern": "**/*.{md,toml}" }))
    );
    insta::assert_snapshot!(
        "glob-in-subdirectory",
        check(
            TREE,
            "glob",
            json!({ "pattern": "deep/**/*.rs", "path": "src" })
        )
    );
}

#[test]
fn glob_skips_ignored_files_caps_and_explains() {
    insta::assert_snapshot!(
        "glob-ignored",
        check(TREE, "glob", json!({ "pattern": "*.{log,txt,js}" }))
    );
    let limits = Limits {
        list_entries: 2,
        ..Limits::default()
    };
    insta::assert_snapshot!(
        "glob-capped",
        check_with(limits, TREE, "glob", json!({ "pattern": "*.rs" }))
    );
    insta::assert_snapshot!(
        "glob-invalid",
        check(TREE, "glob", json!({ "pattern": "src/[a" }))
    );
    insta::assert_snapshot!(
        "glob-missing-directory",
        check(TREE, "glob", json!({ "pattern": "*", "path": "nope" }))
    );
}

// ---------------------------------------------------------------------------------------
// grep

const CODE: &str = r#"
//- /.gitignore
generated/
//- /src/a.rs
use std::fmt;

fn alpha() -> u32 {
    1
}

fn beta() -> u32 {
    2
}
//- /src/b.ts
function gamma(): number {
  return 3;
}
//- /src/c.rs
fn delta() {}
fn Epsilon() {}
//- /generated/big.rs
fn ignored() {}
//- /notes.txt
alpha and beta and fn in prose
"#;

#[test]
fn grep_a_regex() {
    insta::assert_snapshot!(
        "grep-regex",
        check(CODE, "grep", json!({ "pattern": r"fn \w+\(" }))
    );
    insta::assert_snapshot!(
        "grep-case-insensitive",
        check(
            CODE,
            "grep",
            json!({ "pattern": "fn epsilon", "case_insensitive": true })
        )
    );
    insta::assert_snapshot!(
        "grep-no-match",
        check(CODE, "grep", json!({ "pattern": "zeta" }))
    );
}

#[test]
fn grep_with_context_lines() {
    insta::assert_snapshot!(
        "grep-context",
        check(
            CODE,
            "grep",
            json!({ "pattern": "^fn (alpha|beta|delta)", "context": 1 })
        )
    );
}

#[test]
fn grep_include_glob_and_path() {
    insta::assert_snapshot!(
        "grep-include",
        check(
            CODE,
            "grep",
            json!({ "pattern": "alpha|gamma", "include": "*.ts" })
        )
    );
    insta::assert_snapshot!(
        "grep-one-file",
        check(CODE, "grep", json!({ "pattern": "fn", "path": "src/c.rs" }))
    );
}

#[test]
fn grep_caps_results_deterministically() {
    let limits = Limits {
        grep_matches: 3,
        ..Limits::default()
    };
    let first = check_with(limits, CODE, "grep", json!({ "pattern": "fn" }));
    for _ in 0..5 {
        assert_eq!(
            check_with(limits, CODE, "grep", json!({ "pattern": "fn" })),
            first,
            "the cut does not depend on thread timing"
        );
    }
    insta::assert_snapshot!("grep-capped", first);
}

#[test]
fn grep_skips_ignored_and_binary_files() {
    let fixture = format!("{CODE}//- /data.bin\nfn in\0binary\n");
    let text = check(&fixture, "grep", json!({ "pattern": "ignored|binary" }));
    insta::assert_snapshot!("grep-ignored-and-binary", text);
}

#[test]
fn grep_invalid_regex_and_missing_path() {
    insta::assert_snapshot!(
        "grep-invalid-regex",
        check(CODE, "grep", json!({ "pattern": "fn (" }))
    );
    insta::assert_snapshot!(
        "grep-invalid-include",
        check(CODE, "grep", json!({ "pattern": "fn", "include": "*.{rs" }))
    );
    insta::assert_snapshot!(
        "grep-missing-path",
        check(CODE, "grep", json!({ "pattern": "fn", "path": "nope" }))
    );
}

// ---------------------------------------------------------------------------------------
// edit

const CONFIG: &str = r#"
//- /src/config.rs
pub struct Config {
    pub name: String,
    pub retries: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            name: "kiln".into(),
            retries: 3,
        }
    }
}
"#;

#[test]
fn edit_one_replacement() {
    insta::assert_snapshot!(
        "edit-single",
        check(
            CONFIG,
            "edit",
            json!({
                "path": "src/config.rs",
                "old_string": "            retries: 3,",
                "new_string": "            retries: 5,",
            })
        )
    );
}

#[test]
fn edit_keeps_crlf_line_endings() {
    let fixture = "//- /win.txt\r\nfirst\r\nsecond\r\nthird\r\n";
    let text = check(
        fixture,
        "edit",
        json!({ "path": "win.txt", "old_string": "second\nthird", "new_string": "2nd\n3rd\nfourth" }),
    );
    insta::assert_snapshot!("edit-crlf", text);
}

#[test]
fn edit_ambiguous_match_lists_lines() {
    insta::assert_snapshot!(
        "edit-ambiguous",
        check(
            CONFIG,
            "edit",
            json!({ "path": "src/config.rs", "old_string": "    pub ", "new_string": "    pub(crate) " })
        )
    );
}

#[test]
fn edit_replace_all() {
    insta::assert_snapshot!(
        "edit-replace-all",
        check(
            CONFIG,
            "edit",
            json!({
                "path": "src/config.rs",
                "old_string": "Config",
                "new_string": "Settings",
                "replace_all": true,
            })
        )
    );
}

#[test]
fn edit_not_found_shows_the_closest_region() {
    // A near miss (a different value and name).
    insta::assert_snapshot!(
        "edit-not-found-closest",
        check(
            CONFIG,
            "edit",
            json!({
                "path": "src/config.rs",
                "old_string": "            name: \"kilm\".into(),\n            retry: 3,",
                "new_string": "            name: \"oven\".into(),\n            retries: 3,",
            })
        )
    );
    // Only the indentation differs.
    insta::assert_snapshot!(
        "edit-not-found-indentation",
        check(
            CONFIG,
            "edit",
            json!({
                "path": "src/config.rs",
                "old_string": "Config {\nname: \"kiln\".into(),",
                "new_string": "Config {\nname: \"oven\".into(),",
            })
        )
    );
    // Nothing close at all.
    insta::assert_snapshot!(
        "edit-not-found-nothing-close",
        check(
            CONFIG,
            "edit",
            json!({ "path": "src/config.rs", "old_string": "zzzzzzzzzzzzzzzzzzzz", "new_string": "y" })
        )
    );
}

#[test]
fn edit_refuses_pointless_or_impossible_requests() {
    insta::assert_snapshot!(
        "edit-empty-old-string",
        check(
            CONFIG,
            "edit",
            json!({ "path": "src/config.rs", "old_string": "", "new_string": "x" })
        )
    );
    insta::assert_snapshot!(
        "edit-same-strings",
        check(
            CONFIG,
            "edit",
            json!({ "path": "src/config.rs", "old_string": "kiln", "new_string": "kiln" })
        )
    );
    insta::assert_snapshot!(
        "edit-missing-file",
        check(
            CONFIG,
            "edit",
            json!({ "path": "src/nope.rs", "old_string": "a", "new_string": "b" })
        )
    );
}

// ---------------------------------------------------------------------------------------
// write

#[test]
fn write_creates_a_file_in_a_new_folder() {
    let run = run(
        Setup::default(),
        CONFIG,
        "write",
        json!({ "path": "docs/new/notes.md", "content": "# Notes\n\nkiln\n" }),
    );
    insta::assert_snapshot!("write-create", run.text);
    // The tool proposes; it does not write.
    assert!(!run.dir.path().join("docs").exists());
}

#[test]
fn write_overwrites() {
    insta::assert_snapshot!(
        "write-overwrite",
        check(
            CONFIG,
            "write",
            json!({ "path": "src/config.rs", "content": "pub struct Config;\n" })
        )
    );
    insta::assert_snapshot!(
        "write-same-content",
        check(
            "//- /a.txt\nsame\n",
            "write",
            json!({ "path": "a.txt", "content": "same\n" })
        )
    );
    insta::assert_snapshot!(
        "write-directory",
        check(CONFIG, "write", json!({ "path": "src", "content": "x" }))
    );
}

// ---------------------------------------------------------------------------------------
// apply_patch

const NUMBERS: &str = r#"
//- /src/numbers.txt
added
at the top
one
two
three
four
five
six
seven
//- /old.txt
going
away
"#;

#[test]
fn apply_patch_with_drifted_line_numbers() {
    // The header says line 1, the text is at line 3 now.
    let patch = "\
diff --git a/src/numbers.txt b/src/numbers.txt
--- a/src/numbers.txt
+++ b/src/numbers.txt
@@ -1,3 +1,3 @@
 one
-two
+TWO
 three
@@ -5,2 +5,3 @@
 five
+five and a half
 six
";
    insta::assert_snapshot!(
        "apply-patch-drift",
        check(NUMBERS, "apply_patch", json!({ "patch": patch }))
    );
}

#[test]
fn apply_patch_creates_and_deletes() {
    let patch = "\
--- /dev/null
+++ b/src/new/fresh.txt
@@ -0,0 +1,2 @@
+hello
+world
--- a/old.txt
+++ /dev/null
@@ -1,2 +0,0 @@
-going
-away
";
    insta::assert_snapshot!(
        "apply-patch-create-delete",
        check(NUMBERS, "apply_patch", json!({ "patch": patch }))
    );
}

#[test]
fn apply_patch_hunk_that_does_not_match() {
    let patch = "\
--- a/src/numbers.txt
+++ b/src/numbers.txt
@@ -4,3 +4,3 @@
 two
-THREE
+3
 four
";
    // The detail names the first line that differs (line 5), not the hunk's first line.
    insta::assert_snapshot!(
        "apply-patch-no-match",
        check(NUMBERS, "apply_patch", json!({ "patch": patch }))
    );
}

#[test]
fn apply_patch_a_delete_whose_lines_do_not_match_is_refused() {
    let patch = "\
--- a/old.txt
+++ /dev/null
@@ -1,2 +0,0 @@
-something
-else
";
    insta::assert_snapshot!(
        "apply-patch-delete-mismatch",
        check(NUMBERS, "apply_patch", json!({ "patch": patch }))
    );
    // Hunks that match but do not remove everything: not a deletion of this file.
    let partial = "--- a/old.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-going\n";
    insta::assert_snapshot!(
        "apply-patch-delete-partial",
        check(NUMBERS, "apply_patch", json!({ "patch": partial }))
    );
    // Without hunks, a deletion is taken as meant.
    let bare =
        "diff --git a/old.txt b/old.txt\ndeleted file mode 100644\n--- a/old.txt\n+++ /dev/null\n";
    insta::assert_snapshot!(
        "apply-patch-delete-without-hunks",
        check(NUMBERS, "apply_patch", json!({ "patch": bare }))
    );
}

#[test]
fn apply_patch_refuses_wrong_files_and_bad_syntax() {
    let create_existing = "--- /dev/null\n+++ b/old.txt\n@@ -0,0 +1 @@\n+x\n";
    insta::assert_snapshot!(
        "apply-patch-create-existing",
        check(NUMBERS, "apply_patch", json!({ "patch": create_existing }))
    );
    let modify_missing = "--- a/nope.txt\n+++ b/nope.txt\n@@ -1 +1 @@\n-a\n+b\n";
    insta::assert_snapshot!(
        "apply-patch-missing-file",
        check(NUMBERS, "apply_patch", json!({ "patch": modify_missing }))
    );
    let short_body = "--- a/old.txt\n+++ b/old.txt\n@@ -1,3 +1,3 @@\n going\n-away\n+here\n";
    insta::assert_snapshot!(
        "apply-patch-short-hunk",
        check(NUMBERS, "apply_patch", json!({ "patch": short_body }))
    );
    // One bad file fails the whole patch: no changes for the good one either.
    let half_good = "--- a/old.txt\n+++ b/old.txt\n@@ -1 +1 @@\n-going\n+staying\n\
                     --- a/nope.txt\n+++ b/nope.txt\n@@ -1 +1 @@\n-a\n+b\n";
    insta::assert_snapshot!(
        "apply-patch-all-or-nothing",
        check(NUMBERS, "apply_patch", json!({ "patch": half_good }))
    );
    insta::assert_snapshot!(
        "apply-patch-not-a-patch",
        check(
            NUMBERS,
            "apply_patch",
            json!({ "patch": "just some words\n" })
        )
    );
}

// ---------------------------------------------------------------------------------------
// bash

fn bash(input: Value) -> Run {
    run(
        Setup::default(),
        "//- /hello.txt\nhello from a file\n",
        "bash",
        input,
    )
}

#[test]
fn bash_exit_code_and_output() {
    insta::assert_snapshot!(
        "bash-ok",
        bash(json!({ "command": "cat hello.txt && pwd", "description": "Show a file" })).text
    );
    insta::assert_snapshot!("bash-no-output", bash(json!({ "command": "true" })).text);
}

#[test]
fn bash_non_zero_exit_is_an_error_with_output() {
    insta::assert_snapshot!(
        "bash-exit-3",
        bash(json!({ "command": "echo to stderr >&2; exit 3" })).text
    );
    insta::assert_snapshot!(
        "bash-signal",
        bash(json!({ "command": "echo before; kill -9 $$" })).text
    );
}

/// Whether process `pid` is gone (or a zombie nobody has reaped yet).
fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

fn wait_gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if process_gone(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn pid_in(dir: &Path) -> u32 {
    std::fs::read_to_string(dir.join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn bash_timeout_kills_the_whole_group() {
    let run = bash(json!({
        "command": "sleep 30 & echo $! > pid; echo started; wait",
        "timeout_ms": 800,
    }));
    assert!(run.elapsed < Duration::from_secs(5), "{:?}", run.elapsed);
    let pid = pid_in(run.dir.path());
    assert!(
        wait_gone(pid),
        "the background sleep {pid} survived the timeout"
    );
    insta::assert_snapshot!("bash-timeout", run.text);
}

#[test]
fn bash_background_job_holding_the_pipes_does_not_hang() {
    let run = bash(json!({ "command": "sleep 30 & echo $! > pid; echo done" }));
    assert!(run.elapsed < Duration::from_secs(5), "{:?}", run.elapsed);
    let pid = pid_in(run.dir.path());
    assert!(
        wait_gone(pid),
        "the background sleep {pid} was left running"
    );
    insta::assert_snapshot!("bash-background-job", run.text);
}

#[test]
fn bash_cancel_stops_the_command() {
    let setup = Setup {
        cancel_after: Some(Duration::from_millis(800)),
        ..Setup::default()
    };
    let run = run(
        setup,
        "",
        "bash",
        json!({ "command": "echo waiting; sleep 30" }),
    );
    assert!(run.elapsed < Duration::from_secs(5), "{:?}", run.elapsed);
    insta::assert_snapshot!("bash-cancelled", run.text);
}

#[test]
fn bash_output_cap_keeps_head_and_tail() {
    let setup = Setup {
        limits: Limits {
            max_output_bytes: 40,
            ..Limits::default()
        },
        ..Setup::default()
    };
    // `seq 1 1000` writes 3893 bytes: 20 kept at each end, 3853 left out.
    let run = run(setup, "", "bash", json!({ "command": "seq 1 1000" }));
    insta::assert_snapshot!("bash-capped", run.text);
    // The frontend still saw everything.
    let expected: String = (1..=1000).map(|i| format!("{i}\n")).collect();
    assert_eq!(run.progress.concat(), expected);
}

#[test]
fn bash_stdin_is_closed() {
    // `cat` with a terminal or an open pipe on stdin would wait for the timeout.
    let run = bash(json!({ "command": "cat; read line || echo no input", "timeout_ms": 10_000 }));
    assert!(run.elapsed < Duration::from_secs(5), "{:?}", run.elapsed);
    insta::assert_snapshot!("bash-stdin-closed", run.text);
}

#[test]
fn bash_progress_arrives_as_the_command_writes() {
    let run =
        bash(json!({ "command": "echo one; sleep 0.3; echo two >&2; sleep 0.3; echo three" }));
    assert_eq!(run.progress.concat(), "one\ntwo\nthree\n");
    assert!(
        run.progress.len() >= 3,
        "one chunk per write: {:?}",
        run.progress
    );
    insta::assert_snapshot!("bash-progress", run.text);
}

// ---------------------------------------------------------------------------------------
// todo

#[test]
fn todo_returns_the_plan() {
    insta::assert_snapshot!(
        "todo-plan",
        check(
            "",
            "todo",
            json!({ "todos": [
                { "content": "Read the config loader", "status": "completed", "priority": "high" },
                { "content": "Add the retries field", "status": "in_progress" },
                { "content": "Write a test", "status": "pending", "priority": "low" },
            ] })
        )
    );
}

// ---------------------------------------------------------------------------------------
// input that does not fit the schema

#[test]
fn invalid_input_names_the_tool_and_the_expected_shape() {
    insta::assert_snapshot!(
        "invalid-unknown-field",
        check(LIB, "read", json!({ "path": "src/lib.rs", "lines": 3 }))
    );
    insta::assert_snapshot!(
        "invalid-wrong-type",
        check(
            LIB,
            "edit",
            json!({ "path": "src/lib.rs", "old_string": 1, "new_string": "x" })
        )
    );
    insta::assert_snapshot!(
        "invalid-missing-field",
        check("", "bash", json!({ "timeout_ms": 5 }))
    );
    insta::assert_snapshot!(
        "invalid-enum-value",
        check(
            "",
            "todo",
            json!({ "todos": [{ "content": "x", "status": "done" }] })
        )
    );
}
