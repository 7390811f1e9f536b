//! `[[notify]]`: webhooks told when a release is rolled back (Slack-compatible JSON).
//!
//! A webhook URL is a credential in all but name (whoever has Slack's `/services/T…/B…/…` can post to
//! the channel), so messages about one show only its scheme and host, and its text is blanked out of
//! snippets whether or not it is valid.

use crate::report::Report;
use crate::table::Section;
use crate::url;
use slipway_core::spec::Webhook;
use std::collections::BTreeSet;
use toml::de::DeValue;

const EXAMPLE: &str = "[[notify]]\nurl = \"https://hooks.slack.com/services/...\"";

/// Reads `notify`: an array of tables (`[[notify]]`), or a single `[notify]` table.
pub(crate) fn read(r: &mut Report, root: &Section) -> Vec<Webhook> {
    let mut out = Vec::new();
    let Some(value) = root.get("notify") else {
        return out;
    };
    let items: Vec<(String, _)> = match value.get_ref() {
        DeValue::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| (format!("[[notify]] {}", i + 1), item))
            .collect(),
        DeValue::Table(_) => vec![("[notify]".to_string(), value)],
        _ => {
            root.wrong_type(r, "notify", value, "a table")
                .help(format!("write each webhook as:\n{EXAMPLE}"));
            return out;
        }
    };
    let mut seen = BTreeSet::new();
    for (name, item) in &items {
        let DeValue::Table(table) = item.get_ref() else {
            r.redact(item.span());
            r.error(
                item.span(),
                format!("{name}: expected a table like {{ url = \"https://...\" }}"),
            )
            .label("not a webhook")
            .help(format!("write each webhook as:\n{EXAMPLE}"));
            continue;
        };
        let s = Section::named(name, item.span(), table);
        s.check_keys(r, &["url"]);
        let Some(url_value) = s.get("url") else {
            s.missing(r, "url", format!("write the webhook's URL:\n{EXAMPLE}"));
            continue;
        };
        r.redact(url_value.span());
        let Some(text) = s.string(r, "url") else {
            continue;
        };
        if let Err(problem) = url::check_http(text.get_ref()) {
            // The problem alone: never the URL, which may carry the webhook's secret.
            r.error(text.span(), format!("{} {}", s.key_ref("url"), problem.message()))
                .label("not an http(s) URL")
                .help("write the webhook's full URL, starting with https://, e.g. url = \"https://hooks.slack.com/services/...\"");
            continue;
        }
        if !seen.insert(text.get_ref().trim().to_string()) {
            let origin = url::origin(text.get_ref()).unwrap_or_else(|| "it".into());
            r.warning(
                text.span(),
                format!("{name}: the webhook to {origin} is listed twice"),
            )
            .help("remove the duplicate, or it is called twice per rollback");
            continue;
        }
        out.push(Webhook {
            url: text.into_inner(),
        });
    }
    out
}
