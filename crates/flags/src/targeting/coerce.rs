//! JSONLogic's implicit conversions: truthiness, numbers, strings and loose equality.
//!
//! JSONLogic inherits them from JavaScript; where implementations disagree we follow flagd's reference
//! evaluator (Python, `panzi-json-logic`), because the differential test compares against it. One
//! deliberate difference: a non-finite number (NaN, infinity) has no JSON form, so it becomes `null`.

use serde_json::{Number, Value};

pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(_) => true,
    }
}

/// A value as a number; NaN where JavaScript would give NaN.
pub fn to_number(value: &Value) -> f64 {
    match value {
        Value::Null => 0.0,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) => parse_number(s),
        Value::Array(items) => match items.as_slice() {
            [] => 0.0,
            [one] => to_number(one),
            _ => f64::NAN,
        },
        Value::Object(_) => f64::NAN,
    }
}

fn parse_number(text: &str) -> f64 {
    let trimmed = text.trim();
    // Rust (like Python) would read these; JavaScript would not.
    if ["inf", "+inf", "-inf"].contains(&trimmed.to_ascii_lowercase().as_str()) {
        return f64::NAN;
    }
    trimmed.parse().unwrap_or(f64::NAN)
}

pub fn is_integer(value: &Value) -> bool {
    matches!(value, Value::Number(n) if n.is_i64() || n.is_u64())
}

/// The JSON number for an arithmetic result. `integral` says whether every operand was an integer, so
/// that `1 + 2` stays `3` (not `3.0`) the way the reference evaluator keeps it.
pub fn number(result: f64, integral: bool) -> Value {
    if integral && result.fract() == 0.0 && result.abs() < 9.2e18 {
        return Value::Number((result as i64).into());
    }
    Number::from_f64(result).map_or(Value::Null, Value::Number)
}

pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    write_string(value, &mut out);
    out
}

fn write_string(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => out.push_str(&i.to_string()),
            (None, Some(u)) => out.push_str(&u.to_string()),
            _ => out.push_str(&format_float(n.as_f64().unwrap_or(f64::NAN))),
        },
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(item, out);
            }
        }
        Value::Object(_) => out.push_str("[object Object]"),
    }
}

/// A float with 15 significant digits and no trailing zeros (C's `%.15g`), which is how the reference
/// evaluator turns floats into strings: `0.1 + 0.2` reads `0.3`, `3.0` reads `3`.
pub fn format_float(f: f64) -> String {
    if !f.is_finite() {
        return if f.is_nan() {
            "nan".into()
        } else if f > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    if f == 0.0 {
        return "0".into();
    }
    let scientific = format!("{f:.14e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..15).contains(&exponent) {
        let decimals = usize::try_from(14 - exponent).unwrap_or(0);
        trim_zeros(format!("{f:.decimals$}"))
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!(
            "{}e{sign}{:02}",
            trim_zeros(mantissa.to_string()),
            exponent.abs()
        )
    }
}

fn trim_zeros(mut text: String) -> String {
    if text.contains('.') {
        text.truncate(text.trim_end_matches('0').trim_end_matches('.').len());
    }
    text
}

/// JSONLogic `==`: equality after JavaScript-style conversions.
pub fn loose_equal(a: &Value, b: &Value) -> bool {
    use Value::*;
    match (a, b) {
        (Null, Null) => true,
        (Bool(x), Bool(y)) => x == y,
        (String(x), String(y)) => x == y,
        // As in JavaScript, null equals only null (the reference evaluator would say `null == 0`).
        (Null, _) | (_, Null) => false,
        (Number(_), _) | (_, Number(_)) => to_number(a) == to_number(b),
        // Two arrays or objects are equal only when they are the same object, which values never are.
        (Array(_) | Object(_), Array(_) | Object(_)) => false,
        (String(s), Array(_) | Object(_)) | (Array(_) | Object(_), String(s)) => {
            let other = if matches!(a, String(_)) { b } else { a };
            *s == to_string(other)
        }
        _ => to_number(a) == to_number(b),
    }
}

/// JSONLogic `===`: same JSON type and same value (numbers compare by value, so `1 === 1.0`).
pub fn strict_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

#[derive(Clone, Copy)]
pub enum Ordering {
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

/// JSONLogic's `<`, `<=`, `>`, `>=`: numerically when either side is a number (or boolean), as strings
/// when either side is a string, numerically otherwise.
pub fn compare(a: &Value, b: &Value, ordering: Ordering) -> bool {
    let numeric = |v: &Value| matches!(v, Value::Number(_) | Value::Bool(_));
    let by_string = !numeric(a) && !numeric(b) && (a.is_string() || b.is_string());
    if by_string {
        let (x, y) = (to_string(a), to_string(b));
        return match ordering {
            Ordering::Less => x < y,
            Ordering::LessOrEqual => x <= y,
            Ordering::Greater => x > y,
            Ordering::GreaterOrEqual => x >= y,
        };
    }
    let (x, y) = (to_number(a), to_number(b));
    match ordering {
        Ordering::Less => x < y,
        Ordering::LessOrEqual => x <= y,
        Ordering::Greater => x > y,
        Ordering::GreaterOrEqual => x >= y,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_read_like_percent_g() {
        assert_eq!(format_float(3.0), "3");
        assert_eq!(format_float(0.1 + 0.2), "0.3");
        assert_eq!(format_float(1.5), "1.5");
        assert_eq!(format_float(-0.00001), "-1e-05");
        assert_eq!(format_float(1e20), "1e+20");
        assert_eq!(format_float(123456789012345.0), "123456789012345");
    }

    #[test]
    fn loose_equality_converts_like_jsonlogic() {
        assert!(loose_equal(&json!(1), &json!("1")));
        assert!(loose_equal(&json!(true), &json!(1)));
        assert!(loose_equal(&json!("1"), &json!(true)));
        assert!(!loose_equal(&json!(null), &json!(0)));
        assert!(loose_equal(&json!("a,b"), &json!(["a", "b"])));
        assert!(!loose_equal(&json!([1]), &json!([1])));
    }

    #[test]
    fn comparison_prefers_numbers_then_strings() {
        assert!(compare(&json!("10"), &json!(9), Ordering::Greater));
        assert!(compare(&json!("10"), &json!("9"), Ordering::Less));
        assert!(!compare(&json!("x"), &json!(1), Ordering::Less));
    }

    #[test]
    fn truthiness() {
        assert!(!truthy(&json!([])));
        assert!(truthy(&json!({})));
        assert!(!truthy(&json!("")));
        assert!(!truthy(&json!(0.0)));
        assert!(truthy(&json!("0")));
    }
}
