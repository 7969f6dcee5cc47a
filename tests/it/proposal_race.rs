//! The person types while the agent proposes and applies edits (1,000 seeded
//! interleavings). Afterwards every keystroke of the person is in the file, and every
//! agent edit is either in it or was refused as stale. Rerun one with KILN_TEST_SEED.

use kiln::agent::apply::apply_to_disk;
use kiln::agent::proposal::Proposal;
use kiln::tools::FileChange;
use kiln::workspace::read_disk;

use crate::support::Rng;

const ROUNDS: u64 = 1000;

/// A pending agent edit: built from what it read, applied later.
struct Pending {
    change: FileChange,
    marker: String,
    /// The file's write count when the agent read it.
    version: u32,
}

/// Byte offsets in `line` outside the tokens already inserted (`<…>`, `[…]`).
fn free_positions(line: &str) -> Vec<usize> {
    let mut depth = 0i32;
    let mut out = vec![0];
    for (i, c) in line.char_indices() {
        match c {
            '<' | '[' => depth += 1,
            '>' | ']' => depth -= 1,
            _ => {}
        }
        if depth == 0 {
            out.push(i + c.len_utf8());
        }
    }
    out
}

#[test]
fn the_persons_keystrokes_survive_any_interleaving_with_agent_edits() {
    let base_seed = Rng::from_env().seed();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("doc.txt");
    let (mut total_stale, mut total_applied) = (0, 0);
    for round in 0..ROUNDS {
        let seed = base_seed.wrapping_add(round);
        let mut rng = Rng::new(seed);
        let initial: String = (0..8).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, &initial).unwrap();
        let mut typed: Vec<String> = Vec::new();
        let mut applied: Vec<String> = Vec::new();
        let mut stale = 0;
        let mut pending: Vec<Pending> = Vec::new();
        // Bumped on every write, so the test knows which proposals must be stale.
        let mut version = 0u32;
        for step in 0..24 {
            match rng.next_u64() % 3 {
                // The person types a token at a random place in a random line.
                0 => {
                    let text = std::fs::read_to_string(&path).unwrap();
                    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
                    let idx = (rng.next_u64() as usize) % lines.len();
                    let free = free_positions(&lines[idx]);
                    let at = free[(rng.next_u64() as usize) % free.len()];
                    let token = format!("<p{step}>");
                    lines[idx].insert_str(at, &token);
                    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
                    typed.push(token);
                    version += 1;
                }
                // The agent reads the file and proposes to mark a line.
                1 => {
                    let read = read_disk(&path).unwrap();
                    let mut lines: Vec<String> = read.text.lines().map(str::to_owned).collect();
                    let idx = (rng.next_u64() as usize) % lines.len();
                    let marker = format!("[a{step}]");
                    lines[idx].push_str(&marker);
                    let change = FileChange {
                        path: path.clone(),
                        base: Some(read.identity),
                        old_text: Some(read.text),
                        new_text: Some(lines.join("\n") + "\n"),
                    };
                    pending.push(Pending {
                        change,
                        marker,
                        version,
                    });
                }
                // The oldest pending proposal is accepted and applied.
                _ => {
                    if pending.is_empty() {
                        continue;
                    }
                    let p = pending.remove(0);
                    let mut proposal = Proposal::new(p.change);
                    let Some(change) = proposal.decide(None).unwrap() else {
                        continue;
                    };
                    match apply_to_disk(&change, "doc.txt") {
                        Ok(()) => {
                            assert_eq!(
                                p.version, version,
                                "seed {seed}: applied over a file that moved on"
                            );
                            applied.push(p.marker);
                            version += 1;
                        }
                        Err(err) => {
                            assert!(
                                err.contains("changed since it was read"),
                                "seed {seed}: {err}"
                            );
                            assert_ne!(
                                p.version, version,
                                "seed {seed}: refused a proposal whose file had not changed"
                            );
                            stale += 1;
                        }
                    }
                }
            }
        }
        let end = std::fs::read_to_string(&path).unwrap();
        for token in &typed {
            assert!(
                end.contains(token.as_str()),
                "seed {seed}: the person's {token} was lost:\n{end}"
            );
        }
        for marker in &applied {
            assert!(
                end.contains(marker.as_str()),
                "seed {seed}: applied {marker} is missing:\n{end}"
            );
        }
        total_stale += stale;
        total_applied += applied.len();
    }
    // Both outcomes happen often enough for the test to mean something.
    assert!(
        total_stale > 500 && total_applied > 1000,
        "stale {total_stale}, applied {total_applied}"
    );
}
