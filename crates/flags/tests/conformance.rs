//! flagd's evaluator conformance scenarios (flagd-testbed, `evaluator/`), every one of them, against
//! the testbed's own flag file.
//!
//! Skipped: the `@fractional-v1` examples. They pin flagd's old float bucketing
//! (`abs(signed hash) / i32::MAX * 100`), which flagd replaced with the integer "v2" bucketing that the
//! `@fractional-v2` examples pin; a key can land in a different bucket under each, so no evaluator can
//! pass both, and slipway follows flagd's current one.

mod support;

use std::path::PathBuf;

use serde_json::{Value, json};
use slipway_flags::{EvaluationContext, FlagSet, FlagValue, MetadataValue, RequestedType};
use support::gherkin::{self, Scenario, quoted};

const SKIPPED_TAG: &str = "@fractional-v1";
/// 2026-11-30T00:00:00Z; no testbed scenario depends on the time.
const NOW: i64 = 1_795_996_800;

fn testbed() -> PathBuf {
    support::testbed_dir()
}

#[test]
fn every_testbed_scenario_passes() {
    let dir = testbed();
    let flags = FlagSet::from_flagd_json(
        &std::fs::read_to_string(dir.join("flags/testkit-flags.json")).unwrap(),
    )
    .expect("testkit flags load");

    let mut features: Vec<PathBuf> = std::fs::read_dir(dir.join("gherkin"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "feature"))
        .collect();
    features.sort();

    let (mut ran, mut skipped, mut in_files, mut tagged_in_files) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for feature in &features {
        let text = std::fs::read_to_string(feature).unwrap();
        let (count, tagged) = gherkin::count_scenarios(&text, SKIPPED_TAG);
        in_files += count;
        tagged_in_files += tagged;
        for scenario in gherkin::parse(&text) {
            if scenario.tags.iter().any(|tag| tag == SKIPPED_TAG) {
                skipped += 1;
                continue;
            }
            ran += 1;
            if let Err(why) = run(&flags, &scenario) {
                failures.push(format!(
                    "{}: {}: {why}",
                    feature.file_name().unwrap().to_string_lossy(),
                    scenario.name
                ));
            }
        }
    }

    println!(
        "flagd conformance: ran {ran} scenarios from {} feature files, skipped {skipped} tagged {SKIPPED_TAG} ({in_files} in the files)",
        features.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {ran} scenarios failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(ran > 0, "no scenario ran");
    assert_eq!(
        skipped, tagged_in_files,
        "skipped a different number of scenarios than the files tag {SKIPPED_TAG}"
    );
    assert_eq!(
        ran,
        in_files - tagged_in_files,
        "ran fewer scenarios than the feature files hold"
    );
}

#[derive(Default)]
struct World {
    key: String,
    requested: Option<RequestedType>,
    fallback: Value,
    context: serde_json::Map<String, Value>,
    outcome: Option<Outcome>,
}

struct Outcome {
    value: Value,
    reason: String,
    error_code: Option<String>,
    metadata: serde_json::Map<String, Value>,
}

fn run(flags: &FlagSet, scenario: &Scenario) -> Result<(), String> {
    let mut world = World::default();
    for step in &scenario.steps {
        let args = quoted(&step.text);
        let text = step.text.as_str();
        if text == "an evaluator" {
        } else if let Some(kind) = text
            .strip_prefix("a ")
            .and_then(|rest| rest.split_once("-flag with key "))
            .map(|(kind, _)| kind)
        {
            let requested = requested_type(kind)?;
            world.key = args[0].clone();
            world.fallback = typed(requested, &args[1])?;
            world.requested = Some(requested);
        } else if text.starts_with("a context containing a key ") {
            let value = typed(requested_type(&args[1])?, &args[2])?;
            world.context.insert(args[0].clone(), value);
        } else if text.starts_with("a context containing a nested property") {
            let outer = world
                .context
                .entry(args[0].clone())
                .or_insert_with(|| json!({}));
            outer
                .as_object_mut()
                .ok_or("outer key is not an object")?
                .insert(args[1].clone(), json!(args[2]));
        } else if text.starts_with("a context containing a targeting key") {
            world.context.insert("targetingKey".into(), json!(args[0]));
        } else if text == "the flag was evaluated with details" {
            world.outcome = Some(evaluate(flags, &world)?);
        } else if text.starts_with("the resolved details value should be") {
            let expected = typed(world.requested.unwrap(), &args[0])?;
            let actual = &outcome(&world)?.value;
            if !same_value(actual, &expected) {
                return Err(format!("value {actual}, expected {expected}"));
            }
        } else if text.starts_with("the reason should be") {
            let reason = &outcome(&world)?.reason;
            if *reason != args[0] {
                return Err(format!("reason {reason}, expected {}", args[0]));
            }
        } else if text.starts_with("the error-code should be") {
            let code = &outcome(&world)?.error_code;
            if code.as_deref() != Some(args[0].as_str()) {
                return Err(format!("error code {code:?}, expected {}", args[0]));
            }
        } else if text == "the resolved metadata should contain" {
            let metadata = &outcome(&world)?.metadata;
            for row in step.table.iter().skip(1) {
                let [key, kind, value] = row.as_slice() else {
                    return Err(format!("bad metadata row {row:?}"));
                };
                let expected = typed(requested_type(kind)?, value)?;
                match metadata.get(key) {
                    Some(actual) if same_value(actual, &expected) => {}
                    other => {
                        return Err(format!("metadata {key} is {other:?}, expected {expected}"));
                    }
                }
            }
        } else if text == "the resolved metadata is empty" {
            let metadata = &outcome(&world)?.metadata;
            if !metadata.is_empty() {
                return Err(format!("metadata {metadata:?}, expected none"));
            }
        } else {
            return Err(format!("unknown step: {text}"));
        }
    }
    if world.outcome.is_none() {
        return Err("the scenario never evaluated".into());
    }
    Ok(())
}

fn evaluate(flags: &FlagSet, world: &World) -> Result<Outcome, String> {
    let context = EvaluationContext::from_json(&Value::Object(world.context.clone()))
        .map_err(|e| e.to_string())?;
    let evaluation = flags.evaluate_as(
        &world.key,
        world.requested.ok_or("no flag step")?,
        &context,
        NOW,
    );
    let metadata = evaluation
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), metadata_json(v)))
        .collect();
    Ok(Outcome {
        // OpenFeature hands the caller's fallback back whenever no variant value is served.
        value: evaluation
            .value
            .map_or_else(|| world.fallback.clone(), FlagValue::to_json),
        reason: evaluation.reason.to_string(),
        error_code: evaluation.error.map(|error| error.code.to_string()),
        metadata,
    })
}

fn outcome(world: &World) -> Result<&Outcome, String> {
    world
        .outcome
        .as_ref()
        .ok_or_else(|| "checked before evaluating".to_string())
}

fn metadata_json(value: &MetadataValue) -> Value {
    value.to_json()
}

fn requested_type(name: &str) -> Result<RequestedType, String> {
    Ok(match name {
        "Boolean" => RequestedType::Boolean,
        "String" => RequestedType::String,
        "Integer" => RequestedType::Integer,
        "Float" => RequestedType::Float,
        "Object" => RequestedType::Object,
        other => return Err(format!("unknown type {other}")),
    })
}

/// A step's text as a value of the scenario's type.
fn typed(kind: RequestedType, text: &str) -> Result<Value, String> {
    let bad = |e: &dyn std::fmt::Display| format!("{text:?} is not a {kind}: {e}");
    Ok(match kind {
        RequestedType::Boolean => json!(text.parse::<bool>().map_err(|e| bad(&e))?),
        RequestedType::String => json!(text),
        RequestedType::Integer => json!(text.parse::<i64>().map_err(|e| bad(&e))?),
        RequestedType::Float => json!(text.parse::<f64>().map_err(|e| bad(&e))?),
        RequestedType::Object => serde_json::from_str(text).map_err(|e| bad(&e))?,
    })
}

/// Numbers compare by value, so an integer variant read as a float (`1` vs `1.0`) matches.
fn same_value(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => actual == expected,
    }
}
