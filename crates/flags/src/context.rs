//! The evaluation context: who is asking (the targeting key) and anything else the caller knows.

use serde_json::{Map, Value};

use crate::evaluation::{ErrorCode, EvaluationError};
use crate::value::json_kind;

/// The context key OpenFeature and OFREP use for the targeting key.
pub const TARGETING_KEY: &str = "targetingKey";

/// Attributes a targeting rule can read with `var`. The targeting key is one of them, under
/// `targetingKey`, exactly as rules read it; flagd's `$flagd.*` fields are added at evaluation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvaluationContext {
    attributes: Map<String, Value>,
}

impl EvaluationContext {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads a context as OFREP sends it: a JSON object whose `targetingKey`, if present, is a string.
    pub fn from_json(value: &Value) -> Result<Self, EvaluationError> {
        match value {
            Value::Object(attributes) => EvaluationContext::from_object(attributes.clone()),
            other => Err(invalid(format!(
                "the context must be a JSON object, not {}",
                json_kind(other)
            ))),
        }
    }

    /// Like [`EvaluationContext::from_json`], taking the object without copying it.
    pub fn from_object(attributes: Map<String, Value>) -> Result<Self, EvaluationError> {
        match attributes.get(TARGETING_KEY) {
            None | Some(Value::String(_)) => Ok(EvaluationContext { attributes }),
            Some(other) => Err(invalid(format!(
                "`targetingKey` must be a string, not {}",
                json_kind(other)
            ))),
        }
    }

    pub fn with_targeting_key(self, key: impl Into<String>) -> Self {
        self.with(TARGETING_KEY, Value::String(key.into()))
    }

    pub fn with(mut self, name: impl Into<String>, value: Value) -> Self {
        self.attributes.insert(name.into(), value);
        self
    }

    pub fn targeting_key(&self) -> Option<&str> {
        self.attributes.get(TARGETING_KEY).and_then(Value::as_str)
    }

    pub fn attributes(&self) -> &Map<String, Value> {
        &self.attributes
    }
}

fn invalid(message: String) -> EvaluationError {
    EvaluationError {
        code: ErrorCode::InvalidContext,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_context_is_an_object_with_a_string_targeting_key() {
        let context =
            EvaluationContext::from_json(&json!({"targetingKey": "u1", "plan": "pro"})).unwrap();
        assert_eq!(context.targeting_key(), Some("u1"));
        let error = EvaluationContext::from_json(&json!([1])).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidContext);
        let error = EvaluationContext::from_json(&json!({"targetingKey": 7})).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidContext);
        assert!(error.message.contains("targetingKey"), "{}", error.message);
    }
}
