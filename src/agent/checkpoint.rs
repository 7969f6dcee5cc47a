//! Checkpoints: snapshots of the workspace in a shadow git repository under the data
//! directory (`GIT_DIR` there, `GIT_WORK_TREE` = the workspace), never the person's own
//! `.git`. The `git` executable runs with hooks, signing and every inherited `GIT_*`
//! variable off. Works whether or not the workspace is a git repository; honours
//! `.gitignore`; files inside nested repositories are stored as plain files (their `.git`
//! folders are neither renamed nor read).
//!
//! A restore writes every file to a temporary sibling first and renames them only when all
//! are written (all or nothing), removes files that did not exist at the checkpoint, and
//! is itself preceded by a checkpoint, so it can be undone. `undo_since` reverts only what
//! the agent changed, merging per file so the person's later edits stay.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::text::hash::stable_hash;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoints are off for {}: {why}", path.display())]
    Refused { path: PathBuf, why: &'static str },
    #[error("cannot run git ({0}); install git to get checkpoints")]
    NoGit(std::io::Error),
    #[error("git {args} failed: {stderr}")]
    Git { args: String, stderr: String },
    #[error("no checkpoint {0} (`kiln checkpoints list` shows them)")]
    Unknown(String),
    #[error("{0}")]
    Io(String),
}

/// Who made the checkpoint and why; stored in the commit message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Before the agent's first change of a turn.
    BeforeTurn,
    /// After the agent applied a change.
    AfterChange,
    /// Before a restore or an undo (so that it can be undone).
    BeforeRestore,
    /// Taken by hand or by `kiln loop` before it starts.
    Manual,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::BeforeTurn => "before-turn",
            Kind::AfterChange => "after-change",
            Kind::BeforeRestore => "before-restore",
            Kind::Manual => "manual",
        }
    }

    fn parse(text: &str) -> Kind {
        match text {
            "before-turn" => Kind::BeforeTurn,
            "after-change" => Kind::AfterChange,
            "before-restore" => Kind::BeforeRestore,
            _ => Kind::Manual,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The commit id in the shadow repository (abbreviations are accepted where ids are).
    pub id: String,
    pub kind: Kind,
    pub message: String,
    pub session: Option<String>,
    pub time_ms: u64,
}

/// What a restore or an undo did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// The checkpoint taken just before (restore to it to take this back).
    pub before: Option<String>,
    pub written: Vec<String>,
    pub removed: Vec<String>,
    /// Files where the person's edits overlap the agent's: left as the person has them.
    pub conflicts: Vec<String>,
}

pub struct Checkpoints {
    git_dir: PathBuf,
    work_tree: PathBuf,
}

impl Checkpoints {
    /// The shadow repository for `workspace` under `data_dir`, created on first use.
    pub fn open(data_dir: &Path, workspace: &Path) -> Result<Checkpoints, CheckpointError> {
        let work_tree = workspace
            .canonicalize()
            .map_err(|e| CheckpointError::Io(format!("{}: {e}", workspace.display())))?;
        if work_tree.parent().is_none() {
            return Err(CheckpointError::Refused {
                path: work_tree,
                why: "it is the file system root",
            });
        }
        if dirs::home_dir()
            .and_then(|h| h.canonicalize().ok())
            .is_some_and(|h| h == work_tree)
        {
            return Err(CheckpointError::Refused {
                path: work_tree,
                why: "it is the home directory",
            });
        }
        let hash = stable_hash(work_tree.as_os_str().as_encoded_bytes());
        let git_dir = data_dir
            .join("checkpoints")
            .join(format!("{:016x}.git", hash));
        let cp = Checkpoints { git_dir, work_tree };
        if !cp.git_dir.join("HEAD").exists() {
            std::fs::create_dir_all(&cp.git_dir).map_err(|e| CheckpointError::Io(e.to_string()))?;
            cp.git(&["init", "--quiet"], None)?;
            // Never descend into build output or dependencies even without a .gitignore.
            let exclude = cp.git_dir.join("info/exclude");
            std::fs::create_dir_all(exclude.parent().unwrap_or(&cp.git_dir)).ok();
            std::fs::write(&exclude, "node_modules/\ntarget/\n.kiln/logs/\n")
                .map_err(|e| CheckpointError::Io(e.to_string()))?;
        }
        Ok(cp)
    }

    pub fn work_tree(&self) -> &Path {
        &self.work_tree
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("git");
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("GIT_") {
                cmd.env_remove(name);
            }
        }
        cmd.env("GIT_DIR", &self.git_dir)
            .env("GIT_WORK_TREE", &self.work_tree)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .args([
                "-c",
                "core.hooksPath=/dev/null",
                "-c",
                "commit.gpgsign=false",
                "-c",
                "core.autocrlf=false",
                "-c",
                "core.safecrlf=false",
                "-c",
                "core.quotepath=false",
                "-c",
                "user.name=kiln",
                "-c",
                "user.email=kiln@localhost",
                "-c",
                "gc.auto=0",
            ])
            .args(args)
            .current_dir(&self.work_tree)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs git with optional stdin; returns stdout.
    fn git(&self, args: &[&str], input: Option<&[u8]>) -> Result<Vec<u8>, CheckpointError> {
        let mut cmd = self.command(args);
        cmd.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = cmd.spawn().map_err(CheckpointError::NoGit)?;
        if let (Some(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
            let bytes = bytes.to_vec();
            // Written from a thread so that a large input never deadlocks on a full pipe.
            std::thread::spawn(move || {
                let _ = stdin.write_all(&bytes);
            });
        }
        let out = child.wait_with_output().map_err(CheckpointError::NoGit)?;
        if !out.status.success() {
            return Err(CheckpointError::Git {
                args: args.join(" "),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        Ok(out.stdout)
    }

    fn git_text(&self, args: &[&str]) -> Result<String, CheckpointError> {
        Ok(String::from_utf8_lossy(&self.git(args, None)?)
            .trim()
            .to_owned())
    }

    fn head(&self) -> Option<String> {
        self.git_text(&["rev-parse", "--verify", "--quiet", "HEAD"])
            .ok()
            .filter(|s| !s.is_empty())
    }

    /// Stages the workspace as it is now into the shadow index and returns the tree id.
    fn stage(&self) -> Result<String, CheckpointError> {
        let nested = nested_repos(&self.work_tree);
        let mut args: Vec<String> = vec!["add".into(), "--all".into(), "--".into(), ".".into()];
        for dir in &nested {
            args.push(format!(":(exclude){dir}"));
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.git(&refs, None)?;
        for dir in &nested {
            self.stage_nested(dir)?;
        }
        self.git_text(&["write-tree"])
    }

    /// A nested repository's files, stored as plain files (git itself would store only a
    /// link to the nested repository's commit).
    fn stage_nested(&self, dir: &str) -> Result<(), CheckpointError> {
        self.git(
            &[
                "rm",
                "-r",
                "--cached",
                "--quiet",
                "--ignore-unmatch",
                "--",
                dir,
            ],
            None,
        )?;
        let root = self.work_tree.join(dir);
        let mut files = Vec::new();
        for entry in crate::tools::list::walker(&root).build().flatten() {
            if entry.file_type().is_some_and(|t| t.is_file())
                && let Ok(rel) = entry.path().strip_prefix(&self.work_tree)
            {
                files.push((
                    rel.to_string_lossy().into_owned(),
                    is_executable(entry.path()),
                ));
            }
        }
        if files.is_empty() {
            return Ok(());
        }
        let paths: String = files.iter().map(|(p, _)| format!("{p}\n")).collect();
        let ids = self.git(
            &["hash-object", "-w", "--stdin-paths"],
            Some(paths.as_bytes()),
        )?;
        let ids = String::from_utf8_lossy(&ids);
        let info: String = files
            .iter()
            .zip(ids.lines())
            .map(|((path, exec), id)| {
                format!("{} {id}\t{path}\n", if *exec { "100755" } else { "100644" })
            })
            .collect();
        self.git(
            &["update-index", "--add", "--index-info"],
            Some(info.as_bytes()),
        )?;
        Ok(())
    }

    /// Takes a checkpoint; when nothing changed since the last one, returns that one.
    pub fn snapshot(
        &self,
        kind: Kind,
        message: &str,
        session: Option<&str>,
    ) -> Result<Checkpoint, CheckpointError> {
        let tree = self.stage()?;
        let head = self.head();
        if let Some(head) = &head {
            let head_tree = self.git_text(&["rev-parse", &format!("{head}^{{tree}}")])?;
            if head_tree == tree
                && kind != Kind::BeforeRestore
                && let Some(existing) = self.get(head)?
            {
                return Ok(existing);
            }
        }
        let time_ms = super::store::now_ms();
        let full = format!(
            "{message}\n\nkiln-kind: {}\nkiln-session: {}\nkiln-time: {time_ms}\n",
            kind.as_str(),
            session.unwrap_or("-")
        );
        let mut args = vec!["commit-tree", tree.as_str(), "-F", "-"];
        if let Some(head) = &head {
            args.extend(["-p", head.as_str()]);
        }
        let id = String::from_utf8_lossy(&self.git(&args, Some(full.as_bytes()))?)
            .trim()
            .to_owned();
        self.git(&["update-ref", "HEAD", &id], None)?;
        Ok(Checkpoint {
            id,
            kind,
            message: message.to_owned(),
            session: session.map(str::to_owned),
            time_ms,
        })
    }

    fn get(&self, id: &str) -> Result<Option<Checkpoint>, CheckpointError> {
        let text = match self.git_text(&["log", "-1", "--format=%H%x00%B", id, "--"]) {
            Ok(t) => t,
            Err(_) => return Ok(None),
        };
        Ok(parse_log_entry(&text))
    }

    /// Every checkpoint, newest first.
    pub fn list(&self) -> Result<Vec<Checkpoint>, CheckpointError> {
        if self.head().is_none() {
            return Ok(Vec::new());
        }
        let text = self.git_text(&["log", "--format=%H%x00%B%x1e", "HEAD"])?;
        Ok(text
            .split('\x1e')
            .filter_map(|e| parse_log_entry(e.trim()))
            .collect())
    }

    /// The full id of `id` (an abbreviation, or `HEAD~n`), or an error naming it.
    pub fn resolve(&self, id: &str) -> Result<String, CheckpointError> {
        if self.head().is_none() {
            return Err(CheckpointError::Unknown(id.to_owned()));
        }
        self.git_text(&[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{id}^{{commit}}"),
        ])
        .ok()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| CheckpointError::Unknown(id.to_owned()))
    }

    /// A unified diff from the checkpoint to the workspace now (or to `to`).
    pub fn diff(
        &self,
        id: &str,
        to: Option<&str>,
        file: Option<&str>,
    ) -> Result<String, CheckpointError> {
        let from = self.resolve(id)?;
        let to_tree = match to {
            Some(to) => self.resolve(to)?,
            None => self.stage()?,
        };
        let mut args = vec![
            "diff",
            "--no-color",
            "--no-ext-diff",
            "--binary",
            from.as_str(),
            to_tree.as_str(),
            "--",
        ];
        if let Some(f) = file {
            args.push(f);
        }
        Ok(String::from_utf8_lossy(&self.git(&args, None)?).into_owned())
    }

    /// Files of a tree (path → (mode, blob id)).
    fn files(&self, tree_ish: &str) -> Result<BTreeMap<String, (String, String)>, CheckpointError> {
        let out = self.git(&["ls-tree", "-r", "-z", "--full-tree", tree_ish], None)?;
        let mut files = BTreeMap::new();
        for entry in out.split(|b| *b == 0).filter(|e| !e.is_empty()) {
            let entry = String::from_utf8_lossy(entry);
            let Some((meta, path)) = entry.split_once('\t') else {
                continue;
            };
            let mut parts = meta.split_whitespace();
            let (Some(mode), Some(kind), Some(id)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if kind == "blob" {
                files.insert(path.to_owned(), (mode.to_owned(), id.to_owned()));
            }
        }
        Ok(files)
    }

    fn blob(&self, id: &str) -> Result<Vec<u8>, CheckpointError> {
        self.git(&["cat-file", "blob", id], None)
    }

    /// Puts the workspace (or one file) back as it was at `id`: all files or none.
    pub fn restore(
        &self,
        id: &str,
        file: Option<&str>,
        session: Option<&str>,
    ) -> Result<Restored, CheckpointError> {
        let target = self.resolve(id)?;
        let before = self.snapshot(
            Kind::BeforeRestore,
            &format!("before restoring {}", short(&target)),
            session,
        )?;
        let want = self.files(&target)?;
        let have = self.files(&before.id)?;
        let in_scope = |path: &str| {
            file.is_none_or(|f| {
                path == f || path.starts_with(&format!("{}/", f.trim_end_matches('/')))
            })
        };
        let mut writes: Vec<(String, Vec<u8>, bool)> = Vec::new();
        for (path, (mode, blob)) in &want {
            if !in_scope(path) || have.get(path).is_some_and(|(m, b)| m == mode && b == blob) {
                continue;
            }
            writes.push((path.clone(), self.blob(blob)?, mode == "100755"));
        }
        let removes: Vec<String> = have
            .keys()
            .filter(|p| in_scope(p) && !want.contains_key(*p))
            .cloned()
            .collect();
        if let Some(f) = file
            && writes.is_empty()
            && removes.is_empty()
            && !want.keys().chain(have.keys()).any(|p| in_scope(p))
        {
            return Err(CheckpointError::Io(format!(
                "{f} is in neither the checkpoint nor the workspace"
            )));
        }
        self.write_all(&writes, &removes)?;
        Ok(Restored {
            before: Some(before.id),
            written: writes.into_iter().map(|(p, _, _)| p).collect(),
            removed: removes,
            conflicts: Vec::new(),
        })
    }

    /// Undoes the agent's changes since checkpoint `since` (up to its newest after-change
    /// checkpoint), keeping later edits of the person's.
    pub fn undo_agent_since(
        &self,
        since: &str,
        session: Option<&str>,
    ) -> Result<Restored, CheckpointError> {
        let list = self.list()?;
        let since = self.resolve(since)?;
        let newer: Vec<&Checkpoint> = list.iter().take_while(|c| c.id != since).collect();
        let Some(last) = newer.iter().find(|c| c.kind == Kind::AfterChange) else {
            return Err(CheckpointError::Io(format!(
                "the agent changed nothing after {}",
                short(&since)
            )));
        };
        self.undo_since(&since, &last.id, session)
    }

    /// Undoes the changes of `session`'s last turn that changed something.
    pub fn undo_last_turn(&self, session: &str) -> Result<Restored, CheckpointError> {
        let list = self.list()?;
        let start = list
            .iter()
            .find(|c| c.kind == Kind::BeforeTurn && c.session.as_deref() == Some(session))
            .ok_or_else(|| {
                CheckpointError::Io("this session has changed no files yet".to_owned())
            })?;
        self.undo_agent_since(&start.id.clone(), Some(session))
    }

    /// Reverts what changed between `since` and `agent_last` (the agent's changes) in the
    /// workspace as it is now, keeping edits made after `agent_last` (the person's): a
    /// three-way merge per file. Where they overlap, the file keeps the person's text and
    /// is reported as a conflict.
    pub fn undo_since(
        &self,
        since: &str,
        agent_last: &str,
        session: Option<&str>,
    ) -> Result<Restored, CheckpointError> {
        let since = self.resolve(since)?;
        let agent_last = self.resolve(agent_last)?;
        let before = self.snapshot(
            Kind::BeforeRestore,
            &format!("before undoing the changes since {}", short(&since)),
            session,
        )?;
        let old = self.files(&since)?;
        let agent = self.files(&agent_last)?;
        let now = self.files(&before.id)?;
        let mut writes = Vec::new();
        let mut removes = Vec::new();
        let mut conflicts = Vec::new();
        let paths: std::collections::BTreeSet<&String> = old.keys().chain(agent.keys()).collect();
        for path in paths {
            let (o, a, n) = (old.get(path), agent.get(path), now.get(path));
            if o == a {
                continue; // the agent did not touch it
            }
            match (o, a, n) {
                // The agent created it: remove it unless the person changed it since.
                (None, Some(a), Some(n)) if a == n => removes.push(path.clone()),
                (None, Some(_), Some(_)) => conflicts.push(path.clone()),
                (None, Some(_), None) => {}
                // The agent deleted it: bring it back unless the person recreated it.
                (Some(o), None, None) => {
                    writes.push((path.clone(), self.blob(&o.1)?, o.0 == "100755"))
                }
                (Some(_), None, Some(_)) => conflicts.push(path.clone()),
                // The agent changed it and the person deleted it since: leave it deleted.
                (Some(_), Some(_), None) => conflicts.push(path.clone()),
                (Some(o), Some(a), Some(n)) => {
                    if a == n {
                        writes.push((path.clone(), self.blob(&o.1)?, o.0 == "100755"));
                        continue;
                    }
                    match self.merge3(&self.blob(&n.1)?, &self.blob(&a.1)?, &self.blob(&o.1)?) {
                        Some(merged) => writes.push((path.clone(), merged, n.0 == "100755")),
                        None => conflicts.push(path.clone()),
                    }
                }
                (None, None, _) => {}
            }
        }
        self.write_all(&writes, &removes)?;
        Ok(Restored {
            before: Some(before.id),
            written: writes.into_iter().map(|(p, _, _)| p).collect(),
            removed: removes,
            conflicts,
        })
    }

    /// `git merge-file` of ours (now) / base (the agent's result) / theirs (before the
    /// agent): the agent's change taken back out of the current text. `None` on overlap.
    fn merge3(&self, ours: &[u8], base: &[u8], theirs: &[u8]) -> Option<Vec<u8>> {
        let dir = self.git_dir.join("kiln-merge");
        std::fs::create_dir_all(&dir).ok()?;
        let write = |name: &str, bytes: &[u8]| -> Option<PathBuf> {
            let p = dir.join(format!("{name}-{}", std::process::id()));
            std::fs::write(&p, bytes).ok()?;
            Some(p)
        };
        let (o, b, t) = (
            write("ours", ours)?,
            write("base", base)?,
            write("theirs", theirs)?,
        );
        let out = Command::new("git")
            .args(["merge-file", "-p", "--quiet"])
            .args([&o, &b, &t])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        for p in [&o, &b, &t] {
            let _ = std::fs::remove_file(p);
        }
        match out.status.code() {
            Some(0) => Some(out.stdout),
            _ => None,
        }
    }

    /// Writes every file to a temporary sibling, then renames them all and removes
    /// `removes`; if any write fails nothing is renamed.
    fn write_all(
        &self,
        writes: &[(String, Vec<u8>, bool)],
        removes: &[String],
    ) -> Result<(), CheckpointError> {
        let mut temps: Vec<(PathBuf, PathBuf)> = Vec::new();
        let cleanup = |temps: &[(PathBuf, PathBuf)]| {
            for (tmp, _) in temps {
                let _ = std::fs::remove_file(tmp);
            }
        };
        for (idx, (path, bytes, exec)) in writes.iter().enumerate() {
            let dest = self.work_tree.join(path);
            let tmp = dest.with_file_name(format!(
                ".{}.kiln-restore-{}-{idx}",
                dest.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                std::process::id()
            ));
            let result = (|| -> std::io::Result<()> {
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let mut f = std::fs::File::create(&tmp)?;
                f.write_all(bytes)?;
                f.sync_all()?;
                set_mode(&tmp, &dest, *exec)?;
                Ok(())
            })();
            if let Err(err) = result {
                let _ = std::fs::remove_file(&tmp);
                cleanup(&temps);
                return Err(CheckpointError::Io(format!(
                    "nothing was restored: cannot write {path}: {err}"
                )));
            }
            temps.push((tmp, dest));
        }
        for (tmp, dest) in &temps {
            if let Err(err) = std::fs::rename(tmp, dest) {
                cleanup(&temps);
                return Err(CheckpointError::Io(format!(
                    "restore stopped at {}: {err}; `kiln checkpoints restore` the checkpoint taken before it to go back",
                    dest.display()
                )));
            }
        }
        for path in removes {
            let full = self.work_tree.join(path);
            let _ = std::fs::remove_file(&full);
            // Folders the removed files leave empty go too (up to the workspace).
            let mut dir = full.parent();
            while let Some(d) = dir {
                if d == self.work_tree || std::fs::remove_dir(d).is_err() {
                    break;
                }
                dir = d.parent();
            }
        }
        Ok(())
    }
}

pub fn short(id: &str) -> &str {
    &id[..id.len().min(10)]
}

fn parse_log_entry(text: &str) -> Option<Checkpoint> {
    let (id, body) = text.split_once('\0')?;
    let mut kind = Kind::Manual;
    let mut session = None;
    let mut time_ms = 0;
    let mut message = String::new();
    for line in body.lines() {
        if let Some(k) = line.strip_prefix("kiln-kind: ") {
            kind = Kind::parse(k.trim());
        } else if let Some(s) = line.strip_prefix("kiln-session: ") {
            session = Some(s.trim().to_owned()).filter(|s| s != "-");
        } else if let Some(t) = line.strip_prefix("kiln-time: ") {
            time_ms = t.trim().parse().unwrap_or(0);
        } else if message.is_empty() && !line.trim().is_empty() {
            message = line.trim().to_owned();
        }
    }
    Some(Checkpoint {
        id: id.trim().to_owned(),
        kind,
        message,
        session,
        time_ms,
    })
}

/// Folders below `root` (not `root` itself) holding their own `.git`, relative and
/// `/`-separated, outermost only.
fn nested_repos(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for entry in crate::tools::list::walker(root).build().flatten() {
        if entry.depth() == 0 || !entry.file_type().is_some_and(|t| t.is_dir()) {
            continue;
        }
        if entry.path().join(".git").exists()
            && let Ok(rel) = entry.path().strip_prefix(root)
        {
            let rel = rel.to_string_lossy().replace('\\', "/");
            if !out.iter().any(|o| rel.starts_with(&format!("{o}/"))) {
                out.push(rel);
            }
        }
    }
    out
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(_path: &Path) -> bool {
    false
}

/// The permissions `dest` has (or 0644), with the executable bits as the checkpoint says.
#[cfg(unix)]
fn set_mode(tmp: &Path, dest: &Path, exec: bool) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let base = std::fs::metadata(dest)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    let mode = if exec {
        base | ((base & 0o444) >> 2) | 0o100
    } else {
        base & !0o111
    };
    std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_tmp: &Path, _dest: &Path, _exec: bool) -> std::io::Result<()> {
    Ok(())
}
