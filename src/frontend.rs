//! The frontends: the only code that knows wire formats. `lsp` speaks LSP over stdio to
//! editors; `cli` serves people in a terminal. Each turns wire values into domain types
//! at its boundary and back.

pub mod acp;
pub mod cli;
pub mod host;
pub mod lsp;
pub mod permission;
pub mod prompt;
pub mod updates;
pub mod wire;
