//! `var`: reading the evaluation context (or, inside `map`/`filter`/…, the current item).
//!
//! The context a rule sees is the caller's attributes plus what flagd adds: `targetingKey` and
//! `$flagd.{flagKey,timestamp}`. Building that object for every evaluation would copy the whole
//! context, so lookups go to the right place instead, and only `{"var": ""}` (the whole data) builds it.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::context::{EvaluationContext, TARGETING_KEY};

const FLAGD: &str = "$flagd";

/// A `var` path, split once at compile time.
#[derive(Debug, Clone, PartialEq)]
pub enum VarPath {
    /// `""` or `null`: the whole data.
    Whole,
    /// `$flagd.flagKey`; the compiler replaces it with the flag's key.
    FlagKey,
    /// `$flagd.timestamp`: the caller's clock, in unix seconds.
    Timestamp,
    /// A numeric key: an index into an array (or string) item.
    Index(f64),
    /// A dotted path, one segment per key or array index.
    Path(Vec<String>),
}

/// What `var` reads from.
pub enum Scope<'a> {
    Context {
        context: &'a EvaluationContext,
        flag_key: &'a str,
        now_unix: i64,
    },
    /// Inside `map`, `filter`, `reduce`, `all`, `some`, `none`.
    Item(&'a Value),
}

impl VarPath {
    pub fn parse(key: &Value) -> VarPath {
        let text = match key {
            Value::Null => return VarPath::Whole,
            Value::Number(n) => return VarPath::Index(n.as_f64().unwrap_or(f64::NAN)),
            Value::String(s) => Cow::Borrowed(s.as_str()),
            other => Cow::Owned(super::coerce::to_string(other)),
        };
        match text.as_ref() {
            "" => VarPath::Whole,
            "$flagd.flagKey" => VarPath::FlagKey,
            "$flagd.timestamp" => VarPath::Timestamp,
            path => VarPath::Path(path.split('.').map(str::to_string).collect()),
        }
    }
}

impl<'a> Scope<'a> {
    /// The value at `path`, or `None` where JSONLogic would use the default (missing or `null`).
    pub fn lookup(&self, path: &VarPath) -> Option<Cow<'a, Value>> {
        let found = match (self, path) {
            (Scope::Item(item), VarPath::Whole) => Some(Cow::Borrowed(*item)),
            (Scope::Item(item), VarPath::Index(index)) => index_into(item, *index),
            (Scope::Item(item), VarPath::Path(segments)) => walk(item, segments),
            (Scope::Item(item), VarPath::FlagKey) => walk(item, &[FLAGD.into(), "flagKey".into()]),
            (Scope::Item(item), VarPath::Timestamp) => {
                walk(item, &[FLAGD.into(), "timestamp".into()])
            }
            (Scope::Context { .. }, VarPath::Whole) => Some(Cow::Owned(self.whole_context())),
            // The context is an object: a numeric key never names one of its entries.
            (Scope::Context { .. }, VarPath::Index(_)) => None,
            (Scope::Context { flag_key, .. }, VarPath::FlagKey) => {
                Some(Cow::Owned(Value::String(flag_key.to_string())))
            }
            (Scope::Context { now_unix, .. }, VarPath::Timestamp) => {
                Some(Cow::Owned(Value::from(*now_unix)))
            }
            (Scope::Context { context, .. }, VarPath::Path(segments)) => {
                let (first, rest) = segments.split_first()?;
                if first == FLAGD {
                    walk(&self.flagd_object(), rest).map(|value| Cow::Owned(value.into_owned()))
                } else {
                    walk(context.attributes().get(first.as_str())?, rest)
                }
            }
        };
        found.filter(|value| !value.is_null())
    }

    /// The targeting key and flag key the shorthand `fractional` hashes.
    pub fn bucketing_keys(&self) -> (Option<Cow<'a, str>>, Cow<'a, str>) {
        match self {
            Scope::Context {
                context, flag_key, ..
            } => (
                context.targeting_key().map(Cow::Borrowed),
                Cow::Borrowed(*flag_key),
            ),
            Scope::Item(item) => {
                let text = |path: &[&str]| {
                    let segments: Vec<String> = path.iter().map(|s| s.to_string()).collect();
                    match walk(item, &segments) {
                        Some(Cow::Borrowed(Value::String(s))) => Some(Cow::Borrowed(s.as_str())),
                        _ => None,
                    }
                };
                (
                    text(&[TARGETING_KEY]),
                    text(&[FLAGD, "flagKey"]).unwrap_or_default(),
                )
            }
        }
    }

    fn flagd_object(&self) -> Value {
        let Scope::Context {
            flag_key, now_unix, ..
        } = self
        else {
            return Value::Null;
        };
        let mut flagd = Map::new();
        flagd.insert("flagKey".into(), Value::String(flag_key.to_string()));
        flagd.insert("timestamp".into(), Value::from(*now_unix));
        Value::Object(flagd)
    }

    fn whole_context(&self) -> Value {
        let Scope::Context { context, .. } = self else {
            return Value::Null;
        };
        let mut data = context.attributes().clone();
        data.insert(FLAGD.into(), self.flagd_object());
        data.entry(TARGETING_KEY).or_insert(Value::Null);
        Value::Object(data)
    }
}

fn index_into(value: &Value, index: f64) -> Option<Cow<'_, Value>> {
    if index.fract() != 0.0 || index < 0.0 {
        return None;
    }
    let index = index as usize;
    match value {
        Value::Array(items) => items.get(index).map(Cow::Borrowed),
        Value::String(s) => s
            .chars()
            .nth(index)
            .map(|c| Cow::Owned(Value::String(c.to_string()))),
        _ => None,
    }
}

/// Follows `segments` from `value`. Arrays and strings take canonical decimal indexes and `length`,
/// as JavaScript property access does.
fn walk<'v>(value: &'v Value, segments: &[String]) -> Option<Cow<'v, Value>> {
    let mut current = value;
    for (i, segment) in segments.iter().enumerate() {
        match current {
            Value::Array(_) | Value::String(_) if segment == "length" => {
                let length = match current {
                    Value::Array(items) => items.len(),
                    Value::String(s) => s.chars().count(),
                    _ => 0,
                };
                // Like the reference evaluator, `length` ends the path.
                return Some(Cow::Owned(Value::from(length)));
            }
            Value::Array(items) => current = items.get(canonical_index(segment)?)?,
            Value::String(s) => {
                let c = s.chars().nth(canonical_index(segment)?)?;
                let rest = walk(&Value::String(c.to_string()), &segments[i + 1..])?.into_owned();
                return Some(Cow::Owned(rest));
            }
            Value::Object(map) => current = map.get(segment.as_str())?,
            _ => return None,
        }
    }
    Some(Cow::Borrowed(current))
}

/// `"0"`, `"12"`: an index written the way a number prints; `"01"`, `"-1"` and `" 1"` are not.
fn canonical_index(segment: &str) -> Option<usize> {
    let canonical = segment == "0"
        || (!segment.starts_with('0') && segment.bytes().all(|b| b.is_ascii_digit()));
    if canonical {
        segment.parse().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(p: &str) -> VarPath {
        VarPath::parse(&json!(p))
    }

    #[test]
    fn paths_walk_objects_arrays_and_strings() {
        let item = json!({"user": {"name": "ann", "tags": ["a", "b"]}});
        let scope = Scope::Item(&item);
        assert_eq!(
            scope.lookup(&path("user.name")).as_deref(),
            Some(&json!("ann"))
        );
        assert_eq!(
            scope.lookup(&path("user.tags.1")).as_deref(),
            Some(&json!("b"))
        );
        assert_eq!(scope.lookup(&path("user.tags.01")), None);
        assert_eq!(
            scope.lookup(&path("user.tags.length")).as_deref(),
            Some(&json!(2))
        );
        assert_eq!(
            scope.lookup(&path("user.name.0")).as_deref(),
            Some(&json!("a"))
        );
        assert_eq!(scope.lookup(&path("user.missing")), None);
    }

    #[test]
    fn the_context_has_flagd_fields_and_the_targeting_key() {
        let context = EvaluationContext::new()
            .with_targeting_key("tk")
            .with("email", json!("a@b"));
        let scope = Scope::Context {
            context: &context,
            flag_key: "f",
            now_unix: 42,
        };
        assert_eq!(
            scope.lookup(&path("$flagd.timestamp")).as_deref(),
            Some(&json!(42))
        );
        assert_eq!(
            scope.lookup(&path("$flagd")).as_deref(),
            Some(&json!({"flagKey": "f", "timestamp": 42}))
        );
        assert_eq!(
            scope.lookup(&path("targetingKey")).as_deref(),
            Some(&json!("tk"))
        );
        let whole = scope.lookup(&VarPath::Whole).unwrap().into_owned();
        assert_eq!(whole["email"], json!("a@b"));
        assert_eq!(whole["$flagd"]["flagKey"], json!("f"));
    }
}
