//! `kiln lsp`: the Language Server Protocol frontend over stdio.
//!
//! Data flow: the client's bytes → [`framing::pump`] (frames, validates, answers what it
//! cannot accept) → async-lsp's `MainLoop` (in-order notifications, concurrent requests,
//! `$/cancelRequest`) → [`server::Server`] (the state) → a [`framing::ChannelWriter`] → one
//! writer task that owns the output. Only protocol messages ever reach the output; logs go
//! to stderr or the log file.

mod convert;
pub mod framing;
mod plain;
mod port;
mod server;
mod session;
mod shared;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_lsp::MainLoop;
use async_lsp::concurrency::ConcurrencyLayer;
use async_lsp::panic::CatchUnwindLayer;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::compat::TokioAsyncReadCompatExt;
use tower::Layer;

pub use framing::DEFAULT_MAX_MESSAGE_BYTES;

/// How many requests may run at once before the main loop stops reading (which would also
/// hold back notifications). Requests are cheap tasks, so this is generous.
const MAX_CONCURRENT_REQUESTS: usize = 4096;

#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub max_message_bytes: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

/// Serves one client over `input`/`output` until `exit` or end of input. Returns the process
/// exit code LSP prescribes: 0 when `exit` followed `shutdown`, 1 otherwise.
pub async fn serve(
    input: impl AsyncRead + Unpin + Send + 'static,
    output: impl AsyncWrite + Unpin + Send + 'static,
    options: ServeOptions,
) -> i32 {
    let (out_tx, out_rx) = tokio::sync::mpsc::unbounded_channel();
    let writer = tokio::spawn(framing::write_out(out_rx, output));
    // Small buffers between the stages keep the queue in front of a request short.
    let (to_main_loop, main_loop_input) = tokio::io::duplex(8 << 10);
    let pump = tokio::spawn(framing::pump(
        input,
        to_main_loop,
        out_tx.clone(),
        options.max_message_bytes,
    ));

    let shutdown_requested = Arc::new(AtomicBool::new(false));
    let (main_loop, _client) = MainLoop::new_server(|client| {
        let server = server::Server::new(client, shutdown_requested.clone());
        let max = std::num::NonZeroUsize::new(MAX_CONCURRENT_REQUESTS).expect("non-zero");
        ConcurrencyLayer::new(max).layer(CatchUnwindLayer::default().layer(server))
    });
    let result = main_loop
        .run_buffered(
            main_loop_input.compat(),
            framing::ChannelWriter::new(out_tx),
        )
        .await;
    pump.abort();
    let _ = pump.await;
    let _ = writer.await;

    let exited_cleanly = result.is_ok();
    match result {
        Ok(()) => tracing::info!("exit notification received"),
        Err(async_lsp::Error::Eof) => tracing::info!("the client closed the connection"),
        Err(err) => tracing::error!("the LSP main loop stopped: {err}"),
    }
    if exited_cleanly && shutdown_requested.load(Ordering::SeqCst) {
        0
    } else {
        1
    }
}

/// Serves over the process's stdin/stdout; returns the exit code.
pub fn run_stdio(options: ServeOptions) -> i32 {
    super::serve_stdio(serve(tokio::io::stdin(), tokio::io::stdout(), options))
}
