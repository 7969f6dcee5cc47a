//! kiln: an AI coding agent backend that editors launch over stdio.
//!
//! Layers depend only downwards: `text` (pure) → `workspace` (buffers over disk) →
//! `frontend` (wire protocols); `config` (layered settings) and `llm` (providers) sit
//! beside them. `logging` sets up tracing for the binary. See ARCHITECTURE.md for the map
//! and the invariants.

pub mod agent;
pub mod config;
pub mod frontend;
pub mod llm;
pub mod logging;
pub mod text;
pub mod tools;
pub mod workspace;
