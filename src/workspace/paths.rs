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

/// File names that usually hold secrets: `.env` files (not their `.example`s), keys and
/// certificates, SSH identities, credential files, and anything inside `.git/`. Reading
/// them needs the person's approval; searches skip them.
pub fn is_secret(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let in_git = path.components().any(|c| c.as_os_str() == ".git");
    in_git
        || name == ".env"
        || (name.starts_with(".env.")
            && !matches!(name, ".env.example" | ".env.sample" | ".env.template"))
        || name.ends_with(".pem")
        || name.ends_with(".key")
        || (name.starts_with("id_") && !name.contains('.'))
        || name == ".netrc"
        || name == ".npmrc"
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
