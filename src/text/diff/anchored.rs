//! Keeping large diffs linear: split at unique lines, then run histogram in the gaps.
//!
//! Histogram diff searches the whole remaining range for its split point at every step, so
//! a big file with many scattered changes costs O(lines × changes): a 1,000,000-line file
//! with 1% changed lines takes tens of seconds in both imara-diff and `git diff
//! --histogram`. Lines that occur exactly once in each file and keep their relative order
//! (the longest increasing subsequence of their positions, as in patience diff) are certainly
//! unchanged, so they cut the problem into small independent gaps.

use std::ops::Range;

use imara_diff::{Hunk, InternedInput};

pub(super) fn blocks<T>(
    input: &InternedInput<T>,
    old_lines: &[&str],
    new_lines: &[&str],
) -> Vec<Hunk> {
    let n_tokens = input.interner.num_tokens() as usize;
    let mut count_old = vec![0u8; n_tokens];
    let mut count_new = vec![0u8; n_tokens];
    let mut pos_new = vec![0u32; n_tokens];
    for &t in &input.before {
        let c = &mut count_old[t.0 as usize];
        *c = c.saturating_add(1);
    }
    for (j, &t) in input.after.iter().enumerate() {
        let c = &mut count_new[t.0 as usize];
        *c = c.saturating_add(1);
        pos_new[t.0 as usize] = j as u32;
    }
    let pairs: Vec<(u32, u32)> = input
        .before
        .iter()
        .enumerate()
        .filter(|&(_, &t)| count_old[t.0 as usize] == 1 && count_new[t.0 as usize] == 1)
        .map(|(i, &t)| (i as u32, pos_new[t.0 as usize]))
        .collect();
    let anchors = longest_increasing(&pairs);

    let mut out = Vec::new();
    let mut gap = InternedInput::default();
    let mut prev = (0u32, 0u32);
    let end = (old_lines.len() as u32, new_lines.len() as u32);
    for &(i, j) in anchors.iter().chain(std::iter::once(&end)) {
        diff_gap(
            &mut gap,
            old_lines,
            new_lines,
            prev.0..i,
            prev.1..j,
            &mut out,
        );
        prev = (i + 1, j + 1);
    }
    out
}

fn diff_gap<'a>(
    gap: &mut InternedInput<&'a str>,
    old_lines: &[&'a str],
    new_lines: &[&'a str],
    before: Range<u32>,
    after: Range<u32>,
    out: &mut Vec<Hunk>,
) {
    if before.is_empty() && after.is_empty() {
        return;
    }
    if before.is_empty() || after.is_empty() {
        out.push(Hunk { before, after });
        return;
    }
    gap.clear();
    gap.update_before(
        old_lines[before.start as usize..before.end as usize]
            .iter()
            .copied(),
    );
    gap.update_after(
        new_lines[after.start as usize..after.end as usize]
            .iter()
            .copied(),
    );
    for hunk in super::histogram_blocks(gap) {
        out.push(Hunk {
            before: hunk.before.start + before.start..hunk.before.end + before.start,
            after: hunk.after.start + after.start..hunk.after.end + after.start,
        });
    }
}

/// The longest subsequence of `pairs` (sorted by `.0`) whose `.1` increases (patience sort).
fn longest_increasing(pairs: &[(u32, u32)]) -> Vec<(u32, u32)> {
    // tails[k]: index into `pairs` of the smallest tail of an increasing run of length k+1.
    let mut tails: Vec<usize> = Vec::new();
    let mut prev: Vec<Option<usize>> = vec![None; pairs.len()];
    for (idx, &(_, j)) in pairs.iter().enumerate() {
        let k = tails.partition_point(|&t| pairs[t].1 < j);
        if k > 0 {
            prev[idx] = Some(tails[k - 1]);
        }
        if k == tails.len() {
            tails.push(idx);
        } else {
            tails[k] = idx;
        }
    }
    let mut out = Vec::with_capacity(tails.len());
    let mut cur = tails.last().copied();
    while let Some(idx) = cur {
        out.push(pairs[idx]);
        cur = prev[idx];
    }
    out.reverse();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lis_keeps_order() {
        let pairs = [(0, 5), (1, 1), (2, 2), (3, 9), (4, 3), (5, 4)];
        assert_eq!(
            longest_increasing(&pairs),
            vec![(1, 1), (2, 2), (4, 3), (5, 4)]
        );
    }
}
