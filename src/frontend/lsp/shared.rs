//! The workspace overlay as the LSP server shares it with the agent's port: a lock for the
//! buffers, and a signal when the editor changed them, so the port can wait for the
//! `didChange` that follows an edit it applied (instead of polling).

use std::path::Path;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use ropey::Rope;
use tokio::sync::Notify;

use crate::workspace::{DocKey, Workspace};

#[derive(Clone, Default)]
pub struct SharedWorkspace(Arc<Inner>);

#[derive(Default)]
struct Inner {
    workspace: RwLock<Workspace>,
    changed: Notify,
}

impl SharedWorkspace {
    /// Held only for in-memory work, never across IO or an await.
    pub fn read(&self) -> RwLockReadGuard<'_, Workspace> {
        self.0.workspace.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn write(&self) -> RwLockWriteGuard<'_, Workspace> {
        self.0.workspace.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes whoever waits in [`SharedWorkspace::wait_for`]; the server calls it after each
    /// notification from the editor.
    pub fn changed(&self) {
        self.0.changed.notify_waiters();
    }

    /// The open buffer for `path`: its text (a cheap rope clone) and version.
    pub fn buffer(&self, path: &Path) -> Option<(Rope, i32)> {
        self.read()
            .document(&DocKey::path(path))
            .map(|d| (d.rope().clone(), d.version()))
    }

    /// Waits until `done` holds for the workspace, or `limit` passes; says which.
    pub async fn wait_for(&self, limit: Duration, done: impl Fn(&Workspace) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.0.changed.notified();
            tokio::pin!(notified);
            // Registered before the check, so a change between the two is not missed.
            notified.as_mut().enable();
            if done(&self.read()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return done(&self.read());
            }
        }
    }
}
