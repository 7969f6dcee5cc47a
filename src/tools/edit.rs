//! `edit`: exact replacement of one piece of text. When the text is not found, the result
//! shows the region of the file that comes closest, so that the model can retry with the
//! real text instead of guessing again.

use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Describe, FileChange, Group, Kind, Output, Tool, ToolCx, blocking};

/// Replace exact text in a file. `old_string` must appear exactly once (include enough
/// surrounding lines to make it unique) unless `replace_all` is set. Read the file first:
/// whitespace and indentation must match.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The file, relative to the workspace root.
    pub path: String,
    /// The exact text to replace.
    pub old_string: String,
    /// The text to put in its place.
    pub new_string: String,
    /// Replace every occurrence instead of requiring exactly one.
    #[serde(default)]
    pub replace_all: bool,
}

pub struct EditTool;

impl Tool for EditTool {
    type Input = Input;
    const NAME: &'static str = "edit";
    const KIND: Kind = Kind::Edit;
    const GROUP: Group = Group::Edit;

    fn describe(&self, input: &Input, cx: &ToolCx) -> Describe {
        let path = cx.resolve(&input.path);
        Describe::edit(format!("Edit {}", cx.display(&path)), path)
    }

    fn run(&self, input: Input, cx: ToolCx) -> BoxFuture<'static, Result<Output, String>> {
        blocking(move || {
            let path = cx.resolve(&input.path);
            let name = cx.display(&path);
            if input.old_string.is_empty() {
                return Err(
                    "old_string is empty; use write to create a file or replace all of it"
                        .to_owned(),
                );
            }
            if input.old_string == input.new_string {
                return Err("old_string and new_string are the same; nothing to do".to_owned());
            }
            let read = cx.files.read(&path).map_err(|e| cx.read_error(&e))?;
            let new_text = replace(&read.text, &input, &name)?;
            let n = if input.replace_all {
                count(
                    &read.text,
                    &line_endings_like(&read.text, &input.old_string),
                )
            } else {
                1
            };
            Ok(Output {
                text: format!(
                    "edited {name}: {n} replacement{}",
                    if n == 1 { "" } else { "s" }
                ),
                changes: vec![FileChange {
                    path,
                    base: Some(read.identity),
                    old_text: Some(read.text),
                    new_text: Some(new_text),
                }],
                ..Output::default()
            })
        })
    }
}

/// The file's text with the replacement made, or a message for the model.
pub fn replace(text: &str, input: &Input, name: &str) -> Result<String, String> {
    let old = line_endings_like(text, &input.old_string);
    let new = line_endings_like(text, &input.new_string);
    match count(text, &old) {
        0 => Err(not_found(text, &input.old_string, name)),
        1 => Ok(text.replacen(&old, &new, 1)),
        n if input.replace_all => {
            debug_assert!(n > 1);
            Ok(text.replace(&old, &new))
        }
        n => {
            let lines: Vec<String> = text
                .match_indices(old.as_str())
                .map(|(at, _)| (text[..at].matches('\n').count() + 1).to_string())
                .collect();
            Err(format!(
                "old_string appears {n} times in {name} (starting at lines {}); include more surrounding lines to make it unique, or set replace_all",
                lines.join(", ")
            ))
        }
    }
}

fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

/// `s` with `\r\n` line endings when `text` uses them (models write `\n`).
fn line_endings_like(text: &str, s: &str) -> String {
    if text.contains("\r\n") && !s.contains("\r\n") {
        s.replace('\n', "\r\n")
    } else {
        s.to_owned()
    }
}

/// Says the text was not found and shows the closest region with line numbers.
fn not_found(text: &str, old: &str, name: &str) -> String {
    let file_lines: Vec<&str> = text.lines().collect();
    let old_lines: Vec<&str> = old.lines().collect();
    let mut msg = format!("old_string was not found in {name}.");
    let Some((start, score)) = closest(&file_lines, &old_lines) else {
        msg.push_str(" Read the file and copy the exact text.");
        return msg;
    };
    let n = old_lines.len().max(1);
    let from = start.saturating_sub(2);
    let to = (start + n + 2).min(file_lines.len());
    let region: String = file_lines[from..to]
        .iter()
        .enumerate()
        .map(|(i, l)| format!("{:>5}│{l}\n", from + i + 1))
        .collect();
    let (a, b) = (start + 1, start + n);
    let hint = if score >= 0.999 {
        format!("It matches at lines {a}-{b} except for whitespace or indentation:")
    } else {
        format!("The closest text is at lines {a}-{b}:")
    };
    msg.push_str(&format!(
        " {hint}\n{region}Copy the exact text (without the line numbers) and try again."
    ));
    msg
}

/// The start line of the window most like `old` and its similarity (0..=1), comparing
/// lines with surrounding whitespace trimmed.
fn closest(file: &[&str], old: &[&str]) -> Option<(usize, f64)> {
    if file.is_empty() || old.is_empty() {
        return None;
    }
    let n = old.len().min(file.len());
    let mut best: Option<(usize, f64)> = None;
    for start in 0..=(file.len() - n) {
        let score: f64 = (0..n)
            .map(|i| similarity(file[start + i].trim(), old[i].trim()))
            .sum::<f64>()
            / old.len() as f64;
        if best.is_none_or(|(_, b)| score > b) {
            best = Some((start, score));
        }
    }
    best.filter(|(_, score)| *score > 0.3)
}

/// 1 − normalised edit distance over chars (bounded work for long lines).
fn similarity(a: &str, b: &str) -> f64 {
    if a == b {
        return 1.0;
    }
    let a: Vec<char> = a.chars().take(200).collect();
    let b: Vec<char> = b.chars().take(200).collect();
    let longest = a.len().max(b.len());
    if longest == 0 {
        return 1.0;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    1.0 - prev[b.len()] as f64 / longest as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(old: &str, new: &str, all: bool) -> Input {
        Input {
            path: "f".into(),
            old_string: old.into(),
            new_string: new.into(),
            replace_all: all,
        }
    }

    #[test]
    fn replaces_once_keeping_crlf() {
        let text = "a\r\nb\r\nc\r\n";
        assert_eq!(
            replace(text, &input("b\nc", "B\nC", false), "f").unwrap(),
            "a\r\nB\r\nC\r\n"
        );
    }

    #[test]
    fn ambiguous_and_missing_text_explain_themselves() {
        let text = "x = 1\ny = 2\nx = 1\n";
        let err = replace(text, &input("x = 1", "x = 3", false), "f").unwrap_err();
        assert!(
            err.contains("appears 2 times") && err.contains("lines 1, 3"),
            "{err}"
        );
        assert_eq!(
            replace(text, &input("x = 1", "x = 3", true), "f").unwrap(),
            "x = 3\ny = 2\nx = 3\n"
        );
        let text = "fn main() {\n    let value = 1;\n    println!(\"{value}\");\n}\n";
        let err = replace(
            text,
            &input("let value = 1;\nprintln!(\"{value}\");", "", false),
            "f",
        )
        .unwrap_err();
        assert!(
            err.contains("except for whitespace") && err.contains("lines 2-3"),
            "{err}"
        );
    }
}
