//! Path helpers: lexical normalisation and which paths the watcher should never report.

use std::path::{Component, Path, PathBuf};

/// Removes `.` and resolves `..` lexically (no file system access, so it works for files
/// that do not exist yet). `..` above the root stays at the root.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                // `..` at the root stays at the root.
                Some(Component::RootDir | Component::Prefix(_)) => {}
                // A relative path keeps leading `..`s.
                _ => out.push(component),
            },
            other => out.push(other),
        }
    }
    out
}

/// Directories whose contents are never interesting to kiln, whatever `.gitignore` says.
pub const ALWAYS_IGNORED_DIRS: [&str; 3] = [".git", "target", "node_modules"];

/// True when some component of `path` below `root` is one of [`ALWAYS_IGNORED_DIRS`].
pub fn in_always_ignored_dir(root: &Path, path: &Path) -> bool {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components().any(
        |c| matches!(c, Component::Normal(name) if ALWAYS_IGNORED_DIRS.iter().any(|d| name == *d)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_lexically() {
        assert_eq!(
            normalize(Path::new("/a/b/../c/./d")),
            PathBuf::from("/a/c/d")
        );
        assert_eq!(normalize(Path::new("/a/../../b")), PathBuf::from("/b"));
    }

    #[test]
    fn ignores_build_and_vcs_dirs() {
        let root = Path::new("/w");
        assert!(in_always_ignored_dir(root, Path::new("/w/target/debug/x")));
        assert!(in_always_ignored_dir(
            root,
            Path::new("/w/web/node_modules/a.js")
        ));
        assert!(in_always_ignored_dir(root, Path::new("/w/.git/index")));
        assert!(!in_always_ignored_dir(root, Path::new("/w/src/targets.rs")));
    }
}
