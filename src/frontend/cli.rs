//! Terminal commands. Output that a script may parse has a `--format json` form whose
//! shapes are documented in `protocol/`.

pub mod checkpoints;
pub mod diff;
pub mod doctor;
pub mod models;
pub mod run;
pub mod sessions;
pub mod stats;
pub mod tool;

use std::path::PathBuf;

/// Output format of the terminal commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// The workspace a terminal command works on: the current directory.
fn workspace_dir() -> PathBuf {
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
}

/// A small runtime for commands that do network IO.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// The key state of a provider in words and as a JSON tag; never the key itself.
fn key_state(provider: &crate::config::Provider) -> (&'static str, String) {
    use crate::config::KeySource;
    match &provider.key_source {
        KeySource::Env(var) => ("present", format!("${var}")),
        KeySource::Config(origin) => ("present", format!("set at {origin}")),
        KeySource::None if provider.keyless => ("not_needed", "no key needed".to_owned()),
        KeySource::None => (
            "missing",
            match provider.key_env.first() {
                Some(var) => format!("${var} not set"),
                None => "no key".to_owned(),
            },
        ),
    }
}
