//! A flag's targeting rule (JSONLogic) in words, for the flags page: "if email ends_with @example.com →
//! on; else → fractional on targetingKey: on 25 % / off 75 %". Shared rules (`$ref`) are shown by name
//! with their own rule inline. Pure; anything it does not know is shown as compact JSON, never dropped.

use serde_json::Value;
use std::collections::BTreeMap;

/// Longest summary shown; a longer one ends with "…" (the flag's JSON is one click away).
const MAX_CHARS: usize = 400;
/// `$ref`s inside `$ref`s are expanded this deep; deeper ones (or cycles) are shown by name only.
const MAX_REF_DEPTH: usize = 2;

/// The rule as a sentence. `evaluators`: the set's shared rules, for `$ref`.
pub fn summary(rule: &Value, evaluators: &BTreeMap<String, Value>) -> String {
    let s = Words { evaluators }.outcome(rule, 0);
    if s.chars().count() > MAX_CHARS {
        let cut: String = s.chars().take(MAX_CHARS - 1).collect();
        format!("{cut}…")
    } else {
        s
    }
}

struct Words<'a> {
    evaluators: &'a BTreeMap<String, Value>,
}

/// `{"op": args}` with args always a list (JSONLogic allows a single argument without brackets).
fn operation(v: &Value) -> Option<(&str, Vec<&Value>)> {
    let obj = v.as_object()?;
    if obj.len() != 1 {
        return None;
    }
    let (op, args) = obj.iter().next()?;
    let args = match args {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    Some((op.as_str(), args))
}

fn percent(part: f64, total: f64) -> String {
    let p = part * 100.0 / total;
    if (p - p.round()).abs() < 0.05 {
        format!("{} %", p.round())
    } else {
        format!("{p:.1} %")
    }
}

impl Words<'_> {
    /// What a rule returns: a variant name, or "the default variant" for null.
    fn outcome(&self, v: &Value, depth: usize) -> String {
        match v {
            Value::String(name) => name.clone(),
            Value::Null => "the default variant".into(),
            Value::Bool(b) => b.to_string(),
            _ => match operation(v) {
                Some(("if" | "?:", args)) => self.branches(&args, depth),
                Some(("fractional", args)) => self.fractional(&args, depth),
                _ => self.expr(v, depth),
            },
        }
    }

    fn branches(&self, args: &[&Value], depth: usize) -> String {
        let mut parts = Vec::new();
        for (i, pair) in args.chunks(2).enumerate() {
            match pair {
                [cond, then] => parts.push(format!(
                    "{}if {} → {}",
                    if i == 0 { "" } else { "else " },
                    self.expr(cond, depth),
                    self.outcome(then, depth)
                )),
                [otherwise] => parts.push(format!("else → {}", self.outcome(otherwise, depth))),
                _ => {}
            }
        }
        if args.len().is_multiple_of(2) {
            parts.push("else → the default variant".into());
        }
        parts.join("; ")
    }

    fn fractional(&self, args: &[&Value], depth: usize) -> String {
        // Without a key (the first argument is already a bucket) flagd hashes flag key + targetingKey.
        let (key, buckets) = match args.first() {
            Some(Value::Array(_)) | None => ("flag key + targetingKey".to_string(), args),
            Some(key) => (self.expr(key, depth), &args[1..]),
        };
        let buckets: Vec<(String, f64)> = buckets
            .iter()
            .filter_map(|b| b.as_array())
            .filter_map(|b| {
                let name = b.first().map(|n| self.outcome(n, depth))?;
                let weight = b.get(1).map_or(Some(1.0), Value::as_f64)?;
                Some((name, weight.max(0.0)))
            })
            .collect();
        let total: f64 = buckets.iter().map(|b| b.1).sum();
        if total <= 0.0 {
            return format!("fractional on {key}: no weights (serves the default variant)");
        }
        let shares: Vec<String> = buckets
            .iter()
            .map(|(name, w)| format!("{name} {}", percent(*w, total)))
            .collect();
        format!("fractional on {key}: {}", shares.join(" / "))
    }

    /// A condition or value inside a rule.
    fn expr(&self, v: &Value, depth: usize) -> String {
        match v {
            Value::String(s) if s.is_empty() || s.contains(char::is_whitespace) => v.to_string(),
            Value::String(s) => s.clone(),
            Value::Array(items) => format!(
                "[{}]",
                items
                    .iter()
                    .map(|i| self.expr(i, depth))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Value::Object(_) => self.op(v, depth),
            other => other.to_string(),
        }
    }

    fn op(&self, v: &Value, depth: usize) -> String {
        let Some((op, args)) = operation(v) else {
            return v.to_string();
        };
        let e = |a: &Value| self.expr(a, depth);
        // Operands that are themselves and/or read better in parentheses.
        let grouped = |a: &Value| match operation(a) {
            Some(("and" | "or", _)) => format!("({})", e(a)),
            _ => e(a),
        };
        match (op, args.as_slice()) {
            ("var", [name, ..]) => match name.as_str() {
                Some("") => "the context".into(),
                Some(n) => n.to_string(),
                None => e(name),
            },
            ("$ref", [Value::String(name)]) => match self.evaluators.get(name) {
                Some(rule) if depth < MAX_REF_DEPTH => {
                    format!("{name} ({})", self.expr(rule, depth + 1))
                }
                _ => name.clone(),
            },
            ("and" | "or", items) => items
                .iter()
                .map(|a| grouped(a))
                .collect::<Vec<_>>()
                .join(if op == "and" { " and " } else { " or " }),
            ("!", [a]) => format!("not {}", grouped(a)),
            ("!!", [a]) => format!("{} is set", grouped(a)),
            ("<" | "<=", [a, b, c]) => format!("{} {op} {} {op} {}", e(a), e(b), e(c)),
            (
                "==" | "!=" | "===" | "!==" | "<" | "<=" | ">" | ">=" | "in" | "starts_with"
                | "ends_with",
                [a, b],
            ) => format!("{} {op} {}", e(a), e(b)),
            ("sem_ver", [a, cmp, b]) => {
                format!("{} {} {} (semver)", e(a), cmp.as_str().unwrap_or("?"), e(b))
            }
            ("missing", items) => format!(
                "missing {}",
                items.iter().map(|a| e(a)).collect::<Vec<_>>().join(", ")
            ),
            ("if" | "?:", _) | ("fractional", _) => self.outcome(v, depth),
            _ => v.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn evaluators(v: Value) -> BTreeMap<String, Value> {
        serde_json::from_value(v).unwrap()
    }

    fn words(rule: Value) -> String {
        let shared =
            evaluators(json!({"staff": {"ends_with": [{"var": "email"}, "@example.com"]}}));
        summary(&rule, &shared)
    }

    #[test]
    fn fractional_splits_read_as_percentages() {
        assert_eq!(
            words(json!({"fractional": [{"var": "targetingKey"}, ["on", 25], ["off", 75]]})),
            "fractional on targetingKey: on 25 % / off 75 %"
        );
        assert_eq!(
            words(json!({"fractional": [["a", 1], ["b", 2]]})),
            "fractional on flag key + targetingKey: a 33.3 % / b 66.7 %"
        );
        assert_eq!(
            words(json!({"fractional": [["a"], ["b"]]})),
            "fractional on flag key + targetingKey: a 50 % / b 50 %"
        );
    }

    #[test]
    fn conditions_read_as_sentences() {
        assert_eq!(
            words(json!({"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on"]})),
            "if email ends_with @example.com → on; else → the default variant"
        );
        assert_eq!(
            words(json!({"if": [
                {"$ref": "staff"}, "on",
                {"and": [{"in": [{"var": "country"}, ["de", "fr"]]}, {"!": {"var": "beta"}}]}, "off",
                {"fractional": [{"var": "targetingKey"}, ["on", 10], ["off", 90]]}
            ]})),
            "if staff (email ends_with @example.com) → on; else if country in [de, fr] and not beta → off; \
             else → fractional on targetingKey: on 10 % / off 90 %"
        );
        assert_eq!(
            words(json!({"if": [{"sem_ver": [{"var": "version"}, ">=", "1.2.0"]}, "new", null]})),
            "if version >= 1.2.0 (semver) → new; else → the default variant"
        );
    }

    #[test]
    fn unknown_rules_are_shown_not_dropped_and_long_ones_cut() {
        assert_eq!(words(json!({"no-such-op": [1]})), r#"{"no-such-op":[1]}"#);
        assert_eq!(words(json!("on")), "on");
        let long = json!({"in": [{"var": "id"}, (0..500).collect::<Vec<_>>()]});
        let s = words(long);
        assert!(s.ends_with('…') && s.chars().count() == MAX_CHARS, "{s}");
        // A $ref cycle is shown by name once deep enough.
        let cyclic = evaluators(json!({"a": {"$ref": "a"}}));
        assert_eq!(summary(&json!({"$ref": "a"}), &cyclic), "a (a (a))");
    }
}
