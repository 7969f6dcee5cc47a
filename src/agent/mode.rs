//! Modes: what the agent is for right now, as Kilo and Roo have them. A mode is a system
//! prompt, the tool groups it may use, and optionally a regex that every file it edits must
//! match. Built in: `code`, `architect`, `ask`, `debug`; more (or changes to these) come
//! from the config's `mode` section.

use regex::Regex;
use serde_json::Value;

use crate::config::Config;
use crate::tools::Group;

#[derive(Clone, Debug)]
pub struct Mode {
    pub slug: String,
    pub name: String,
    pub description: String,
    /// Added to the system prompt.
    pub prompt: String,
    pub groups: Vec<Group>,
    /// Files this mode may edit (matched against the workspace-relative path, `/`
    /// separated); `None` allows every file.
    pub edit_filter: Option<Regex>,
    /// Permission rules that replace the config's while this mode is active.
    pub permission: Option<super::policy::Rules>,
}

impl Mode {
    pub fn allows(&self, group: Group) -> bool {
        group == Group::Always || self.groups.contains(&group)
    }
}

pub const DEFAULT_MODE: &str = "code";

const ALL_GROUPS: [Group; 4] = [Group::Read, Group::Edit, Group::Command, Group::Mcp];

pub fn builtin() -> Vec<Mode> {
    vec![
        Mode {
            slug: "code".into(),
            name: "Code".into(),
            description: "Write, change and run code (all tools)".into(),
            prompt: "You are in code mode: make the change the person asks for, keep it focused, and check your work (build, tests) when you can.".into(),
            groups: ALL_GROUPS.to_vec(),
            edit_filter: None,
            permission: None,
        },
        Mode {
            slug: "architect".into(),
            name: "Architect".into(),
            description: "Plan and design; may edit only Markdown files".into(),
            prompt: "You are in architect mode: study the code, ask clarifying questions when needed, and write plans and designs. You may edit only Markdown (*.md) files; do not change code.".into(),
            groups: vec![Group::Read, Group::Edit, Group::Mcp],
            edit_filter: Some(Regex::new(r"\.md$").expect("valid regex")),
            permission: None,
        },
        Mode {
            slug: "ask".into(),
            name: "Ask".into(),
            description: "Answer questions about the code (read-only)".into(),
            prompt: "You are in ask mode: answer questions and explain code. You cannot change files or run commands.".into(),
            groups: vec![Group::Read, Group::Mcp],
            edit_filter: None,
            permission: None,
        },
        Mode {
            slug: "debug".into(),
            name: "Debug".into(),
            description: "Find the cause of a problem before fixing it (all tools)".into(),
            prompt: "You are in debug mode: first reproduce the problem and find its cause (read code, add logging, run it), state the diagnosis, and only then fix it with the smallest change.".into(),
            groups: ALL_GROUPS.to_vec(),
            edit_filter: None,
            permission: None,
        },
    ]
}

/// The built-in modes with the config's `mode` section applied: new modes are added,
/// fields given for an existing slug replace that mode's. Problems are returned as
/// messages (the mode with the problem is skipped), never an error.
pub fn from_config(config: &Config) -> (Vec<Mode>, Vec<String>) {
    let mut modes = builtin();
    let mut problems = Vec::new();
    let Some((Value::Object(section), origin)) = config.sections.get("mode") else {
        if let Some((_, origin)) = config.sections.get("mode") {
            problems.push(format!(
                "{origin}: mode: expected an object of modes by name"
            ));
        }
        return (modes, problems);
    };
    for (slug, spec) in section {
        let at = format!("{origin}: mode.{slug}");
        let Value::Object(spec) = spec else {
            problems.push(format!(
                "{at}: expected an object with prompt, groups, file_regex"
            ));
            continue;
        };
        let mut mode = modes
            .iter()
            .find(|m| &m.slug == slug)
            .cloned()
            .unwrap_or_else(|| Mode {
                slug: slug.clone(),
                name: slug.clone(),
                description: String::new(),
                prompt: String::new(),
                groups: vec![Group::Read],
                edit_filter: None,
                permission: None,
            });
        let mut ok = true;
        for (key, value) in spec {
            match (key.as_str(), value) {
                ("name", Value::String(s)) => mode.name = s.clone(),
                ("description", Value::String(s)) => mode.description = s.clone(),
                ("prompt", Value::String(s)) => mode.prompt = s.clone(),
                ("groups", Value::Array(items)) => {
                    let mut groups = Vec::new();
                    for item in items {
                        match item.as_str().and_then(Group::parse) {
                            Some(g) => groups.push(g),
                            None => {
                                problems.push(format!(
                                    "{at}.groups: unknown group {item}; expected \"read\", \"edit\", \"command\" or \"mcp\""
                                ));
                                ok = false;
                            }
                        }
                    }
                    mode.groups = groups;
                }
                ("file_regex", Value::String(s)) => match Regex::new(s) {
                    Ok(re) => mode.edit_filter = Some(re),
                    Err(err) => {
                        problems.push(format!("{at}.file_regex: invalid regex: {err}"));
                        ok = false;
                    }
                },
                ("file_regex", Value::Null) => mode.edit_filter = None,
                ("permission", value) => {
                    mode.permission = Some(super::policy::parse_rules(
                        value,
                        &format!("{at}.permission"),
                        &mut problems,
                    ))
                }
                (other, _) if ["name", "description", "prompt", "groups", "file_regex"].contains(&other) => {
                    problems.push(format!("{at}.{other}: wrong type"));
                    ok = false;
                }
                (other, _) => problems.push(format!(
                    "{at}.{other}: unknown key (expected name, description, prompt, groups, file_regex, permission)"
                )),
            }
        }
        if !ok {
            continue;
        }
        match modes.iter_mut().find(|m| &m.slug == slug) {
            Some(existing) => *existing = mode,
            None => modes.push(mode),
        }
    }
    (modes, problems)
}

/// The mode used when a session's mode no longer exists: `ask` (read-only), so that a
/// broken config never widens what the agent may do.
pub fn fallback() -> Mode {
    builtin()
        .into_iter()
        .find(|m| m.slug == "ask")
        .expect("ask is built in")
}

pub fn find<'m>(modes: &'m [Mode], slug: &str) -> Option<&'m Mode> {
    modes.iter().find(|m| m.slug == slug)
}

/// "unknown mode x; the modes are code, architect, …".
pub fn unknown(modes: &[Mode], slug: &str) -> String {
    let names: Vec<&str> = modes.iter().map(|m| m.slug.as_str()).collect();
    format!("unknown mode {slug:?}; the modes are {}", names.join(", "))
}
