//! What a flag looks like during and after a ramp: a `fractional` split that gives a growing share of
//! targeting keys one variant.
//!
//! `fractional` without a key buckets by flag key + targeting key, and the first entry owns the lowest
//! buckets, so a key that got the variant at 5 % keeps it at 25 %: users only ever join the ramp.
//! Callers without a targeting key are outside the split and get what they got before.

use serde_json::{Value, json};

use crate::flag::{Flag, FlagState};

/// Why a flag cannot be ramped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RampRefused(pub String);

impl std::fmt::Display for RampRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RampRefused {}

/// Checks that `before` can ramp to `variant`.
pub fn check_rampable(before: &Flag, variant: &str) -> Result<(), RampRefused> {
    if !before.variants.contains_key(variant) {
        let known: Vec<&str> = before.variants.keys().map(String::as_str).collect();
        return Err(RampRefused(format!(
            "the flag has no variant \"{variant}\" (it has {})",
            known.join(", ")
        )));
    }
    if before.state == FlagState::Disabled {
        return Err(RampRefused(
            "the flag is disabled; enable it before ramping".into(),
        ));
    }
    if before.killed {
        return Err(RampRefused(
            "the flag is killed; enable it before ramping".into(),
        ));
    }
    if before.active_targeting().is_none() && before.default_variant.as_deref() == Some(variant) {
        return Err(RampRefused(format!(
            "everyone already gets \"{variant}\" (it is the default variant); nothing to ramp"
        )));
    }
    Ok(())
}

/// `before` with `percent` % of targeting keys getting `variant`; everyone else keeps what `before`
/// gave them.
pub fn ramped(before: &Flag, variant: &str, percent: u32) -> Flag {
    let percent = percent.min(100);
    let targeting = match (before.active_targeting(), before.default_variant.as_deref()) {
        // The plain form, readable in `flags get`: the variant against the default.
        (None, Some(default)) if default != variant => {
            json!({"fractional": [[variant, percent], [default, 100 - percent]]})
        }
        // Keep the flag's own rule for the users outside the ramp.
        (rule, _) => {
            let rest = rule.cloned().unwrap_or(Value::Null);
            json!({"if": [
                {"==": [{"fractional": [["ramp", percent], ["rest", 100 - percent]]}, "ramp"]},
                variant,
                rest
            ]})
        }
    };
    let mut flag = before.clone();
    flag.targeting = Some(targeting);
    flag
}

/// The flag once its ramp reached 100 % and passed: without a rule of its own before, the variant
/// simply becomes the default (a static flag, which `flags list` can later call stale); with one, the
/// 100 % split stays, so callers without a targeting key keep getting what the rule gives them.
pub fn completed(before: &Flag, variant: &str) -> Flag {
    if before.active_targeting().is_none() {
        let mut flag = before.clone();
        flag.default_variant = Some(variant.to_string());
        flag.targeting = None;
        flag
    } else {
        ramped(before, variant, 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EvaluationContext, FlagSet};

    fn share_on(flag: &Flag, variant: &str) -> (usize, usize) {
        let mut set = FlagSet::new();
        set.insert("f", flag.clone()).unwrap();
        let on = (0..2_000)
            .filter(|i| {
                let context = EvaluationContext::new().with_targeting_key(format!("user-{i}"));
                set.evaluate("f", &context, 0).variant == Some(variant)
            })
            .count();
        (on, 2_000)
    }

    #[test]
    fn shares_grow_and_users_only_join() {
        let before = Flag::boolean(false);
        let at = |p| ramped(&before, "on", p);
        let (five, n) = share_on(&at(5), "on");
        let (fifty, _) = share_on(&at(50), "on");
        assert!((50..=150).contains(&five), "{five}/{n}");
        assert!((900..=1100).contains(&fifty), "{fifty}/{n}");
        let mut five_set = FlagSet::new();
        five_set.insert("f", at(5)).unwrap();
        let mut fifty_set = FlagSet::new();
        fifty_set.insert("f", at(50)).unwrap();
        for i in 0..2_000 {
            let context = EvaluationContext::new().with_targeting_key(format!("user-{i}"));
            if five_set.evaluate("f", &context, 0).variant == Some("on") {
                assert_eq!(fifty_set.evaluate("f", &context, 0).variant, Some("on"));
            }
        }
        assert_eq!(share_on(&at(100), "on").0, 2_000);
        assert_eq!(
            completed(&before, "on").default_variant.as_deref(),
            Some("on")
        );
        assert_eq!(completed(&before, "on").targeting, None);
    }

    #[test]
    fn a_flag_with_its_own_rule_keeps_it_for_everyone_else() {
        let before = Flag::boolean(false)
            .with_targeting(json!({"if": [{"==": [{"var": "plan"}, "pro"]}, "on", "off"]}));
        let flag = ramped(&before, "on", 0);
        let mut set = FlagSet::new();
        set.insert("f", flag).unwrap();
        let pro = EvaluationContext::new()
            .with_targeting_key("u")
            .with("plan", json!("pro"));
        assert_eq!(set.evaluate("f", &pro, 0).variant, Some("on"));
        let free = EvaluationContext::new().with_targeting_key("u");
        assert_eq!(set.evaluate("f", &free, 0).variant, Some("off"));
        assert!(completed(&before, "on").targeting.is_some());
    }

    #[test]
    fn refuses_what_cannot_ramp() {
        let flag = Flag::boolean(false);
        assert!(check_rampable(&flag, "on").is_ok());
        assert!(
            check_rampable(&flag, "maybe")
                .unwrap_err()
                .0
                .contains("no variant")
        );
        assert!(
            check_rampable(&flag, "off")
                .unwrap_err()
                .0
                .contains("already")
        );
        let mut killed = flag.clone();
        killed.kill();
        assert!(
            check_rampable(&killed, "on")
                .unwrap_err()
                .0
                .contains("killed")
        );
        let mut disabled = flag;
        disabled.state = FlagState::Disabled;
        assert!(
            check_rampable(&disabled, "on")
                .unwrap_err()
                .0
                .contains("disabled")
        );
    }
}
