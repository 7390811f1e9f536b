//! One feature flag: typed variants, a default, a state, targeting, metadata — and a kill switch.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::definition_error::FlagProblem;
use crate::metadata::Metadata;
use crate::value::{FlagValue, VariantType};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagState {
    Enabled,
    /// Evaluates to the caller's own default, with reason DISABLED.
    Disabled,
}

/// A flag as the daemon stores and changes it. Build or edit one freely; a [`crate::FlagSet`] checks it
/// (see [`Flag::validate`]) and compiles its targeting when it is inserted.
#[derive(Debug, Clone, PartialEq)]
pub struct Flag {
    pub state: FlagState,
    pub variants: BTreeMap<String, FlagValue>,
    /// The variant served when targeting does not pick one; `None` leaves the choice to the caller's
    /// default value (reason DEFAULT, no variant).
    pub default_variant: Option<String>,
    /// The JSONLogic rule as written, `$ref`s included, so that export gives back what was imported.
    pub targeting: Option<Value>,
    pub metadata: Metadata,
    /// Killed: serve the default variant to everyone, ignoring targeting, until revived. Targeting is
    /// kept, so reviving restores the rollout exactly as it was.
    pub killed: bool,
}

impl Flag {
    /// An enabled flag without targeting or metadata.
    pub fn new(variants: BTreeMap<String, FlagValue>, default_variant: Option<&str>) -> Flag {
        Flag {
            state: FlagState::Enabled,
            variants,
            default_variant: default_variant.map(str::to_string),
            targeting: None,
            metadata: Metadata::new(),
            killed: false,
        }
    }

    /// The classic on/off flag: variants `on` (true) and `off` (false).
    pub fn boolean(default_on: bool) -> Flag {
        let variants = BTreeMap::from([
            ("on".to_string(), FlagValue::Bool(true)),
            ("off".to_string(), FlagValue::Bool(false)),
        ]);
        Flag::new(variants, Some(if default_on { "on" } else { "off" }))
    }

    pub fn with_targeting(mut self, rule: Value) -> Flag {
        self.targeting = Some(rule);
        self
    }

    /// The operator's emergency stop: everyone gets the default variant (or, without one, their own
    /// default), whatever the targeting says.
    pub fn kill(&mut self) {
        self.killed = true;
    }

    pub fn revive(&mut self) {
        self.killed = false;
    }

    /// The targeting rule that evaluation uses: none when killed, and `{}` counts as none (as in flagd).
    pub fn active_targeting(&self) -> Option<&Value> {
        match &self.targeting {
            _ if self.killed => None,
            Some(Value::Object(rule)) if rule.is_empty() => None,
            rule => rule.as_ref(),
        }
    }

    /// Whether everyone gets the same answer: disabled, killed, or without targeting. Such a flag, left
    /// so for long, is a candidate to remove from the code (`flags list` calls it stale).
    pub fn serves_everyone_alike(&self) -> bool {
        self.state == FlagState::Disabled || self.active_targeting().is_none()
    }

    pub fn variant_type(&self) -> Option<VariantType> {
        self.variants.values().next().map(FlagValue::variant_type)
    }

    /// The rules of flagd's schema that a value of this type can break: at least one variant, named,
    /// all of one type, and a default variant that exists.
    pub fn validate(&self) -> Result<(), FlagProblem> {
        let mut variants = self.variants.iter();
        let Some((first, first_value)) = variants.next() else {
            return Err(FlagProblem::NoVariants);
        };
        let expected = first_value.variant_type();
        for (name, value) in self.variants.iter() {
            if name.is_empty() {
                return Err(FlagProblem::EmptyVariantName);
            }
            let found = value.variant_type();
            if found != expected {
                return Err(FlagProblem::MixedTypes {
                    first: first.clone(),
                    expected,
                    variant: name.clone(),
                    found,
                });
            }
        }
        if let Some(name) = &self.default_variant
            && !self.variants.contains_key(name)
        {
            let known = self
                .variants
                .keys()
                .map(|k| format!("\"{k}\""))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(FlagProblem::UnknownDefaultVariant {
                name: name.clone(),
                known,
            });
        }
        if let Some(rule) = &self.targeting
            && !rule.is_object()
        {
            return Err(FlagProblem::TargetingNotAnObject(crate::value::json_kind(
                rule,
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn validation_names_the_problem() {
        let mut flag = Flag::boolean(true);
        assert_eq!(flag.validate(), Ok(()));
        flag.default_variant = Some("maybe".into());
        let problem = flag.validate().unwrap_err();
        assert_eq!(
            problem.to_string(),
            "\"defaultVariant\" is \"maybe\", which is not one of the variants (\"off\", \"on\")"
        );
        flag.default_variant = None;
        flag.variants
            .insert("word".into(), FlagValue::String("x".into()));
        assert!(matches!(
            flag.validate(),
            Err(FlagProblem::MixedTypes { .. })
        ));
        assert_eq!(
            Flag::new(BTreeMap::new(), None).validate(),
            Err(FlagProblem::NoVariants)
        );
    }

    #[test]
    fn killing_hides_targeting_without_losing_it() {
        let mut flag = Flag::boolean(false).with_targeting(json!({"if": [true, "on"]}));
        flag.kill();
        assert_eq!(flag.active_targeting(), None);
        flag.revive();
        assert_eq!(flag.active_targeting(), Some(&json!({"if": [true, "on"]})));
        assert_eq!(
            Flag::boolean(false)
                .with_targeting(json!({}))
                .active_targeting(),
            None
        );
    }
}
