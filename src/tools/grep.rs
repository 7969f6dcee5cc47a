//! `grep`: a regex search over the workspace with ripgrep's crates (`ignore` for the
//! `.gitignore`-aware parallel walk, `grep-regex` + `grep-searcher` for the search).
//! Results are sorted by path so that they do not depend on thread timing.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::future::BoxFuture;
use grep_regex::RegexMatcherBuilder;
use grep_searcher::{BinaryDetection, Searcher, SearcherBuilder, Sink, SinkContext, SinkMatch};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Describe, Group, Kind, Output, Tool, ToolCx, blocking};

/// Search file contents with a regular expression (Rust regex syntax, like ripgrep).
/// Skips `.gitignore`d and binary files. Returns `path:line:text` for matches and
/// `path-line-text` for context lines, sorted by path.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The regular expression.
    pub pattern: String,
    /// A directory or file to search (default: the workspace root).
    #[serde(default)]
    pub path: Option<String>,
    /// Only files whose name matches this glob, e.g. `*.rs` or `*.{ts,tsx}`.
    #[serde(default)]
    pub include: Option<String>,
    /// Lines of context before and after each match (default 0).
    #[serde(default)]
    pub context: Option<usize>,
    /// Match case-insensitively.
    #[serde(default)]
    pub case_insensitive: bool,
}

pub struct GrepTool;

impl Tool for GrepTool {
    type Input = Input;
    const NAME: &'static str = "grep";
    const KIND: Kind = Kind::Search;
    const GROUP: Group = Group::Read;

    fn describe(&self, input: &Input, cx: &ToolCx) -> Describe {
        let dir = cx.resolve(input.path.as_deref().unwrap_or("."));
        Describe::read(
            format!("Search {:?} in {}", input.pattern, cx.display(&dir)),
            dir,
            None,
        )
    }

    fn run(&self, input: Input, cx: ToolCx) -> BoxFuture<'static, Result<Output, String>> {
        blocking(move || {
            let root = cx.resolve(input.path.as_deref().unwrap_or("."));
            let options = SearchOptions {
                pattern: input.pattern,
                include: input.include,
                context: input.context.unwrap_or(0).min(20),
                case_insensitive: input.case_insensitive,
                max_matches: cx.limits.grep_matches,
            };
            if !root.exists() {
                return Err(format!("path not found: {}", cx.display(&root)));
            }
            let result = search(&root, &options, &cx.cancel)?;
            Ok(Output::text(render(&cx, &root, &result, &options)))
        })
    }
}

pub struct SearchOptions {
    pub pattern: String,
    pub include: Option<String>,
    pub context: usize,
    pub case_insensitive: bool,
    pub max_matches: usize,
}

/// Matches per file, sorted by path.
pub struct SearchResult {
    pub files: Vec<(PathBuf, Vec<Line>)>,
    pub n_matches: usize,
}

#[derive(Debug)]
pub struct Line {
    pub number: u64,
    pub is_match: bool,
    pub text: String,
    /// A `--` separator goes before this line.
    pub break_before: bool,
}

/// Searches `root` (a directory or one file, which exists) in parallel.
pub fn search(
    root: &Path,
    options: &SearchOptions,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<SearchResult, String> {
    let matcher = RegexMatcherBuilder::new()
        .case_insensitive(options.case_insensitive)
        .line_terminator(Some(b'\n'))
        .build(&options.pattern)
        .map_err(|e| format!("invalid regex {:?}: {e}", options.pattern))?;
    let include = match &options.include {
        Some(glob) => Some(
            globset::Glob::new(glob)
                .map_err(|e| format!("invalid include glob {glob:?}: {e}"))?
                .compile_matcher(),
        ),
        None => None,
    };
    let files: Mutex<Vec<(PathBuf, Vec<Line>)>> = Mutex::new(Vec::new());
    let n_matches = AtomicUsize::new(0);
    // Each thread searches more than the cap needs only until the cap is far exceeded;
    // the final cut happens after sorting so that the result is deterministic.
    let stop_at = options.max_matches.saturating_mul(4).max(1000);
    super::list::walker(root).build_parallel().run(|| {
        let matcher = matcher.clone();
        let include = include.clone();
        let files = &files;
        let n_matches = &n_matches;
        let mut searcher = SearcherBuilder::new()
            .binary_detection(BinaryDetection::quit(b'\x00'))
            .line_number(true)
            .before_context(options.context)
            .after_context(options.context)
            .build();
        Box::new(move |entry| {
            use ignore::WalkState;
            if cancel.is_cancelled() || n_matches.load(Ordering::Relaxed) > stop_at {
                return WalkState::Quit;
            }
            let Ok(entry) = entry else {
                return WalkState::Continue;
            };
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                return WalkState::Continue;
            }
            // A search never shows what `.env` or a key file holds (reading one asks first).
            if crate::workspace::paths::is_secret(entry.path()) {
                return WalkState::Continue;
            }
            if let Some(include) = &include
                && !entry
                    .path()
                    .file_name()
                    .is_some_and(|n| include.is_match(n))
            {
                return WalkState::Continue;
            }
            let mut sink = Collect::default();
            if searcher
                .search_path(&matcher, entry.path(), &mut sink)
                .is_ok()
                && sink.n_matches > 0
            {
                n_matches.fetch_add(sink.n_matches, Ordering::Relaxed);
                if let Ok(mut files) = files.lock() {
                    files.push((entry.path().to_path_buf(), sink.lines));
                }
            }
            WalkState::Continue
        })
    });
    if cancel.is_cancelled() {
        return Err("cancelled".to_owned());
    }
    let mut files = files.into_inner().unwrap_or_default();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let n_matches = files
        .iter()
        .map(|(_, lines)| lines.iter().filter(|l| l.is_match).count())
        .sum();
    Ok(SearchResult { files, n_matches })
}

#[derive(Default)]
struct Collect {
    lines: Vec<Line>,
    n_matches: usize,
    pending_break: bool,
}

impl Collect {
    fn push(&mut self, number: Option<u64>, bytes: &[u8], is_match: bool) {
        let text = String::from_utf8_lossy(bytes);
        let text = text.trim_end_matches(['\n', '\r']);
        self.lines.push(Line {
            number: number.unwrap_or(0),
            is_match,
            text: text.to_owned(),
            break_before: std::mem::take(&mut self.pending_break),
        });
    }
}

impl Sink for Collect {
    type Error = std::io::Error;

    fn matched(&mut self, _: &Searcher, mat: &SinkMatch<'_>) -> Result<bool, std::io::Error> {
        // A multi-line match is reported as its lines.
        for (i, line) in mat.lines().enumerate() {
            self.push(mat.line_number().map(|n| n + i as u64), line, true);
        }
        self.n_matches += 1;
        Ok(true)
    }

    fn context(&mut self, _: &Searcher, ctx: &SinkContext<'_>) -> Result<bool, std::io::Error> {
        self.push(ctx.line_number(), ctx.bytes(), false);
        Ok(true)
    }

    fn context_break(&mut self, _: &Searcher) -> Result<bool, std::io::Error> {
        self.pending_break = true;
        Ok(true)
    }
}

/// Longest line shown in results.
const MAX_LINE: usize = 500;

fn render(cx: &ToolCx, root: &Path, result: &SearchResult, options: &SearchOptions) -> String {
    if result.files.is_empty() {
        return format!(
            "no matches for {:?} in {}",
            options.pattern,
            cx.display(root)
        );
    }
    let mut out = String::new();
    let mut shown = 0usize;
    'files: for (i, (path, lines)) in result.files.iter().enumerate() {
        let name = cx.display(path);
        if i > 0 && options.context > 0 {
            out.push_str("--\n");
        }
        for line in lines {
            if line.is_match {
                if shown == options.max_matches {
                    break 'files;
                }
                shown += 1;
            }
            if line.break_before {
                out.push_str("--\n");
            }
            let sep = if line.is_match { ':' } else { '-' };
            let mut text = line.text.as_str();
            let mut cut = "";
            if text.len() > MAX_LINE {
                let mut at = MAX_LINE;
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                text = &text[..at];
                cut = "…";
            }
            out.push_str(&format!("{name}{sep}{}{sep}{text}{cut}\n", line.number));
        }
        if out.len() > cx.limits.max_output_bytes {
            break;
        }
    }
    let out = super::truncate_middle(&out, cx.limits.max_output_bytes);
    if shown < result.n_matches {
        format!(
            "{out}[showing {shown} of {} matches in {} files; narrow the pattern or path]\n",
            result.n_matches,
            result.files.len()
        )
    } else {
        out
    }
}
