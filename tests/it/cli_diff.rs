//! `kiln diff` as a person runs it.

use std::process::Command;

use crate::support::kiln_bin;

fn kiln_diff(args: &[&str], dir: &std::path::Path) -> (i32, String, String) {
    let output = Command::new(kiln_bin())
        .arg("diff")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn exit_status_and_output_like_diff() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("old.txt"), "a\nb\nc\n").unwrap();
    std::fs::write(dir.path().join("new.txt"), "a\nB\nc\n").unwrap();
    let (code, out, _) = kiln_diff(&["old.txt", "new.txt"], dir.path());
    assert_eq!(code, 1);
    assert_eq!(
        out,
        "--- a/old.txt\n+++ b/new.txt\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"
    );
    let (code, out, _) = kiln_diff(&["old.txt", "old.txt"], dir.path());
    assert_eq!((code, out.as_str()), (0, ""));
    let (code, _, err) = kiln_diff(&["old.txt", "missing.txt"], dir.path());
    assert_eq!(code, 2);
    assert!(err.contains("cannot read missing.txt"), "{err}");
}

#[test]
fn json_is_the_hunk_model() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("old.txt"), "let total = 1;\r\n").unwrap();
    std::fs::write(dir.path().join("new.txt"), "let sum = 1;\r\n").unwrap();
    let (code, out, _) = kiln_diff(&["--format", "json", "old.txt", "new.txt"], dir.path());
    assert_eq!(code, 1);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["added"], 1);
    assert_eq!(json["removed"], 1);
    let hunk = &json["hunks"][0];
    assert_eq!(hunk["id"].as_str().unwrap().len(), 16);
    assert_eq!(hunk["old"], serde_json::json!({ "start": 0, "count": 1 }));
    assert_eq!(
        hunk["lines"][0],
        serde_json::json!({ "kind": "removed", "text": "let total = 1;", "eol": "crlf", "spans": [[4, 9]] })
    );
    assert_eq!(hunk["lines"][1]["spans"], serde_json::json!([[4, 7]]));
    assert!(
        json["patch"]
            .as_str()
            .unwrap()
            .starts_with("--- a/old.txt\n")
    );
}

#[test]
fn colour_only_when_asked_or_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a"), "x\n").unwrap();
    std::fs::write(dir.path().join("b"), "y\n").unwrap();
    let (_, plain, _) = kiln_diff(&["a", "b"], dir.path());
    assert!(!plain.contains('\x1b'), "piped output has no colour");
    let (_, coloured, _) = kiln_diff(&["--color", "always", "a", "b"], dir.path());
    assert!(coloured.contains("\x1b[31m-"), "{coloured:?}");
}

#[test]
fn binary_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a"), b"\xff\x00").unwrap();
    std::fs::write(dir.path().join("b"), b"\xfe\x00").unwrap();
    let (code, out, _) = kiln_diff(&["a", "b"], dir.path());
    assert_eq!((code, out.as_str()), (1, "Binary files a and b differ\n"));
}
