//! Checkpoints in a shadow repository: restore with and without git in the workspace,
//! nested repositories, ignored and binary files, created and deleted files, one file,
//! all-or-nothing, and the three-way undo that keeps the person's edits.

use std::path::Path;
use std::process::Command;

use kiln::agent::checkpoint::{Checkpoints, Kind};

use crate::support::workspace;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "p")
        .env("GIT_AUTHOR_EMAIL", "p@p")
        .env("GIT_COMMITTER_NAME", "p")
        .env("GIT_COMMITTER_EMAIL", "p@p")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn setup(fixture: &str) -> (tempfile::TempDir, std::path::PathBuf, Checkpoints) {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    workspace::write(&ws, fixture);
    let cp = Checkpoints::open(&dir.path().join("data"), &ws).unwrap();
    (dir, ws, cp)
}

const FIXTURE: &str = "//- /a.txt\none\ntwo\n//- /b.txt\nbee\n//- /.gitignore\nbuild/\n//- /build/out.txt\ngenerated\n//- /vendor/lib/lib.rs\npub fn lib() {}\n";

#[test]
fn restore_brings_back_deleted_files_removes_created_ones_and_can_be_taken_back() {
    let (_dir, ws, cp) = setup(FIXTURE);
    git(&ws.join("vendor/lib"), &["init", "-q"]);
    git(&ws.join("vendor/lib"), &["add", "."]);
    git(
        &ws.join("vendor/lib"),
        &["commit", "-qm", "nested", "--no-gpg-sign"],
    );
    let nested_head = std::fs::read(ws.join("vendor/lib/.git/HEAD")).unwrap();
    let nested_log = git(&ws.join("vendor/lib"), &["log", "--oneline"]);
    std::fs::write(ws.join("image.bin"), [0u8, 159, 146, 150, 255, 0, 1]).unwrap();
    let c1 = cp
        .snapshot(Kind::BeforeTurn, "start", Some("ses_1"))
        .unwrap();

    std::fs::write(ws.join("a.txt"), "one\nTWO\n").unwrap();
    std::fs::remove_file(ws.join("b.txt")).unwrap();
    std::fs::create_dir_all(ws.join("src/new")).unwrap();
    std::fs::write(ws.join("src/new/c.rs"), "fn c() {}\n").unwrap();
    std::fs::write(ws.join("vendor/lib/lib.rs"), "pub fn changed() {}\n").unwrap();
    std::fs::write(ws.join("build/out.txt"), "regenerated\n").unwrap();
    std::fs::write(ws.join("image.bin"), [1u8, 2, 3]).unwrap();
    let after = workspace::read(&ws);

    let r = cp.restore(&c1.id[..8], None, None).unwrap();
    assert_eq!(r.removed, ["src/new/c.rs"]);
    assert!(!ws.join("src").exists(), "folders the agent created go too");
    assert_eq!(
        std::fs::read_to_string(ws.join("a.txt")).unwrap(),
        "one\ntwo\n"
    );
    assert_eq!(std::fs::read_to_string(ws.join("b.txt")).unwrap(), "bee\n");
    assert_eq!(
        std::fs::read_to_string(ws.join("vendor/lib/lib.rs")).unwrap(),
        "pub fn lib() {}\n"
    );
    assert_eq!(
        std::fs::read(ws.join("image.bin")).unwrap(),
        [0u8, 159, 146, 150, 255, 0, 1]
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("build/out.txt")).unwrap(),
        "regenerated\n",
        "ignored files are not the checkpoint's"
    );
    assert_eq!(
        std::fs::read(ws.join("vendor/lib/.git/HEAD")).unwrap(),
        nested_head
    );
    assert_eq!(
        git(&ws.join("vendor/lib"), &["log", "--oneline"]),
        nested_log
    );
    assert!(
        !ws.join(".git").exists(),
        "no repository appears in the workspace"
    );

    // The restore was checkpointed: restoring that brings the changes back.
    cp.restore(r.before.as_deref().unwrap(), None, None)
        .unwrap();
    assert_eq!(workspace::read(&ws), after);
    let kinds: Vec<&str> = cp.list().unwrap().iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(kinds, ["before-restore", "before-restore", "before-turn"]);
}

#[test]
fn one_file_is_restored_alone_and_the_persons_git_is_untouched() {
    let (_dir, ws, cp) = setup(FIXTURE);
    git(&ws, &["init", "-q"]);
    git(&ws, &["add", "."]);
    git(&ws, &["commit", "-qm", "mine", "--no-gpg-sign"]);
    let status_before = git(&ws, &["status", "--porcelain"]);
    let refs_before = git(&ws, &["for-each-ref"]);
    let c1 = cp.snapshot(Kind::Manual, "start", None).unwrap();
    std::fs::write(ws.join("a.txt"), "changed a\n").unwrap();
    std::fs::write(ws.join("b.txt"), "changed b\n").unwrap();
    let r = cp.restore(&c1.id, Some("a.txt"), None).unwrap();
    assert_eq!(r.written, ["a.txt"]);
    assert_eq!(
        std::fs::read_to_string(ws.join("a.txt")).unwrap(),
        "one\ntwo\n"
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("b.txt")).unwrap(),
        "changed b\n"
    );
    std::fs::write(ws.join("b.txt"), "bee\n").unwrap();
    assert_eq!(git(&ws, &["status", "--porcelain"]), status_before);
    assert_eq!(git(&ws, &["for-each-ref"]), refs_before);
    assert_eq!(git(&ws, &["log", "--oneline"]).lines().count(), 1);
}

#[test]
fn a_restore_that_cannot_write_every_file_writes_none() {
    let (_dir, ws, cp) = setup("//- /a.txt\na\n//- /d/f.txt\nf\n");
    let c1 = cp.snapshot(Kind::Manual, "start", None).unwrap();
    std::fs::write(ws.join("a.txt"), "changed\n").unwrap();
    std::fs::remove_dir_all(ws.join("d")).unwrap();
    std::fs::write(ws.join("d"), "d is a file now\n").unwrap();
    let err = cp.restore(&c1.id, None, None).unwrap_err();
    assert!(err.to_string().contains("nothing was restored"), "{err}");
    assert_eq!(
        std::fs::read_to_string(ws.join("a.txt")).unwrap(),
        "changed\n"
    );
    assert_eq!(
        std::fs::read_dir(&ws).unwrap().count(),
        2,
        "no temporary files left"
    );
}

#[test]
fn undo_takes_back_the_agents_changes_and_keeps_the_persons() {
    let text: String = (1..=20).map(|i| format!("line {i}\n")).collect();
    let (_dir, ws, cp) = setup(&format!("//- /f.txt\n{text}//- /g.txt\ng\n"));
    let before = cp.snapshot(Kind::BeforeTurn, "before", None).unwrap();
    // The agent: changes line 2 of f, creates h, deletes g.
    std::fs::write(
        ws.join("f.txt"),
        text.replace("line 2\n", "line 2 by the agent\n"),
    )
    .unwrap();
    std::fs::write(ws.join("h.txt"), "new\n").unwrap();
    std::fs::remove_file(ws.join("g.txt")).unwrap();
    let agent = cp.snapshot(Kind::AfterChange, "after", None).unwrap();
    // The person, afterwards: changes line 18 of f.
    let theirs = std::fs::read_to_string(ws.join("f.txt"))
        .unwrap()
        .replace("line 18\n", "line 18 by the person\n");
    std::fs::write(ws.join("f.txt"), &theirs).unwrap();

    let r = cp.undo_since(&before.id, &agent.id, None).unwrap();
    assert!(r.conflicts.is_empty(), "{r:?}");
    let f = std::fs::read_to_string(ws.join("f.txt")).unwrap();
    assert!(f.contains("line 2\n") && !f.contains("by the agent"), "{f}");
    assert!(f.contains("line 18 by the person\n"), "{f}");
    assert!(!ws.join("h.txt").exists());
    assert_eq!(std::fs::read_to_string(ws.join("g.txt")).unwrap(), "g\n");
}

#[test]
fn undo_leaves_a_file_whose_edits_overlap_as_the_person_has_it() {
    let (_dir, ws, cp) = setup("//- /f.txt\na\nb\nc\n");
    let before = cp.snapshot(Kind::BeforeTurn, "before", None).unwrap();
    std::fs::write(ws.join("f.txt"), "a\nB by the agent\nc\n").unwrap();
    let agent = cp.snapshot(Kind::AfterChange, "after", None).unwrap();
    std::fs::write(ws.join("f.txt"), "a\nB by the agent, then the person\nc\n").unwrap();
    let r = cp.undo_since(&before.id, &agent.id, None).unwrap();
    assert_eq!(r.conflicts, ["f.txt"]);
    assert_eq!(
        std::fs::read_to_string(ws.join("f.txt")).unwrap(),
        "a\nB by the agent, then the person\nc\n"
    );
}

#[test]
fn the_file_system_root_is_refused_and_unknown_ids_are_clear() {
    let err = Checkpoints::open(Path::new("/tmp/kiln-data"), Path::new("/"))
        .err()
        .unwrap();
    assert!(err.to_string().contains("file system root"), "{err}");
    let (_dir, _ws, cp) = setup("//- /a.txt\na\n");
    let err = cp.restore("deadbeef", None, None).unwrap_err();
    assert!(err.to_string().contains("no checkpoint deadbeef"), "{err}");
    let c = cp.snapshot(Kind::Manual, "one", None).unwrap();
    let again = cp.snapshot(Kind::Manual, "two", None).unwrap();
    assert_eq!(c.id, again.id, "nothing changed: no new checkpoint");
}
