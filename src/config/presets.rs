//! Providers a person gets without writing a provider block: each is keyed to the
//! environment variable its own tools use, and the local ones (Ollama, LM Studio) need no
//! key. Model entries carry the limits kiln needs for compaction and error messages;
//! any other model id of the provider works too, with default capabilities.

use super::Api;

pub struct Preset {
    pub id: &'static str,
    pub name: &'static str,
    pub api: Api,
    pub base_url: &'static str,
    /// Variables that may hold the key, first set wins. Empty for local servers.
    pub key_env: &'static [&'static str],
    /// Extra headers the provider asks clients to send.
    pub headers: &'static [(&'static str, &'static str)],
    /// The model picked when this provider is the one found and `model` is unset.
    pub default_model: Option<&'static str>,
    pub models: &'static [PresetModel],
    /// Sends `max_completion_tokens` instead of `max_tokens` (OpenAI's reasoning models
    /// refuse the old name; most compatible servers only know the old one).
    pub max_completion_tokens: bool,
    /// Where to tell a person to get a key or the server.
    pub get_it: &'static str,
}

pub struct PresetModel {
    pub id: &'static str,
    pub name: &'static str,
    pub reasoning: bool,
    pub attachment: bool,
    /// `false` for models that reject a `temperature` parameter.
    pub temperature: bool,
    pub context: u32,
    pub output: u32,
}

const fn model(
    id: &'static str,
    name: &'static str,
    context: u32,
    output: u32,
    reasoning: bool,
    attachment: bool,
) -> PresetModel {
    PresetModel {
        id,
        name,
        reasoning,
        attachment,
        temperature: true,
        context,
        output,
    }
}

const fn no_temperature(model: PresetModel) -> PresetModel {
    PresetModel {
        temperature: false,
        ..model
    }
}

/// In the order kiln tries them when no model is configured: keyed cloud providers
/// first (the person set a key on purpose), then the local servers.
pub static PRESETS: &[Preset] = &[
    Preset {
        id: "anthropic",
        name: "Anthropic",
        api: Api::Anthropic,
        base_url: "https://api.anthropic.com/v1",
        key_env: &["ANTHROPIC_API_KEY"],
        headers: &[],
        default_model: Some("claude-sonnet-4-5"),
        models: &[
            model(
                "claude-sonnet-4-5",
                "Claude Sonnet 4.5",
                200_000,
                64_000,
                true,
                true,
            ),
            model(
                "claude-opus-4-1",
                "Claude Opus 4.1",
                200_000,
                32_000,
                true,
                true,
            ),
            model(
                "claude-haiku-4-5",
                "Claude Haiku 4.5",
                200_000,
                64_000,
                true,
                true,
            ),
        ],
        max_completion_tokens: false,
        get_it: "create a key at https://console.anthropic.com/settings/keys",
    },
    Preset {
        id: "openai",
        name: "OpenAI",
        api: Api::OpenAiCompatible,
        base_url: "https://api.openai.com/v1",
        key_env: &["OPENAI_API_KEY"],
        headers: &[],
        default_model: Some("gpt-5"),
        models: &[
            no_temperature(model("gpt-5", "GPT-5", 400_000, 128_000, true, true)),
            no_temperature(model(
                "gpt-5-mini",
                "GPT-5 mini",
                400_000,
                128_000,
                true,
                true,
            )),
            model("gpt-4.1", "GPT-4.1", 1_047_576, 32_768, false, true),
            no_temperature(model("o4-mini", "o4-mini", 200_000, 100_000, true, true)),
        ],
        max_completion_tokens: true,
        get_it: "create a key at https://platform.openai.com/api-keys",
    },
    Preset {
        id: "openrouter",
        name: "OpenRouter",
        api: Api::OpenAiCompatible,
        base_url: "https://openrouter.ai/api/v1",
        key_env: &["OPENROUTER_API_KEY"],
        headers: &[("X-Title", "kiln")],
        default_model: Some("anthropic/claude-sonnet-4.5"),
        models: &[
            model(
                "anthropic/claude-sonnet-4.5",
                "Claude Sonnet 4.5",
                200_000,
                64_000,
                true,
                true,
            ),
            model("openai/gpt-5", "GPT-5", 400_000, 128_000, true, true),
            model(
                "qwen/qwen3-coder",
                "Qwen3 Coder",
                262_144,
                65_536,
                false,
                false,
            ),
        ],
        max_completion_tokens: false,
        get_it: "create a key at https://openrouter.ai/keys",
    },
    Preset {
        id: "deepseek",
        name: "DeepSeek",
        api: Api::OpenAiCompatible,
        base_url: "https://api.deepseek.com/v1",
        key_env: &["DEEPSEEK_API_KEY"],
        headers: &[],
        default_model: Some("deepseek-chat"),
        models: &[
            model(
                "deepseek-chat",
                "DeepSeek V3 (chat)",
                128_000,
                8_192,
                false,
                false,
            ),
            no_temperature(model(
                "deepseek-reasoner",
                "DeepSeek R (reasoner)",
                128_000,
                64_000,
                true,
                false,
            )),
        ],
        max_completion_tokens: false,
        get_it: "create a key at https://platform.deepseek.com/api_keys",
    },
    Preset {
        id: "mistral",
        name: "Mistral",
        api: Api::OpenAiCompatible,
        base_url: "https://api.mistral.ai/v1",
        key_env: &["MISTRAL_API_KEY"],
        headers: &[],
        default_model: Some("devstral-medium-latest"),
        models: &[
            model(
                "devstral-medium-latest",
                "Devstral Medium",
                128_000,
                32_768,
                false,
                false,
            ),
            model(
                "codestral-latest",
                "Codestral",
                256_000,
                32_768,
                false,
                false,
            ),
            model(
                "magistral-medium-latest",
                "Magistral Medium",
                128_000,
                40_000,
                true,
                false,
            ),
        ],
        max_completion_tokens: false,
        get_it: "create a key at https://console.mistral.ai/api-keys",
    },
    Preset {
        id: "groq",
        name: "Groq",
        api: Api::OpenAiCompatible,
        base_url: "https://api.groq.com/openai/v1",
        key_env: &["GROQ_API_KEY"],
        headers: &[],
        default_model: Some("openai/gpt-oss-120b"),
        models: &[
            model(
                "openai/gpt-oss-120b",
                "GPT-OSS 120B",
                131_072,
                65_536,
                true,
                false,
            ),
            model(
                "llama-3.3-70b-versatile",
                "Llama 3.3 70B",
                131_072,
                32_768,
                false,
                false,
            ),
        ],
        max_completion_tokens: false,
        get_it: "create a key at https://console.groq.com/keys",
    },
    Preset {
        id: "gemini",
        name: "Google Gemini (OpenAI-compatible endpoint)",
        api: Api::OpenAiCompatible,
        base_url: "https://generativelanguage.googleapis.com/v1beta/openai",
        key_env: &["GEMINI_API_KEY", "GOOGLE_API_KEY"],
        headers: &[],
        default_model: Some("gemini-2.5-pro"),
        models: &[
            model(
                "gemini-2.5-pro",
                "Gemini 2.5 Pro",
                1_048_576,
                65_536,
                true,
                true,
            ),
            model(
                "gemini-2.5-flash",
                "Gemini 2.5 Flash",
                1_048_576,
                65_536,
                true,
                true,
            ),
        ],
        max_completion_tokens: false,
        get_it: "create a key at https://aistudio.google.com/apikey",
    },
    Preset {
        id: "xai",
        name: "xAI",
        api: Api::OpenAiCompatible,
        base_url: "https://api.x.ai/v1",
        key_env: &["XAI_API_KEY"],
        headers: &[],
        default_model: Some("grok-code-fast-1"),
        models: &[
            model(
                "grok-code-fast-1",
                "Grok Code Fast 1",
                256_000,
                10_000,
                true,
                false,
            ),
            model("grok-4", "Grok 4", 256_000, 64_000, true, true),
        ],
        max_completion_tokens: false,
        get_it: "create a key at https://console.x.ai",
    },
    Preset {
        id: "ollama",
        name: "Ollama (local)",
        api: Api::OpenAiCompatible,
        base_url: "http://localhost:11434/v1",
        key_env: &[],
        headers: &[],
        default_model: None,
        models: &[],
        max_completion_tokens: false,
        get_it: "install Ollama from https://ollama.com, then `ollama pull qwen2.5-coder` (it serves on localhost:11434)",
    },
    Preset {
        id: "lmstudio",
        name: "LM Studio (local)",
        api: Api::OpenAiCompatible,
        base_url: "http://localhost:1234/v1",
        key_env: &[],
        headers: &[],
        default_model: None,
        models: &[],
        max_completion_tokens: false,
        get_it: "install LM Studio from https://lmstudio.ai, load a model and start its server (Developer tab, port 1234)",
    },
];
