//! A set of flags (one app's), compiled and ready to evaluate.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::context::EvaluationContext;
use crate::definition_error::{DefinitionError, FlagProblem};
use crate::evaluation::{self, Evaluation};
use crate::flag::Flag;
use crate::metadata::{self, Metadata};
use crate::targeting::{Rule, RuleError};
use crate::value::RequestedType;

/// Flags by key, with the shared `$evaluators` their targeting can `$ref` and the set's metadata.
///
/// Every change goes through a method that validates the flag and recompiles what it affects, so the
/// compiled rules never disagree with the definitions. Targeting that cannot compile (an unknown
/// operator, a `$ref` to a missing evaluator) does not stop the set from loading — flagd loads it too
/// and answers PARSE_ERROR for that flag — but [`FlagSet::targeting_errors`] lists it for the operator.
#[derive(Debug, Clone, Default)]
pub struct FlagSet {
    entries: BTreeMap<String, Entry>,
    evaluators: BTreeMap<String, Value>,
    metadata: Metadata,
}

#[derive(Debug, Clone)]
struct Entry {
    flag: Flag,
    /// The active targeting, compiled; `None` when the flag has none (or is killed).
    rule: Option<Result<Rule, RuleError>>,
    /// The set's metadata overridden by the flag's, merged once here rather than per evaluation.
    metadata: Metadata,
}

impl FlagSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, key: &str) -> Option<&Flag> {
        self.entries.get(key).map(|entry| &entry.flag)
    }

    /// Flags in key order.
    pub fn flags(&self) -> impl Iterator<Item = (&str, &Flag)> {
        self.entries
            .iter()
            .map(|(key, entry)| (key.as_str(), &entry.flag))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds or replaces a flag; returns the one it replaced.
    pub fn insert(
        &mut self,
        key: impl Into<String>,
        flag: Flag,
    ) -> Result<Option<Flag>, DefinitionError> {
        let key = key.into();
        if key.is_empty() {
            return Err(DefinitionError::Flag {
                flag: key,
                problem: FlagProblem::EmptyKey,
            });
        }
        flag.validate().map_err(|problem| DefinitionError::Flag {
            flag: key.clone(),
            problem,
        })?;
        let entry = self.compile(&key, flag);
        Ok(self.entries.insert(key, entry).map(|old| old.flag))
    }

    pub fn remove(&mut self, key: &str) -> Option<Flag> {
        self.entries.remove(key).map(|entry| entry.flag)
    }

    /// Changes one flag in place (enable, disable, kill, new targeting, …); nothing changes if the
    /// result is invalid.
    pub fn update(
        &mut self,
        key: &str,
        change: impl FnOnce(&mut Flag),
    ) -> Result<(), DefinitionError> {
        let mut flag = self
            .get(key)
            .cloned()
            .ok_or_else(|| DefinitionError::UnknownFlag(key.to_string()))?;
        change(&mut flag);
        self.insert(key, flag).map(|_| ())
    }

    pub fn evaluators(&self) -> &BTreeMap<String, Value> {
        &self.evaluators
    }

    /// Replaces the shared rules and recompiles every flag against them.
    pub fn set_evaluators(
        &mut self,
        evaluators: BTreeMap<String, Value>,
    ) -> Result<(), DefinitionError> {
        if let Some((name, rule)) = evaluators.iter().find(|(_, rule)| !rule.is_object()) {
            return Err(DefinitionError::Evaluator {
                name: name.clone(),
                found: crate::value::json_kind(rule),
            });
        }
        self.evaluators = evaluators;
        self.recompile_all();
        Ok(())
    }

    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    pub fn set_metadata(&mut self, metadata: Metadata) {
        self.metadata = metadata;
        self.recompile_all();
    }

    /// Flags whose targeting cannot compile; they evaluate to PARSE_ERROR.
    pub fn targeting_errors(&self) -> impl Iterator<Item = (&str, &RuleError)> {
        self.entries
            .iter()
            .filter_map(|(key, entry)| match &entry.rule {
                Some(Err(error)) => Some((key.as_str(), error)),
                _ => None,
            })
    }

    /// Evaluates one flag. `now_unix` is what the rule sees as `$flagd.timestamp`.
    pub fn evaluate<'a>(
        &'a self,
        key: &str,
        context: &EvaluationContext,
        now_unix: i64,
    ) -> Evaluation<'a> {
        match self.entries.get_key_value(key) {
            Some((key, entry)) => evaluation::evaluate(
                key,
                &entry.flag,
                entry.rule.as_ref(),
                &entry.metadata,
                context,
                now_unix,
            ),
            None => Evaluation::not_found(key),
        }
    }

    /// Evaluates one flag for a caller that wants a value of one type (OpenFeature's typed methods).
    pub fn evaluate_as<'a>(
        &'a self,
        key: &str,
        requested: RequestedType,
        context: &EvaluationContext,
        now_unix: i64,
    ) -> Evaluation<'a> {
        self.evaluate(key, context, now_unix).expecting(requested)
    }

    /// Evaluates every flag, in key order (OFREP's bulk evaluation).
    pub fn evaluate_all<'a>(
        &'a self,
        context: &'a EvaluationContext,
        now_unix: i64,
    ) -> impl Iterator<Item = (&'a str, Evaluation<'a>)> {
        self.entries.iter().map(move |(key, entry)| {
            (
                key.as_str(),
                evaluation::evaluate(
                    key,
                    &entry.flag,
                    entry.rule.as_ref(),
                    &entry.metadata,
                    context,
                    now_unix,
                ),
            )
        })
    }

    fn compile(&self, key: &str, flag: Flag) -> Entry {
        let rule = flag
            .active_targeting()
            .map(|rule| Rule::compile(rule, key, &self.evaluators));
        let metadata = metadata::merged(&self.metadata, &flag.metadata);
        Entry {
            flag,
            rule,
            metadata,
        }
    }

    fn recompile_all(&mut self) {
        let entries = std::mem::take(&mut self.entries);
        self.entries = entries
            .into_iter()
            .map(|(key, entry)| (key.clone(), self.compile(&key, entry.flag)))
            .collect();
    }
}

/// Two sets are equal when their definitions are; compiled rules follow from those.
impl PartialEq for FlagSet {
    fn eq(&self, other: &Self) -> bool {
        self.evaluators == other.evaluators
            && self.metadata == other.metadata
            && self.entries.len() == other.entries.len()
            && self
                .entries
                .iter()
                .zip(&other.entries)
                .all(|((k1, e1), (k2, e2))| k1 == k2 && e1.flag == e2.flag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluation::{ErrorCode, Reason};
    use crate::value::FlagValue;
    use serde_json::json;

    fn set_with(flag: Flag) -> FlagSet {
        let mut set = FlagSet::new();
        set.insert("f", flag).unwrap();
        set
    }

    #[test]
    fn kill_serves_the_default_variant_and_revive_restores_targeting() {
        let mut set = set_with(Flag::boolean(false).with_targeting(json!({"if": [true, "on"]})));
        let context = EvaluationContext::new();
        assert_eq!(set.evaluate("f", &context, 0).variant, Some("on"));
        set.update("f", Flag::kill).unwrap();
        let killed = set.evaluate("f", &context, 0);
        assert_eq!(
            (killed.variant, killed.reason),
            (Some("off"), Reason::Static)
        );
        set.update("f", Flag::revive).unwrap();
        assert_eq!(
            set.evaluate("f", &context, 0).reason,
            Reason::TargetingMatch
        );
    }

    #[test]
    fn an_invalid_change_leaves_the_flag_as_it_was() {
        let mut set = set_with(Flag::boolean(true));
        let error = set
            .update("f", |flag| flag.default_variant = Some("maybe".into()))
            .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("flag \"f\": \"defaultVariant\" is \"maybe\""),
            "{error}"
        );
        assert_eq!(set.get("f").unwrap().default_variant.as_deref(), Some("on"));
        assert_eq!(
            set.update("nope", Flag::kill),
            Err(DefinitionError::UnknownFlag("nope".into()))
        );
    }

    #[test]
    fn evaluators_and_metadata_changes_reach_compiled_flags() {
        let mut set =
            set_with(Flag::boolean(false).with_targeting(json!({"if": [{"$ref": "beta"}, "on"]})));
        assert_eq!(set.targeting_errors().count(), 1);
        assert_eq!(
            set.evaluate("f", &EvaluationContext::new(), 0)
                .error
                .unwrap()
                .code,
            ErrorCode::ParseError
        );
        set.set_evaluators(BTreeMap::from([(
            "beta".into(),
            json!({"==": [{"var": "plan"}, "beta"]}),
        )]))
        .unwrap();
        assert_eq!(set.targeting_errors().count(), 0);
        let beta = EvaluationContext::new().with("plan", json!("beta"));
        assert_eq!(
            set.evaluate("f", &beta, 0).value,
            Some(&FlagValue::Bool(true))
        );
        set.set_metadata(Metadata::from([(
            "team".into(),
            crate::MetadataValue::String("web".into()),
        )]));
        assert_eq!(set.evaluate("f", &beta, 0).metadata.len(), 1);
    }
}
