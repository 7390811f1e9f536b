//! Walking a parsed TOML table by hand: known keys, typed reads, and messages that name the place.
//!
//! serde's derive would reject unknown keys and wrong types too, but without the suggestions and the
//! "write this instead" help that make a config error quick to fix; so the walk is explicit.

use crate::duration::{self, DurationError};
use crate::error::ConfigIssue;
use crate::report::Report;
use crate::suggest;
use std::ops::{Range, RangeInclusive};
use std::time::Duration;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

pub(crate) type Value<'i> = Spanned<DeValue<'i>>;

/// Where each key of the schema lives, to say "`replicas` belongs in [processes.<name>]".
const HOMES: &[(&str, &[&str])] = &[
    ("the top level", &["app"]),
    ("[artifact]", &["exclude"]),
    ("[routing]", &["hosts"]),
    (
        "[processes.<name>]",
        &[
            "cmd",
            "replicas",
            "grace",
            "drain_timeout",
            "stream_drain_timeout",
            "readiness",
            "liveness",
            "startup",
            "stop_signal",
            "image",
            "port",
            "cap_add",
            "cap_drop_all",
            "no_new_privileges",
            "read_only",
            "user",
            "memory",
            "cpus",
            "network",
            "secrets_as_env",
            "autoscale",
            "idle_after",
            "wake_timeout",
            "idle_paths",
        ],
    ),
    ("[release]", &["rollback_cmd", "migrations", "stable_watch"]),
    ("[cron.<name>]", &["schedule", "concurrency", "history"]),
    ("[drill]", &["weight", "error_rate"]),
    (
        "a probe",
        &[
            "http",
            "tcp",
            "exec",
            "period",
            "timeout",
            "initial_delay",
            "success_threshold",
            "failure_threshold",
        ],
    ),
    (
        "[deploy]",
        &[
            "strategy",
            "progress_deadline",
            "max_surge",
            "max_unavailable",
            "auto_promote",
            "scale_down_delay",
            "steps",
            "sticky",
            "background_analysis",
        ],
    ),
    (
        "a canary step",
        &["weight", "pause", "analysis", "route", "mirror"],
    ),
    (
        "[analysis.<name>]",
        &[
            "error_rate",
            "latency_p95",
            "latency_p99",
            "prometheus",
            "command",
        ],
    ),
    ("[releases]", &["keep"]),
    (
        "[slo]",
        &[
            "availability",
            "window",
            "alerts",
            "canary_gate",
            "hold_deploys",
        ],
    ),
    ("[[notify]]", &["url"]),
];

/// A table of the config, with its dotted path for messages (`""` for the top level).
#[derive(Clone)]
pub(crate) struct Section<'t, 'i> {
    pub(crate) path: &'t str,
    pub(crate) span: Range<usize>,
    table: &'t DeTable<'i>,
    /// Set for tables that have no dotted path of their own, e.g. "[deploy] step 3".
    display: Option<&'t str>,
}

impl<'t, 'i> Section<'t, 'i> {
    pub(crate) fn new(path: &'t str, span: Range<usize>, table: &'t DeTable<'i>) -> Self {
        Self {
            path,
            span,
            table,
            display: None,
        }
    }

    /// A table inside an array, named in messages by `display` as written (e.g. "[deploy] step 3").
    pub(crate) fn named(display: &'t str, span: Range<usize>, table: &'t DeTable<'i>) -> Self {
        Self {
            path: display,
            span,
            table,
            display: Some(display),
        }
    }

    /// `[processes.web]`, or "the top level".
    pub(crate) fn name(&self) -> String {
        if let Some(display) = self.display {
            display.into()
        } else if self.path.is_empty() {
            "the top level".into()
        } else {
            format!("[{}]", self.path)
        }
    }

    /// "`grace` in [processes.web]".
    pub(crate) fn key_ref(&self, key: &str) -> String {
        format!("`{key}` in {}", self.name())
    }

    pub(crate) fn get(&self, key: &str) -> Option<&'t Value<'i>> {
        self.table.get(key)
    }

    pub(crate) fn key_span(&self, key: &str) -> Option<Range<usize>> {
        self.table.get_key_value(key).map(|(k, _)| k.span())
    }

    /// Entries in key order: (key, key span, value).
    pub(crate) fn entries(
        &self,
    ) -> impl Iterator<Item = (&'t str, Range<usize>, &'t Value<'i>)> + use<'t, 'i> {
        self.table
            .iter()
            .map(|(k, v)| (k.get_ref().as_ref(), k.span(), v))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Reports every key that is not in `allowed`, with the likeliest fix.
    pub(crate) fn check_keys(&self, r: &mut Report, allowed: &[&str]) {
        for (key, span, _) in self.entries() {
            if allowed.contains(&key) {
                continue;
            }
            let help = if let Some(near) = suggest::closest(key, allowed) {
                format!("did you mean `{near}`?")
            } else if let Some((home, _)) = HOMES.iter().find(|(_, keys)| keys.contains(&key)) {
                format!("`{key}` belongs in {home}")
            } else {
                format!("valid keys here: {}", suggest::one_of(allowed, '`'))
            };
            r.error(span, format!("unknown key `{key}` in {}", self.name()))
                .label("unknown key")
                .help(help);
        }
    }

    /// Reports a missing required key, pointing at the table.
    /// Stays quiet when a misspelling of `key` is present: its unknown-key error already says it.
    pub(crate) fn missing(&self, r: &mut Report, key: &str, help: impl Into<String>) {
        if self
            .entries()
            .any(|(k, _, _)| k != key && suggest::closest(k, &[key]).is_some())
        {
            return;
        }
        r.error(
            self.span.clone(),
            format!("missing `{key}` in {}", self.name()),
        )
        .help(help);
    }

    /// Reports a value of the wrong type: "... expected a string like \"30s\", found integer 30".
    pub(crate) fn wrong_type<'r>(
        &self,
        r: &'r mut Report,
        key: &str,
        value: &Value,
        expected: &str,
    ) -> &'r mut ConfigIssue {
        let found = found(r, value);
        r.error(
            value.span(),
            format!("{}: expected {expected}, found {found}", self.key_ref(key)),
        )
        .label(format!("expected {expected}"))
    }

    pub(crate) fn string(&self, r: &mut Report, key: &str) -> Option<Spanned<String>> {
        let value = self.get(key)?;
        match value.get_ref() {
            DeValue::String(s) => Some(Spanned::new(value.span(), s.to_string())),
            DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_) => {
                let raw = r.text(value.span()).to_string();
                self.wrong_type(r, key, value, "a string")
                    .help(format!("quote it: {key} = \"{raw}\""));
                None
            }
            _ => {
                self.wrong_type(r, key, value, "a string");
                None
            }
        }
    }

    /// A string that must not be blank.
    pub(crate) fn text(&self, r: &mut Report, key: &str, example: &str) -> Option<Spanned<String>> {
        let s = self.string(r, key)?;
        if s.get_ref().trim().is_empty() {
            r.error(s.span(), format!("{} is empty", self.key_ref(key)))
                .help(format!("write {key} = {example}"));
            return None;
        }
        Some(s)
    }

    pub(crate) fn boolean(&self, r: &mut Report, key: &str) -> Option<Spanned<bool>> {
        let value = self.get(key)?;
        match value.get_ref() {
            DeValue::Boolean(b) => Some(Spanned::new(value.span(), *b)),
            DeValue::String(s) if matches!(s.as_ref(), "true" | "false") => {
                self.wrong_type(r, key, value, "true or false")
                    .help(format!("remove the quotes: {key} = {s}"));
                None
            }
            _ => {
                self.wrong_type(r, key, value, "true or false")
                    .help(format!("write {key} = true or {key} = false"));
                None
            }
        }
    }

    /// An integer within `range`.
    pub(crate) fn integer(
        &self,
        r: &mut Report,
        key: &str,
        range: RangeInclusive<u32>,
    ) -> Option<Spanned<u32>> {
        let value = self.get(key)?;
        let n = match value.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
            DeValue::String(s) if s.trim().parse::<i64>().is_ok() => {
                self.wrong_type(r, key, value, "an integer")
                    .help(format!("remove the quotes: {key} = {}", s.trim()));
                return None;
            }
            _ => {
                self.wrong_type(r, key, value, "an integer");
                return None;
            }
        };
        match n
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| range.contains(n))
        {
            Some(n) => Some(Spanned::new(value.span(), n)),
            None => {
                let (lo, hi) = (range.start(), range.end());
                r.error(
                    value.span(),
                    format!("{} must be between {lo} and {hi}", self.key_ref(key)),
                )
                .label("out of range")
                .help(format!("write a whole number from {lo} to {hi}"));
                None
            }
        }
    }

    /// A finite number, integer or float (`min = 1`, `max = 0.05`).
    pub(crate) fn number(&self, r: &mut Report, key: &str) -> Option<Spanned<f64>> {
        let value = self.get(key)?;
        let n = match value.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(&i.as_str().replace('_', ""), i.radix())
                .ok()
                .map(|n| n as f64),
            DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok(),
            DeValue::String(s) if s.trim().parse::<f64>().is_ok_and(f64::is_finite) => {
                self.wrong_type(r, key, value, "a number")
                    .help(format!("remove the quotes: {key} = {}", s.trim()));
                return None;
            }
            _ => {
                self.wrong_type(r, key, value, "a number")
                    .help(format!("write a number, e.g. {key} = 0.05"));
                return None;
            }
        };
        match n.filter(|n| n.is_finite()) {
            Some(n) => Some(Spanned::new(value.span(), n)),
            None => {
                r.error(
                    value.span(),
                    format!("{} must be a finite number", self.key_ref(key)),
                )
                .label("not finite")
                .help(format!("write a number, e.g. {key} = 0.05"));
                None
            }
        }
    }

    /// A duration string like `"30s"`.
    pub(crate) fn duration(&self, r: &mut Report, key: &str) -> Option<Spanned<Duration>> {
        let value = self.get(key)?;
        let text = match value.get_ref() {
            DeValue::String(s) => s,
            DeValue::Integer(i) => {
                let n = i.as_str();
                let help = if n.starts_with('-') {
                    format!(
                        "durations cannot be negative; valid examples: {}",
                        duration::EXAMPLES
                    )
                } else {
                    format!(
                        "write \"{n}s\" (durations need a unit: {})",
                        duration::EXAMPLES
                    )
                };
                self.wrong_type(r, key, value, "a duration string like \"30s\"")
                    .help(help);
                return None;
            }
            _ => {
                self.wrong_type(r, key, value, "a duration string like \"30s\"")
                    .help(format!("valid examples: {}", duration::EXAMPLES));
                return None;
            }
        };
        match duration::parse(text) {
            Ok(d) => Some(Spanned::new(value.span(), d)),
            Err(e) => {
                let (message, help) = match e {
                    DurationError::Empty => (
                        "is empty",
                        format!("valid examples: {}", duration::EXAMPLES),
                    ),
                    DurationError::Negative => (
                        "cannot be negative",
                        format!("valid examples: {}", duration::EXAMPLES),
                    ),
                    DurationError::TooLong => (
                        "is too long",
                        "use a shorter duration, like \"1h\"".to_string(),
                    ),
                    DurationError::Malformed {
                        suggestion: Some(s),
                    } => (
                        "is not a valid duration",
                        format!("write \"{s}\" (valid examples: {})", duration::EXAMPLES),
                    ),
                    DurationError::Malformed { suggestion: None } => (
                        "is not a valid duration",
                        format!(
                            "write a number and a unit (ms, s, m, h, d), e.g. {}",
                            duration::EXAMPLES
                        ),
                    ),
                };
                r.error(
                    value.span(),
                    format!("{} {message}: \"{text}\"", self.key_ref(key)),
                )
                .label("not a duration")
                .help(help);
                None
            }
        }
    }

    /// A duration that must be more than zero.
    pub(crate) fn positive_duration(&self, r: &mut Report, key: &str) -> Option<Spanned<Duration>> {
        let d = self.duration(r, key)?;
        if d.get_ref().is_zero() {
            r.error(
                d.span(),
                format!("{} must be more than zero", self.key_ref(key)),
            )
            .help("e.g. \"1s\"");
            return None;
        }
        Some(d)
    }

    /// An array of strings.
    pub(crate) fn string_list(&self, r: &mut Report, key: &str) -> Option<Vec<Spanned<String>>> {
        let value = self.get(key)?;
        let DeValue::Array(items) = value.get_ref() else {
            let issue = self.wrong_type(r, key, value, "an array of strings");
            if let DeValue::String(s) = value.get_ref() {
                issue.help(format!("write {key} = [\"{s}\"]"));
            }
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => out.push(Spanned::new(item.span(), s.to_string())),
                _ => {
                    let found = found(r, item);
                    r.error(
                        item.span(),
                        format!("{}: expected strings, found {found}", self.key_ref(key)),
                    )
                    .label("expected a string");
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// A sub-table (`[a.b]` or `b = { ... }`).
    pub(crate) fn table(
        &self,
        r: &mut Report,
        key: &str,
        path: &'t str,
    ) -> Option<Section<'t, 'i>> {
        let value = self.get(key)?;
        self.as_table(r, key, value, path)
    }

    /// `value` (found under `key`) as a table named `path`.
    pub(crate) fn as_table(
        &self,
        r: &mut Report,
        key: &str,
        value: &'t Value<'i>,
        path: &'t str,
    ) -> Option<Section<'t, 'i>> {
        match value.get_ref() {
            DeValue::Table(t) => Some(Section::new(path, value.span(), t)),
            _ => {
                self.wrong_type(r, key, value, "a table");
                None
            }
        }
    }
}

/// "integer 30", "string \"fast\"", "boolean true", "an array", ...
pub(crate) fn found(r: &Report, value: &Value) -> String {
    let raw = r.text(value.span());
    let short: String = raw.chars().take(40).collect();
    let short = if short.len() < raw.len() {
        format!("{short}...")
    } else {
        short
    };
    match value.get_ref() {
        DeValue::String(_) => format!("string {short}"),
        DeValue::Integer(_) => format!("integer {short}"),
        DeValue::Float(_) => format!("float {short}"),
        DeValue::Boolean(b) => format!("boolean {b}"),
        DeValue::Datetime(_) => format!("date-time {short}"),
        DeValue::Array(_) => "an array".into(),
        DeValue::Table(_) => "a table".into(),
    }
}
