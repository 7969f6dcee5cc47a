//! Watching closed files on disk with `notify`, for clients that cannot send
//! `workspace/didChangeWatchedFiles` themselves.
//!
//! Only directories that matter are watched: each one that `.gitignore` (at every level,
//! plus `.git/info/exclude`) does not ignore and that is not `.git/`, `target/` or
//! `node_modules/` gets its own non-recursive watch, and directories created later are
//! added as they appear. A recursive watch would place an inotify watch on every folder of
//! `node_modules/` and can exhaust the system's limit on a big JavaScript project. Events
//! are debounced (`notify-debouncer-full`) and pass the same ignore filter.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, new_debouncer};

use super::overlay::{ChangeKind, ExternalChange};
use super::paths::{in_always_ignored_dir, normalize};

const DEBOUNCE: Duration = Duration::from_millis(150);

enum Command {
    /// A directory appeared: watch it and what is below it.
    Watch(PathBuf),
    Stop,
}

/// A running watcher; dropping it stops watching.
pub struct Watcher {
    commands: Sender<Command>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Stop);
    }
}

type OnChanges = Arc<Mutex<dyn FnMut(Vec<ExternalChange>) + Send>>;

/// Starts watching `roots`; `on_changes` receives each debounced batch of changes that
/// survive the ignore rules, and `on_error` each watcher error.
pub fn watch(
    roots: &[PathBuf],
    on_changes: impl FnMut(Vec<ExternalChange>) + Send + 'static,
    on_error: impl Fn(String) + Send + Sync + 'static,
) -> notify::Result<Watcher> {
    let on_changes: OnChanges = Arc::new(Mutex::new(on_changes));
    let on_error = Arc::new(on_error);
    let (commands, command_rx) = channel();
    let mut filter = IgnoreFilter::new(roots.to_vec());
    let (handler_changes, handler_error, handler_commands) =
        (on_changes.clone(), on_error.clone(), commands.clone());
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
                            if filter.is_ignored(path) {
                                continue;
                            }
                            if kind == ChangeKind::Created && path.is_dir() {
                                let _ = handler_commands.send(Command::Watch(path.clone()));
                            }
                            let change = ExternalChange {
                                path: normalize(path),
                                kind,
                            };
                            if !changes.contains(&change) {
                                changes.push(change);
                            }
                        }
                    }
                    report(&handler_changes, changes);
                }
                Err(errors) => {
                    for error in errors {
                        handler_error(error.to_string());
                    }
                }
            },
        )?;
    let mut walk_filter = IgnoreFilter::new(roots.to_vec());
    for root in roots {
        for dir in directories(&mut walk_filter, root) {
            if let Err(err) = debouncer.watch(&dir, RecursiveMode::NonRecursive) {
                if dir == *root {
                    return Err(err);
                }
                on_error(format!("cannot watch {}: {err}", dir.display()));
            }
        }
    }
    // The debouncer lives on this thread, which adds directories as they appear.
    std::thread::spawn(move || {
        while let Ok(Command::Watch(new_dir)) = command_rx.recv() {
            let mut created = Vec::new();
            for dir in directories(&mut walk_filter, &new_dir) {
                if let Err(err) = debouncer.watch(&dir, RecursiveMode::NonRecursive) {
                    on_error(format!("cannot watch {}: {err}", dir.display()));
                }
                // What was created inside before the watch existed.
                if dir != new_dir {
                    created.push(ExternalChange {
                        path: normalize(&dir),
                        kind: ChangeKind::Created,
                    });
                }
                for file in files_in(&mut walk_filter, &dir) {
                    created.push(ExternalChange {
                        path: normalize(&file),
                        kind: ChangeKind::Created,
                    });
                }
            }
            report(&on_changes, created);
        }
    });
    Ok(Watcher { commands })
}

fn report(on_changes: &OnChanges, changes: Vec<ExternalChange>) {
    if !changes.is_empty()
        && let Ok(mut on_changes) = on_changes.lock()
    {
        on_changes(changes);
    }
}

/// `root` and every directory below it that the ignore rules keep. Symlinked directories
/// are not followed.
fn directories(filter: &mut IgnoreFilter, root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for (path, is_dir) in entries(&dir) {
            if is_dir && !filter.is_ignored_as(&path, true) {
                stack.push(path);
            }
        }
        out.push(dir);
    }
    out
}

/// The files directly in `dir` that the ignore rules keep.
fn files_in(filter: &mut IgnoreFilter, dir: &Path) -> Vec<PathBuf> {
    entries(dir)
        .filter(|(path, is_dir)| !is_dir && !filter.is_ignored_as(path, false))
        .map(|(path, _)| path)
        .collect()
}

/// The entries of `dir` with whether each is a directory (unreadable ones are skipped).
fn entries(dir: &Path) -> impl Iterator<Item = (PathBuf, bool)> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| Some((entry.path(), entry.file_type().ok()?.is_dir())))
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
        self.is_ignored_as(path, path.is_dir())
    }

    /// Like [`Self::is_ignored`] when the caller already knows whether `path` is a directory.
    pub fn is_ignored_as(&mut self, path: &Path, is_dir: bool) -> bool {
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
    fn only_directories_that_matter_are_watched() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        std::fs::write(root.join(".gitignore"), "build/\n").unwrap();
        for d in [
            "src/a",
            "build/out",
            "node_modules/pkg/lib",
            "target/debug",
            ".git/objects",
            ".github",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let mut filter = IgnoreFilter::new(vec![root.clone()]);
        let mut got: Vec<String> = directories(&mut filter, &root)
            .iter()
            .map(|d| d.strip_prefix(&root).unwrap().display().to_string())
            .collect();
        got.sort();
        assert_eq!(got, ["", ".github", "src", "src/a"]);
    }

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
