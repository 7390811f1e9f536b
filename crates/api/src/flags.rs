//! The flag admin API's JSON shapes, shared by the daemon and the CLI.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// `GET /v1/apps/{app}/flags`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FlagList {
    pub app: String,
    /// Bumped on every change (OFREP's ETag is made from it).
    pub generation: i64,
    pub flags: Vec<FlagSummary>,
    /// Flags whose targeting does not compile: they answer PARSE_ERROR.
    #[serde(default)]
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FlagSummary {
    pub key: String,
    /// `ENABLED` / `DISABLED`.
    pub state: String,
    pub killed: bool,
    /// boolean, string, number, object.
    pub kind: String,
    pub default_variant: Option<String>,
    pub variants: Vec<String>,
    pub targeting: bool,
    /// Unix milliseconds of the last change.
    pub changed_at: i64,
    /// Everyone gets the same answer, unchanged for longer than the `stale_after` asked for.
    pub stale: bool,
    /// The running ramp, if any: "25% of users get on".
    pub ramp: Option<String>,
}

/// `GET /v1/apps/{app}/flags/{key}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FlagView {
    pub app: String,
    pub key: String,
    /// The flag in flagd's format, plus `"killed": true` when killed (its targeting kept).
    pub definition: Value,
    pub changed_at: i64,
    pub ramp: Option<RampView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RampView {
    pub id: i64,
    pub variant: String,
    pub steps: Vec<u32>,
    pub step: usize,
    pub percent: u32,
    pub every_ms: u64,
    /// running, holding, completed, reverted, cancelled.
    pub status: String,
    pub reason: Option<String>,
    /// The latest judgement of the current step.
    pub judgement: Option<String>,
    pub started_at: i64,
    pub started_by: String,
    pub finished_at: Option<i64>,
    /// While it runs: unix ms when the current step's time is up (it advances then if its traffic passes).
    #[serde(default)]
    pub step_ends_at: Option<i64>,
    /// Whether the app's traffic judges each step (`false`: `--unguarded`, time alone).
    #[serde(default)]
    pub guarded: bool,
}

/// `POST /v1/apps/{app}/flags/{key}`: one change to one flag.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FlagEdit {
    pub who: String,
    /// set, enable, disable, kill, delete.
    #[schema(pattern = "^(set|enable|disable|kill|delete)$")]
    pub action: String,
    /// set: a whole flag in flagd's format (creates or replaces it).
    #[serde(default)]
    pub definition: Option<Value>,
    /// set: the default variant.
    #[serde(default)]
    pub default_variant: Option<String>,
    /// set: the targeting rule (`{}` removes it).
    #[serde(default)]
    pub targeting: Option<Value>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// `POST /v1/apps/{app}/flag-set`: apply a flagd file.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FlagImport {
    pub who: String,
    /// The file's text, checked by the daemon.
    pub document: String,
    /// Keep flags the file does not mention (default: the file is the whole set).
    #[serde(default)]
    pub merge: bool,
}

/// What a change did: each flag changed, with its new audit number.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct FlagChanges {
    pub generation: i64,
    pub changed: Vec<FlagChanged>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FlagChanged {
    pub flag: String,
    pub seq: i64,
    /// created, changed, deleted.
    pub what: String,
}

/// `POST /v1/apps/{app}/flags/{key}/revert`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FlagRevert {
    pub who: String,
    /// The audit number whose "after" the flag goes back to.
    pub to: i64,
}

/// `POST /v1/apps/{app}/flags/{key}/ramp`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FlagRampRequest {
    pub who: String,
    /// Stop the running ramp, leaving the flag as it is now.
    #[serde(default)]
    pub stop: bool,
    #[serde(default)]
    pub variant: String,
    #[serde(default)]
    pub steps: Vec<u32>,
    #[serde(default)]
    pub every_ms: u64,
    /// Largest allowed error-rate increase per step (0.01 = one point); default 1 %.
    #[serde(default)]
    pub max_error_rate_increase: Option<f64>,
    /// Largest allowed latency increase per step: (percentile, milliseconds).
    #[serde(default)]
    pub max_latency_increase: Option<(f64, u64)>,
    /// Advance on time alone.
    #[serde(default)]
    pub unguarded: bool,
}

/// `POST /v1/apps/{app}/flag-keys`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FlagKeyCreate {
    pub who: String,
    /// 1 to 100 bytes, no `/`.
    #[schema(min_length = 1, pattern = "^[^/]*$")]
    pub name: String,
    /// Requests per second; 0 for unlimited; default 1000.
    #[serde(default)]
    #[schema(minimum = 0)]
    pub rate_per_sec: Option<f64>,
}

/// The answer to a key creation: the only time the key is ever shown.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FlagKeyCreated {
    pub app: String,
    pub name: String,
    pub key: String,
    pub rate_per_sec: f64,
}

/// A key as listed: never the key, nor its hash.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FlagKeyView {
    pub name: String,
    pub rate_per_sec: f64,
    pub created_at: i64,
    pub created_by: String,
}

/// One change to one flag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FlagAudit {
    pub app: String,
    pub flag: String,
    /// 1, 2, 3… per flag.
    pub seq: i64,
    /// Unix milliseconds.
    pub at: i64,
    pub who: String,
    /// `set`, `enable`, `kill`, `import`, `revert`, `ramp`…
    pub action: String,
    pub reason: Option<String>,
    /// The flag before and after, as JSON; `None` when it did not exist (created / deleted).
    pub before: Option<String>,
    pub after: Option<String>,
}

/// `100/s`, `30/min`, `1000/h`, or `unlimited` (stored as 0).
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let text = text.trim();
    if text == "unlimited" {
        return Ok(0.0);
    }
    let (count, per) = text.split_once('/').ok_or_else(|| {
        format!("rate {text:?}: write it like 100/s, 30/min, 1000/h or unlimited")
    })?;
    let count: f64 = count
        .trim()
        .parse()
        .ok()
        .filter(|c: &f64| c.is_finite() && *c > 0.0)
        .ok_or_else(|| format!("rate {text:?}: the count must be a positive number"))?;
    let seconds = match per.trim() {
        "s" | "sec" | "second" => 1.0,
        "m" | "min" | "minute" => 60.0,
        "h" | "hour" => 3600.0,
        other => return Err(format!("rate {text:?}: per {other:?}? use s, min or h")),
    };
    Ok(count / seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_spelled_per_second_minute_or_hour() {
        assert_eq!(parse_rate("100/s"), Ok(100.0));
        assert_eq!(parse_rate("30/min"), Ok(0.5));
        assert_eq!(parse_rate("unlimited"), Ok(0.0));
        assert!(parse_rate("fast").unwrap_err().contains("100/s"));
        assert!(parse_rate("0/s").unwrap_err().contains("positive"));
        assert!(parse_rate("5/week").is_err());
    }
}
