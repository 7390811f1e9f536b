//! The operators whose arguments are all evaluated before they apply: comparisons, arithmetic,
//! strings, arrays, and flagd's own `fractional`, `sem_ver`, `starts_with`, `ends_with`.

use std::borrow::Cow;

use serde_json::Value;

use super::coerce::{
    self, Ordering, is_integer, loose_equal, strict_equal, to_number, to_string, truthy,
};
use super::compile::{Node, Operator};
use super::eval::{NULL, evaluate};
use super::var::{Scope, VarPath};
use super::{fractional, sem_ver, string_match};

pub fn apply<'a>(op: Operator, args: &'a [Node], scope: &Scope<'a>) -> Cow<'a, Value> {
    // Fixed-arity operators evaluate only the arguments they read; rules have no side effects, so
    // skipping the rest changes nothing.
    let arg = |i: usize| {
        args.get(i)
            .map_or(Cow::Borrowed(&NULL), |node| evaluate(node, scope))
    };
    let all = || {
        args.iter()
            .map(|node| evaluate(node, scope))
            .collect::<Vec<_>>()
    };
    let boolean = |b: bool| Cow::Owned(Value::Bool(b));
    match op {
        Operator::Equal => boolean(loose_equal(&arg(0), &arg(1))),
        Operator::NotEqual => boolean(!loose_equal(&arg(0), &arg(1))),
        Operator::StrictEqual => boolean(strict_equal(&arg(0), &arg(1))),
        Operator::StrictNotEqual => boolean(!strict_equal(&arg(0), &arg(1))),
        Operator::Less => boolean(ordered(&arg(0), &arg(1), &arg(2), Ordering::Less)),
        Operator::LessOrEqual => boolean(ordered(&arg(0), &arg(1), &arg(2), Ordering::LessOrEqual)),
        Operator::Greater => boolean(ordered(&arg(0), &arg(1), &arg(2), Ordering::Greater)),
        Operator::GreaterOrEqual => {
            boolean(ordered(&arg(0), &arg(1), &arg(2), Ordering::GreaterOrEqual))
        }
        Operator::Not => boolean(!truthy(&arg(0))),
        Operator::Truthy => boolean(truthy(&arg(0))),
        Operator::Add => Cow::Owned(fold(&all(), 0.0, |a, b| a + b)),
        Operator::Multiply => Cow::Owned(fold(&all(), 1.0, |a, b| a * b)),
        Operator::Subtract => {
            let (a, b) = (arg(0), arg(1));
            let integral = is_integer(&a) && (b.is_null() || is_integer(&b));
            let result = if b.is_null() {
                -to_number(&a)
            } else {
                to_number(&a) - to_number(&b)
            };
            Cow::Owned(coerce::number(result, integral))
        }
        Operator::Divide => Cow::Owned(coerce::number(
            to_number(&arg(0)) / to_number(&arg(1)),
            false,
        )),
        Operator::Remainder => {
            let (a, b) = (arg(0), arg(1));
            Cow::Owned(coerce::number(
                to_number(&a) % to_number(&b),
                is_integer(&a) && is_integer(&b),
            ))
        }
        Operator::Min => Cow::Owned(extreme(&all(), f64::min)),
        Operator::Max => Cow::Owned(extreme(&all(), f64::max)),
        Operator::In => boolean(contains(&arg(0), &arg(1))),
        Operator::Cat => Cow::Owned(Value::String(all().iter().map(|v| to_string(v)).collect())),
        Operator::Substr => Cow::Owned(Value::String(substr(
            &arg(0),
            &arg(1),
            args.get(2).map(|_| arg(2)).as_deref(),
        ))),
        Operator::Merge => Cow::Owned(Value::Array(merge(all()))),
        Operator::Missing => Cow::Owned(Value::Array(missing(&all(), scope))),
        Operator::MissingSome => Cow::Owned(Value::Array(missing_some(&arg(0), &arg(1), scope))),
        Operator::Log => arg(0),
        Operator::Fractional => {
            let (targeting_key, flag_key) = scope.bucketing_keys();
            fractional::pick(&all(), targeting_key.as_deref(), &flag_key)
                .unwrap_or(Cow::Borrowed(&NULL))
        }
        // flagd's operators insist on their argument count; checking it first spares collecting them.
        Operator::SemVer if args.len() == 3 => {
            nullable(sem_ver::compare(&[&arg(0), &arg(1), &arg(2)]))
        }
        Operator::StartsWith if args.len() == 2 => {
            nullable(string_match::starts_with(&arg(0), &arg(1)))
        }
        Operator::EndsWith if args.len() == 2 => {
            nullable(string_match::ends_with(&arg(0), &arg(1)))
        }
        Operator::SemVer | Operator::StartsWith | Operator::EndsWith => Cow::Borrowed(&NULL),
    }
}

fn nullable<'a>(result: Option<bool>) -> Cow<'a, Value> {
    Cow::Owned(result.map_or(Value::Null, Value::Bool))
}

/// `<` and friends; with a third argument, `a < b < c` (JSONLogic's "between").
fn ordered(a: &Value, b: &Value, c: &Value, ordering: Ordering) -> bool {
    if c.is_null() {
        coerce::compare(a, b, ordering)
    } else {
        coerce::compare(a, b, ordering) && coerce::compare(b, c, ordering)
    }
}

fn fold(args: &[Cow<'_, Value>], start: f64, step: impl Fn(f64, f64) -> f64) -> Value {
    let result = args.iter().fold(start, |acc, v| step(acc, to_number(v)));
    let integral = args.iter().all(|v| is_integer(v) || v.is_boolean());
    coerce::number(result, integral)
}

fn extreme(args: &[Cow<'_, Value>], pick: fn(f64, f64) -> f64) -> Value {
    let mut numbers = args.iter().map(|v| to_number(v));
    let Some(first) = numbers.next() else {
        return Value::Null;
    };
    // `f64::min` skips NaN; JavaScript's Math.min does not.
    let result = numbers.fold(first, |acc, n| {
        if acc.is_nan() || n.is_nan() {
            f64::NAN
        } else {
            pick(acc, n)
        }
    });
    coerce::number(result, args.iter().all(|v| is_integer(v)))
}

fn contains(needle: &Value, haystack: &Value) -> bool {
    match haystack {
        Value::Array(items) => items.iter().any(|item| strict_equal(item, needle)),
        Value::String(s) => s.contains(to_string(needle).as_str()),
        _ => false,
    }
}

/// `substr` counts characters, with JavaScript's negative start and length.
fn substr(text: &Value, start: &Value, length: Option<&Value>) -> String {
    let chars: Vec<char> = to_string(text).chars().collect();
    let len = chars.len() as i64;
    let start = to_number(start);
    let from = if start.is_nan() {
        0
    } else if start < 0.0 {
        let back = -start as i64;
        if back >= len { 0 } else { len - back }
    } else {
        (start as i64).min(len)
    };
    let to = match length.map(to_number) {
        None => len,
        Some(n) if n.is_nan() => from,
        Some(n) if n < 0.0 => (len + n as i64).max(from),
        Some(n) => from.saturating_add(n as i64).min(len),
    };
    chars[from as usize..to.max(from) as usize].iter().collect()
}

fn merge(args: Vec<Cow<'_, Value>>) -> Vec<Value> {
    let mut merged = Vec::new();
    for arg in args {
        match arg.into_owned() {
            Value::Array(items) => merged.extend(items),
            other => merged.push(other),
        }
    }
    merged
}

/// `missing`: the keys (given as arguments, or as one array) whose value is absent, null or "".
fn missing(args: &[Cow<'_, Value>], scope: &Scope<'_>) -> Vec<Value> {
    let keys: &[Value] = match args.first().map(|a| a.as_ref()) {
        Some(Value::Array(keys)) => keys,
        _ => {
            return args
                .iter()
                .filter(|key| is_missing(key, scope))
                .map(|key| key.as_ref().clone())
                .collect();
        }
    };
    keys.iter()
        .filter(|key| is_missing(key, scope))
        .cloned()
        .collect()
}

fn is_missing(key: &Value, scope: &Scope<'_>) -> bool {
    match scope.lookup(&VarPath::parse(key)) {
        None => true,
        Some(value) => value.as_str() == Some(""),
    }
}

/// `missing_some`: nothing when at least `need` of `keys` are present, else the missing ones.
fn missing_some(need: &Value, keys: &Value, scope: &Scope<'_>) -> Vec<Value> {
    let Value::Array(list) = keys else {
        return Vec::new();
    };
    let missing = missing(&[Cow::Borrowed(keys)], scope);
    if (list.len() - missing.len()) as f64 >= to_number(need) {
        Vec::new()
    } else {
        missing
    }
}
