//! `slipway flags history [NAME]`: the audit log, newest first, each change shown as the fields it
//! changed (`defaultVariant: "off" → "on"`).

use super::super::Context;
use serde_json::Value;
use slipway_api::flags::FlagAudit;

pub async fn run(ctx: &Context, app: &str, name: Option<&str>, limit: usize) -> anyhow::Result<()> {
    let mut path = format!("/v1/apps/{app}/flag-history?limit={limit}");
    if let Some(name) = name {
        path.push_str(&format!("&flag={}", super::seg(name)));
    }
    let entries: Vec<FlagAudit> = ctx.client.get(&path).await?;
    if ctx.json() {
        return crate::output::json(&entries);
    }
    if entries.is_empty() {
        println!("{app}: no flag changes yet");
    }
    for e in &entries {
        let reason = e
            .reason
            .as_deref()
            .map(|r| format!(" — {r}"))
            .unwrap_or_default();
        println!(
            "{}#{}  {}  {}  {}{reason}",
            e.flag,
            e.seq,
            crate::output::time(e.at),
            e.who,
            e.action
        );
        for line in diff(e.before.as_deref(), e.after.as_deref()) {
            println!("    {line}");
        }
    }
    Ok(())
}

/// The fields that differ between two stored flags, one line each.
pub fn diff(before: Option<&str>, after: Option<&str>) -> Vec<String> {
    let parse = |t: Option<&str>| t.and_then(|t| serde_json::from_str::<Value>(t).ok());
    match (parse(before), parse(after)) {
        (None, None) => Vec::new(),
        (None, Some(after)) => vec![format!("created: {after}")],
        (Some(_), None) => vec!["deleted".into()],
        (Some(Value::Object(b)), Some(Value::Object(a))) => {
            let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter()
                .filter(|k| b.get(*k) != a.get(*k))
                .map(|k| {
                    let show = |v: Option<&Value>| v.map_or("(none)".to_string(), Value::to_string);
                    format!("{k}: {} → {}", show(b.get(k)), show(a.get(k)))
                })
                .collect()
        }
        (Some(b), Some(a)) => vec![format!("{b} → {a}")],
    }
}

#[cfg(test)]
mod tests {
    use super::diff;

    #[test]
    fn shows_only_what_changed() {
        let before =
            r#"{"state":"ENABLED","defaultVariant":"off","variants":{"on":true,"off":false}}"#;
        let after = r#"{"state":"ENABLED","defaultVariant":"on","variants":{"on":true,"off":false},"killed":true}"#;
        assert_eq!(
            diff(Some(before), Some(after)),
            vec![
                "defaultVariant: \"off\" → \"on\"".to_string(),
                "killed: (none) → true".to_string()
            ]
        );
        assert_eq!(diff(Some(before), None), vec!["deleted".to_string()]);
        assert!(diff(None, Some(after))[0].starts_with("created: "));
    }
}
