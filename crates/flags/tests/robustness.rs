//! Random JSON thrown at loading and evaluation: errors come back as values, never as panics, and
//! whatever loads exports to a file that loads back equal.

mod support;

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use slipway_flags::{EvaluationContext, FlagSet, Reason, RequestedType};

const OPERATORS: &[&str] = &[
    "var",
    "if",
    "?:",
    "==",
    "===",
    "!=",
    "!==",
    "!",
    "!!",
    "and",
    "or",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "-",
    "*",
    "/",
    "%",
    "min",
    "max",
    "in",
    "cat",
    "substr",
    "merge",
    "missing",
    "missing_some",
    "map",
    "filter",
    "reduce",
    "all",
    "some",
    "none",
    "log",
    "fractional",
    "sem_ver",
    "starts_with",
    "ends_with",
    "$ref",
    "nope",
];
const WORDS: &[&str] = &[
    "",
    "on",
    "off",
    "true",
    "false",
    "a",
    "user.name",
    "targetingKey",
    "$flagd.flagKey",
    "$flagd.timestamp",
    "$flagd",
    "1.2.3",
    "v2.0.0-rc.1",
    "^",
    "~",
    "=",
    "<",
    "shared",
    "length",
    "0",
    "x.0.y",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1000i64..1000).prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(WORDS).prop_map(|w| Value::String(w.to_string())),
        "[a-z.$]{0,8}".prop_map(Value::String),
    ]
}

/// JSON biased towards JSONLogic: many single-key objects named after operators.
fn json_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            (prop::sample::select(OPERATORS), inner.clone())
                .prop_map(|(op, args)| json!({ op: args })),
            prop::collection::btree_map("[a-z$]{0,4}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn flag(targeting: Value, variant_names: Vec<String>) -> Value {
    let variants: Map<String, Value> = variant_names
        .iter()
        .map(|name| (name.clone(), json!(name)))
        .collect();
    json!({"state": "ENABLED", "variants": variants, "defaultVariant": variant_names.first(), "targeting": targeting})
}

fn context() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(
        prop::sample::select(&["targetingKey", "user", "email", "version", "$flagd", "id"][..]),
        json_value(),
        0..5,
    )
    .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
}

proptest! {
    // No regression files in the tree: a failure prints its minimal input, which becomes a unit test.
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_documents_load_or_fail_cleanly(document in json_value()) {
        let _ = FlagSet::from_flagd_value(&document);
        let _ = FlagSet::from_flagd_value(&json!({"flags": {"f": document.clone()}}));
        let _ = FlagSet::from_flagd_value(&json!({"flags": {}, "$evaluators": {"e": document}}));
    }

    #[test]
    fn random_text_loads_or_fails_cleanly(text in "\\PC{0,64}") {
        let _ = FlagSet::from_flagd_json(&text);
    }

    #[test]
    fn random_rules_and_contexts_evaluate_without_panicking(
        rule in json_value(),
        evaluator in json_value(),
        context in context(),
        names in prop::collection::vec(prop::sample::select(WORDS), 1..4),
        now in any::<i64>(),
    ) {
        let names: Vec<String> = names.into_iter().filter(|n| !n.is_empty()).map(str::to_string).collect();
        prop_assume!(!names.is_empty());
        let targeting = json!({"if": [rule, names[0].clone(), {"$ref": "shared"}]});
        let document = json!({"flags": {"f": flag(targeting, names)}, "$evaluators": {"shared": {"or": [evaluator]}}});
        let flags = FlagSet::from_flagd_value(&document).expect("a well-formed flag loads whatever its rule");
        match EvaluationContext::from_json(&context) {
            Ok(context) => {
                let evaluation = flags.evaluate("f", &context, now);
                if evaluation.error.is_some() {
                    prop_assert_eq!(evaluation.reason, Reason::Error);
                    prop_assert!(evaluation.value.is_none());
                } else if evaluation.reason != Reason::Default {
                    prop_assert!(evaluation.variant.is_some());
                }
                let _ = flags.evaluate_as("f", RequestedType::Integer, &context, now);
                prop_assert_eq!(flags.evaluate_all(&context, now).count(), 1);
            }
            Err(error) => prop_assert_eq!(error.code, slipway_flags::ErrorCode::InvalidContext),
        }
    }

    #[test]
    fn whatever_loads_round_trips(document in json_value(), rule in json_value(), names in prop::collection::vec("[a-z]{1,5}", 1..4)) {
        let candidates = [
            document,
            json!({"flags": {"f": flag(json!({"if": [rule.clone(), names[0].clone()]}), names.clone())}, "metadata": {"v": 1}}),
            json!({"flags": {"g": {"variants": {"n": 1.5, "m": -2}, "defaultVariant": null, "metadata": {"owner": "web"}}},
                   "$evaluators": {"r": {"==": [rule, 1]}}}),
        ];
        for candidate in candidates {
            if let Ok(set) = FlagSet::from_flagd_value(&candidate) {
                let exported = set.to_flagd_json();
                let again = FlagSet::from_flagd_json(&exported).expect("an exported set loads");
                prop_assert!(again == set, "round trip changed the set:\n{}", exported);
            }
        }
    }
}

#[test]
fn the_testbed_flags_round_trip() {
    let path = support::testkit_flags();
    let set = FlagSet::from_flagd_json(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(FlagSet::from_flagd_json(&set.to_flagd_json()).unwrap(), set);
    assert_eq!(
        set.targeting_errors()
            .map(|(key, _)| key)
            .collect::<Vec<_>>(),
        ["ref-to-nonexistent-evaluator-flag"]
    );
}

#[test]
fn deep_rules_are_refused_not_overflowed() {
    let mut rule = json!({"var": "x"});
    for _ in 0..100 {
        rule = json!({"!": [rule]});
    }
    // Evaluators that reference each other multiply depth without deep JSON.
    let mut evaluators = Map::new();
    for i in 0..400 {
        evaluators.insert(
            format!("e{i}"),
            json!({"!": [{"$ref": format!("e{}", i + 1)}]}),
        );
    }
    evaluators.insert("e400".into(), rule);
    let document = json!({"flags": {"f": flag(json!({"$ref": "e0"}), vec!["true".into(), "false".into()])}, "$evaluators": evaluators});
    let set = FlagSet::from_flagd_value(&document).unwrap();
    let evaluation = set.evaluate("f", &EvaluationContext::new(), 0);
    assert_eq!(
        evaluation.error.map(|e| e.code),
        Some(slipway_flags::ErrorCode::ParseError)
    );
}
