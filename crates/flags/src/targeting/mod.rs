//! Targeting rules: JSONLogic with flagd's operators, compiled once per flag.
//!
//! Why our own JSONLogic engine rather than datalogic-rs: flagd's semantics are what matter here, and
//! they live in the details — custom operators that answer `null` (not `false`, not an error) on bad
//! input, nested rules inside `fractional` buckets, a `$flagd` object and `targetingKey` that must not be
//! copied into every evaluation, `$ref`s resolved per flag, and one pinned bucketing formula. Owning the
//! ~700 lines lets each of those follow flagd exactly and lets the compiled tree borrow from the context
//! instead of converting it; a general engine would need adapters around each point and could change
//! its operator semantics under us in a minor release.

mod coerce;
mod compile;
mod eval;
mod fractional;
mod operators;
mod sem_ver;
mod string_match;
mod var;

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::Value;
use thiserror::Error;

use crate::context::EvaluationContext;
pub use fractional::hash as bucketing_hash;

/// A targeting rule ready to evaluate: `$ref`s resolved, paths split, operators looked up.
#[derive(Debug, Clone)]
pub struct Rule {
    root: compile::Node,
}

/// Why a rule cannot be compiled. flagd reports these as PARSE_ERROR when the flag is evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RuleError {
    #[error("unknown operator \"{0}\"")]
    UnknownOperator(String),
    #[error("\"$ref\" names evaluator \"{0}\", which is not in \"$evaluators\"")]
    UnknownEvaluator(String),
    #[error("\"$ref\" must name an evaluator with a string, not {0}")]
    InvalidReference(String),
    #[error("evaluator \"{0}\" refers to itself through \"$ref\"")]
    CyclicEvaluator(String),
    #[error("the rule is nested too deeply")]
    TooDeep,
}

impl Rule {
    /// Compiles `rule` for the flag `flag_key`, resolving `$ref`s against `evaluators`.
    pub fn compile(
        rule: &Value,
        flag_key: &str,
        evaluators: &BTreeMap<String, Value>,
    ) -> Result<Rule, RuleError> {
        let root = compile::Compiler::new(flag_key, evaluators).compile(rule, 0)?;
        Ok(Rule { root })
    }

    /// Evaluates the rule. `flag_key` and `now_unix` fill in `$flagd.flagKey` and `$flagd.timestamp`.
    pub fn evaluate<'a>(
        &'a self,
        context: &'a EvaluationContext,
        flag_key: &'a str,
        now_unix: i64,
    ) -> Cow<'a, Value> {
        let scope = var::Scope::Context {
            context,
            flag_key,
            now_unix,
        };
        eval::evaluate(&self.root, &scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(rule: Value, context: Value) -> Value {
        let context = EvaluationContext::from_json(&context).unwrap();
        Rule::compile(&rule, "flag", &BTreeMap::new())
            .unwrap()
            .evaluate(&context, "flag", 1_700_000_000)
            .into_owned()
    }

    #[test]
    fn jsonlogic_basics() {
        assert_eq!(
            run(
                json!({"if": [{"==": [{"var": "a"}, 1]}, "one", "other"]}),
                json!({"a": "1"})
            ),
            json!("one")
        );
        assert_eq!(run(json!({"and": [true, 0, 1]}), json!({})), json!(0));
        assert_eq!(run(json!({"or": [false, "", "x"]}), json!({})), json!("x"));
        assert_eq!(run(json!({"+": [1, 2]}), json!({})), json!(3));
        assert_eq!(run(json!({"+": [1, 0.5]}), json!({})), json!(1.5));
        assert_eq!(run(json!({"/": [1, 0]}), json!({})), json!(null));
        assert_eq!(
            run(json!({"cat": ["a", 1, 2.5, null, true]}), json!({})),
            json!("a12.5nulltrue")
        );
        assert_eq!(
            run(json!({"in": ["b", ["a", "b"]]}), json!({})),
            json!(true)
        );
        assert_eq!(run(json!({"in": ["ell", "hello"]}), json!({})), json!(true));
        assert_eq!(
            run(json!({"<": [1, {"var": "x"}, 3]}), json!({"x": 2})),
            json!(true)
        );
        assert_eq!(
            run(json!({"substr": ["slipway", -3]}), json!({})),
            json!("way")
        );
        assert_eq!(
            run(json!({"substr": ["slipway", 1, -3]}), json!({})),
            json!("lip")
        );
        assert_eq!(
            run(json!({"merge": [[1], 2, [3, [4]]]}), json!({})),
            json!([1, 2, 3, [4]])
        );
        assert_eq!(
            run(json!({"var": ["missing", "dflt"]}), json!({})),
            json!("dflt")
        );
        assert_eq!(
            run(json!({"missing": ["a", "b"]}), json!({"a": 1, "b": ""})),
            json!(["b"])
        );
        assert_eq!(
            run(json!({"missing_some": [1, ["a", "b"]]}), json!({"a": 1})),
            json!([])
        );
    }

    #[test]
    fn iteration_sees_each_item() {
        assert_eq!(
            run(json!({"map": [[1, 2], {"*": [{"var": ""}, 2]}]}), json!({})),
            json!([2, 4])
        );
        assert_eq!(
            run(
                json!({"filter": [{"var": "xs"}, {">": [{"var": ""}, 1]}]}),
                json!({"xs": [1, 2, 3]})
            ),
            json!([2, 3])
        );
        assert_eq!(run(json!({"all": [[], true]}), json!({})), json!(false));
        assert_eq!(
            run(
                json!({"some": [[1, 2], {"==": [{"var": ""}, 2]}]}),
                json!({})
            ),
            json!(true)
        );
        assert_eq!(
            run(
                json!({"none": [[1, 2], {"==": [{"var": ""}, 3]}]}),
                json!({})
            ),
            json!(true)
        );
        let sum =
            json!({"reduce": [[1, 2, 3], {"+": [{"var": "current"}, {"var": "accumulator"}]}, 0]});
        assert_eq!(run(sum, json!({})), json!(6));
    }

    #[test]
    fn flagd_context_fields() {
        assert_eq!(
            run(json!({"var": "$flagd.flagKey"}), json!({})),
            json!("flag")
        );
        assert_eq!(
            run(json!({"var": "$flagd.timestamp"}), json!({})),
            json!(1_700_000_000)
        );
        assert_eq!(
            run(json!({"var": "targetingKey"}), json!({"targetingKey": "u"})),
            json!("u")
        );
        assert_eq!(
            run(json!({"var": {"cat": ["$flagd.", "flagKey"]}}), json!({})),
            json!("flag")
        );
    }

    #[test]
    fn unknown_operators_and_references_do_not_compile() {
        let evaluators = BTreeMap::from([("loop".to_string(), json!({"$ref": "loop"}))]);
        let compile = |rule: Value| Rule::compile(&rule, "f", &evaluators).unwrap_err();
        assert_eq!(
            compile(json!({"nope": [1]})),
            RuleError::UnknownOperator("nope".into())
        );
        assert_eq!(
            compile(json!({"$ref": "gone"})),
            RuleError::UnknownEvaluator("gone".into())
        );
        assert_eq!(
            compile(json!({"$ref": "loop"})),
            RuleError::CyclicEvaluator("loop".into())
        );
        assert_eq!(
            compile(json!({"$ref": 3})),
            RuleError::InvalidReference("3".into())
        );
    }
}
