//! A fixed environment for config loading. Shared with the benches, which include this
//! file by path.

#![allow(dead_code)]

/// A fixed environment for config loading: no process variables leak into tests.
pub struct MapEnv {
    vars: std::collections::HashMap<String, String>,
    home: Option<std::path::PathBuf>,
}

impl MapEnv {
    pub fn new(vars: &[(&str, &str)]) -> MapEnv {
        MapEnv {
            vars: vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            home: None,
        }
    }

    pub fn with_home(mut self, home: &std::path::Path) -> MapEnv {
        self.home = Some(home.to_path_buf());
        self
    }
}

impl kiln::config::Env for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }

    fn home(&self) -> Option<std::path::PathBuf> {
        self.home.clone()
    }
}
