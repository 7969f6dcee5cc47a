//! Terminal commands. Output that a script may parse has a `--format json` form whose
//! shapes are documented in `protocol/`.

pub mod diff;
