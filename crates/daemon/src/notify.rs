//! Tells people when a release was rolled back: a Slack-compatible `{"text": ...}` POST to every
//! configured webhook. Webhook URLs carry credentials, so messages name only their host.

use slipway_core::spec::{Webhook, WebhookUrl};
use std::collections::BTreeMap;
use std::time::Duration;

/// `https://hooks.slack.com/…` for logs: never the path or query, which hold the token.
pub fn redacted(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!("{}://{}/…", u.scheme(), u.host_str().unwrap_or("?")),
        Err(_) => "<invalid url>".to_string(),
    }
}

/// Sends `text` to every webhook, in the background; failures are logged, never retried forever.
pub fn send(client: &reqwest::Client, hooks: &[Webhook], text: String) {
    for hook in hooks {
        let client = client.clone();
        let url = match &hook.url {
            WebhookUrl::Plain(url) => url.clone(),
            WebhookUrl::Secret(source) => {
                // Resolved now, like an instance's secrets: the value is never stored.
                let one = BTreeMap::from([("webhook url".to_string(), source.clone())]);
                match crate::secrets::resolve(&one) {
                    Ok(mut v) => v.remove("webhook url").unwrap_or_default(),
                    Err(e) => {
                        tracing::warn!("cannot send a rollback webhook: {e}");
                        continue;
                    }
                }
            }
        };
        let body = serde_json::json!({ "text": text });
        tokio::spawn(async move {
            let answer = client
                .post(&url)
                .json(&body)
                .timeout(Duration::from_secs(10))
                .send()
                .await;
            match answer {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => tracing::warn!("webhook {} answered {}", redacted(&url), r.status()),
                Err(e) => tracing::warn!("webhook {} failed: {}", redacted(&url), e.without_url()),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redaction_keeps_only_the_host() {
        let r = super::redacted("https://hooks.slack.com/services/T000/B000/SECRET");
        assert_eq!(r, "https://hooks.slack.com/…");
    }
}
