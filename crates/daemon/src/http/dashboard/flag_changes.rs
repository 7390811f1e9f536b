//! What one flag audit entry changed, in a few words ("killed", "default off → on", "targeting
//! changed"): the flags page lists the last changes, and the stored before/after JSON is too long to
//! read at a glance. Pure.

use serde_json::Value;

pub fn describe(before: Option<&str>, after: Option<&str>) -> Vec<String> {
    let parse = |t: Option<&str>| t.and_then(|t| serde_json::from_str::<Value>(t).ok());
    let (b, a) = match (parse(before), parse(after)) {
        (None, None) => return Vec::new(),
        (None, Some(_)) => return vec!["created".into()],
        (Some(_), None) => return vec!["deleted".into()],
        (Some(Value::Object(b)), Some(Value::Object(a))) => (b, a),
        _ => return vec!["changed".into()],
    };
    let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
    keys.sort();
    keys.dedup();
    let name = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => "(none)".into(),
        Some(v) => v.to_string(),
    };
    keys.into_iter()
        .filter(|k| b.get(*k) != a.get(*k))
        .map(|k| {
            let (was, now) = (b.get(k), a.get(k));
            match k.as_str() {
                "killed" if now == Some(&Value::Bool(true)) => "killed".into(),
                "killed" => "revived".into(),
                "state" => match now.and_then(Value::as_str) {
                    Some("DISABLED") => "disabled".into(),
                    _ => "enabled".into(),
                },
                "defaultVariant" => format!("default {} → {}", name(was), name(now)),
                "targeting" => match now {
                    None | Some(Value::Null) => "targeting removed".into(),
                    Some(Value::Object(o)) if o.is_empty() => "targeting removed".into(),
                    _ if was.is_none() => "targeting added".into(),
                    _ => "targeting changed".into(),
                },
                other => format!("{other} changed"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn changes_read_as_words() {
        let on = r#"{"state":"ENABLED","defaultVariant":"off","variants":{"on":true,"off":false}}"#;
        let killed = r#"{"state":"ENABLED","defaultVariant":"off","variants":{"on":true,"off":false},"killed":true}"#;
        let moved = r#"{"state":"DISABLED","defaultVariant":"on","variants":{"on":true,"off":false},"targeting":{"if":[true,"on"]}}"#;
        assert_eq!(describe(Some(on), Some(killed)), vec!["killed"]);
        assert_eq!(describe(Some(killed), Some(on)), vec!["revived"]);
        assert_eq!(
            describe(Some(on), Some(moved)),
            vec!["default off → on", "disabled", "targeting added"]
        );
        assert_eq!(describe(None, Some(on)), vec!["created"]);
        assert_eq!(describe(Some(on), None), vec!["deleted"]);
        assert!(describe(None, None).is_empty());
    }
}
