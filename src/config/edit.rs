//! Writing a permission the person chose to keep into the project's `kiln.jsonc`, with
//! its comments and layout kept (jsonc-parser's CST).

use std::path::{Path, PathBuf};

use jsonc_parser::ParseOptions;
use jsonc_parser::cst::{CstInputValue, CstRootNode};

/// Sets `permission.<key>` to `"allow"`, or with `patterns`, adds each as `"allow"` under
/// `permission.bash` (a plain rule there becomes `{"*": <rule>}` first). Edits the project
/// `kiln.jsonc` (or `.kiln/kiln.jsonc` when only that exists); creates `kiln.jsonc` when
/// there is neither. Returns the file written.
pub fn allow_permission(
    project_dir: &Path,
    key: &str,
    patterns: &[String],
) -> Result<PathBuf, String> {
    let root_file = project_dir.join("kiln.jsonc");
    let hidden = project_dir.join(".kiln/kiln.jsonc");
    let path = if !root_file.exists() && hidden.exists() {
        hidden
    } else {
        root_file
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "{\n}\n".to_owned(),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let root = CstRootNode::parse(&text, &ParseOptions::default()).map_err(|e| {
        format!(
            "{} does not parse, so kiln did not change it: {e}",
            path.display()
        )
    })?;
    let obj = root.object_value_or_set();
    let permission = obj.object_value_or_set("permission");
    let allow = || CstInputValue::String("allow".into());
    if patterns.is_empty() {
        match permission.get(key) {
            Some(prop) => prop.set_value(allow()),
            None => {
                permission.append(key, allow());
            }
        }
    } else {
        if let Some(prop) = permission.get("bash")
            && let Some(rule) = prop
                .value()
                .and_then(|v| v.as_string_lit())
                .and_then(|s| s.decoded_value().ok())
        {
            prop.set_value(CstInputValue::Object(vec![(
                "*".into(),
                CstInputValue::String(rule),
            )]));
        }
        let bash = permission.object_value_or_set("bash");
        for pattern in patterns {
            match bash.get(pattern) {
                Some(prop) => prop.set_value(allow()),
                None => {
                    bash.append(pattern, allow());
                }
            }
        }
    }
    let out = root.to_string();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let tmp = path.with_extension("jsonc.kiln-tmp");
    std::fs::write(&tmp, out.as_bytes())
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_rules_and_keeps_comments() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("kiln.jsonc"),
            "{\n  // my model\n  \"model\": \"ollama/qwen\",\n  \"permission\": { \"bash\": \"ask\" }\n}\n",
        )
        .unwrap();
        allow_permission(dir.path(), "bash", &["cargo test*".into()]).unwrap();
        allow_permission(dir.path(), "edit", &[]).unwrap();
        let text = std::fs::read_to_string(dir.path().join("kiln.jsonc")).unwrap();
        assert!(text.contains("// my model"), "{text}");
        let value: serde_json::Value =
            jsonc_parser::parse_to_serde_value::<serde_json::Value>(&text, &Default::default())
                .unwrap();
        assert_eq!(
            value["permission"]["bash"],
            serde_json::json!({ "*": "ask", "cargo test*": "allow" })
        );
        assert_eq!(value["permission"]["edit"], "allow");
        let fresh = tempfile::tempdir().unwrap();
        let written = allow_permission(fresh.path(), "edit", &[]).unwrap();
        assert_eq!(written, fresh.path().join("kiln.jsonc"));
    }
}
