//! The flagd flag-definition format (JSON): what flagd users already have, read and written as-is.
//!
//! ```json
//! { "flags": { "new-checkout": { "state": "ENABLED", "variants": {"on": true, "off": false},
//!                                "defaultVariant": "off", "targeting": {...}, "metadata": {...} } },
//!   "$evaluators": { "beta-users": {...} },
//!   "metadata": { "flagSetId": "shop" } }
//! ```
//!
//! Reading applies the rules of flagd's JSON schema (flags.json) and says which flag breaks which.
//! Like newer flagd, an omitted `state` means ENABLED and omitted `variants` mean `{"true": true,
//! "false": false}`; `flags` may also be flagd's array form (`[{"key": …}, …]`). Unknown fields are
//! ignored, as the schema allows. Writing gives back an equal set; a killed flag is written the way it
//! evaluates — without targeting — so flagd serving the file would agree with slipway.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::definition_error::{DefinitionError, FlagProblem};
use crate::flag::{Flag, FlagState};
use crate::flag_set::FlagSet;
use crate::metadata::{self, Metadata, MetadataValue};
use crate::value::{FlagValue, json_kind};

const SCHEMA: &str = "https://flagd.dev/schema/v0/flags.json";

impl FlagSet {
    /// Reads a flagd flag-definition file.
    pub fn from_flagd_json(text: &str) -> Result<FlagSet, DefinitionError> {
        let document: Value =
            serde_json::from_str(text).map_err(|e| DefinitionError::Json(e.to_string()))?;
        FlagSet::from_flagd_value(&document)
    }

    pub fn from_flagd_value(document: &Value) -> Result<FlagSet, DefinitionError> {
        let Value::Object(document) = document else {
            return Err(DefinitionError::Document(format!(
                "a flag definition file is a JSON object with \"flags\", not {}",
                json_kind(document)
            )));
        };
        let mut set = FlagSet::new();
        set.set_metadata(set_metadata(document.get("metadata"))?);
        set.set_evaluators(evaluators(document.get("$evaluators"))?)?;
        for (key, definition) in flag_definitions(document.get("flags"))? {
            let flag = flag_from_flagd(definition).map_err(|problem| DefinitionError::Flag {
                flag: key.clone(),
                problem,
            })?;
            set.insert(key, flag)?;
        }
        Ok(set)
    }

    /// Writes the set as a flagd flag-definition file (pretty-printed).
    pub fn to_flagd_json(&self) -> String {
        serde_json::to_string_pretty(&self.to_flagd_value())
            .expect("a JSON value always serializes")
    }

    pub fn to_flagd_value(&self) -> Value {
        let mut document = Map::new();
        document.insert("$schema".into(), json!(SCHEMA));
        let flags = self
            .flags()
            .map(|(key, flag)| (key.to_string(), flag_to_flagd(flag)))
            .collect();
        document.insert("flags".into(), Value::Object(flags));
        if !self.evaluators().is_empty() {
            let evaluators = self
                .evaluators()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            document.insert("$evaluators".into(), Value::Object(evaluators));
        }
        if !self.metadata().is_empty() {
            document.insert("metadata".into(), metadata::to_json(self.metadata()));
        }
        Value::Object(document)
    }
}

/// One flag's definition in flagd's format, as found under `flags`.
pub fn flag_from_flagd(definition: &Value) -> Result<Flag, FlagProblem> {
    let Value::Object(fields) = definition else {
        return Err(FlagProblem::NotAnObject(json_kind(definition)));
    };
    let state = match fields.get("state") {
        None => FlagState::Enabled,
        Some(Value::String(s)) if s == "ENABLED" => FlagState::Enabled,
        Some(Value::String(s)) if s == "DISABLED" => FlagState::Disabled,
        Some(other) => return Err(FlagProblem::InvalidState(other.to_string())),
    };
    let variants = match fields.get("variants") {
        None => BTreeMap::from([
            ("true".to_string(), FlagValue::Bool(true)),
            ("false".to_string(), FlagValue::Bool(false)),
        ]),
        Some(Value::Object(variants)) => variants
            .iter()
            .map(|(name, value)| match FlagValue::from_json(value) {
                Some(value) => Ok((name.clone(), value)),
                None => Err(FlagProblem::UnsupportedValue {
                    variant: name.clone(),
                    found: unsupported_kind(value),
                }),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(FlagProblem::VariantsNotAnObject(json_kind(other))),
    };
    let default_variant = match fields.get("defaultVariant") {
        // flagd treats "" like null: no default variant.
        None | Some(Value::Null) => None,
        Some(Value::String(name)) if name.is_empty() => None,
        Some(Value::String(name)) => Some(name.clone()),
        Some(other) => return Err(FlagProblem::InvalidDefaultVariant(json_kind(other))),
    };
    let targeting = match fields.get("targeting") {
        None | Some(Value::Null) => None,
        Some(rule @ Value::Object(_)) => Some(rule.clone()),
        Some(other) => return Err(FlagProblem::TargetingNotAnObject(json_kind(other))),
    };
    let metadata = flag_metadata(fields.get("metadata"))?;
    let flag = Flag {
        state,
        variants,
        default_variant,
        targeting,
        metadata,
        killed: false,
    };
    flag.validate()?;
    Ok(flag)
}

/// One flag in flagd's format.
pub fn flag_to_flagd(flag: &Flag) -> Value {
    let mut fields = Map::new();
    let state = match flag.state {
        FlagState::Enabled => "ENABLED",
        FlagState::Disabled => "DISABLED",
    };
    fields.insert("state".into(), json!(state));
    let variants = flag
        .variants
        .iter()
        .map(|(name, value)| (name.clone(), value.to_json()))
        .collect();
    fields.insert("variants".into(), Value::Object(variants));
    if let Some(name) = &flag.default_variant {
        fields.insert("defaultVariant".into(), json!(name));
    }
    if let (false, Some(rule)) = (flag.killed, &flag.targeting) {
        fields.insert("targeting".into(), rule.clone());
    }
    if !flag.metadata.is_empty() {
        fields.insert("metadata".into(), metadata::to_json(&flag.metadata));
    }
    Value::Object(fields)
}

fn flag_definitions(flags: Option<&Value>) -> Result<Vec<(String, &Value)>, DefinitionError> {
    match flags {
        None => Ok(Vec::new()),
        Some(Value::Object(flags)) => Ok(flags
            .iter()
            .map(|(key, flag)| (key.clone(), flag))
            .collect()),
        // flagd's import format: a list of flags, each with its "key".
        Some(Value::Array(flags)) => flags
            .iter()
            .enumerate()
            .map(|(i, flag)| match flag.get("key") {
                Some(Value::String(key)) if !key.is_empty() => Ok((key.clone(), flag)),
                _ => Err(DefinitionError::Document(format!(
                    "flag #{} in the \"flags\" list has no \"key\" string",
                    i + 1
                ))),
            })
            .collect(),
        Some(other) => Err(DefinitionError::Document(format!(
            "\"flags\" must be an object of flag keys to flags, not {}",
            json_kind(other)
        ))),
    }
}

fn evaluators(evaluators: Option<&Value>) -> Result<BTreeMap<String, Value>, DefinitionError> {
    match evaluators {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(evaluators)) => Ok(evaluators
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()),
        Some(other) => Err(DefinitionError::Document(format!(
            "\"$evaluators\" must be an object of names to rules, not {}",
            json_kind(other)
        ))),
    }
}

fn set_metadata(value: Option<&Value>) -> Result<Metadata, DefinitionError> {
    metadata(value).map_err(|fault| match fault {
        MetadataFault::Entry { key, found } => DefinitionError::SetMetadata { key, found },
        MetadataFault::NotAnObject(found) => {
            DefinitionError::Document(format!("\"metadata\" must be a JSON object, not {found}"))
        }
    })
}

fn flag_metadata(value: Option<&Value>) -> Result<Metadata, FlagProblem> {
    metadata(value).map_err(|fault| match fault {
        MetadataFault::Entry { key, found } => FlagProblem::InvalidMetadata { key, found },
        MetadataFault::NotAnObject(found) => FlagProblem::MetadataNotAnObject(found),
    })
}

/// What is wrong with a `metadata` object, before it is said at set or at flag level.
enum MetadataFault {
    Entry { key: String, found: &'static str },
    NotAnObject(&'static str),
}

/// A `metadata` object (flag set or flag): absent is empty, values are strings, numbers or booleans.
fn metadata(value: Option<&Value>) -> Result<Metadata, MetadataFault> {
    match value {
        None | Some(Value::Null) => Ok(Metadata::new()),
        Some(Value::Object(entries)) => entries
            .iter()
            .map(|(key, value)| match MetadataValue::from_json(value) {
                Some(value) => Ok((key.clone(), value)),
                None => Err(MetadataFault::Entry {
                    key: key.clone(),
                    found: json_kind(value),
                }),
            })
            .collect(),
        Some(other) => Err(MetadataFault::NotAnObject(json_kind(other))),
    }
}

fn unsupported_kind(value: &Value) -> &'static str {
    match value {
        Value::Number(_) => "an integer beyond ±(2^53-1)",
        other => json_kind(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(flag: Value) -> String {
        FlagSet::from_flagd_value(&json!({"flags": {"f": flag}}))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn errors_name_the_flag_and_the_rule_broken() {
        assert_eq!(
            problem(json!({"state": "ON", "variants": {"a": 1}})),
            "flag \"f\": \"state\" must be \"ENABLED\" or \"DISABLED\", not \"ON\""
        );
        assert_eq!(
            problem(json!({"variants": {"a": 1, "b": "two"}, "defaultVariant": "a"})),
            "flag \"f\": variant \"b\" is a string but variant \"a\" is a number; all variants of a flag have one type"
        );
        assert!(
            problem(json!({"variants": {"big": 9007199254740992_i64}}))
                .contains("beyond ±(2^53-1)")
        );
        assert!(problem(json!({"variants": {}})).contains("at least one variant"));
        assert!(problem(json!({"variants": {"a": [1]}})).contains("variant \"a\" is an array"));
        assert!(
            problem(json!({"variants": {"a": true}, "targeting": "a"}))
                .contains("\"targeting\" must be")
        );
        assert!(
            problem(json!({"variants": {"a": true}, "metadata": {"x": [1]}}))
                .contains("metadata \"x\"")
        );
        assert!(
            FlagSet::from_flagd_json("{")
                .unwrap_err()
                .to_string()
                .starts_with("the flag definition is not valid JSON")
        );
    }

    #[test]
    fn newer_flagd_shorthands_are_accepted() {
        let set = FlagSet::from_flagd_value(&json!({"flags": {"f": {"defaultVariant": "true"}}}))
            .unwrap();
        let flag = set.get("f").unwrap();
        assert_eq!((flag.state, flag.variants.len()), (FlagState::Enabled, 2));
        let listed = json!({"flags": [{"key": "g", "state": "ENABLED", "variants": {"a": "x"}, "defaultVariant": "a"}]});
        assert!(
            FlagSet::from_flagd_value(&listed)
                .unwrap()
                .get("g")
                .is_some()
        );
    }

    #[test]
    fn a_killed_flag_is_written_without_its_targeting() {
        let mut flag = Flag::boolean(false).with_targeting(json!({"if": [true, "on"]}));
        assert!(flag_to_flagd(&flag).get("targeting").is_some());
        flag.kill();
        assert!(flag_to_flagd(&flag).get("targeting").is_none());
    }
}
