//! How a flag and a flag set are written in the store and the audit log: flagd's format, so a row reads
//! like the file it came from, plus `"killed": true` on a killed flag. flagd's own export leaves a killed
//! flag's targeting out (it serves the default); the store keeps it, so reviving restores the rollout.

use serde_json::{Map, Value, json};
use slipway_flags::{Flag, FlagSet, flag_from_flagd, flag_to_flagd};
use slipway_store::StoredFlag;

pub fn flag_json(flag: &Flag) -> Value {
    let mut alive = flag.clone();
    alive.revive();
    let mut value = flag_to_flagd(&alive);
    if flag.killed
        && let Value::Object(fields) = &mut value
    {
        fields.insert("killed".into(), Value::Bool(true));
    }
    value
}

pub fn flag_text(flag: &Flag) -> String {
    flag_json(flag).to_string()
}

pub fn flag_from_json(value: &Value) -> Result<Flag, String> {
    let mut flag = flag_from_flagd(value).map_err(|problem| problem.to_string())?;
    flag.killed = value.get("killed").and_then(Value::as_bool) == Some(true);
    Ok(flag)
}

pub fn flag_from_text(text: &str) -> Result<Flag, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    flag_from_json(&value)
}

/// The set's shared parts, `$evaluators` and metadata, as one JSON object each.
pub fn set_parts(set: &FlagSet) -> (String, String) {
    let document = set.to_flagd_value();
    let part = |name: &str| document.get(name).cloned().unwrap_or_else(|| json!({}));
    (
        part("$evaluators").to_string(),
        part("metadata").to_string(),
    )
}

/// What the audit log records for a change to the set's shared parts (audited as flag `$set`).
pub fn set_parts_json(set: &FlagSet) -> Value {
    let (evaluators, metadata) = set_parts(set);
    json!({
        "$evaluators": serde_json::from_str::<Value>(&evaluators).unwrap_or_default(),
        "metadata": serde_json::from_str::<Value>(&metadata).unwrap_or_default(),
    })
}

/// The audit log's name for the set's shared parts.
pub const SET_PARTS: &str = "$set";

/// Rebuilds a set from its stored parts. A flag that no longer reads (the database edited by hand) is
/// left out and named, rather than stopping every other flag of the app from being served.
pub fn set_from_rows(
    evaluators: &str,
    metadata: &str,
    rows: &[StoredFlag],
) -> (FlagSet, Vec<String>) {
    let mut problems = Vec::new();
    let mut document = Map::new();
    for (name, text) in [("$evaluators", evaluators), ("metadata", metadata)] {
        match serde_json::from_str::<Value>(text) {
            Ok(value) => {
                document.insert(name.into(), value);
            }
            Err(e) => problems.push(format!("stored {name} unreadable: {e}")),
        }
    }
    let mut set = match FlagSet::from_flagd_value(&Value::Object(document)) {
        Ok(set) => set,
        Err(e) => {
            problems.push(format!("stored $evaluators/metadata unreadable: {e}"));
            FlagSet::new()
        }
    };
    for row in rows {
        let flag = flag_from_text(&row.definition).map_err(|e| format!("flag {}: {e}", row.key));
        match flag.and_then(|flag| set.insert(&row.key, flag).map_err(|e| e.to_string())) {
            Ok(_) => {}
            Err(e) => problems.push(e),
        }
    }
    (set, problems)
}

/// Replaces the set's shared parts with those of `from`, keeping the flags.
pub fn with_parts_of(set: &FlagSet, from: &FlagSet) -> Result<FlagSet, String> {
    let mut next = set.clone();
    next.set_metadata(from.metadata().clone());
    next.set_evaluators(from.evaluators().clone())
        .map_err(|e| e.to_string())?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_flag_keeps_its_targeting_in_the_store() {
        let mut flag = Flag::boolean(false).with_targeting(json!({"if": [true, "on"]}));
        flag.kill();
        let text = flag_text(&flag);
        assert!(
            text.contains("\"killed\":true") && text.contains("targeting"),
            "{text}"
        );
        assert_eq!(flag_from_text(&text).unwrap(), flag);
        let alive = Flag::boolean(true);
        assert!(!flag_text(&alive).contains("killed"));
        assert_eq!(flag_from_text(&flag_text(&alive)).unwrap(), alive);
    }

    #[test]
    fn an_unreadable_row_is_named_and_the_rest_served() {
        let rows = vec![
            StoredFlag {
                key: "good".into(),
                definition: flag_text(&Flag::boolean(true)),
                changed_at: 1,
            },
            StoredFlag {
                key: "bad".into(),
                definition: "{".into(),
                changed_at: 1,
            },
        ];
        let (set, problems) = set_from_rows("{}", "{}", &rows);
        assert!(set.get("good").is_some());
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("flag bad"), "{problems:?}");
    }
}
