//! What the editor frontends (`kiln lsp`, `kiln acp`) share: one agent per workspace root,
//! the live sessions, and the session methods both protocols expose (new, load, list,
//! prompt, cancel, mode, model, checkpoints). The frontends only translate wire shapes;
//! every decision is made here or in `agent`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::agent::checkpoint::{Checkpoint, Checkpoints, Restored};
use crate::agent::{
    Agent, NewSession, Policy, Port, Prompt, Session, SessionHandle, TurnResult, mode, replay,
    store,
};
use crate::config::{self, ModelRef, Severity};
use crate::frontend::cli::run::{find_session, pick_model};
use crate::llm::{Client, RetryPolicy, Target};

/// A session the host runs.
#[derive(Clone)]
struct Live {
    handle: SessionHandle,
    agent: Arc<Agent>,
    root: PathBuf,
    mode: String,
    model: String,
}

/// What opening a session (new or loaded) returns.
#[derive(Clone, Debug)]
pub struct Opened {
    pub session_id: String,
    pub modes: Modes,
    pub models: Models,
    /// Config and instruction problems to show the person (the session works regardless).
    pub problems: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Modes {
    pub current: String,
    /// (id, name, description)
    pub available: Vec<(String, String, String)>,
}

#[derive(Clone, Debug)]
pub struct Models {
    pub current: String,
    /// (`provider/model`, display name)
    pub available: Vec<(String, String)>,
}

#[derive(Clone, Debug)]
pub struct SessionSummary {
    pub session_id: String,
    pub cwd: PathBuf,
    pub title: String,
    pub updated_ms: u64,
}

pub struct Host {
    port: Arc<dyn Port>,
    client: Client,
    data_dir: Option<PathBuf>,
    agents: Mutex<HashMap<PathBuf, Arc<Agent>>>,
    sessions: Mutex<HashMap<String, Live>>,
}

impl Host {
    pub fn new(port: Arc<dyn Port>) -> Result<Host, String> {
        let client = Client::new(RetryPolicy::default())
            .map_err(|err| format!("cannot set up HTTP: {err:#}"))?;
        Ok(Host {
            port,
            client,
            data_dir: store::data_dir(),
            agents: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
        })
    }

    /// The agent for a workspace root, made on first use; the problems are those of a
    /// freshly read config (empty when the agent already existed).
    fn agent_for(&self, root: &Path) -> (Arc<Agent>, Vec<String>) {
        let mut agents = self.agents.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(agent) = agents.get(root) {
            return (agent.clone(), Vec::new());
        }
        let loaded = config::load_for(root);
        let mut problems: Vec<String> = loaded
            .diagnostics
            .iter()
            .map(|d| {
                let level = if d.severity == Severity::Error {
                    "error"
                } else {
                    "warning"
                };
                format!("config {level}: {d}")
            })
            .collect();
        let (mut agent, more) = Agent::new(loaded.config, self.client.clone(), self.port.clone());
        problems.extend(more.into_iter().map(|p| format!("config {p}")));
        agent.sessions_dir = self.data_dir.as_ref().map(|d| store::sessions_dir(d, root));
        agent.audit_dir = Some(root.join(".kiln/logs"));
        agent.global_dir = config::global_dir();
        agent.checkpoints_dir = self.data_dir.clone();
        let agent = Arc::new(agent);
        agents.insert(root.to_path_buf(), agent.clone());
        (agent, problems)
    }

    fn live(&self, session_id: &str) -> Result<Live, String> {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(session_id)
            .cloned()
            .ok_or_else(|| format!("there is no session {session_id} (create or load it first)"))
    }

    pub fn handle(&self, session_id: &str) -> Result<SessionHandle, String> {
        self.live(session_id).map(|l| l.handle)
    }

    pub fn root_of(&self, session_id: &str) -> Result<PathBuf, String> {
        self.live(session_id).map(|l| l.root)
    }

    pub async fn new_session(
        &self,
        cwd: &Path,
        mode: Option<&str>,
        model: Option<&str>,
    ) -> Result<Opened, String> {
        let root = canonical(cwd)?;
        let (agent, mut problems) = self.agent_for(&root);
        let target = pick_model(&self.client, &agent.config, model, None).await?;
        let mode = mode.unwrap_or(mode::DEFAULT_MODE).to_owned();
        if mode::find(&agent.modes, &mode).is_none() {
            return Err(mode::unknown(&agent.modes, &mode));
        }
        let new = new_session(&agent, &root, mode, target, &mut problems);
        let (session, more) = Session::create(&agent, new).map_err(|e| format!("{e:#}"))?;
        problems.extend(more);
        Ok(self.start(agent, session, problems))
    }

    /// Resumes a stored session; its history is sent to the port as updates before this
    /// returns (ACP's `session/load` contract).
    pub async fn load_session(&self, session_id: &str, cwd: &Path) -> Result<Opened, String> {
        let root = canonical(cwd)?;
        if let Ok(live) = self.live(session_id) {
            return Err(format!(
                "session {session_id} is already open (in {})",
                live.root.display()
            ));
        }
        let (agent, mut problems) = self.agent_for(&root);
        let dir = agent
            .sessions_dir
            .clone()
            .ok_or("no data directory to keep sessions in (set KILN_DATA_DIR)")?;
        let path = find_session(&dir, Some(session_id), &root)?;
        let mut loaded =
            store::load(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let target = pick_model(&self.client, &agent.config, None, loaded.model.as_deref()).await?;
        let mode = if mode::find(&agent.modes, &loaded.mode).is_some() {
            loaded.mode.clone()
        } else {
            mode::DEFAULT_MODE.to_owned()
        };
        let new = new_session(&agent, &root, mode, target, &mut problems);
        let history = std::mem::take(&mut loaded.history);
        let (session, more) =
            Session::resume(&agent, &path, loaded, new).map_err(|e| format!("{e:#}"))?;
        problems.extend(more);
        for update in replay::updates(&agent.registry, &root, &history) {
            self.port.update(&session.id, update);
        }
        Ok(self.start(agent, session, problems))
    }

    fn start(&self, agent: Arc<Agent>, session: Session, problems: Vec<String>) -> Opened {
        let opened = Opened {
            session_id: session.id.clone(),
            modes: modes(&agent, &session.mode),
            models: models(&agent, &session.target),
            problems,
        };
        let live = Live {
            root: session.root.clone(),
            mode: session.mode.clone(),
            model: session.target.model_ref().to_string(),
            handle: SessionHandle::spawn(agent.clone(), session),
            agent,
        };
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(opened.session_id.clone(), live);
        opened
    }

    /// The stored sessions of a workspace, newest first.
    pub fn list_sessions(&self, cwd: &Path) -> Result<Vec<SessionSummary>, String> {
        let root = canonical(cwd)?;
        let Some(data) = &self.data_dir else {
            return Ok(Vec::new());
        };
        let dir = store::sessions_dir(data, &root);
        Ok(store::list(&dir)
            .iter()
            .filter_map(|p| store::load(p).ok())
            .map(|l| SessionSummary {
                updated_ms: l
                    .modified
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64),
                session_id: l.id,
                cwd: l.cwd,
                title: l.title,
            })
            .collect())
    }

    pub async fn prompt(&self, session_id: &str, prompt: Prompt) -> Result<TurnResult, String> {
        let handle = self.handle(session_id)?;
        Ok(handle.prompt(prompt).await)
    }

    pub fn cancel(&self, session_id: &str) -> Result<(), String> {
        self.handle(session_id).map(|h| h.cancel())
    }

    pub async fn set_mode(&self, session_id: &str, mode: &str) -> Result<Modes, String> {
        let live = self.live(session_id)?;
        live.handle.set_mode(mode).await?;
        self.update_live(session_id, |l| l.mode = mode.to_owned());
        Ok(modes(&live.agent, mode))
    }

    pub async fn set_model(&self, session_id: &str, model: &str) -> Result<Models, String> {
        let live = self.live(session_id)?;
        let parsed = ModelRef::parse(model).ok_or_else(|| {
            format!("{model:?}: expected provider/model, e.g. anthropic/claude-sonnet-4-5")
        })?;
        let target = Target::from_config(&live.agent.config, &parsed).ok_or_else(|| {
            format!(
                "there is no provider {:?}; the providers are {}",
                parsed.provider,
                providers(&live.agent).join(", ")
            )
        })?;
        let listed = models(&live.agent, &target);
        live.handle.set_model(target).await?;
        self.update_live(session_id, |l| l.model = model.to_owned());
        Ok(listed)
    }

    /// The session's modes and models as they are now.
    pub fn state(&self, session_id: &str) -> Result<(Modes, Models), String> {
        let live = self.live(session_id)?;
        let parsed = ModelRef::parse(&live.model);
        let target = parsed.and_then(|m| Target::from_config(&live.agent.config, &m));
        let models = match target {
            Some(t) => models(&live.agent, &t),
            None => Models {
                current: live.model.clone(),
                available: Vec::new(),
            },
        };
        Ok((modes(&live.agent, &live.mode), models))
    }

    fn update_live(&self, session_id: &str, change: impl FnOnce(&mut Live)) {
        if let Some(live) = self
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(session_id)
        {
            change(live);
        }
    }

    fn checkpoints(&self, cwd: &Path) -> Result<Checkpoints, String> {
        let root = canonical(cwd)?;
        let data = self
            .data_dir
            .as_ref()
            .ok_or("no data directory for checkpoints (set KILN_DATA_DIR)")?;
        Checkpoints::open(data, &root).map_err(|e| e.to_string())
    }

    /// The workspace's checkpoints, newest first (blocking: runs git).
    pub fn list_checkpoints(&self, cwd: &Path) -> Result<Vec<Checkpoint>, String> {
        self.checkpoints(cwd)?.list().map_err(|e| e.to_string())
    }

    /// Undoes the agent's changes of the session's last turn, keeping the person's later
    /// edits; says what it did.
    pub async fn undo_last_turn(&self, session_id: &str) -> Result<String, String> {
        let root = self.root_of(session_id)?;
        let cp = self.checkpoints(&root)?;
        let id = session_id.to_owned();
        let r = tokio::task::spawn_blocking(move || cp.undo_last_turn(&id))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let mut text = format!(
            "Undid the last turn's changes: {} file(s) written, {} removed.",
            r.written.len(),
            r.removed.len()
        );
        if !r.conflicts.is_empty() {
            text.push_str(&format!(
                " Your later edits overlap the agent's in {}; those files keep your text.",
                r.conflicts.join(", ")
            ));
        }
        if let Some(before) = r.before {
            text.push_str(&format!(
                " To take this back: restore checkpoint {}.",
                crate::agent::checkpoint::short(&before)
            ));
        }
        Ok(text)
    }

    /// Restores a checkpoint (or one file of it); the restore is itself checkpointed.
    pub fn restore_checkpoint(
        &self,
        cwd: &Path,
        id: &str,
        file: Option<&str>,
        session_id: Option<&str>,
    ) -> Result<Restored, String> {
        self.checkpoints(cwd)?
            .restore(id, file, session_id)
            .map_err(|e| e.to_string())
    }
}

fn canonical(cwd: &Path) -> Result<PathBuf, String> {
    cwd.canonicalize()
        .map_err(|e| format!("cannot use {} as the workspace: {e}", cwd.display()))
}

fn new_session(
    agent: &Agent,
    root: &Path,
    mode: String,
    target: Target,
    problems: &mut Vec<String>,
) -> NewSession {
    let (policy, more) = Policy::from_config(&agent.config);
    problems.extend(more.into_iter().map(|p| format!("config {p}")));
    NewSession {
        root: root.to_path_buf(),
        mode,
        target,
        policy,
    }
}

fn modes(agent: &Agent, current: &str) -> Modes {
    Modes {
        current: current.to_owned(),
        available: agent
            .modes
            .iter()
            .map(|m| (m.slug.clone(), m.name.clone(), m.description.clone()))
            .collect(),
    }
}

fn providers(agent: &Agent) -> Vec<String> {
    agent.config.providers.keys().cloned().collect()
}

/// The models the person can switch to: those of providers that have their key (or need
/// none), plus the current one.
fn models(agent: &Agent, current: &Target) -> Models {
    let current_id = current.model_ref().to_string();
    let mut available: Vec<(String, String)> = agent
        .config
        .providers
        .values()
        .filter(|p| p.keyless || !matches!(p.key_source, config::KeySource::None))
        .flat_map(|p| {
            p.models
                .values()
                .map(move |m| (format!("{}/{}", p.id, m.id), m.name.clone()))
        })
        .collect();
    if !available.iter().any(|(id, _)| *id == current_id) {
        available.insert(0, (current_id.clone(), current.model.name.clone()));
    }
    Models {
        current: current_id,
        available,
    }
}
