//! The agent's [`Port`] over LSP: updates as `kiln/sessionUpdate` notifications,
//! questions as `kiln/requestPermission` (for clients that declared
//! `experimental.kiln.permissionRequests`) or `window/showMessageRequest`, reads from the
//! open buffers, and changes to open buffers through the editor with a versioned
//! `workspace/applyEdit`, so the editor stays the owner of its buffers and its undo works.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_lsp::ClientSocket;
use futures::future::BoxFuture;
use lsp_types::{
    ApplyWorkspaceEditParams, DocumentChanges, OneOf, OptionalVersionedTextDocumentIdentifier,
    TextDocumentEdit, TextEdit, Url, WorkspaceEdit,
};
use ropey::Rope;
use serde_json::{Value, json};

use super::plain::Plain;
use super::shared::SharedWorkspace;
use crate::agent::{Outcome, PermissionRequest, Port, Update, apply, proposal};
use crate::frontend::{permission, updates};
use crate::text::PositionEncoding;
use crate::text::position::{CharIdx, to_position};
use crate::tools::{FileChange, Files};
use crate::workspace::{DocKey, Identity, ReadError, ReadResult, read_disk};

pub const SESSION_UPDATE: &str = "kiln/sessionUpdate";
pub const REQUEST_PERMISSION: &str = "kiln/requestPermission";

/// How long kiln waits for the editor's `didChange` after it applied an edit, so the next
/// read sees the new text.
const ECHO_WAIT: Duration = Duration::from_secs(2);

pub enum SessionUpdateNotification {}
impl lsp_types::notification::Notification for SessionUpdateNotification {
    type Params = Value;
    const METHOD: &'static str = SESSION_UPDATE;
}

pub enum RequestPermission {}
impl lsp_types::request::Request for RequestPermission {
    type Params = Value;
    type Result = Value;
    const METHOD: &'static str = REQUEST_PERMISSION;
}

/// What the client said it can do, from `initialize`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientAbilities {
    /// `experimental.kiln.permissionRequests`.
    pub permission_requests: bool,
    /// Declared `experimental.kiln` (a kiln plugin): gets `kiln/sessionUpdate`.
    pub kiln_client: bool,
    /// `workspace.applyEdit` with versioned `documentChanges`.
    pub apply_edit: bool,
    pub encoding: PositionEncoding,
}

pub struct LspPort {
    pub client: ClientSocket,
    pub workspace: SharedWorkspace,
    pub abilities: ClientAbilities,
    /// What clients with no kiln plugin see.
    pub plain: Arc<Plain>,
}

/// Open buffers first, then the disk; the lock is held only to copy the rope.
pub struct BufferFiles(pub SharedWorkspace);

impl Files for BufferFiles {
    fn read(&self, path: &Path) -> Result<ReadResult, ReadError> {
        match self.0.buffer(path) {
            Some((rope, version)) => Ok(ReadResult {
                text: rope.to_string(),
                identity: Identity::Buffer { version },
            }),
            None => read_disk(path),
        }
    }
}

impl Port for LspPort {
    fn update(&self, session_id: &str, update: Update) {
        if self.plain.is_plain_session(session_id) {
            self.plain.render(session_id, &update);
        }
        if !self.abilities.kiln_client {
            return;
        }
        let params = json!({ "sessionId": session_id, "update": updates::for_editor(&update) });
        if self
            .client
            .notify::<SessionUpdateNotification>(params)
            .is_err()
        {
            tracing::debug!("the client is gone; an update was dropped");
        }
    }

    fn request_permission(&self, request: PermissionRequest) -> BoxFuture<'static, Outcome> {
        let client = self.client.clone();
        if self.abilities.permission_requests {
            let params = permission::request(&request);
            return Box::pin(async move {
                match client.request::<RequestPermission>(params).await {
                    Ok(answer) => permission::outcome(&answer),
                    Err(err) => Outcome::Unanswerable(format!(
                        "the editor did not answer the permission request ({err})"
                    )),
                }
            });
        }
        self.plain.ask(request)
    }

    fn files(&self, _session_id: &str) -> Arc<dyn Files> {
        Arc::new(BufferFiles(self.workspace.clone()))
    }

    fn apply_change(
        &self,
        _session_id: &str,
        change: FileChange,
        display: String,
    ) -> BoxFuture<'static, Result<(), String>> {
        let open = self.workspace.buffer(&change.path);
        match (open, &change.new_text) {
            (Some((rope, version)), Some(new_text)) if self.abilities.apply_edit => {
                let new_text = new_text.clone();
                let client = self.client.clone();
                let workspace = self.workspace.clone();
                let encoding = self.abilities.encoding;
                Box::pin(async move {
                    apply::check_base(change.base, Some(Identity::Buffer { version }), &display)?;
                    apply_through_editor(
                        client,
                        workspace,
                        &change.path,
                        &rope,
                        version,
                        &new_text,
                        encoding,
                        &display,
                    )
                    .await
                })
            }
            (Some((_, version)), _) => {
                // No applyEdit (or a deletion): the disk is changed only if the buffer is
                // what the change was computed from.
                Box::pin(async move {
                    apply::check_base(change.base, Some(Identity::Buffer { version }), &display)?;
                    apply::off_thread(move || apply::write_change(&change, &display)).await
                })
            }
            (None, _) => Box::pin(apply::apply_to_disk_off_thread(change, display)),
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn apply_through_editor(
    client: ClientSocket,
    workspace: SharedWorkspace,
    path: &Path,
    old: &Rope,
    version: i32,
    new_text: &str,
    encoding: PositionEncoding,
    display: &str,
) -> Result<(), String> {
    let edits = text_edits(old, new_text, encoding);
    match edit_open_document(
        &client,
        &workspace,
        path,
        version,
        edits,
        &format!("kiln: edit {display}"),
    )
    .await
    .map_err(|err| format!("the editor could not apply the edit to {display}: {err}"))?
    {
        Edited::Applied => Ok(()),
        Edited::Refused(reason) => Err(format!(
            "the editor did not apply the edit to {display} ({}); nothing was changed. Read it again and redo the change",
            reason.unwrap_or_else(|| "it changed since it was read".into())
        )),
    }
}

/// What the editor did with a versioned edit.
pub enum Edited {
    /// Applied, and kiln has the editor's `didChange` for it (or waited long enough).
    Applied,
    /// Refused (the buffer moved on since `version`), with the editor's reason.
    Refused(Option<String>),
}

/// Sends `edits` of the open document `path` at `version` as a `workspace/applyEdit` with
/// versioned `documentChanges`, so the editor refuses it if the person typed since. When
/// applied, waits for the editor's `didChange`, so the next read sees the edit.
pub async fn edit_open_document(
    client: &ClientSocket,
    workspace: &SharedWorkspace,
    path: &Path,
    version: i32,
    edits: Vec<TextEdit>,
    label: &str,
) -> Result<Edited, String> {
    let uri = Url::from_file_path(path).map_err(|()| "the file has no file: URI".to_owned())?;
    let params = ApplyWorkspaceEditParams {
        label: Some(label.to_owned()),
        edit: WorkspaceEdit {
            document_changes: Some(DocumentChanges::Edits(vec![TextDocumentEdit {
                text_document: OptionalVersionedTextDocumentIdentifier {
                    uri,
                    version: Some(version),
                },
                edits: edits.into_iter().map(OneOf::Left).collect(),
            }])),
            ..WorkspaceEdit::default()
        },
    };
    let answer = client
        .request::<lsp_types::request::ApplyWorkspaceEdit>(params)
        .await
        .map_err(|err| err.to_string())?;
    if !answer.applied {
        return Ok(Edited::Refused(answer.failure_reason));
    }
    workspace
        .wait_for(ECHO_WAIT, |ws| {
            ws.document(&DocKey::path(path))
                .is_none_or(|d| d.version() != version)
        })
        .await;
    Ok(Edited::Applied)
}

/// The edits that turn `old` into `new`, trimmed to what changes; one whole-document edit
/// if the diff cannot be turned into edits.
pub fn text_edits(old: &Rope, new: &str, encoding: PositionEncoding) -> Vec<TextEdit> {
    let old_text = old.to_string();
    let diff = proposal::diff_of(Some(&old_text), Some(new));
    let all: Vec<_> = diff.hunks.iter().map(|h| h.id).collect();
    match crate::text::diff::text_edits(&old_text, &diff, &all, encoding) {
        Ok(edits) => edits
            .into_iter()
            .map(|e| TextEdit {
                range: lsp_types::Range::new(
                    lsp_types::Position::new(e.range.start.line, e.range.start.character),
                    lsp_types::Position::new(e.range.end.line, e.range.end.character),
                ),
                new_text: e.new_text,
            })
            .collect(),
        Err(err) => {
            tracing::warn!("whole-document edit instead of hunks: {err}");
            vec![TextEdit {
                range: lsp_range(old, 0, old.len_chars(), encoding),
                new_text: new.to_owned(),
            }]
        }
    }
}

fn lsp_range(rope: &Rope, start: usize, end: usize, enc: PositionEncoding) -> lsp_types::Range {
    let pos = |idx| {
        let p = to_position(rope, CharIdx(idx), enc);
        lsp_types::Position::new(p.line, p.character)
    };
    lsp_types::Range::new(pos(start), pos(end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(old: &str, edits: &[TextEdit], enc: PositionEncoding) -> String {
        let mut rope = Rope::from_str(old);
        for e in edits.iter().rev() {
            let r = crate::frontend::lsp::convert::range(e.range);
            let (s, t) = crate::text::position::to_char_range(&rope, r, enc);
            rope.remove(s.0..t.0);
            rope.insert(s.0, &e.new_text);
        }
        rope.to_string()
    }

    #[test]
    fn edits_reproduce_the_new_text_in_every_encoding() {
        let cases = [
            ("a\nb\nc\n", "a\nB\nc\n"),
            ("a\nb\nc", "a\nb\nc\nd"),
            ("", "new\n"),
            ("x\r\ny\r\n", "x\r\nz\r\n"),
            ("héllo 😀\nwörld\n", "héllo 😀\nwörld!\nmore\n"),
            (
                "one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\nten\n",
                "one\n2\nthree\nfour\nfive\nsix\nseven\neight\nnine\n10\n",
            ),
            ("lone\rcr\n", "lone\rCR\n"),
        ];
        for enc in [
            PositionEncoding::Utf8,
            PositionEncoding::Utf16,
            PositionEncoding::Utf32,
        ] {
            for (old, new) in cases {
                let edits = text_edits(&Rope::from_str(old), new, enc);
                assert_eq!(apply(old, &edits, enc), new, "{old:?} → {new:?} in {enc:?}");
            }
        }
        let many = text_edits(
            &Rope::from_str("one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\nten\n"),
            "one\n2\nthree\nfour\nfive\nsix\nseven\neight\nnine\n10\n",
            PositionEncoding::Utf16,
        );
        assert_eq!(many.len(), 2, "one edit per hunk: {many:?}");
    }
}
