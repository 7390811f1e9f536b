//! `sem_ver`: comparing semantic versions, as flagd does.
//!
//! `{"sem_ver": [version, op, version]}` with `op` one of `=`, `!=`, `<`, `<=`, `>`, `>=`, `^` (same
//! major), `~` (same major and minor). Versions may carry a `v`/`V` prefix and may be partial (`1`,
//! `1.2`, padded with zeros); numbers in the context are read as their decimal text. Build metadata
//! never affects the comparison. Anything malformed gives `null`, so the flag serves its default.

use std::borrow::Cow;
use std::cmp::Ordering;

use semver::Version;
use serde_json::Value;

pub fn compare(args: &[&Value]) -> Option<bool> {
    let [left, op, right] = args else { return None };
    let (left, right) = (parse(left)?, parse(right)?);
    let order = (left.major, left.minor, left.patch)
        .cmp(&(right.major, right.minor, right.patch))
        .then_with(|| left.pre.cmp(&right.pre));
    Some(match op.as_str()? {
        "=" => order == Ordering::Equal,
        "!=" => order != Ordering::Equal,
        "<" => order == Ordering::Less,
        "<=" => order != Ordering::Greater,
        ">" => order == Ordering::Greater,
        ">=" => order != Ordering::Less,
        "^" => left.major == right.major,
        "~" => left.major == right.major && left.minor == right.minor,
        _ => return None,
    })
}

fn parse(value: &Value) -> Option<Version> {
    let text: Cow<'_, str> = match value {
        Value::String(s) => Cow::Borrowed(s),
        // Python's `str()` of a float keeps one decimal (`1.0`), which Rust's `{:?}` also does.
        Value::Number(n) if n.is_f64() => Cow::Owned(format!("{:?}", n.as_f64()?)),
        Value::Number(n) => Cow::Owned(n.to_string()),
        _ => return None,
    };
    let text = text.strip_prefix(['v', 'V']).unwrap_or(&text);
    // Pad `1` and `1.2` to three parts, keeping any `-pre` or `+build` suffix.
    let core_end = text.find(['-', '+']).unwrap_or(text.len());
    let (core, suffix) = text.split_at(core_end);
    match 2usize.saturating_sub(core.matches('.').count()) {
        0 => Version::parse(text).ok(),
        padding => Version::parse(&format!("{core}{}{suffix}", ".0".repeat(padding))).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(left: Value, op: &str, right: &str) -> Option<bool> {
        compare(&[&left, &json!(op), &json!(right)])
    }

    #[test]
    fn orders_by_precedence_ignoring_build_metadata() {
        assert_eq!(check(json!("2.0.0-alpha"), "<", "2.0.0"), Some(true));
        assert_eq!(check(json!("1.0.0+other"), "=", "1.0.0+build"), Some(true));
        assert_eq!(check(json!("1.0.0-a.2"), "<", "1.0.0-a.10"), Some(true));
        assert_eq!(check(json!("3.0.1"), "~", "3.0.0"), Some(true));
        assert_eq!(check(json!("3.1.0"), "~", "3.0.0"), Some(false));
        assert_eq!(check(json!("3.1.0"), "^", "3.0.0"), Some(true));
    }

    #[test]
    fn prefixes_partial_versions_and_numbers() {
        assert_eq!(check(json!("V1.0.0"), "=", "v1.0.0"), Some(true));
        assert_eq!(check(json!("1"), "^", "1"), Some(true));
        assert_eq!(check(json!(1.2), ">", "1.1"), Some(true));
        assert_eq!(check(json!(1.0), "=", "1"), Some(true));
        assert_eq!(check(json!(2), ">", "1.1"), Some(true));
        assert_eq!(check(json!("1-rc.1"), "<", "1.0.0"), Some(true));
    }

    #[test]
    fn malformed_input_is_null() {
        assert_eq!(check(json!("2.0.0.0"), "=", "2.0.0"), None);
        assert_eq!(check(json!("not-a-version"), "=", "1.0.0"), None);
        assert_eq!(check(json!("1.0.0"), "===", "1.0.0"), None);
        assert_eq!(check(json!(true), "=", "1.0.0"), None);
        assert_eq!(compare(&[&json!("1.0.0"), &json!("=")]), None);
    }
}
