//! Flag and flag-set metadata: string keys, scalar values, returned with every evaluation.

use std::collections::BTreeMap;

use serde_json::{Number, Value};

/// Metadata of a flag set or a flag. A flag's own entries win over the set's when both are returned.
pub type Metadata = BTreeMap<String, MetadataValue>;

/// flagd allows only booleans, strings and numbers as metadata values.
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataValue {
    Bool(bool),
    String(String),
    Integer(i64),
    Float(f64),
}

impl MetadataValue {
    pub fn from_json(value: &Value) -> Option<MetadataValue> {
        match value {
            Value::Bool(b) => Some(MetadataValue::Bool(*b)),
            Value::String(s) => Some(MetadataValue::String(s.clone())),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Some(MetadataValue::Integer(i)),
                None => n
                    .as_f64()
                    .filter(|f| f.is_finite())
                    .map(MetadataValue::Float),
            },
            Value::Null | Value::Array(_) | Value::Object(_) => None,
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            MetadataValue::Bool(b) => Value::Bool(*b),
            MetadataValue::String(s) => Value::String(s.clone()),
            MetadataValue::Integer(i) => Value::Number((*i).into()),
            MetadataValue::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        }
    }
}

/// The metadata an evaluation returns: the set's, overridden key by key by the flag's.
pub fn merged(set: &Metadata, flag: &Metadata) -> Metadata {
    let mut merged = set.clone();
    merged.extend(flag.iter().map(|(k, v)| (k.clone(), v.clone())));
    merged
}

pub fn to_json(metadata: &Metadata) -> Value {
    Value::Object(
        metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect(),
    )
}
