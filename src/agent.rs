//! The agent: sessions, the turn loop, the permission policy, modes, instructions,
//! context mentions, compaction, persistence and the audit log.
//!
//! `agent` never sees JSON-RPC. Frontends implement [`Port`] (show an update, ask the
//! person, apply a change, read files as the editor sees them) and talk to a session
//! through its [`SessionHandle`]: one task owns each session's state, and prompts, mode
//! changes and cancellation reach it over channels.

pub mod apply;
pub mod audit;
pub mod checkpoint;
pub mod compaction;
pub mod instructions;
pub mod mentions;
pub mod mode;
pub mod policy;
pub mod proposal;
pub mod replay;
pub mod store;
mod turn;
pub mod update;
pub mod verify;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::llm::{Client, Message, Target, UserPart};
use crate::tools::{FileChange, Files, Limits, Registry};

pub use mentions::PromptContext;
pub use mode::Mode;
pub use policy::{Decision, Policy};
pub use update::Update;

/// How a turn ended, in ACP's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    EndTurn,
    MaxTokens,
    MaxTurnRequests,
    Refusal,
    Cancelled,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::EndTurn => "end_turn",
            StopReason::MaxTokens => "max_tokens",
            StopReason::MaxTurnRequests => "max_turn_requests",
            StopReason::Refusal => "refusal",
            StopReason::Cancelled => "cancelled",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TurnResult {
    /// `Err` when the provider failed (the message says what to do); what the model said
    /// before the failure is kept in the session.
    pub stop: Result<StopReason, String>,
    /// Set when a permission that could not be granted stopped the turn.
    pub denied: Option<String>,
    pub usage: TurnUsage,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TurnUsage {
    pub requests: u32,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub tool_calls: u32,
}

/// A permission question for the person.
#[derive(Clone, Debug)]
pub struct PermissionRequest {
    pub session_id: String,
    pub tool_call: update::ToolCall,
    /// The diff of a file change, or the command to run.
    pub content: Vec<update::ToolContent>,
    /// What is special about this call ("… is outside the workspace"), or empty.
    pub reason: String,
}

/// The person's answer, in ACP's four options, or why nobody could answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    AllowOnce,
    AllowAlways,
    /// `AllowAlways`, and written to the project's kiln.jsonc (kiln's own option).
    AllowAlwaysSave,
    /// Only these hunks of the proposed changes (ids from `proposal::diff_of`); the
    /// others are rejected, with optional feedback for the model.
    AcceptHunks {
        hunks: Vec<crate::text::diff::HunkId>,
        feedback: Option<String>,
    },
    RejectOnce {
        feedback: Option<String>,
    },
    RejectAlways {
        feedback: Option<String>,
    },
    /// The frontend has no one to ask (no terminal); the text says how to allow it.
    Unanswerable(String),
    Cancelled,
}

/// What a frontend does for the agent.
pub trait Port: Send + Sync + 'static {
    fn update(&self, session_id: &str, update: Update);
    fn request_permission(&self, request: PermissionRequest) -> BoxFuture<'static, Outcome>;
    /// Files as the person sees them (open buffers first), for a session's tools.
    fn files(&self, session_id: &str) -> Arc<dyn Files>;
    /// Applies a change the policy and the person allowed. The default writes the file
    /// atomically after checking it has not moved on; editor frontends route open
    /// buffers through the editor instead.
    fn apply_change(
        &self,
        _session_id: &str,
        change: FileChange,
        display: String,
    ) -> BoxFuture<'static, Result<(), String>> {
        Box::pin(apply::apply_to_disk_off_thread(change, display))
    }
}

/// What every session of a process shares.
pub struct Agent {
    pub config: Config,
    pub client: Client,
    pub registry: Registry,
    pub modes: Vec<Mode>,
    pub port: Arc<dyn Port>,
    pub limits: Limits,
    /// Model requests one prompt may make before it stops with `max_turn_requests`.
    pub max_turn_requests: u32,
    /// Where session files go; `None` keeps sessions in memory only.
    pub sessions_dir: Option<PathBuf>,
    /// Where the audit log goes; `None` writes none.
    pub audit_dir: Option<PathBuf>,
    /// The global config directory (for global rules).
    pub global_dir: Option<PathBuf>,
    /// Where checkpoint repositories live (the data directory); `None` takes none.
    pub checkpoints_dir: Option<PathBuf>,
    /// Blast-radius limits and check commands (the config's `verify`).
    pub verify: verify::Verify,
}

impl Agent {
    /// An agent with the built-in tools, the config's modes and `verify` settings, default
    /// limits, 50 requests a prompt, and no files (no sessions, audit log, global rules or
    /// checkpoints: callers set the directories they use). Also returns the problems found
    /// in the config's `mode` and `verify` sections.
    pub fn new(config: Config, client: Client, port: Arc<dyn Port>) -> (Agent, Vec<String>) {
        let (modes, mut problems) = mode::from_config(&config);
        let (verify, verify_problems) = verify::Verify::from_config(&config);
        problems.extend(verify_problems);
        let agent = Agent {
            config,
            client,
            registry: Registry::builtin(),
            modes,
            port,
            limits: Limits::default(),
            max_turn_requests: 50,
            sessions_dir: None,
            audit_dir: None,
            global_dir: None,
            checkpoints_dir: None,
            verify,
        };
        (agent, problems)
    }
}

/// A session's state; owned by its task.
pub struct Session {
    pub id: String,
    pub root: PathBuf,
    pub mode: String,
    pub target: Target,
    pub messages: Vec<Message>,
    pub policy: Policy,
    file: Option<store::SessionFile>,
    audit: audit::AuditLog,
    instructions: Vec<instructions::Instruction>,
    loaded_instructions: BTreeSet<PathBuf>,
    /// Context size the provider last reported, and the message count at that time.
    last_context: Option<(u64, usize)>,
    /// The workspace's shadow repository, when checkpoints work here.
    checkpoints: Option<Arc<checkpoint::Checkpoints>>,
    /// A checkpoint was taken before this turn's first change.
    turn_checkpointed: bool,
    /// The newest checkpoint taken (what undoes the next change).
    last_checkpoint: Option<String>,
    /// What this turn has changed, for the turn limits.
    turn_changes: verify::TurnChanges,
}

#[derive(Clone, Debug)]
pub struct NewSession {
    pub root: PathBuf,
    pub mode: String,
    pub target: Target,
    pub policy: Policy,
}

impl Session {
    /// A new session; its file is created when sessions are persisted.
    pub fn create(agent: &Agent, new: NewSession) -> anyhow::Result<(Session, Vec<String>)> {
        let id = store::new_id();
        let file = match &agent.sessions_dir {
            Some(dir) => {
                let mut file = store::SessionFile::create(dir, &id).map_err(|e| {
                    anyhow::anyhow!("cannot create the session file in {}: {e}", dir.display())
                })?;
                file.append(&store::Record::Session {
                    id: id.clone(),
                    cwd: new.root.clone(),
                    created_ms: store::now_ms(),
                    mode: new.mode.clone(),
                    model: Some(new.target.model_ref().to_string()),
                })?;
                Some(file)
            }
            None => None,
        };
        Ok(Session::assemble(agent, id, new, Vec::new(), file))
    }

    /// A stored session, to go on with: `loaded` is what `store::load(path)` read (the
    /// caller has read it already, for the session's model and mode).
    pub fn resume(
        agent: &Agent,
        path: &std::path::Path,
        loaded: store::Loaded,
        new: NewSession,
    ) -> anyhow::Result<(Session, Vec<String>)> {
        let file = store::SessionFile::open_append(path)
            .map_err(|e| anyhow::anyhow!("cannot append to {}: {e}", path.display()))?;
        let (mut session, mut problems) =
            Session::assemble(agent, loaded.id.clone(), new, loaded.messages, Some(file));
        if loaded.n_skipped > 0 {
            problems.push(format!(
                "{} damaged line(s) in {} were skipped (an interrupted write)",
                loaded.n_skipped,
                path.display()
            ));
        }
        for message in &loaded.unrecorded {
            session.persist(&store::Record::Message {
                message: message.into(),
            });
        }
        session.persist(&store::Record::Mode {
            mode: session.mode.clone(),
        });
        session.persist(&store::Record::Model {
            model: session.target.model_ref().to_string(),
        });
        Ok((session, problems))
    }

    fn assemble(
        agent: &Agent,
        id: String,
        new: NewSession,
        messages: Vec<Message>,
        file: Option<store::SessionFile>,
    ) -> (Session, Vec<String>) {
        let (instructions, mut problems) =
            instructions::collect(&new.root, agent.global_dir.as_deref(), &agent.config);
        let checkpoints = match &agent.checkpoints_dir {
            Some(dir) => match checkpoint::Checkpoints::open(dir, &new.root) {
                Ok(cp) => Some(Arc::new(cp)),
                Err(err) => {
                    problems.push(format!("{err}; changes cannot be rolled back"));
                    None
                }
            },
            None => None,
        };
        let loaded_instructions = instructions.iter().map(|i| i.path.clone()).collect();
        let session = Session {
            audit: audit::AuditLog::new(agent.audit_dir.clone(), &id),
            id,
            root: new.root,
            mode: new.mode,
            target: new.target,
            messages,
            policy: new.policy,
            file,
            instructions,
            loaded_instructions,
            last_context: None,
            checkpoints,
            turn_checkpointed: false,
            last_checkpoint: None,
            turn_changes: verify::TurnChanges::default(),
        };
        (session, problems)
    }

    pub fn file_path(&self) -> Option<&std::path::Path> {
        self.file.as_ref().map(|f| f.path())
    }

    /// Appends a record to the session file; a failure is logged and the work goes on.
    fn persist(&mut self, record: &store::Record) {
        if let Some(file) = &mut self.file
            && let Err(err) = file.append(record)
        {
            tracing::error!(
                "cannot write the session file {}: {err}",
                file.path().display()
            );
        }
    }

    fn push_message(&mut self, message: Message) {
        self.persist(&store::Record::Message {
            message: (&message).into(),
        });
        self.messages.push(message);
    }

    pub fn set_mode(&mut self, agent: &Agent, slug: &str) -> Result<(), String> {
        if mode::find(&agent.modes, slug).is_none() {
            return Err(mode::unknown(&agent.modes, slug));
        }
        self.mode = slug.to_owned();
        self.persist(&store::Record::Mode {
            mode: slug.to_owned(),
        });
        agent
            .port
            .update(&self.id, Update::CurrentMode(slug.to_owned()));
        Ok(())
    }
}

impl Session {
    pub fn set_model(&mut self, target: Target) {
        self.persist(&store::Record::Model {
            model: target.model_ref().to_string(),
        });
        self.target = target;
        // The new model's window may differ: measure afresh.
        self.last_context = None;
    }
}

/// A prompt as the frontend received it.
#[derive(Clone, Debug, Default)]
pub struct Prompt {
    pub text: String,
    /// Extra blocks (attached files, images).
    pub attachments: Vec<UserPart>,
    pub context: PromptContext,
}

enum Command {
    Prompt {
        prompt: Prompt,
        reply: oneshot::Sender<TurnResult>,
    },
    SetMode {
        mode: String,
        reply: oneshot::Sender<Result<(), String>>,
    },
    SetModel {
        target: Box<Target>,
        reply: oneshot::Sender<()>,
    },
}

/// How frontends reach a session's task.
#[derive(Clone)]
pub struct SessionHandle {
    pub id: String,
    tx: mpsc::Sender<Command>,
    cancel: Arc<Mutex<CancellationToken>>,
}

impl SessionHandle {
    /// Starts the task that owns `session`.
    pub fn spawn(agent: Arc<Agent>, mut session: Session) -> SessionHandle {
        let (tx, mut rx) = mpsc::channel::<Command>(16);
        let cancel = Arc::new(Mutex::new(CancellationToken::new()));
        let handle = SessionHandle {
            id: session.id.clone(),
            tx,
            cancel: cancel.clone(),
        };
        tokio::spawn(async move {
            while let Some(command) = rx.recv().await {
                match command {
                    Command::Prompt { prompt, reply } => {
                        let token = {
                            let mut slot = cancel.lock().unwrap_or_else(|e| e.into_inner());
                            if slot.is_cancelled() {
                                *slot = CancellationToken::new();
                            }
                            slot.clone()
                        };
                        let result = turn::run(&agent, &mut session, prompt, token).await;
                        let _ = reply.send(result);
                    }
                    Command::SetMode { mode, reply } => {
                        let _ = reply.send(session.set_mode(&agent, &mode));
                    }
                    Command::SetModel { target, reply } => {
                        session.set_model(*target);
                        let _ = reply.send(());
                    }
                }
            }
        });
        handle
    }

    /// Runs one prompt to the end of its turn.
    pub async fn prompt(&self, prompt: Prompt) -> TurnResult {
        let (reply, rx) = oneshot::channel();
        let gone = TurnResult {
            stop: Err("the session has ended".to_owned()),
            denied: None,
            usage: TurnUsage::default(),
        };
        if self
            .tx
            .send(Command::Prompt { prompt, reply })
            .await
            .is_err()
        {
            return gone;
        }
        rx.await.unwrap_or(gone)
    }

    pub async fn set_mode(&self, mode: &str) -> Result<(), String> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::SetMode {
                mode: mode.to_owned(),
                reply,
            })
            .await
            .map_err(|_| "the session has ended".to_owned())?;
        rx.await
            .unwrap_or_else(|_| Err("the session has ended".to_owned()))
    }

    /// Switches the model from the next request on.
    pub async fn set_model(&self, target: Target) -> Result<(), String> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::SetModel {
                target: Box::new(target),
                reply,
            })
            .await
            .map_err(|_| "the session has ended".to_owned())?;
        rx.await.map_err(|_| "the session has ended".to_owned())
    }

    /// Cancels the turn in progress (the stream, a running command, a pending question).
    pub fn cancel(&self) {
        self.cancel
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .cancel();
    }
}
