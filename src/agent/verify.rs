//! The verification gate and the blast radius (the config's `verify` section): limits on
//! how much one proposal and one turn may change, and check commands run after changes to
//! matching files. A change over a limit is refused before anyone is asked; a failing
//! check is reported to the model with its output and the checkpoint that undoes it.

use serde_json::Value;

use crate::config::Config;

#[derive(Clone, Debug, Default)]
pub struct Verify {
    /// Files one proposal (one tool call) may change.
    pub max_files: Option<usize>,
    /// Lines (added + removed) one proposal may change.
    pub max_changed_lines: Option<usize>,
    pub max_turn_files: Option<usize>,
    pub max_turn_changed_lines: Option<usize>,
    /// (glob over the workspace-relative path or the file name, command).
    pub checks: Vec<(String, globset::GlobMatcher, String)>,
}

/// What a turn has changed so far.
#[derive(Clone, Debug, Default)]
pub struct TurnChanges {
    pub files: std::collections::BTreeSet<std::path::PathBuf>,
    pub changed_lines: usize,
}

impl Verify {
    pub fn from_config(config: &Config) -> (Verify, Vec<String>) {
        let mut v = Verify::default();
        let mut problems = Vec::new();
        let Some((value, origin)) = config.sections.get("verify") else {
            return (v, problems);
        };
        let at = format!("{origin}: verify");
        let Value::Object(map) = value else {
            problems.push(format!("{at}: expected an object with max_files, max_changed_lines, max_turn_files, max_turn_changed_lines, check"));
            return (v, problems);
        };
        for (key, value) in map {
            let number = || value.as_u64().filter(|n| *n > 0).map(|n| n as usize);
            let slot = match key.as_str() {
                "max_files" => Some(&mut v.max_files),
                "max_changed_lines" => Some(&mut v.max_changed_lines),
                "max_turn_files" => Some(&mut v.max_turn_files),
                "max_turn_changed_lines" => Some(&mut v.max_turn_changed_lines),
                _ => None,
            };
            if let Some(slot) = slot {
                match number() {
                    Some(n) => *slot = Some(n),
                    None => problems.push(format!(
                        "{at}.{key}: expected a whole number above 0, got {value}"
                    )),
                }
                continue;
            }
            match (key.as_str(), value) {
                ("check", Value::Object(checks)) => {
                    for (pattern, command) in checks {
                        let Some(command) = command.as_str().filter(|c| !c.trim().is_empty()) else {
                            problems.push(format!("{at}.check.{pattern}: expected a command string"));
                            continue;
                        };
                        match globset::GlobBuilder::new(pattern).literal_separator(false).build() {
                            Ok(glob) => v.checks.push((pattern.clone(), glob.compile_matcher(), command.to_owned())),
                            Err(err) => problems.push(format!("{at}.check: invalid glob {pattern:?}: {err}")),
                        }
                    }
                }
                ("check", other) => problems.push(format!("{at}.check: expected an object of glob → command, got {other}")),
                (other, _) => problems.push(format!(
                    "{at}.{other}: unknown key (expected max_files, max_changed_lines, max_turn_files, max_turn_changed_lines, check)"
                )),
            }
        }
        (v, problems)
    }

    /// Refuses a proposal of `files` changing `lines` when it or the turn would go over a
    /// limit.
    pub fn blast_radius(
        &self,
        files: &[std::path::PathBuf],
        lines: usize,
        turn: &TurnChanges,
    ) -> Result<(), String> {
        let over = |what: &str, n: usize, limit: Option<usize>, key: &str| match limit {
            Some(limit) if n > limit => Err(format!(
                "refused: {what} would be {n}, over the limit of {limit} (verify.{key} in kiln.jsonc); nothing was written. Make the change in smaller steps"
            )),
            _ => Ok(()),
        };
        over(
            "the files this change touches",
            files.len(),
            self.max_files,
            "max_files",
        )?;
        over(
            "the lines this change touches",
            lines,
            self.max_changed_lines,
            "max_changed_lines",
        )?;
        let mut all = turn.files.clone();
        all.extend(files.iter().cloned());
        over(
            "the files changed in this turn",
            all.len(),
            self.max_turn_files,
            "max_turn_files",
        )?;
        over(
            "the lines changed in this turn",
            turn.changed_lines + lines,
            self.max_turn_changed_lines,
            "max_turn_changed_lines",
        )?;
        Ok(())
    }

    /// The check commands for these workspace-relative paths, each once, in config order.
    pub fn checks_for(&self, relative: &[String]) -> Vec<&str> {
        self.checks
            .iter()
            .filter(|(_, glob, _)| {
                relative.iter().any(|rel| {
                    let name = rel.rsplit('/').next().unwrap_or(rel);
                    glob.is_match(rel) || glob.is_match(name)
                })
            })
            .map(|(_, _, cmd)| cmd.as_str())
            .fold(Vec::new(), |mut acc, cmd| {
                if !acc.contains(&cmd) {
                    acc.push(cmd);
                }
                acc
            })
    }
}
