//! Evaluation time per flag, in process: a static flag, a targeting flag with a few conditions, and a
//! fractional rollout. Run: `cargo bench -p slipway-flags --bench evaluate`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use slipway_flags::{EvaluationContext, FlagSet};

const FLAGS: &str = r#"{
  "flags": {
    "static": {
      "state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"
    },
    "targeting": {
      "state": "ENABLED",
      "variants": {"beta": "beta", "internal": "internal", "stable": "stable"},
      "defaultVariant": "stable",
      "targeting": {"if": [
        {"ends_with": [{"var": "email"}, "@slipway.dev"]}, "internal",
        {"and": [{"in": [{"var": "plan"}, ["pro", "team"]]}, {"sem_ver": [{"var": "appVersion"}, ">=", "2.3.0"]}]}, "beta",
        null
      ]}
    },
    "fractional": {
      "state": "ENABLED",
      "variants": {"on": true, "off": false},
      "defaultVariant": "off",
      "targeting": {"fractional": [["on", 25], ["off", 75]]}
    }
  }
}"#;

fn evaluate(c: &mut Criterion) {
    let flags = FlagSet::from_flagd_json(FLAGS).expect("benchmark flags load");
    let context = EvaluationContext::new()
        .with_targeting_key("user-8c1f2a")
        .with("email", json!("ann@example.com"))
        .with("plan", json!("team"))
        .with("appVersion", json!("2.4.1"));
    let now = 1_795_996_800;

    let mut group = c.benchmark_group("evaluate");
    for key in ["static", "targeting", "fractional"] {
        group.bench_function(key, |b| {
            b.iter(|| black_box(flags.evaluate(black_box(key), &context, now).variant))
        });
    }
    group.finish();
}

criterion_group!(benches, evaluate);
criterion_main!(benches);
