//! `[env]` (plain values, part of the release) and `[secrets]` (sources only: a file or a variable of
//! the daemon's environment, read when an instance starts). Secret values never pass through here.

use crate::report::Report;
use crate::table::Section;
use slipway_core::spec::SecretSource;
use std::collections::BTreeMap;
use std::path::Path;
use toml::de::DeValue;

/// Set by slipway for every `web` instance; a config value would be overwritten or would mislead.
const RESERVED: &[&str] = &["PORT"];

/// `[A-Za-z_][A-Za-z0-9_]*`: what `sh` accepts as a variable name.
pub(crate) fn valid_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_name(r: &mut Report, section: &Section, name: &str, span: std::ops::Range<usize>) {
    if !valid_var_name(name) {
        let fixed: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        r.error(
            span,
            format!("invalid variable name `{name}` in {}", section.name()),
        )
        .label("invalid name")
        .help(format!(
            "use letters, digits and `_`, not starting with a digit, e.g. `{fixed}`"
        ));
    } else if RESERVED.contains(&name) {
        r.error(
            span,
            format!(
                "`{name}` cannot be set in {}: slipway sets it for each web instance",
                section.name()
            ),
        )
        .label("reserved")
        .help("remove it; read $PORT in your command or app instead");
    }
}

pub(crate) fn read_env(r: &mut Report, root: &Section) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(env) = root.table(r, "env", "env") else {
        return out;
    };
    for (name, key_span, value) in env.entries() {
        check_name(r, &env, name, key_span);
        match value.get_ref() {
            DeValue::String(s) => {
                out.insert(name.to_string(), s.to_string());
            }
            DeValue::Integer(_)
            | DeValue::Float(_)
            | DeValue::Boolean(_)
            | DeValue::Datetime(_) => {
                let raw = r.text(value.span()).to_string();
                env.wrong_type(r, name, value, "a string")
                    .help(format!("quote it: \"{raw}\""));
            }
            _ => {
                env.wrong_type(r, name, value, "a string")
                    .help("environment values are strings: write NAME = \"value\"");
            }
        }
    }
    out
}

/// Reads `[secrets]`; a name also in `env` is an error (which value would win?).
pub(crate) fn read_secrets(
    r: &mut Report,
    root: &Section,
    env: &BTreeMap<String, String>,
    base_dir: &Path,
) -> BTreeMap<String, SecretSource> {
    let mut out = BTreeMap::new();
    let Some(secrets) = root.table(r, "secrets", "secrets") else {
        return out;
    };
    for (name, key_span, value) in secrets.entries() {
        check_name(r, &secrets, name, key_span.clone());
        if env.contains_key(name) {
            r.error(key_span, format!("`{name}` is in both [env] and [secrets]"))
                .label("also in [env]")
                .help("a variable has one value: remove it from one of them");
        }
        let path = format!("secrets.{name}");
        let DeValue::Table(_) = value.get_ref() else {
            // Never echo a value here, nor show it in a snippet: it may be the secret itself.
            r.redact(value.span());
            let found = value.get_ref().type_str();
            r.error(value.span(), format!("`{name}` in [secrets]: expected {{ file = ... }} or {{ env = ... }}, found a {found}"))
                .label("not a secret source")
                .help(format!(
                    "secret values do not go in slipway.toml; write {name} = {{ file = \"/run/secrets/{}\" }} or {name} = {{ env = \"{name}\" }}",
                    name.to_ascii_lowercase().replace('_', "-")
                ));
            continue;
        };
        let Some(source) = secrets.as_table(r, name, value, &path) else {
            continue;
        };
        source.check_keys(r, &["file", "env"]);
        let file = source.text(r, "file", "\"/run/secrets/name\"");
        let var = source.text(r, "env", "\"NAME\"");
        match (file, var) {
            (Some(_), Some(v)) => {
                let span = source.key_span("env").unwrap_or_else(|| v.span());
                r.error(span, format!("{} has both `file` and `env`", source.name()))
                    .label("second source")
                    .help("a secret has exactly one source: keep `file` or `env`");
            }
            (Some(f), None) => {
                let path = std::path::absolute(base_dir.join(f.get_ref()))
                    .unwrap_or_else(|_| base_dir.join(f.get_ref()));
                out.insert(name.to_string(), SecretSource::File(path));
            }
            (None, Some(v)) => {
                if !valid_var_name(v.get_ref()) {
                    // Not echoed: it may be the secret value itself.
                    r.error(
                        v.span(),
                        format!("{}: `env` must name a variable", source.name()),
                    )
                    .help("name the daemon's environment variable, e.g. env = \"API_KEY\"");
                } else {
                    out.insert(name.to_string(), SecretSource::Env(v.into_inner()));
                }
            }
            (None, None) => {
                if source.get("file").is_none() && source.get("env").is_none() {
                    source.missing(
                        r,
                        "file or env",
                        format!(
                            "write {name} = {{ file = \"...\" }} or {name} = {{ env = \"{name}\" }}"
                        ),
                    );
                }
            }
        }
    }
    out
}
