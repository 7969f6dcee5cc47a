//! The `kiln` binary: parses arguments and hands over to a frontend.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kiln::frontend::cli::Format;
use kiln::frontend::cli::diff::{ColorChoice, DiffCommand};
use kiln::frontend::cli::doctor::DoctorCommand;
use kiln::frontend::cli::models::ModelsCommand;
use kiln::frontend::lsp::{self, ServeOptions};

/// kiln: an AI coding agent backend that editors launch over stdio.
#[derive(Parser)]
#[command(name = "kiln", version, propagate_version = true)]
#[command(
    after_help = "Logging: KILN_LOG_LEVEL=debug (a tracing filter), --log-file or KILN_LOG=PATH.\nDocs: README.md and protocol/ in the kiln repository."
)]
struct Cli {
    /// Append logs to this file instead of stderr.
    #[arg(long, global = true, env = "KILN_LOG", value_name = "PATH")]
    log_file: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the Language Server Protocol over stdio (VS Code, Neovim, Helix, any LSP client).
    ///
    /// Speaks LSP 3.17 with Content-Length framing on stdin/stdout; logs go to stderr or
    /// --log-file. Editor set-up snippets are in the README.
    Lsp {
        /// Largest message accepted, in bytes; bigger ones are skipped with an error.
        #[arg(long, env = "KILN_MAX_MESSAGE_BYTES", default_value_t = lsp::DEFAULT_MAX_MESSAGE_BYTES)]
        max_message_bytes: usize,
    },
    /// Show the differences between two files as a unified diff, hunk by hunk.
    ///
    /// The output is what `git apply` accepts. Exit status: 0 when the files are the same,
    /// 1 when they differ, 2 on error (like diff and git diff --no-index).
    Diff {
        /// The old file.
        old: PathBuf,
        /// The new file.
        new: PathBuf,
        /// Output format: a unified diff, or the hunk model as JSON.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Colour the text output (auto: on a terminal, unless NO_COLOR is set).
        #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
        color: ColorChoice,
        /// Lines of context around each change.
        #[arg(short = 'U', long, default_value_t = 3, value_name = "N")]
        context: u32,
    },
    /// List the models kiln can use: built-in presets and kiln.jsonc, with limits and keys.
    ///
    /// A model is named `provider/model`, as "model" in kiln.jsonc and KILN_MODEL take it.
    /// Keys are never printed, only whether they are set. Exit status 1 when the
    /// configuration has errors.
    Models {
        /// Also ask each provider that has a key (or needs none) for its model list
        /// (`GET /models`); Ollama and LM Studio list what is installed.
        #[arg(long)]
        refresh: bool,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Check the set-up: config files and their problems, the model kiln would use, and
    /// whether each provider answers and accepts its key, with a next step for each failure.
    ///
    /// Exit status 0 when kiln is ready to work, 1 when not.
    Doctor {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Lsp { .. } => "info",
        Command::Diff { .. } | Command::Models { .. } | Command::Doctor { .. } => "warn",
    };
    if let Err(err) = kiln::logging::init(cli.log_file.as_deref(), default_level) {
        eprintln!("kiln: {err:#}");
        return ExitCode::from(2);
    }
    let code = match cli.command {
        Command::Lsp { max_message_bytes } => lsp::run_stdio(ServeOptions { max_message_bytes }),
        Command::Diff {
            old,
            new,
            format,
            color,
            context,
        } => kiln::frontend::cli::diff::run(DiffCommand {
            old,
            new,
            format,
            color,
            context,
        }),
        Command::Models { refresh, format } => {
            kiln::frontend::cli::models::run(ModelsCommand { refresh, format })
        }
        Command::Doctor { format } => kiln::frontend::cli::doctor::run(DoctorCommand { format }),
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
