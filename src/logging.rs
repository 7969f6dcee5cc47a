//! Logging setup. Logs go to stderr or to a file, never to stdout: in `kiln lsp` stdout
//! carries protocol messages only.
//!
//! `KILN_LOG_LEVEL` takes a tracing filter (`debug`, `kiln=trace,info`, …); `--log-file` or
//! `KILN_LOG` names a file to append to instead of stderr.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;

use anyhow::Context as _;
use tracing_subscriber::EnvFilter;

pub const LEVEL_ENV: &str = "KILN_LOG_LEVEL";

/// Installs the global subscriber. `default_level` applies when `KILN_LOG_LEVEL` is unset.
pub fn init(log_file: Option<&Path>, default_level: &str) -> anyhow::Result<()> {
    let (filter, bad_filter) = match std::env::var(LEVEL_ENV) {
        Ok(value) => match EnvFilter::try_new(&value) {
            Ok(filter) => (filter, None),
            Err(err) => (
                EnvFilter::new(default_level),
                Some(format!(
                    "{LEVEL_ENV}={value:?} is not a valid filter ({err}); using {default_level}"
                )),
            ),
        },
        Err(_) => (EnvFilter::new(default_level), None),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match log_file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open the log file {}", path.display()))?;
            builder
                .with_ansi(false)
                .with_writer(Mutex::new(file))
                .init();
        }
        None => builder
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .init(),
    }
    if let Some(message) = bad_filter {
        tracing::warn!("{message}");
    }
    Ok(())
}
