//! Prompts on the wire: ACP content blocks (the `prompt` of `session/prompt` and
//! `kiln/prompt`) and kiln's `context` object, as the agent's [`Prompt`].

use std::path::{Path, PathBuf};

use lsp_types::Url;
use serde_json::Value;

use crate::agent::mentions::{Problem, Selection};
use crate::agent::{Prompt, PromptContext};
use crate::llm::UserPart;

/// Text blocks make the prompt text; a `resource_link` to a file becomes an `@path`
/// mention (read when the turn starts, from the open buffer if there is one); embedded
/// resources and images are attachments.
pub fn from_blocks(blocks: &Value, context: Option<&Value>, root: &Path) -> Result<Prompt, String> {
    let blocks = blocks
        .as_array()
        .ok_or("prompt must be an array of content blocks")?;
    let mut prompt = Prompt::default();
    let mut texts: Vec<String> = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        match block["type"].as_str() {
            Some("text") => texts.push(
                block["text"]
                    .as_str()
                    .ok_or(format!("prompt[{i}]: a text block needs \"text\""))?
                    .to_owned(),
            ),
            Some("resource_link") => {
                let uri = block["uri"]
                    .as_str()
                    .ok_or(format!("prompt[{i}]: a resource_link needs \"uri\""))?;
                texts.push(format!("@{}", mention_path(uri, root)));
            }
            Some("resource") => {
                let resource = &block["resource"];
                let uri = resource["uri"].as_str().unwrap_or("resource");
                match resource["text"].as_str() {
                    Some(text) => prompt.attachments.push(UserPart::Text(format!(
                        "<file path=\"{}\">\n{text}\n</file>",
                        mention_path(uri, root)
                    ))),
                    None => {
                        return Err(format!(
                            "prompt[{i}]: {uri} is a binary resource; kiln takes text resources and images"
                        ));
                    }
                }
            }
            Some("image") => prompt.attachments.push(UserPart::Image {
                media_type: block["mimeType"].as_str().unwrap_or("image/png").to_owned(),
                data: block["data"]
                    .as_str()
                    .ok_or(format!("prompt[{i}]: an image block needs \"data\""))?
                    .to_owned(),
            }),
            Some(other) => {
                return Err(format!(
                    "prompt[{i}]: kiln does not take {other:?} blocks (text, resource_link, resource and image)"
                ));
            }
            None => return Err(format!("prompt[{i}] has no \"type\"")),
        }
    }
    prompt.text = texts.join("\n");
    if prompt.text.trim().is_empty() && prompt.attachments.is_empty() {
        return Err("the prompt is empty".to_owned());
    }
    if let Some(context) = context {
        prompt.context = parse_context(context, root)?;
    }
    Ok(prompt)
}

/// A workspace-relative path for file URIs inside the root, else the URI's path.
fn mention_path(uri: &str, root: &Path) -> String {
    let path = Url::parse(uri)
        .ok()
        .filter(|u| u.scheme() == "file")
        .and_then(|u| u.to_file_path().ok())
        .unwrap_or_else(|| PathBuf::from(uri));
    path.strip_prefix(root)
        .unwrap_or(&path)
        .display()
        .to_string()
}

fn path_of(value: &Value, root: &Path) -> Option<PathBuf> {
    let text = value["uri"].as_str().or(value["path"].as_str())?;
    Some(root.join(mention_path(text, root)))
}

/// `context`: `{ selection?: {uri|path, startLine, endLine, text}, problems?: [{uri|path,
/// line, severity, message}], terminal?: string }`; lines are one-based.
fn parse_context(context: &Value, root: &Path) -> Result<PromptContext, String> {
    let mut out = PromptContext::default();
    let sel = &context["selection"];
    if !sel.is_null() {
        let line = |key: &str| {
            sel[key].as_u64().map(|n| n as u32).ok_or(format!(
                "context.selection.{key} must be a line number (one-based)"
            ))
        };
        out.selection = Some(Selection {
            path: path_of(sel, root).ok_or("context.selection needs \"uri\" or \"path\"")?,
            start_line: line("startLine")?,
            end_line: line("endLine")?,
            text: sel["text"].as_str().unwrap_or_default().to_owned(),
        });
    }
    if let Some(problems) = context["problems"].as_array() {
        for (i, p) in problems.iter().enumerate() {
            out.problems.push(Problem {
                path: path_of(p, root)
                    .ok_or(format!("context.problems[{i}] needs \"uri\" or \"path\""))?,
                line: p["line"].as_u64().unwrap_or(1) as u32,
                severity: p["severity"].as_str().unwrap_or("error").to_owned(),
                message: p["message"].as_str().unwrap_or_default().to_owned(),
            });
        }
    }
    out.terminal = context["terminal"].as_str().map(str::to_owned);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn blocks_become_text_mentions_and_attachments() {
        let root = Path::new("/w");
        let p = from_blocks(
            &json!([
                { "type": "text", "text": "fix" },
                { "type": "resource_link", "uri": "file:///w/src/a.rs", "name": "a.rs" },
                { "type": "resource", "resource": { "uri": "file:///w/b.txt", "text": "B" } },
            ]),
            Some(&json!({ "selection": { "path": "src/a.rs", "startLine": 2, "endLine": 3, "text": "x" } })),
            root,
        )
        .unwrap();
        assert_eq!(p.text, "fix\n@src/a.rs");
        assert_eq!(
            p.attachments,
            vec![UserPart::Text("<file path=\"b.txt\">\nB\n</file>".into())]
        );
        let sel = p.context.selection.unwrap();
        assert_eq!(
            (sel.path, sel.start_line),
            (PathBuf::from("/w/src/a.rs"), 2)
        );
        assert!(from_blocks(&json!([{ "type": "audio" }]), None, root).is_err());
        assert!(from_blocks(&json!([]), None, root).is_err());
        assert!(from_blocks(&json!("text"), None, root).is_err());
    }
}
