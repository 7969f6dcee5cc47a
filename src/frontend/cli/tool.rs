//! `kiln tool NAME [JSON]`: runs one tool the way the model would call it and prints what
//! the model would read. File changes are shown as diffs and never applied. `--list`
//! prints every tool with its description and input schema (what the model is sent).

use std::path::PathBuf;

use serde_json::{Value, json};

use super::Format;
use super::run::{EXIT_ERROR, EXIT_OK, workspace_root};
use crate::text::diff::{Diff, DiffOptions, RenderOptions, render_unified};
use crate::tools::{Registry, ToolCx};

pub struct ToolCommand {
    pub name: Option<String>,
    pub input: Option<String>,
    pub list: bool,
    pub dir: Option<PathBuf>,
    pub format: Format,
}

pub fn run(cmd: ToolCommand) -> i32 {
    let registry = Registry::builtin();
    if cmd.list || cmd.name.is_none() {
        let tools: Vec<Value> = registry
            .iter()
            .map(|t| {
                json!({
                    "name": t.name(),
                    "kind": t.kind().as_str(),
                    "group": t.group().as_str(),
                    "description": t.description(),
                    "inputSchema": t.schema(),
                })
            })
            .collect();
        match cmd.format {
            Format::Json => println!("{}", json!({ "tools": tools })),
            Format::Text => {
                for t in registry.iter() {
                    println!(
                        "{} ({}, {} group)\n  {}\n",
                        t.name(),
                        t.kind().as_str(),
                        t.group().as_str(),
                        t.description().replace('\n', "\n  ")
                    );
                }
            }
        }
        return EXIT_OK;
    }
    let name = cmd.name.unwrap_or_default();
    let Some(tool) = registry.get(&name) else {
        let names: Vec<&str> = registry.iter().map(|t| t.name()).collect();
        eprintln!("kiln: no tool {name:?}; the tools are {}", names.join(", "));
        return EXIT_ERROR;
    };
    let root = match workspace_root(cmd.dir.as_deref()) {
        Ok(r) => r,
        Err(err) => {
            eprintln!("kiln: {err}");
            return EXIT_ERROR;
        }
    };
    let input: Value = match serde_json::from_str(cmd.input.as_deref().unwrap_or("{}")) {
        Ok(v) => v,
        Err(err) => {
            eprintln!("kiln: the input is not JSON: {err}");
            return EXIT_ERROR;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("kiln: {err}");
            return EXIT_ERROR;
        }
    };
    let cx = ToolCx::on_disk(root.clone());
    let result = runtime.block_on(tool.run(input, cx));
    match result {
        Ok(out) => {
            let mut text = out.text.clone();
            for change in &out.changes {
                let name = crate::tools::display_path(&root, &change.path);
                let diff = Diff::new(
                    change.old_text.as_deref().unwrap_or(""),
                    change.new_text.as_deref().unwrap_or(""),
                    DiffOptions::default(),
                );
                text.push('\n');
                text.push_str(&render_unified(
                    &diff,
                    &RenderOptions {
                        old_path: &name,
                        new_path: &name,
                        color: false,
                    },
                ));
            }
            if !out.changes.is_empty() {
                text.push_str("(not applied: kiln tool only shows changes)\n");
            }
            match cmd.format {
                Format::Json => println!(
                    "{}",
                    json!({ "ok": !out.is_error, "text": out.text, "exitCode": out.exit_code, "changes": out.changes.len() })
                ),
                Format::Text => print!("{}{}", text, if text.ends_with('\n') { "" } else { "\n" }),
            }
            if out.is_error { EXIT_ERROR } else { EXIT_OK }
        }
        Err(err) => {
            match cmd.format {
                Format::Json => println!("{}", json!({ "ok": false, "error": err })),
                Format::Text => eprintln!("kiln: {name}: {err}"),
            }
            EXIT_ERROR
        }
    }
}
