//! Resolves secret sources when an instance starts. Values live only in the child's environment:
//! they are never stored, logged, or put into an error message (errors name the secret and its source).

use slipway_core::spec::SecretSource;
use std::collections::BTreeMap;

pub fn resolve(
    secrets: &BTreeMap<String, SecretSource>,
) -> Result<BTreeMap<String, String>, String> {
    let mut values = BTreeMap::new();
    for (name, source) in secrets {
        let value = match source {
            SecretSource::File(path) => match std::fs::read_to_string(path) {
                Ok(text) => text.strip_suffix('\n').unwrap_or(&text).to_string(),
                Err(e) => {
                    return Err(format!(
                        "secret {name}: cannot read {}: {e}",
                        path.display()
                    ));
                }
            },
            SecretSource::Env(var) => match std::env::var(var) {
                Ok(v) => v,
                Err(_) => {
                    return Err(format!(
                        "secret {name}: the daemon's environment has no variable {var}; \
                         set it where `slipway serve` runs"
                    ));
                }
            },
        };
        values.insert(name.clone(), value);
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_source_never_the_value() {
        let dir = std::env::temp_dir().join(format!("slipway-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("db");
        std::fs::write(&file, "hunter2\n").unwrap();
        let mut s = BTreeMap::new();
        s.insert("DB".to_string(), SecretSource::File(file.clone()));
        assert_eq!(resolve(&s).unwrap()["DB"], "hunter2");
        s.insert("GONE".to_string(), SecretSource::File(dir.join("missing")));
        let err = resolve(&s).unwrap_err();
        assert!(err.contains("GONE") && !err.contains("hunter2"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
