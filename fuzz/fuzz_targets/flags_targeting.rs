//! Targeting rules (flagd's JSONLogic): any rule, evaluators and context compile or are refused, and
//! evaluate without panicking, to the same answer every time (a user's bucket must not move between
//! requests). Used as a flag's targeting, the rule's answer decides the variant as flagd says.
//!
//! The input is a JSON object: `{"rule": …, "context": {…}, "evaluators": {…}, "now": 1764460800}`;
//! anything else is taken as the rule alone.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use slipway_flags::targeting::Rule;
use slipway_flags::{EvaluationContext, FlagSet, Reason};
use std::collections::BTreeMap;

const VARIANTS: [&str; 5] = ["on", "off", "true", "false", "1"];

fuzz_target!(|data: &[u8]| {
    let Ok(input) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let (rule, context, evaluators, now) = match &input {
        Value::Object(fields) if fields.contains_key("rule") => (
            fields["rule"].clone(),
            fields.get("context").cloned().unwrap_or_else(|| json!({})),
            fields
                .get("evaluators")
                .cloned()
                .unwrap_or_else(|| json!({})),
            fields
                .get("now")
                .and_then(Value::as_i64)
                .unwrap_or(1_764_460_800),
        ),
        _ => (input.clone(), json!({}), json!({}), 1_764_460_800),
    };
    let Ok(context) = EvaluationContext::from_json(&context) else {
        return;
    };
    let evaluator_map: BTreeMap<String, Value> = match &evaluators {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        _ => BTreeMap::new(),
    };

    let compiled = Rule::compile(&rule, "f", &evaluator_map);
    let answer = compiled
        .as_ref()
        .ok()
        .map(|rule| rule.evaluate(&context, "f", now).into_owned());
    if let Ok(rule) = &compiled {
        assert_eq!(
            Some(rule.evaluate(&context, "f", now).into_owned()),
            answer,
            "the same rule and context answered twice differently"
        );
    }

    let variants: serde_json::Map<String, Value> =
        VARIANTS.iter().map(|v| (v.to_string(), json!(v))).collect();
    let document = json!({
        "flags": {"f": {"state": "ENABLED", "variants": variants, "defaultVariant": "off",
                        "targeting": rule}},
        "$evaluators": evaluators,
    });
    let Ok(set) = FlagSet::from_flagd_value(&document) else {
        return;
    };
    let evaluation = set.evaluate("f", &context, now);
    if rule.is_null() || rule == json!({}) {
        // No targeting (flagd reads `{}` so too): the default variant, statically.
        assert_eq!(evaluation.reason, Reason::Static, "{evaluation:?}");
        return;
    }
    // flagd's reading of a rule's answer: null → the default, a boolean → the variant "true" or
    // "false", a string or a number → the variant of that name, anything else (or none) → an error.
    let picked = match &answer {
        None => None,
        Some(Value::Null) => {
            assert_eq!(evaluation.reason, Reason::Default, "{evaluation:?}");
            assert_eq!(evaluation.variant, Some("off"));
            return;
        }
        Some(Value::Bool(b)) => Some(b.to_string()),
        Some(Value::String(name)) => Some(name.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => None,
    };
    match picked.filter(|name| VARIANTS.contains(&name.as_str())) {
        Some(name) => {
            assert_eq!(evaluation.reason, Reason::TargetingMatch, "{evaluation:?}");
            assert_eq!(evaluation.variant, Some(name.as_str()));
        }
        None => {
            assert_eq!(
                evaluation.reason,
                Reason::Error,
                "{answer:?}: {evaluation:?}"
            );
            assert!(evaluation.value.is_none());
        }
    }
});
