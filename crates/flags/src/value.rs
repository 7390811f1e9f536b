//! The values a flag can serve, and their types.

use serde_json::{Map, Number, Value};

/// The largest integer a JSON number can carry exactly in every client (2^53 - 1); flagd's schema refuses
/// integer variants beyond it because JavaScript and many JSON parsers would round them.
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// One variant's value. Numbers keep whether they were written as integers, because OpenFeature clients
/// ask for an integer or a float and flagd answers TYPE_MISMATCH when an integer is asked of a float.
#[derive(Debug, Clone, PartialEq)]
pub enum FlagValue {
    Bool(bool),
    String(String),
    Integer(i64),
    Float(f64),
    Object(Map<String, Value>),
}

/// The type of a flag's variants (all variants of a flag share one), as flagd's schema defines them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VariantType {
    Boolean,
    String,
    Number,
    Object,
}

/// The type a caller asks a flag for: OpenFeature's resolve methods. Integer and float are both
/// [`VariantType::Number`] in a definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestedType {
    Boolean,
    String,
    Integer,
    Float,
    Object,
}

impl FlagValue {
    /// Reads a variant value from JSON; `None` for what no variant can hold (null, arrays, unsafe
    /// integers, NaN).
    pub fn from_json(value: &Value) -> Option<FlagValue> {
        match value {
            Value::Bool(b) => Some(FlagValue::Bool(*b)),
            Value::String(s) => Some(FlagValue::String(s.clone())),
            Value::Number(n) => number_value(n),
            Value::Object(map) => Some(FlagValue::Object(map.clone())),
            Value::Null | Value::Array(_) => None,
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            FlagValue::Bool(b) => Value::Bool(*b),
            FlagValue::String(s) => Value::String(s.clone()),
            FlagValue::Integer(i) => Value::Number((*i).into()),
            // A float that is not finite never gets in (see `from_json`); `Null` keeps this total.
            FlagValue::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
            FlagValue::Object(map) => Value::Object(map.clone()),
        }
    }

    pub fn variant_type(&self) -> VariantType {
        match self {
            FlagValue::Bool(_) => VariantType::Boolean,
            FlagValue::String(_) => VariantType::String,
            FlagValue::Integer(_) | FlagValue::Float(_) => VariantType::Number,
            FlagValue::Object(_) => VariantType::Object,
        }
    }

    /// Whether a caller asking for `requested` can take this value: a float accepts an integer, an
    /// integer does not accept a float (flagd's reference evaluator's rule).
    pub fn fits(&self, requested: RequestedType) -> bool {
        matches!(
            (self, requested),
            (FlagValue::Bool(_), RequestedType::Boolean)
                | (FlagValue::String(_), RequestedType::String)
                | (FlagValue::Integer(_), RequestedType::Integer)
                | (
                    FlagValue::Integer(_) | FlagValue::Float(_),
                    RequestedType::Float
                )
                | (FlagValue::Object(_), RequestedType::Object)
        )
    }
}

fn number_value(n: &Number) -> Option<FlagValue> {
    if let Some(i) = n.as_i64() {
        return (i.abs() <= MAX_SAFE_INTEGER).then_some(FlagValue::Integer(i));
    }
    if n.is_u64() {
        return None; // beyond i64, so certainly beyond the safe range
    }
    n.as_f64().filter(|f| f.is_finite()).map(FlagValue::Float)
}

/// "a string", "an array", … for messages that say what was found instead.
pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl std::fmt::Display for VariantType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VariantType::Boolean => "boolean",
            VariantType::String => "string",
            VariantType::Number => "number",
            VariantType::Object => "object",
        })
    }
}

impl std::fmt::Display for RequestedType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RequestedType::Boolean => "boolean",
            RequestedType::String => "string",
            RequestedType::Integer => "integer",
            RequestedType::Float => "float",
            RequestedType::Object => "object",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integers_stay_integers_and_unsafe_ones_are_refused() {
        assert_eq!(
            FlagValue::from_json(&json!(10)),
            Some(FlagValue::Integer(10))
        );
        assert_eq!(
            FlagValue::from_json(&json!(0.0)),
            Some(FlagValue::Float(0.0))
        );
        assert_eq!(FlagValue::from_json(&json!(9007199254740992_i64)), None);
        assert_eq!(
            FlagValue::from_json(&json!(9007199254740991_i64)),
            Some(FlagValue::Integer(MAX_SAFE_INTEGER))
        );
        assert_eq!(FlagValue::from_json(&json!(null)), None);
        assert_eq!(FlagValue::from_json(&json!([1])), None);
    }

    #[test]
    fn a_float_request_takes_an_integer_but_not_the_reverse() {
        assert!(FlagValue::Integer(1).fits(RequestedType::Float));
        assert!(!FlagValue::Float(1.0).fits(RequestedType::Integer));
        assert!(!FlagValue::Bool(true).fits(RequestedType::Integer));
    }
}
