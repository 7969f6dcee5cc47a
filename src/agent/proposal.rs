//! Proposals: a file change as the person reviews it. The diff is computed once, with
//! the same options everywhere (so hunk ids agree between the agent, the frontend and the
//! person's answer), and a decision turns it into the change to write: all of it, the
//! accepted hunks only, or nothing. The base identity travels with it; a proposal whose
//! file moved on is Stale and nothing is written.

use crate::text::diff::{self, Diff, DiffOptions, HunkId};
use crate::tools::FileChange;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    Pending,
    Accepted,
    /// Only these hunks were accepted.
    PartiallyAccepted(Vec<HunkId>),
    Rejected,
    /// The file changed after the proposal was made; nothing was written.
    Stale,
}

impl State {
    pub fn as_str(&self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Accepted => "accepted",
            State::PartiallyAccepted(_) => "partially_accepted",
            State::Rejected => "rejected",
            State::Stale => "stale",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Proposal {
    pub change: FileChange,
    pub diff: Diff,
    pub state: State,
}

/// The diff of a proposal: three lines of context, intra-line spans (what every frontend
/// shows and what hunk ids are computed over).
pub fn diff_of(old: Option<&str>, new: Option<&str>) -> Diff {
    Diff::new(old.unwrap_or(""), new.unwrap_or(""), DiffOptions::default())
}

impl Proposal {
    pub fn new(change: FileChange) -> Proposal {
        let diff = diff_of(change.old_text.as_deref(), change.new_text.as_deref());
        Proposal {
            change,
            diff,
            state: State::Pending,
        }
    }

    /// The change to write when the person accepted `accepted` (`None`: all of it).
    /// Creations and deletions are whole: any accepted hunk accepts them. Returns `None`
    /// when nothing is to be written.
    pub fn decide(&mut self, accepted: Option<&[HunkId]>) -> Result<Option<FileChange>, String> {
        let all = self.diff.hunk_ids();
        let chosen: Vec<HunkId> = match accepted {
            None => all.clone(),
            Some(ids) => all.iter().copied().filter(|id| ids.contains(id)).collect(),
        };
        if chosen.is_empty() && !all.is_empty() {
            self.state = State::Rejected;
            return Ok(None);
        }
        let whole = chosen.len() == all.len()
            || self.change.old_text.is_none()
            || self.change.new_text.is_none();
        if whole {
            self.state = State::Accepted;
            return Ok(Some(self.change.clone()));
        }
        let old = self.change.old_text.as_deref().unwrap_or("");
        let new_text = diff::apply(old, &self.diff, &chosen)
            .map_err(|e| format!("cannot apply the accepted hunks: {e}"))?;
        self.state = State::PartiallyAccepted(chosen);
        Ok(Some(FileChange {
            new_text: Some(new_text),
            ..self.change.clone()
        }))
    }

    /// "hunks 2 (lines 10-12) and 3 (lines 40-41)": the ones not accepted, for the model.
    pub fn rejected_hunks(&self) -> Vec<String> {
        let accepted: &[HunkId] = match &self.state {
            State::PartiallyAccepted(ids) => ids,
            State::Accepted => return Vec::new(),
            _ => &[],
        };
        self.diff
            .hunks
            .iter()
            .enumerate()
            .filter(|(_, h)| !accepted.contains(&h.id))
            .map(|(i, h)| {
                format!(
                    "hunk {} ({}, −{} +{})",
                    i + 1,
                    changed_lines(h),
                    h.n_removed(),
                    h.n_added()
                )
            })
            .collect()
    }
}

/// Where a hunk changes the old text, without its context: "old lines 25-26", or
/// "inserted after old line 7".
fn changed_lines(hunk: &crate::text::diff::Hunk) -> String {
    use crate::text::diff::LineKind;
    let mut at = hunk.old.start;
    let mut removed: Vec<u32> = Vec::new();
    let mut first_insert = None;
    for line in &hunk.lines {
        match line.kind {
            LineKind::Context => at += 1,
            LineKind::Removed => {
                removed.push(at + 1);
                at += 1;
            }
            LineKind::Added => {
                first_insert.get_or_insert(at);
            }
        }
    }
    match (removed.first(), removed.last()) {
        (Some(a), Some(b)) if a == b => format!("old line {a}"),
        (Some(a), Some(b)) => format!("old lines {a}-{b}"),
        _ => format!("inserted after old line {}", first_insert.unwrap_or(at)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(old: &str, new: &str) -> FileChange {
        FileChange {
            path: "/w/f".into(),
            base: None,
            old_text: Some(old.into()),
            new_text: Some(new.into()),
        }
    }

    #[test]
    fn a_subset_of_hunks_is_applied_and_the_rest_reported() {
        let old: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        let new = old
            .replace("line 2\n", "line two\n")
            .replace("line 25\n", "line 25!\n");
        let mut p = Proposal::new(change(&old, &new));
        assert_eq!(p.diff.hunks.len(), 2);
        let first = p.diff.hunks[0].id;
        let out = p.decide(Some(&[first])).unwrap().unwrap();
        assert_eq!(out.new_text.unwrap(), old.replace("line 2\n", "line two\n"));
        assert!(matches!(p.state, State::PartiallyAccepted(ref ids) if ids == &[first]));
        assert_eq!(p.rejected_hunks(), ["hunk 2 (old line 25, −1 +1)"]);
        let mut p = Proposal::new(change(&old, &new));
        assert_eq!(p.decide(Some(&[])).unwrap(), None);
        assert_eq!(p.state, State::Rejected);
        let mut p = Proposal::new(change(&old, &new));
        assert_eq!(p.decide(None).unwrap().unwrap().new_text.unwrap(), new);
        assert_eq!(p.state, State::Accepted);
    }
}
