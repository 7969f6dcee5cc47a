//! The `kiln` binary: parses arguments and hands over to a frontend.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kiln::frontend::cli::Format;
use kiln::frontend::cli::checkpoints::{CheckpointsAction, CheckpointsCommand};
use kiln::frontend::cli::diff::{ColorChoice, DiffCommand};
use kiln::frontend::cli::doctor::DoctorCommand;
use kiln::frontend::cli::models::ModelsCommand;
use kiln::frontend::cli::run::RunCommand;
use kiln::frontend::cli::sessions::{SessionsAction, SessionsCommand};
use kiln::frontend::cli::stats::StatsCommand;
use kiln::frontend::cli::tool::ToolCommand;
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
    /// Run the agent on one task in the terminal (or CI) and print what it does.
    ///
    /// The answer goes to stdout, tool activity to stderr (--format json: one JSON object
    /// per line on stdout). Edits and commands need approval: kiln asks on the terminal;
    /// with --auto they are allowed inside the workspace; with neither (no terminal) they
    /// are denied. Exit status: 0 done, 1 error, 2 a denied permission stopped the task,
    /// 130 cancelled (Ctrl-C cancels cleanly, a second Ctrl-C quits).
    ///
    /// Examples:
    ///   kiln run "explain src/main.rs"
    ///   kiln run --auto "fix the failing test in @tests/parse.rs"
    ///   kiln run --continue "now add a test for the empty case"
    ///   git diff | kiln run --mode ask -f - "review this change"
    #[command(verbatim_doc_comment)]
    Run {
        #[command(flatten)]
        task: TaskArgs,
    },
    /// Run a task, then a test command: pass keeps the changes, fail rolls the workspace
    /// back to where it was before the loop (exit status 1).
    ///
    /// Edits and commands inside the workspace need --auto or permission rules (there is
    /// usually nobody to ask in CI). With --retries N, a failing test's output goes back to
    /// the model up to N times before kiln gives up and rolls back.
    ///
    /// Example: kiln loop --auto --test "cargo test" --retries 2 "make the parser accept empty input"
    Loop {
        #[command(flatten)]
        task: TaskArgs,
        /// The command (sh -c, in the workspace) whose exit status decides.
        #[arg(long, value_name = "CMD")]
        test: String,
        /// Times a failure is fed back to the model before rolling back.
        #[arg(long, default_value_t = 0, value_name = "N")]
        retries: u32,
    },
    /// List, show, export or delete the sessions stored for this workspace.
    Sessions {
        #[command(subcommand)]
        action: SessionsCli,
        /// The workspace root (default: the current directory).
        #[arg(short = 'C', long, value_name = "DIR", global = true)]
        dir: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Text, global = true)]
        format: Format,
    },
    /// Run one tool as the model would and print what the model would read.
    ///
    /// Changes are shown as diffs and never applied. Without a name (or with --list),
    /// lists every tool with its description and input schema.
    ///
    /// Example: kiln tool grep '{"pattern": "fn main", "context": 2}'
    Tool {
        /// read, list, glob, grep, edit, write, apply_patch, bash, todo.
        name: Option<String>,
        /// The input as JSON (default {}).
        input: Option<String>,
        #[arg(long)]
        list: bool,
        /// The workspace root (default: the current directory).
        #[arg(short = 'C', long, value_name = "DIR")]
        dir: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// List, show, restore or undo checkpoints of the workspace.
    ///
    /// kiln takes a checkpoint before the agent's first change of a turn and after each
    /// change, in a shadow git repository under the data directory (your own .git is never
    /// touched; works without git in the workspace). Restores are all-or-nothing and are
    /// themselves checkpointed, so they can be taken back.
    Checkpoints {
        #[command(subcommand)]
        action: CheckpointsCli,
        /// The workspace root (default: the current directory).
        #[arg(short = 'C', long, value_name = "DIR", global = true)]
        dir: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Text, global = true)]
        format: Format,
    },
    /// Summarise the audit log: turns, tool calls by tool, approvals and denials, tokens.
    Stats {
        /// The workspace root (default: the current directory).
        #[arg(short = 'C', long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// The audit log directory (default .kiln/logs in the workspace).
        #[arg(long, value_name = "DIR")]
        log_dir: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Serve the Language Server Protocol over stdio (VS Code, Neovim, Helix, any LSP client).
    ///
    /// Speaks LSP 3.17 with Content-Length framing on stdin/stdout; logs go to stderr or
    /// --log-file. Editor set-up snippets are in the README.
    Lsp {
        /// Largest message accepted, in bytes; bigger ones are skipped with an error.
        #[arg(long, env = "KILN_MAX_MESSAGE_BYTES", default_value_t = lsp::DEFAULT_MAX_MESSAGE_BYTES)]
        max_message_bytes: usize,
    },
    /// Serve the Agent Client Protocol v1 over stdio (Zed, JetBrains, Neovim ACP plugins).
    ///
    /// Newline-delimited JSON-RPC on stdin/stdout; logs go to stderr or --log-file. The
    /// model is found as for `kiln run`. See protocol/acp.md and the README for set-up.
    Acp,
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

#[derive(clap::Args)]
struct TaskArgs {
    /// The task; read from stdin when absent. Mentions: @path, @folder/, @git-changes.
    prompt: Option<String>,
    /// provider/model (default: config "model", else the first provider with a key,
    /// else a local Ollama or LM Studio).
    #[arg(short, long)]
    model: Option<String>,
    /// code (default), architect, ask, debug, or a mode from kiln.jsonc.
    #[arg(long)]
    mode: Option<String>,
    /// The workspace root (default: the current directory).
    #[arg(short = 'C', long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Allow edits and commands inside the workspace without asking (outside: denied).
    #[arg(long)]
    auto: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Go on with the latest session of this workspace.
    #[arg(short, long = "continue", conflicts_with = "session")]
    continue_last: bool,
    /// Go on with this session (an id or its unique start; `kiln sessions list`).
    #[arg(short, long, value_name = "ID")]
    session: Option<String>,
    /// Attach a file (text, or an image for models that take images); `-` reads
    /// standard input. Repeatable.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Where the audit log goes (default .kiln/logs in the workspace; "none" for none).
    #[arg(long, value_name = "DIR")]
    log_dir: Option<PathBuf>,
    /// Model requests one prompt may make before it stops (max_turn_requests).
    #[arg(
        long,
        env = "KILN_MAX_REQUESTS",
        default_value_t = 50,
        value_name = "N"
    )]
    max_requests: u32,
}

#[derive(Subcommand)]
enum CheckpointsCli {
    /// Every checkpoint, newest first.
    List,
    /// What changed from a checkpoint to the workspace now.
    Diff {
        id: String,
        #[arg(long)]
        file: Option<String>,
    },
    /// Put the workspace (or one file or folder) back as it was at a checkpoint: files the
    /// agent created are removed, deleted ones come back.
    Restore {
        id: String,
        #[arg(long)]
        file: Option<String>,
    },
    /// Take back only the agent's changes since a checkpoint, keeping your own later edits
    /// (a three-way merge per file; overlaps keep your text and are reported, exit 1).
    Undo { id: String },
}

#[derive(Subcommand)]
enum SessionsCli {
    /// Every session of the workspace, newest first.
    List,
    /// A session's conversation (tool results shortened).
    Show { id: String },
    /// A session in full: Markdown, or with --format json every stored record.
    Export { id: String },
    /// Delete a session's file.
    Delete { id: String },
}

impl TaskArgs {
    fn into_command(self, test: Option<String>, retries: u32) -> RunCommand {
        RunCommand {
            prompt: self.prompt,
            model: self.model,
            mode: self.mode,
            dir: self.dir,
            auto: self.auto,
            format: self.format,
            continue_last: self.continue_last,
            session: self.session,
            files: self.files,
            log_dir: self.log_dir,
            max_requests: self.max_requests,
            test,
            retries,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Lsp { .. } | Command::Acp => "info",
        _ => "warn",
    };
    if let Err(err) = kiln::logging::init(cli.log_file.as_deref(), default_level) {
        eprintln!("kiln: {err:#}");
        return ExitCode::from(2);
    }
    let code = match cli.command {
        Command::Lsp { max_message_bytes } => lsp::run_stdio(ServeOptions { max_message_bytes }),
        Command::Acp => kiln::frontend::acp::run_stdio(),
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
        Command::Run { task } => kiln::frontend::cli::run::run(task.into_command(None, 0)),
        Command::Loop {
            task,
            test,
            retries,
        } => kiln::frontend::cli::run::run(task.into_command(Some(test), retries)),
        Command::Checkpoints {
            action,
            dir,
            format,
        } => {
            let action = match action {
                CheckpointsCli::List => CheckpointsAction::List,
                CheckpointsCli::Diff { id, file } => CheckpointsAction::Diff { id, file },
                CheckpointsCli::Restore { id, file } => CheckpointsAction::Restore { id, file },
                CheckpointsCli::Undo { id } => CheckpointsAction::Undo { id },
            };
            kiln::frontend::cli::checkpoints::run(CheckpointsCommand {
                action,
                dir,
                format,
            })
        }
        Command::Sessions {
            action,
            dir,
            format,
        } => {
            let action = match action {
                SessionsCli::List => SessionsAction::List,
                SessionsCli::Show { id } => SessionsAction::Show(id),
                SessionsCli::Export { id } => SessionsAction::Export(id),
                SessionsCli::Delete { id } => SessionsAction::Delete(id),
            };
            kiln::frontend::cli::sessions::run(SessionsCommand {
                action,
                dir,
                format,
            })
        }
        Command::Tool {
            name,
            input,
            list,
            dir,
            format,
        } => kiln::frontend::cli::tool::run(ToolCommand {
            name,
            input,
            list,
            dir,
            format,
        }),
        Command::Stats {
            dir,
            log_dir,
            format,
        } => kiln::frontend::cli::stats::run(StatsCommand {
            dir,
            log_dir,
            format,
        }),
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
