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

/// Runs a stdio server to its end on a two-thread runtime; returns its exit code.
pub fn serve_stdio(server: impl std::future::Future<Output = i32>) -> i32 {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            tracing::error!("cannot start the async runtime: {err}");
            return 1;
        }
    };
    let code = runtime.block_on(server);
    // Stdin is read on a blocking thread that may never return; do not wait for it.
    runtime.shutdown_background();
    code
}
