//! The permission policy: a pure function from (policy, mode, tool group, action) to
//! Allow, Deny(reason) or Ask. It fails closed: anything it cannot place is asked about,
//! and `--auto` turns an Ask into an Allow only inside the workspace and never for
//! secrets.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::mode::Mode;
use crate::tools::{Action, Group};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(String),
    /// Ask the person; the text says what is special about this call, if anything.
    Ask(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    Allow,
    Ask,
    Deny,
}

#[derive(Clone, Debug)]
pub struct Policy {
    pub read: Rule,
    pub edit: Rule,
    pub command: Rule,
    /// Paths outside every workspace root.
    pub external_directory: Rule,
    /// `.env*`, keys, `.git/` internals.
    pub secrets: Rule,
    /// Ask becomes Allow inside the workspace (`kiln run --auto`).
    pub auto: bool,
    /// Tools the person allowed "always" in this session.
    pub always_allow: BTreeSet<String>,
    /// Tools the person rejected "always" in this session.
    pub always_reject: BTreeSet<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            read: Rule::Allow,
            edit: Rule::Ask,
            command: Rule::Ask,
            external_directory: Rule::Ask,
            secrets: Rule::Ask,
            auto: false,
            always_allow: BTreeSet::new(),
            always_reject: BTreeSet::new(),
        }
    }
}

/// Where each path of a call lies, computed by [`classify`] (the only part that looks at
/// the file system, for symlinks).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathFacts {
    /// Paths outside every root (after following symlinks).
    pub outside: Vec<PathBuf>,
    pub secrets: Vec<PathBuf>,
    /// Paths relative to their root, `/`-separated (for mode file filters).
    pub relative: Vec<String>,
}

pub fn decide(
    policy: &Policy,
    mode: &Mode,
    tool: &str,
    group: Group,
    action: &Action,
    facts: &PathFacts,
) -> Decision {
    if !mode.allows(group) {
        return Decision::Deny(format!(
            "the {} mode does not allow {} tools ({tool}); the person can switch modes",
            mode.slug,
            group.as_str()
        ));
    }
    if let (Action::Edit { .. }, Some(filter)) = (action, &mode.edit_filter) {
        if let Some(path) = facts.relative.iter().find(|p| !filter.is_match(p)) {
            return Decision::Deny(format!(
                "the {} mode may only edit files matching {}; {path} does not",
                mode.slug,
                filter.as_str()
            ));
        }
        if !facts.outside.is_empty() {
            return Decision::Deny(format!(
                "the {} mode may only edit files inside the workspace",
                mode.slug
            ));
        }
    }
    if policy.always_reject.contains(tool) {
        return Decision::Deny(format!("the person rejected {tool} for this session"));
    }
    let base = match action {
        Action::Read { .. } => policy.read,
        Action::Edit { .. } => policy.edit,
        Action::Command { .. } => policy.command,
        Action::Note => Rule::Allow,
    };
    let mut rule = base;
    let mut why = String::new();
    if policy.always_allow.contains(tool) && rule == Rule::Ask {
        rule = Rule::Allow;
    }
    // Stricter rules for special paths win over the tool's own rule.
    let mut inside = true;
    if !facts.outside.is_empty() {
        inside = false;
        rule = stricter(rule, policy.external_directory);
        why = format!("{} is outside the workspace", facts.outside[0].display());
    }
    let mut secret = false;
    if !facts.secrets.is_empty() {
        secret = true;
        rule = stricter(rule, policy.secrets);
        why = format!("{} may hold secrets", facts.secrets[0].display());
    }
    match rule {
        Rule::Allow => Decision::Allow,
        Rule::Deny if !why.is_empty() => Decision::Deny(format!("{why}; the policy denies it")),
        Rule::Deny => Decision::Deny(format!("the policy denies {tool}")),
        Rule::Ask if policy.auto && inside && !secret => Decision::Allow,
        Rule::Ask if policy.auto => Decision::Deny(format!(
            "{why}; --auto allows only what stays inside the workspace"
        )),
        Rule::Ask => Decision::Ask(why),
    }
}

fn stricter(a: Rule, b: Rule) -> Rule {
    match (a, b) {
        (Rule::Deny, _) | (_, Rule::Deny) => Rule::Deny,
        (Rule::Ask, _) | (_, Rule::Ask) => Rule::Ask,
        _ => Rule::Allow,
    }
}

pub use crate::workspace::paths::is_secret;

/// Where the paths of `action` lie relative to `roots`, following symlinks of the parts
/// that exist (a link inside the workspace pointing outside is outside).
pub fn classify(roots: &[PathBuf], action: &Action) -> PathFacts {
    let paths: &[PathBuf] = match action {
        Action::Read { paths } | Action::Edit { paths } => paths,
        Action::Command { .. } | Action::Note => &[],
    };
    let canonical_roots: Vec<PathBuf> = roots
        .iter()
        .map(|r| r.canonicalize().unwrap_or_else(|_| r.clone()))
        .collect();
    let mut facts = PathFacts::default();
    for path in paths {
        let real = real_path(path);
        let root = roots
            .iter()
            .zip(&canonical_roots)
            .find(|(_, canon)| real.starts_with(canon));
        match root {
            Some((root, canon)) => {
                let rel = real
                    .strip_prefix(canon)
                    .or_else(|_| path.strip_prefix(root))
                    .unwrap_or(path);
                facts.relative.push(
                    rel.components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>()
                        .join("/"),
                );
            }
            None => {
                facts.outside.push(path.clone());
                facts.relative.push(path.display().to_string());
            }
        }
        if is_secret(path) || is_secret(&real) {
            facts.secrets.push(path.clone());
        }
    }
    facts
}

/// `path` with symlinks resolved in the longest prefix that exists.
fn real_path(path: &Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    loop {
        if let Ok(canon) = existing.canonicalize() {
            let mut out = canon;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return out;
        }
        match (
            existing.file_name().map(|n| n.to_owned()),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::mode::builtin;

    fn mode(slug: &str) -> Mode {
        builtin().into_iter().find(|m| m.slug == slug).unwrap()
    }

    fn edit(rel: &str) -> (Action, PathFacts) {
        let action = Action::Edit {
            paths: vec![PathBuf::from("/w").join(rel)],
        };
        let facts = PathFacts {
            relative: vec![rel.to_owned()],
            ..PathFacts::default()
        };
        (action, facts)
    }

    #[test]
    fn defaults_allow_reads_and_ask_for_edits_and_commands() {
        let p = Policy::default();
        let code = mode("code");
        let read = Action::Read { paths: vec![] };
        assert_eq!(
            decide(&p, &code, "read", Group::Read, &read, &PathFacts::default()),
            Decision::Allow
        );
        let (action, facts) = edit("src/a.rs");
        assert_eq!(
            decide(&p, &code, "edit", Group::Edit, &action, &facts),
            Decision::Ask(String::new())
        );
        let cmd = Action::Command {
            command: "ls".into(),
        };
        assert!(matches!(
            decide(
                &p,
                &code,
                "bash",
                Group::Command,
                &cmd,
                &PathFacts::default()
            ),
            Decision::Ask(_)
        ));
    }

    #[test]
    fn modes_restrict_groups_and_files() {
        let p = Policy {
            auto: true,
            ..Policy::default()
        };
        let (action, facts) = edit("src/a.rs");
        let d = decide(&p, &mode("architect"), "edit", Group::Edit, &action, &facts);
        assert!(
            matches!(&d, Decision::Deny(r) if r.contains("only edit files matching")),
            "{d:?}"
        );
        let (action, facts) = edit("docs/plan.md");
        assert_eq!(
            decide(&p, &mode("architect"), "edit", Group::Edit, &action, &facts),
            Decision::Allow
        );
        let d = decide(&p, &mode("ask"), "edit", Group::Edit, &action, &facts);
        assert!(
            matches!(&d, Decision::Deny(r) if r.contains("ask mode does not allow edit")),
            "{d:?}"
        );
    }

    #[test]
    fn auto_stays_inside_the_workspace_and_away_from_secrets() {
        let p = Policy {
            auto: true,
            ..Policy::default()
        };
        let code = mode("code");
        let (action, mut facts) = edit("src/a.rs");
        assert_eq!(
            decide(&p, &code, "edit", Group::Edit, &action, &facts),
            Decision::Allow
        );
        facts.outside.push(PathBuf::from("/etc/passwd"));
        assert!(
            matches!(decide(&p, &code, "edit", Group::Edit, &action, &facts), Decision::Deny(r) if r.contains("outside the workspace"))
        );
        let read = Action::Read {
            paths: vec![PathBuf::from("/w/.env")],
        };
        let facts = PathFacts {
            secrets: vec![PathBuf::from("/w/.env")],
            relative: vec![".env".into()],
            ..PathFacts::default()
        };
        assert!(
            matches!(decide(&p, &code, "read", Group::Read, &read, &facts), Decision::Deny(r) if r.contains("secrets"))
        );
        let p = Policy::default();
        assert!(
            matches!(decide(&p, &code, "read", Group::Read, &read, &facts), Decision::Ask(r) if r.contains("secrets"))
        );
    }

    #[test]
    fn symlinks_out_of_the_workspace_are_outside() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        std::os::unix::fs::symlink(outside.path(), root.join("link")).unwrap();
        let action = Action::Edit {
            paths: vec![root.join("link/new.txt"), root.join("ok.txt")],
        };
        let facts = classify(std::slice::from_ref(&root), &action);
        assert_eq!(facts.outside, vec![root.join("link/new.txt")]);
        assert_eq!(facts.relative[1], "ok.txt");
        assert!(is_secret(Path::new("/w/.env.local")) && !is_secret(Path::new("/w/.env.example")));
        assert!(
            is_secret(Path::new("/home/u/.ssh/id_ed25519"))
                && is_secret(Path::new("/w/.git/config"))
        );
    }
}
