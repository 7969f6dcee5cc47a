//! Properties of the diff engine on generated file pairs, `git apply` as the judge of the
//! rendered patches, and snapshots of rendered diffs.

use std::io::Write;
use std::process::{Command, Stdio};

use kiln::text::diff::{self, Diff, DiffOptions, HunkId, RenderOptions, render_unified};
use kiln::text::{ContentChange, Document, PositionEncoding, Unclipped};

use crate::support::Rng;

const N_PAIRS: usize = 600;
const LINES: [&str; 14] = [
    "fn main() {",
    "    let x = 1;",
    "    println!(\"{x}\");",
    "}",
    "",
    "// a comment",
    "日本語のテキスト",
    "😀 emoji line",
    "a",
    "b",
    "\tindented with a tab",
    "e\u{301}t\u{e9}",
    "lone\rcarriage return",
    "    return;",
];

fn random_lines(rng: &mut Rng, max: usize) -> Vec<String> {
    let n = rng.below(max) + 1;
    (0..n).map(|_| rng.pick(&LINES).to_string()).collect()
}

fn join(lines: &[String], eol: &str, final_newline: bool) -> String {
    let mut text = lines.join(eol);
    if final_newline && !lines.is_empty() {
        text.push_str(eol);
    }
    text
}

fn mutate(rng: &mut Rng, lines: &[String]) -> Vec<String> {
    let mut out = lines.to_vec();
    for _ in 0..rng.below(6) + 1 {
        let at = rng.below(out.len() + 1);
        match rng.below(3) {
            0 => out.insert(at, rng.pick(&LINES).to_string()),
            1 if at < out.len() => {
                out.remove(at);
            }
            _ if at < out.len() => out[at] = format!("{} changed", out[at]),
            _ => out.push("appended".into()),
        }
    }
    out
}

/// One generated pair; the category cycles through the interesting shapes.
fn generate(rng: &mut Rng, idx: usize) -> (String, String) {
    let base = random_lines(rng, 40);
    let newline = rng.chance(80);
    match idx % 8 {
        0 if rng.chance(50) => (String::new(), join(&base, "\n", newline)),
        0 => (join(&base, "\n", newline), String::new()),
        1 => (
            join(&base, "\n", false),
            join(&mutate(rng, &base), "\n", rng.chance(50)),
        ),
        2 => (
            join(&base, "\r\n", true),
            join(&mutate(rng, &base), "\r\n", newline),
        ),
        3 => {
            let text = join(&base, "\n", newline);
            (text.clone(), text)
        }
        4 => (
            join(&base, "\n", true),
            join(&random_lines(rng, 40), "\n", newline),
        ),
        5 => (rng.pick(&LINES).to_string(), rng.pick(&LINES).to_string()),
        6 => {
            // Mixed line endings on both sides.
            let eol = if rng.chance(50) { "\n" } else { "\r\n" };
            (
                join(&base, "\n", true),
                join(&mutate(rng, &base), eol, newline),
            )
        }
        _ => {
            let once = mutate(rng, &base);
            let new = mutate(rng, &once);
            (join(&base, "\n", newline), join(&new, "\n", newline))
        }
    }
}

fn subsets(rng: &mut Rng, ids: &[HunkId]) -> Vec<Vec<HunkId>> {
    if ids.len() <= 5 {
        (0..1usize << ids.len())
            .map(|mask| {
                ids.iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, id)| *id)
                    .collect()
            })
            .collect()
    } else {
        (0..24)
            .map(|_| ids.iter().filter(|_| rng.chance(50)).copied().collect())
            .collect()
    }
}

/// Applies LSP-style edits (all relative to the original text) through a `Document`.
fn apply_edits(old: &str, edits: &[diff::TextEdit], enc: PositionEncoding) -> String {
    let mut doc = Document::new("untitled:x".into(), 0, "plaintext".into(), old);
    // Apply from the end so earlier positions stay valid, as an editor does.
    for (i, edit) in edits.iter().enumerate().rev() {
        let change = ContentChange {
            range: Some(Unclipped(edit.range)),
            text: edit.new_text.clone(),
        };
        doc.apply_changes(i as i32 + 1, &[change], enc).unwrap();
    }
    doc.rope().to_string()
}

/// The unified diff of `d` for the file `f` that [`git_apply`] writes.
fn patch_for(d: &Diff) -> String {
    render_unified(
        d,
        &RenderOptions {
            old_path: "f",
            new_path: "f",
            color: false,
        },
    )
}

fn git_apply(
    dir: &std::path::Path,
    old: &str,
    patch: &str,
    context: u32,
) -> Result<String, String> {
    let file = dir.join("f");
    std::fs::write(&file, old).unwrap();
    // As for `git diff -U0` output, git wants to be told that hunks have no context.
    let zero: &[&str] = if context == 0 {
        &["--unidiff-zero"]
    } else {
        &[]
    };
    for args in [&["apply", "--check"][..], &["apply"][..]] {
        let mut child = Command::new("git")
            .args(args)
            .args(zero)
            .arg("-")
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("git is needed for this test");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(patch.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).into_owned());
        }
    }
    Ok(std::fs::read_to_string(&file).unwrap_or_default())
}

#[test]
fn generated_pairs_apply_in_every_subset_and_git_accepts_the_patches() {
    let mut rng = Rng::from_env();
    let seed = rng.seed();
    eprintln!("diff_props seed: {seed}");
    let dir = tempfile::tempdir().unwrap();
    let mut n_hunks_seen = 0;
    for idx in 0..N_PAIRS {
        let (old, new) = generate(&mut rng, idx);
        let context = rng.below(5) as u32;
        let d = Diff::new(
            &old,
            &new,
            DiffOptions {
                context,
                inline_spans: true,
            },
        );
        let ctx = || {
            format!(
                "pair {idx}, context {context}, KILN_TEST_SEED={seed}\nold: {old:?}\nnew: {new:?}"
            )
        };
        assert_eq!(d.is_empty(), old == new, "{}", ctx());
        let all = d.hunk_ids();
        n_hunks_seen += all.len();
        assert_eq!(
            diff::apply(&old, &d, &all).unwrap(),
            new,
            "apply(all) {}",
            ctx()
        );
        assert_eq!(
            diff::apply(&old, &d, &[]).unwrap(),
            old,
            "apply(none) {}",
            ctx()
        );
        for subset in subsets(&mut rng, &all) {
            let applied =
                diff::apply(&old, &d, &subset).unwrap_or_else(|e| panic!("{e} {}", ctx()));
            let enc = *rng.pick(&PositionEncoding::ALL);
            let edits = diff::text_edits(&old, &d, &subset, enc).unwrap();
            assert_eq!(
                apply_edits(&old, &edits, enc),
                applied,
                "text edits for {subset:?} in {enc:?} {}",
                ctx()
            );
        }
        for line in d.hunks.iter().flat_map(|h| &h.lines) {
            for span in &line.spans {
                assert!(
                    span.start < span.end && span.end <= line.content().len(),
                    "{}",
                    ctx()
                );
            }
        }
        if !d.is_empty() {
            let patch = patch_for(&d);
            let result = git_apply(dir.path(), &old, &patch, context)
                .unwrap_or_else(|err| panic!("git apply: {err}\n{patch}\n{}", ctx()));
            // With zero context a patch cannot say that the line before a removed final
            // line gains a newline; git's own `diff -U0` output has the same limit, so only
            // `--check` is asked of those.
            if context > 0 {
                assert_eq!(result, new, "git's result differs\n{patch}\n{}", ctx());
            }
        }
    }
    assert!(
        n_hunks_seen > N_PAIRS,
        "the generator should produce many hunks"
    );
}

#[test]
fn completely_different_large_files_are_not_quadratic() {
    let old: String = (0..50_000).map(|i| format!("old line {i}\n")).collect();
    let new: String = (0..50_000).map(|i| format!("new line {i}\n")).collect();
    let start = std::time::Instant::now();
    let d = Diff::new(
        &old,
        &new,
        DiffOptions {
            context: 3,
            inline_spans: false,
        },
    );
    assert_eq!(d.n_removed(), 50_000);
    assert_eq!(d.n_added(), 50_000);
    // Generous bound for a debug build on a loaded machine; the benchmark holds the real target.
    assert!(
        start.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}

fn render(old: &str, new: &str, context: u32) -> String {
    let d = Diff::new(
        old,
        new,
        DiffOptions {
            context,
            inline_spans: true,
        },
    );
    render_unified(
        &d,
        &RenderOptions {
            old_path: "src/lib.rs",
            new_path: "src/lib.rs",
            color: false,
        },
    )
}

#[test]
fn snapshot_modification_with_context() {
    let old = "fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n\nfn main() {\n    println!(\"{}\", add(1, 2));\n}\n";
    let new = "fn add(a: i64, b: i64) -> i64 {\n    a + b\n}\n\nfn main() {\n    println!(\"{}\", add(1, 2));\n    println!(\"done\");\n}\n";
    insta::assert_snapshot!("modification_with_context", render(old, new, 3));
}

#[test]
fn snapshot_no_newline_at_end_of_file() {
    insta::assert_snapshot!("no_newline_old", render("a\nb", "a\nb\n", 3));
    insta::assert_snapshot!("no_newline_new", render("a\nb\n", "a\nc", 3));
}

#[test]
fn snapshot_insertion_at_start_and_deletion_at_end() {
    insta::assert_snapshot!("insert_at_start", render("x\ny\n", "new\nx\ny\n", 0));
    insta::assert_snapshot!("delete_at_end", render("x\ny\nz\n", "x\n", 1));
    insta::assert_snapshot!("from_empty", render("", "one\ntwo\n", 3));
}

#[test]
fn snapshot_separate_hunks() {
    let old: String = (1..=30).map(|i| format!("line {i}\n")).collect();
    let new = old
        .replace("line 3\n", "line three\n")
        .replace("line 25\n", "")
        .replace("line 28\n", "line 28\nline 28b\n");
    insta::assert_snapshot!("separate_hunks", render(&old, &new, 2));
}

#[test]
fn snapshot_colour_marks_changed_spans() {
    let d = Diff::new(
        "let total = a + b;\n",
        "let sum = a + b;\n",
        DiffOptions::default(),
    );
    let coloured = render_unified(
        &d,
        &RenderOptions {
            old_path: "x",
            new_path: "x",
            color: true,
        },
    );
    insta::assert_snapshot!("colour", coloured.replace('\x1b', "\\e"));
}

#[test]
fn large_files_split_at_unique_lines_stay_correct() {
    // Over the anchoring threshold: unique lines with scattered edits and repeated lines.
    let mut rng = Rng::from_env();
    let seed = rng.seed();
    let old_lines: Vec<String> = (0..15_000)
        .map(|i| {
            if i % 10 == 0 {
                "}".to_owned()
            } else {
                format!("line {i}")
            }
        })
        .collect();
    let mut new_lines = old_lines.clone();
    for _ in 0..300 {
        let at = rng.below(new_lines.len());
        match rng.below(3) {
            0 => new_lines[at] = format!("{} edited", new_lines[at]),
            1 => new_lines.insert(at, "inserted".into()),
            _ => {
                new_lines.remove(at);
            }
        }
    }
    let old = join(&old_lines, "\n", true);
    let new = join(&new_lines, "\n", rng.chance(50));
    let d = Diff::new(&old, &new, DiffOptions::default());
    assert_eq!(
        diff::apply(&old, &d, &d.hunk_ids()).unwrap(),
        new,
        "KILN_TEST_SEED={seed}"
    );
    let half: Vec<HunkId> = d.hunk_ids().into_iter().step_by(2).collect();
    let applied = diff::apply(&old, &d, &half).unwrap();
    let edits = diff::text_edits(&old, &d, &half, PositionEncoding::Utf16).unwrap();
    assert_eq!(
        apply_edits(&old, &edits, PositionEncoding::Utf16),
        applied,
        "KILN_TEST_SEED={seed}"
    );
    let dir = tempfile::tempdir().unwrap();
    let patch = patch_for(&d);
    assert_eq!(
        git_apply(dir.path(), &old, &patch, 3).unwrap(),
        new,
        "KILN_TEST_SEED={seed}"
    );
    // The diff stays small: no change is reported for lines that did not change.
    assert!(
        d.n_removed() <= 300 && d.n_added() <= 300,
        "{} removed, {} added",
        d.n_removed(),
        d.n_added()
    );
}
