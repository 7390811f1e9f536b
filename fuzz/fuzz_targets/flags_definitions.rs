//! flagd flag-definition files: any text loads or fails cleanly. A loaded set exports to a file that
//! loads back equal and exports to the same text, and the exported set evaluates every flag as the
//! original does; each evaluation keeps flagd's rules (an error serves no value, a match names one of
//! the flag's variants).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use slipway_flags::{Evaluation, EvaluationContext, FlagSet, Reason};

fuzz_target!(|text: &str| {
    let Ok(set) = FlagSet::from_flagd_json(text) else {
        return;
    };
    let exported = set.to_flagd_json();
    let again = FlagSet::from_flagd_json(&exported).expect("an exported set loads");
    assert!(again == set, "the round trip changed the set:\n{exported}");
    assert_eq!(again.to_flagd_json(), exported, "export is not stable");

    let contexts = [
        EvaluationContext::new(),
        EvaluationContext::new().with_targeting_key("user-42"),
        EvaluationContext::from_json(&json!({"targetingKey": "", "email": "a@example.com",
            "version": "1.2.3", "age": 41, "tags": ["beta"], "user": {"id": 7}}))
        .expect("a valid context"),
    ];
    for context in &contexts {
        let mut count = 0;
        for (key, evaluation) in set.evaluate_all(context, 1_764_460_800) {
            count += 1;
            check(&set, key, &evaluation);
            assert_eq!(
                evaluation,
                again.evaluate(key, context, 1_764_460_800),
                "flag {key:?} evaluates differently after export:\n{exported}"
            );
        }
        assert_eq!(count, set.len());
    }
});

fn check(set: &FlagSet, key: &str, evaluation: &Evaluation<'_>) {
    let flag = set.get(key).expect("evaluate_all names set flags");
    match evaluation.reason {
        Reason::Error => assert!(evaluation.error.is_some() && evaluation.value.is_none()),
        Reason::Disabled => assert!(evaluation.value.is_none() && evaluation.error.is_none()),
        Reason::Static | Reason::TargetingMatch | Reason::Default => {
            assert!(evaluation.error.is_none());
            match evaluation.variant {
                Some(variant) => assert_eq!(flag.variants.get(variant), evaluation.value),
                None => assert!(evaluation.value.is_none()),
            }
            if evaluation.reason != Reason::Default {
                assert!(evaluation.variant.is_some(), "{key}: {evaluation:?}");
            }
        }
    }
}
