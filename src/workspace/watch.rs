//! Watching closed files on disk with `notify`, for clients that cannot send
//! `workspace/didChangeWatchedFiles` themselves.
//!
//! Events are debounced (`notify-debouncer-full`) and filtered: anything under `.git/`,
//! `target/` or `node_modules/`, and anything the `.gitignore` files (at every level, plus
//! `.git/info/exclude`) ignore, is dropped before it reaches kiln.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};

use super::overlay::{ChangeKind, ExternalChange};
use super::paths::{in_always_ignored_dir, normalize};

const DEBOUNCE: Duration = Duration::from_millis(150);

/// A running watcher; dropping it stops watching.
pub struct Watcher {
    _debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
}

/// Starts watching `roots` recursively; `on_changes` receives each debounced batch of
/// changes that survive the ignore rules, and `on_error` each watcher error.
pub fn watch(
    roots: &[PathBuf],
    mut on_changes: impl FnMut(Vec<ExternalChange>) + Send + 'static,
    on_error: impl Fn(String) + Send + 'static,
) -> notify::Result<Watcher> {
    let mut filter = IgnoreFilter::new(roots.to_vec());
    let mut debouncer =
        new_debouncer(
            DEBOUNCE,
            None,
            move |result: DebounceEventResult| match result {
                Ok(events) => {
                    let mut changes = Vec::new();
                    for event in events {
                        let kind = match event.kind {
                            EventKind::Create(_) => ChangeKind::Created,
                            EventKind::Modify(_) => ChangeKind::Changed,
                            EventKind::Remove(_) => ChangeKind::Deleted,
                            EventKind::Any | EventKind::Access(_) | EventKind::Other => continue,
                        };
                        for path in &event.paths {
                            if !filter.is_ignored(path) {
                                let change = ExternalChange {
                                    path: normalize(path),
                                    kind,
                                };
                                if !changes.contains(&change) {
                                    changes.push(change);
                                }
                            }
                        }
                    }
                    if !changes.is_empty() {
                        on_changes(changes);
                    }
                }
                Err(errors) => {
                    for error in errors {
                        on_error(error.to_string());
                    }
                }
            },
        )?;
    for root in roots {
        debouncer.watch(root, RecursiveMode::Recursive)?;
    }
    Ok(Watcher {
        _debouncer: debouncer,
    })
}

/// Decides whether a path is ignored, caching each directory's `.gitignore`.
pub struct IgnoreFilter {
    roots: Vec<PathBuf>,
    per_dir: HashMap<PathBuf, Gitignore>,
}

impl IgnoreFilter {
    pub fn new(roots: Vec<PathBuf>) -> Self {
        IgnoreFilter {
            roots,
            per_dir: HashMap::new(),
        }
    }

    pub fn is_ignored(&mut self, path: &Path) -> bool {
        let Some(root) = self.roots.iter().find(|r| path.starts_with(r)).cloned() else {
            return true;
        };
        if in_always_ignored_dir(&root, path) {
            return true;
        }
        if path.file_name().is_some_and(|n| n == ".gitignore")
            && let Some(dir) = path.parent()
        {
            self.per_dir.remove(dir);
        }
        let is_dir = path.is_dir();
        // The deepest .gitignore with an opinion wins, as in git.
        let mut dir = path.parent();
        while let Some(d) = dir {
            if !d.starts_with(&root) {
                break;
            }
            let gitignore = self
                .per_dir
                .entry(d.to_path_buf())
                .or_insert_with(|| load(d, d == root));
            match gitignore.matched_path_or_any_parents(path, is_dir) {
                Match::Ignore(_) => return true,
                Match::Whitelist(_) => return false,
                Match::None => {}
            }
            dir = d.parent();
        }
        false
    }
}

fn load(dir: &Path, is_root: bool) -> Gitignore {
    let mut builder = GitignoreBuilder::new(dir);
    builder.add(dir.join(".gitignore"));
    if is_root {
        builder.add(dir.join(".git/info/exclude"));
    }
    // A missing file is reported as an error by `add`; an empty matcher is what we want.
    builder.build().unwrap_or_else(|_| Gitignore::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn honours_nested_gitignores_and_build_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        std::fs::write(root.join(".gitignore"), "*.log\nbuild/\n").unwrap();
        std::fs::create_dir_all(root.join("sub/build")).unwrap();
        std::fs::write(root.join("sub/.gitignore"), "secret.txt\n!keep.log\n").unwrap();
        let mut filter = IgnoreFilter::new(vec![root.clone()]);
        assert!(filter.is_ignored(&root.join("a.log")));
        assert!(filter.is_ignored(&root.join("sub/build/out.o")));
        assert!(filter.is_ignored(&root.join("sub/secret.txt")));
        assert!(!filter.is_ignored(&root.join("sub/keep.log")));
        assert!(!filter.is_ignored(&root.join("src/main.rs")));
        assert!(filter.is_ignored(&root.join("target/x")));
        assert!(filter.is_ignored(Path::new("/elsewhere/file")));
    }
}
