//! kiln's integration tests: one test binary (fast to link), one module per feature.

mod support;

mod agent_lib;
mod agent_run;
mod checkpoints;
mod cli_diff;
mod cli_models;
mod config_layers;
mod diff_props;
mod editor_agents;
mod llm_client;
mod llm_decode;
mod lsp_lifecycle;
mod lsp_malformed;
mod lsp_sync;
mod lsp_watch;
mod proposal_race;
mod real_clients;
mod rope_random;
mod tools;
