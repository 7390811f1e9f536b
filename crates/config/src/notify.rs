//! `[[notify]]`: webhooks told when a release is rolled back (Slack-compatible JSON).
//!
//! A webhook URL is a credential in all but name (whoever has Slack's `/services/T…/B…/…` can post to
//! the channel), so messages about one show only its scheme and host, and its text is blanked out of
//! snippets whether or not it is valid.

use crate::report::Report;
use crate::table::Section;
use crate::url;
use slipway_core::spec::{SecretSource, Webhook, WebhookUrl};
use std::collections::BTreeSet;
use toml::de::DeValue;

const EXAMPLE: &str = "[[notify]]\nurl = \"https://hooks.slack.com/services/...\"";

/// Reads `notify`: an array of tables (`[[notify]]`), or a single `[notify]` table.
pub(crate) fn read(r: &mut Report, root: &Section, base_dir: &std::path::Path) -> Vec<Webhook> {
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
        if let DeValue::Table(_) = url_value.get_ref() {
            if let Some(source) = secret_source(r, &s, url_value, base_dir) {
                out.push(Webhook {
                    url: WebhookUrl::Secret(source),
                });
            }
            continue;
        }
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
        r.warning(
            text.span(),
            format!("{name}: this webhook URL is stored with every release"),
        )
        .help("a webhook URL is a credential: keep it out of slipway.toml with url = { env = \"SLACK_WEBHOOK_URL\" } or url = { file = \"/run/secrets/slack-webhook\" }");
        out.push(Webhook {
            url: WebhookUrl::Plain(text.into_inner()),
        });
    }
    out
}

/// `url = { env = "NAME" }` or `url = { file = "path" }`: resolved by the daemon when it sends.
fn secret_source(
    r: &mut Report,
    s: &Section,
    value: &toml::Spanned<DeValue>,
    base_dir: &std::path::Path,
) -> Option<SecretSource> {
    let source = s.as_table(r, "url", value, "notify.url")?;
    source.check_keys(r, &["file", "env"]);
    let file = source.text(r, "file", "\"/run/secrets/slack-webhook\"");
    let var = source.text(r, "env", "\"SLACK_WEBHOOK_URL\"");
    match (file, var) {
        (Some(f), None) => {
            // Relative to the config's folder, like [secrets] files.
            let path = base_dir.join(f.get_ref());
            Some(SecretSource::File(
                std::path::absolute(&path).unwrap_or(path),
            ))
        }
        (None, Some(v)) if crate::env::valid_var_name(v.get_ref()) => {
            Some(SecretSource::Env(v.into_inner()))
        }
        (None, Some(v)) => {
            r.error(
                v.span(),
                "notify url: `env` must name a variable".to_string(),
            )
            .help("name the daemon's environment variable, e.g. env = \"SLACK_WEBHOOK_URL\"");
            None
        }
        _ => {
            r.error(value.span(), "notify url: give exactly one of `env` or `file`".to_string())
                .help("url = { env = \"SLACK_WEBHOOK_URL\" } or url = { file = \"/run/secrets/slack-webhook\" }");
            None
        }
    }
}
