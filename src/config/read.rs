//! Reads the merged tree into typed [`Config`], reporting every problem with its place.
//! A value with a problem is skipped: the built-in default stays in effect.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::tree::{self, Env, Node, Origin, SourceName, Str, Value, join_key};
use super::{
    Api, Compaction, Config, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, Diagnostic, KeySource, Limit,
    ModelInfo, ModelRef, PRESETS, Preset, Provider, Secret, Severity, SourceInfo,
};

const TOP_KEYS: &[&str] = &[
    "$schema",
    "model",
    "small_model",
    "provider",
    "enabled_providers",
    "disabled_providers",
    "compaction",
    "permission",
    "mode",
    "mcp",
    "instructions",
    "verify",
];
/// Sections other parts of kiln interpret; kept as JSON here.
const SECTIONS: &[&str] = &["permission", "mode", "mcp", "instructions", "verify"];
const PROVIDER_KEYS: &[&str] = &["type", "name", "options", "models"];
const OPTION_KEYS: &[&str] = &[
    "baseURL",
    "apiKey",
    "headers",
    "timeout_ms",
    "max_retries",
    "max_completion_tokens",
];
const MODEL_KEYS: &[&str] = &[
    "name",
    "tool_call",
    "reasoning",
    "temperature",
    "attachment",
    "limit",
];
const LIMIT_KEYS: &[&str] = &["context", "input", "output"];
const API_NAMES: &str = "\"openai-compatible\" or \"anthropic\"";

/// The provider `KILN_ENDPOINT` defines.
pub const ENV_PROVIDER: &str = "custom";

/// `KILN_MODEL`, `KILN_ENDPOINT` and `KILN_API_KEY` as one more layer.
pub fn env_overrides(env: &dyn Env, sources: &mut Vec<SourceInfo>) -> Option<Node> {
    let at = |var: &'static str| Origin {
        source: Arc::new(SourceName::Env(var)),
        line: 1,
    };
    let string = |text: String, var: &'static str, whole_env_var: bool| Node {
        value: Value::Str(Str {
            text,
            whole_env_var: whole_env_var.then(|| var.to_owned()),
        }),
        origin: at(var),
    };
    let object = |entries: Vec<(String, Node)>, var: &'static str| Node {
        value: Value::Object(entries),
        origin: at(var),
    };
    let model = env.var("KILN_MODEL").filter(|v| !v.is_empty());
    let endpoint = env.var("KILN_ENDPOINT").filter(|v| !v.is_empty());
    if model.is_none() && endpoint.is_none() {
        return None;
    }
    let mut entries = Vec::new();
    if let Some(endpoint) = endpoint {
        sources.push(SourceInfo {
            name: SourceName::Env("KILN_ENDPOINT"),
            found: true,
        });
        let mut options = vec![(
            "baseURL".to_owned(),
            string(endpoint, "KILN_ENDPOINT", false),
        )];
        if let Some(key) = env.var("KILN_API_KEY").filter(|v| !v.is_empty()) {
            options.push(("apiKey".to_owned(), string(key, "KILN_API_KEY", true)));
        }
        let provider = object(
            vec![
                (
                    "type".to_owned(),
                    string("openai-compatible".to_owned(), "KILN_ENDPOINT", false),
                ),
                ("options".to_owned(), object(options, "KILN_ENDPOINT")),
            ],
            "KILN_ENDPOINT",
        );
        entries.push((
            "provider".to_owned(),
            object(vec![(ENV_PROVIDER.to_owned(), provider)], "KILN_ENDPOINT"),
        ));
    }
    if let Some(mut model) = model {
        sources.push(SourceInfo {
            name: SourceName::Env("KILN_MODEL"),
            found: true,
        });
        let has_endpoint = entries.iter().any(|(k, _)| k == "provider");
        if has_endpoint && !model.starts_with(&format!("{ENV_PROVIDER}/")) {
            // With KILN_ENDPOINT, KILN_MODEL names a model of that endpoint.
            model = format!("{ENV_PROVIDER}/{model}");
        }
        entries.push(("model".to_owned(), string(model, "KILN_MODEL", false)));
    }
    Some(object(entries, "KILN_MODEL"))
}

struct Reader<'a> {
    diags: &'a mut Vec<Diagnostic>,
}

impl Reader<'_> {
    fn report(&mut self, severity: Severity, node: &Node, key: &str, message: String) {
        self.diags.push(Diagnostic {
            severity,
            origin: Some(node.origin.clone()),
            key: key.to_owned(),
            message,
        });
    }

    fn expected(&mut self, node: &Node, key: &str, what: &str) {
        let found = match &node.value {
            Value::Str(s) => format!("the string {:?}", clip(&s.text)),
            Value::Number(n) => format!("the number {n}"),
            Value::Bool(b) => format!("{b}"),
            other => other.kind().to_owned(),
        };
        self.report(
            Severity::Error,
            node,
            key,
            format!("expected {what}, found {found}"),
        );
    }

    fn object<'n>(
        &mut self,
        node: &'n Node,
        key: &str,
        known: &[&str],
    ) -> Option<&'n [(String, Node)]> {
        let Value::Object(entries) = &node.value else {
            self.expected(node, key, "an object");
            return None;
        };
        if !known.is_empty() {
            for (name, child) in entries {
                if !known.contains(&name.as_str()) {
                    let hint = match suggest(name, known.iter().copied()) {
                        Some(close) => format!("; did you mean \"{close}\"?"),
                        None => format!("; known keys: {}", known.join(", ")),
                    };
                    self.report(
                        Severity::Warning,
                        child,
                        &join_key(key, name),
                        format!("unknown key, ignored{hint}"),
                    );
                }
            }
        }
        Some(entries)
    }

    fn string<'n>(&mut self, node: &'n Node, key: &str) -> Option<&'n Str> {
        match &node.value {
            Value::Str(s) => Some(s),
            _ => {
                self.expected(node, key, "a string");
                None
            }
        }
    }

    fn bool(&mut self, node: &Node, key: &str) -> Option<bool> {
        match node.value {
            Value::Bool(b) => Some(b),
            _ => {
                self.expected(node, key, "true or false");
                None
            }
        }
    }

    fn uint(
        &mut self,
        node: &Node,
        key: &str,
        what: &str,
        range: std::ops::RangeInclusive<u64>,
    ) -> Option<u64> {
        let parsed = match &node.value {
            Value::Number(n) => n.parse::<u64>().ok(),
            _ => None,
        };
        match parsed {
            Some(n) if range.contains(&n) => Some(n),
            _ => {
                self.expected(node, key, what);
                None
            }
        }
    }

    fn string_list(&mut self, node: &Node, key: &str) -> Option<Vec<(String, Node)>> {
        let Value::Array(items) = &node.value else {
            self.expected(node, key, "an array of strings");
            return None;
        };
        let mut out = Vec::new();
        for (idx, item) in items.iter().enumerate() {
            if let Some(s) = self.string(item, &format!("{key}[{idx}]")) {
                out.push((s.text.clone(), item.clone()));
            }
        }
        Some(out)
    }
}

fn clip(text: &str) -> String {
    if text.chars().count() > 40 {
        let cut: String = text.chars().take(40).collect();
        format!("{cut}…")
    } else {
        text.to_owned()
    }
}

/// The closest candidate within a small edit distance (case-insensitive).
pub fn suggest<'c>(word: &str, candidates: impl Iterator<Item = &'c str>) -> Option<&'c str> {
    let word_lower = word.to_lowercase();
    let max = (word.chars().count() / 3).max(1);
    candidates
        .map(|c| (edit_distance(&word_lower, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= max)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Optimal string alignment distance: a swap of two neighbours counts as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

fn from_preset(preset: &'static Preset, env: &dyn Env) -> Provider {
    let found = preset
        .key_env
        .iter()
        .find_map(|var| env.var(var).filter(|v| !v.is_empty()).map(|v| (var, v)));
    let (api_key, key_source) = match found {
        Some((var, key)) => (Some(Secret::new(key)), KeySource::Env((*var).to_owned())),
        None => (None, KeySource::None),
    };
    Provider {
        id: preset.id.to_owned(),
        name: preset.name.to_owned(),
        api: preset.api,
        base_url: preset.base_url.to_owned(),
        api_key,
        key_source,
        key_env: preset.key_env.iter().map(|s| (*s).to_owned()).collect(),
        keyless: preset.key_env.is_empty(),
        headers: preset
            .headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Secret::new(*v)))
            .collect(),
        timeout: DEFAULT_TIMEOUT,
        max_retries: DEFAULT_MAX_RETRIES,
        max_completion_tokens: preset.max_completion_tokens,
        models: preset
            .models
            .iter()
            .map(|m| {
                (
                    m.id.to_owned(),
                    ModelInfo {
                        id: m.id.to_owned(),
                        name: m.name.to_owned(),
                        tool_call: true,
                        reasoning: m.reasoning,
                        temperature: m.temperature,
                        attachment: m.attachment,
                        limit: Limit {
                            context: Some(m.context),
                            input: None,
                            output: Some(m.output),
                        },
                        known: true,
                    },
                )
            })
            .collect(),
        default_model: preset.default_model.map(str::to_owned),
        preset: true,
        get_it: Some(preset.get_it),
    }
}

pub fn config(merged: Option<&Node>, env: &dyn Env, diags: &mut Vec<Diagnostic>) -> Config {
    let mut r = Reader { diags };
    let mut config = Config {
        providers: PRESETS
            .iter()
            .map(|p| (p.id.to_owned(), from_preset(p, env)))
            .collect(),
        ..Config::default()
    };
    let Some(root) = merged else {
        return config;
    };
    let Some(entries) = r.object(root, "", TOP_KEYS) else {
        return config;
    };
    let get = |name: &str| entries.iter().find(|(k, _)| k == name).map(|(_, v)| v);

    if let Some(node) = get("provider")
        && let Some(providers) = r.object(node, "provider", &[])
    {
        for (id, node) in providers {
            if let Some(provider) = provider(&mut r, id, node, config.providers.remove(id)) {
                config.providers.insert(id.clone(), provider);
            }
        }
    }
    if let Some(node) = get("enabled_providers")
        && let Some(list) = r.string_list(node, "enabled_providers")
    {
        for (name, item) in &list {
            if !config.providers.contains_key(name) {
                unknown_provider(&mut r, &config, item, "enabled_providers", name);
            }
        }
        config
            .providers
            .retain(|id, _| list.iter().any(|(name, _)| name == id));
    }
    if let Some(node) = get("disabled_providers")
        && let Some(list) = r.string_list(node, "disabled_providers")
    {
        for (name, item) in &list {
            if config.providers.remove(name).is_none() {
                unknown_provider(&mut r, &config, item, "disabled_providers", name);
            }
        }
    }
    if let Some(node) = get("model") {
        config.model = model_ref(&mut r, &config, node, "model");
        if config.model.is_some() {
            config.model_origin = Some(node.origin.clone());
        }
    }
    if let Some(node) = get("small_model") {
        config.small_model = model_ref(&mut r, &config, node, "small_model");
    }
    if let Some(node) = get("compaction")
        && let Some(fields) = r.object(node, "compaction", &["threshold_percent"])
        && let Some((_, value)) = fields.iter().find(|(k, _)| k == "threshold_percent")
        && let Some(n) = r.uint(
            value,
            "compaction.threshold_percent",
            "a whole percentage from 1 to 100",
            1..=100,
        )
    {
        config.compaction = Compaction {
            threshold_percent: n as u8,
        };
    }
    for name in SECTIONS {
        if let Some(node) = get(name) {
            config.sections.insert(
                (*name).to_owned(),
                (tree::to_json(node), node.origin.clone()),
            );
        }
    }
    config
}

fn unknown_provider(r: &mut Reader<'_>, config: &Config, node: &Node, key: &str, name: &str) {
    let hint = match suggest(name, config.providers.keys().map(String::as_str)) {
        Some(close) => format!("did you mean \"{close}\"?"),
        None => format!(
            "known providers: {}",
            config
                .providers
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    r.report(
        Severity::Warning,
        node,
        key,
        format!("no provider named \"{name}\"; {hint}"),
    );
}

fn model_ref(r: &mut Reader<'_>, config: &Config, node: &Node, key: &str) -> Option<ModelRef> {
    let text = &r.string(node, key)?.text;
    let Some(model) = ModelRef::parse(text) else {
        let guess = config
            .providers
            .values()
            .find(|p| p.models.contains_key(text.as_str()))
            .map(|p| format!("; e.g. \"{}/{text}\"", p.id))
            .unwrap_or_else(|| {
                "; e.g. \"anthropic/claude-sonnet-4-5\" or \"ollama/qwen2.5-coder\"".to_owned()
            });
        r.expected(node, key, &format!("\"provider/model\"{guess}"));
        return None;
    };
    if !config.providers.contains_key(&model.provider) {
        let hint = match suggest(&model.provider, config.providers.keys().map(String::as_str)) {
            Some(close) => format!("did you mean \"{close}\"?"),
            None => format!(
                "define it under \"provider\" or use one of: {}",
                config
                    .providers
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        r.report(
            Severity::Error,
            node,
            key,
            format!(
                "no provider named \"{}\" (or it is disabled); {hint}",
                model.provider
            ),
        );
        return None;
    }
    Some(model)
}

fn provider(r: &mut Reader<'_>, id: &str, node: &Node, base: Option<Provider>) -> Option<Provider> {
    let key = join_key("provider", id);
    let fields = r.object(node, &key, PROVIDER_KEYS)?;
    let get = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);

    let api = match get("type") {
        Some(node) => {
            let text = &r.string(node, &join_key(&key, "type"))?.text;
            match text.as_str() {
                "openai-compatible" | "openai" => Api::OpenAiCompatible,
                "anthropic" => Api::Anthropic,
                _ => {
                    r.expected(node, &join_key(&key, "type"), API_NAMES);
                    return base;
                }
            }
        }
        None => match &base {
            Some(base) => base.api,
            None => {
                r.report(
                    Severity::Error,
                    node,
                    &join_key(&key, "type"),
                    format!(
                        "missing: \"{id}\" is not a built-in provider, so say which API it speaks: {API_NAMES}"
                    ),
                );
                return None;
            }
        },
    };
    let mut provider = base.unwrap_or_else(|| Provider {
        id: id.to_owned(),
        name: id.to_owned(),
        api,
        base_url: String::new(),
        api_key: None,
        key_source: KeySource::None,
        key_env: Vec::new(),
        keyless: true,
        headers: Vec::new(),
        timeout: DEFAULT_TIMEOUT,
        max_retries: DEFAULT_MAX_RETRIES,
        max_completion_tokens: false,
        models: BTreeMap::new(),
        default_model: None,
        preset: false,
        get_it: None,
    });
    provider.api = api;
    if let Some(node) = get("name")
        && let Some(name) = r.string(node, &join_key(&key, "name"))
    {
        provider.name = name.text.clone();
    }
    if let Some(node) = get("options") {
        options(r, &join_key(&key, "options"), node, &mut provider);
    }
    if provider.base_url.is_empty() {
        r.report(
            Severity::Error,
            node,
            &join_key(&key, "options.baseURL"),
            "missing: the API base URL, e.g. \"http://localhost:8000/v1\"".to_owned(),
        );
        return None;
    }
    if let Some(node) = get("models")
        && let Some(models) = r.object(node, &join_key(&key, "models"), &[])
    {
        for (model_id, node) in models {
            let model_key = join_key(&join_key(&key, "models"), model_id);
            let base = provider
                .models
                .get(model_id)
                .cloned()
                .unwrap_or_else(|| ModelInfo {
                    known: true,
                    ..ModelInfo::unknown(model_id)
                });
            if let Some(info) = model(r, &model_key, node, base) {
                provider.models.insert(model_id.clone(), info);
            }
        }
    }
    Some(provider)
}

fn options(r: &mut Reader<'_>, key: &str, node: &Node, provider: &mut Provider) {
    let Some(fields) = r.object(node, key, OPTION_KEYS) else {
        return;
    };
    for (name, value) in fields {
        let field_key = join_key(key, name);
        match name.as_str() {
            "baseURL" => {
                if let Some(url) = r.string(value, &field_key)
                    && let Some(url) = base_url(r, value, &field_key, &url.text, provider.api)
                {
                    provider.base_url = url;
                }
            }
            "apiKey" => {
                if let Some(text) = r.string(value, &field_key) {
                    if text.text.is_empty() {
                        // `{env:VAR}` of an unset variable: already warned about.
                        provider.api_key = None;
                        provider.key_source = match &text.whole_env_var {
                            Some(var) => {
                                provider.key_env = vec![var.clone()];
                                KeySource::None
                            }
                            None => KeySource::None,
                        };
                    } else {
                        provider.api_key = Some(Secret::new(text.text.clone()));
                        provider.key_source = match &text.whole_env_var {
                            Some(var) => KeySource::Env(var.clone()),
                            None => KeySource::Config(value.origin.clone()),
                        };
                    }
                    provider.keyless = false;
                }
            }
            "headers" => {
                if let Some(headers) = r.object(value, &field_key, &[]) {
                    for (header, hv) in headers {
                        if let Some(text) = r.string(hv, &join_key(&field_key, header)) {
                            provider
                                .headers
                                .retain(|(h, _)| !h.eq_ignore_ascii_case(header));
                            provider
                                .headers
                                .push((header.clone(), Secret::new(text.text.clone())));
                        }
                    }
                }
            }
            "timeout_ms" => {
                if let Some(ms) = r.uint(
                    value,
                    &field_key,
                    "a number of milliseconds from 100 to 3600000",
                    100..=3_600_000,
                ) {
                    provider.timeout = Duration::from_millis(ms);
                }
            }
            "max_retries" => {
                if let Some(n) = r.uint(value, &field_key, "a whole number from 0 to 10", 0..=10) {
                    provider.max_retries = n as u32;
                }
            }
            "max_completion_tokens" => {
                if let Some(b) = r.bool(value, &field_key) {
                    provider.max_completion_tokens = b;
                }
            }
            _ => {}
        }
    }
}

/// Checks a `baseURL`; a pasted full endpoint is cut back to its base, with a warning.
fn base_url(r: &mut Reader<'_>, node: &Node, key: &str, url: &str, api: Api) -> Option<String> {
    let url = url.trim();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        r.expected(
            node,
            key,
            "an http:// or https:// URL such as \"https://api.openai.com/v1\"",
        );
        return None;
    }
    let mut url = url.trim_end_matches('/').to_owned();
    for path in ["/chat/completions", "/messages", "/completions"] {
        if let Some(base) = url.strip_suffix(path) {
            r.report(
                Severity::Warning,
                node,
                key,
                format!(
                    "this looks like a full endpoint; baseURL is the API base and kiln appends \"{}\" itself, so \"{base}\" is used (write that to silence this)",
                    api.endpoint_path()
                ),
            );
            url = base.to_owned();
            break;
        }
    }
    Some(url)
}

fn model(r: &mut Reader<'_>, key: &str, node: &Node, mut info: ModelInfo) -> Option<ModelInfo> {
    let fields = r.object(node, key, MODEL_KEYS)?;
    for (name, value) in fields {
        let field_key = join_key(key, name);
        match name.as_str() {
            "name" => {
                if let Some(s) = r.string(value, &field_key) {
                    info.name = s.text.clone();
                }
            }
            "tool_call" | "reasoning" | "temperature" | "attachment" => {
                if let Some(b) = r.bool(value, &field_key) {
                    match name.as_str() {
                        "tool_call" => info.tool_call = b,
                        "reasoning" => info.reasoning = b,
                        "temperature" => info.temperature = b,
                        _ => info.attachment = b,
                    }
                }
            }
            "limit" => {
                if let Some(limits) = r.object(value, &field_key, LIMIT_KEYS) {
                    for (limit_name, lv) in limits {
                        let n = r.uint(
                            lv,
                            &join_key(&field_key, limit_name),
                            "a positive number of tokens",
                            1..=u32::MAX as u64,
                        );
                        let n = n.map(|n| n as u32);
                        match limit_name.as_str() {
                            "context" => info.limit.context = n.or(info.limit.context),
                            "input" => info.limit.input = n.or(info.limit.input),
                            "output" => info.limit.output = n.or(info.limit.output),
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Some(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_find_close_keys_only() {
        assert_eq!(
            suggest("baseUrl", OPTION_KEYS.iter().copied()),
            Some("baseURL")
        );
        assert_eq!(
            suggest("api_key", OPTION_KEYS.iter().copied()),
            Some("apiKey")
        );
        assert_eq!(suggest("modle", TOP_KEYS.iter().copied()), Some("model"));
        assert_eq!(suggest("zzzzzz", TOP_KEYS.iter().copied()), None);
    }
}
