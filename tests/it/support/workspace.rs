//! Multi-file workspaces written as one string: each file starts with a `//- /path`
//! line, followed by its content.

#![allow(dead_code)]

use std::path::Path;

pub fn write(root: &Path, fixture: &str) {
    let mut current: Option<(String, String)> = None;
    let flush = |entry: Option<(String, String)>| {
        if let Some((path, text)) = entry {
            let full = root.join(path.trim_start_matches('/'));
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, text).unwrap();
        }
    };
    for line in fixture.split_inclusive('\n') {
        if let Some(path) = line.strip_prefix("//- ") {
            flush(current.take());
            current = Some((path.trim().to_owned(), String::new()));
        } else if let Some((_, text)) = &mut current {
            text.push_str(line);
        }
    }
    flush(current);
}

/// Every file under `root` (except `.kiln/`) as a fixture string, sorted by path.
pub fn read(root: &Path) -> String {
    let mut files = Vec::new();
    collect(root, root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|(rel, text)| format!("//- /{rel}\n{text}"))
        .collect()
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if rel == ".kiln" {
            continue;
        }
        if path.is_dir() {
            collect(root, &path, out);
        } else {
            out.push((
                rel,
                std::fs::read_to_string(&path).unwrap_or_else(|_| "<binary>".into()),
            ));
        }
    }
}
