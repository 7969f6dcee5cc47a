//! `todo`: the model's plan for the task, shown to the person (ACP `plan`).

use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Action, Describe, Group, Kind, Output, Tool, ToolCx};

/// Keep a todo list for multi-step tasks: send the whole list each time, with each item's
/// status. Mark an item in_progress before starting it and completed right after.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    pub todos: Vec<Item>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// What to do, in a few words.
    pub content: String,
    pub status: Status,
    #[serde(default)]
    pub priority: Priority,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    InProgress,
    Completed,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    High,
    #[default]
    Medium,
    Low,
}

pub struct TodoTool;

impl Tool for TodoTool {
    type Input = Input;
    const NAME: &'static str = "todo";
    const KIND: Kind = Kind::Think;
    const GROUP: Group = Group::Always;

    fn describe(&self, input: &Input, _cx: &ToolCx) -> Describe {
        let done = input
            .todos
            .iter()
            .filter(|t| t.status == Status::Completed)
            .count();
        Describe {
            title: format!("Plan: {done}/{} done", input.todos.len()),
            locations: Vec::new(),
            action: Action::Note,
        }
    }

    fn run(&self, input: Input, _cx: ToolCx) -> BoxFuture<'static, Result<Output, String>> {
        Box::pin(async move {
            let open = input
                .todos
                .iter()
                .filter(|t| t.status != Status::Completed)
                .count();
            Ok(Output {
                text: format!(
                    "todo list updated: {} items, {open} open",
                    input.todos.len()
                ),
                plan: Some(input.todos),
                ..Output::default()
            })
        })
    }
}
