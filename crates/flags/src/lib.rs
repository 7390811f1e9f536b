//! Feature flags for slipway: definitions in flagd's format and an evaluator with flagd's semantics.
//!
//! Flags separate *deploy* from *release*: code ships dark, then a flag releases it to a percentage of
//! users, and one command turns it off. The daemon stores flags per app, changes and audits them, and
//! serves them over OFREP; this crate is the part with no IO — definitions, validation, and evaluation.
//! It is flagd-compatible so existing flagd files move over unchanged and every targeting key lands in
//! the same `fractional` bucket flagd would put it in.
//!
//! Pure: no IO, no clock (the caller passes `now_unix`, which rules see as `$flagd.timestamp`), no async.
//! Targeting rules are compiled once, when a flag is inserted, into a tree that evaluation walks.
//!
//! ```
//! use slipway_flags::{EvaluationContext, FlagSet, Reason};
//!
//! let set = FlagSet::from_flagd_json(r#"{"flags": {"new-checkout": {
//!     "state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
//!     "targeting": {"fractional": [["on", 10], ["off", 90]]}}}}"#).unwrap();
//! let context = EvaluationContext::new().with_targeting_key("user-42");
//! let result = set.evaluate("new-checkout", &context, 1_764_460_800);
//! assert_eq!(result.reason, Reason::TargetingMatch);
//! ```

mod context;
mod definition_error;
mod evaluation;
mod flag;
mod flag_set;
mod flagd_format;
mod metadata;
pub mod ramp;
pub mod targeting;
mod value;

pub use context::{EvaluationContext, TARGETING_KEY};
pub use definition_error::{DefinitionError, FlagProblem};
pub use evaluation::{ErrorCode, Evaluation, EvaluationError, Reason};
pub use flag::{Flag, FlagState};
pub use flag_set::FlagSet;
pub use flagd_format::{flag_from_flagd, flag_to_flagd};
pub use metadata::{Metadata, MetadataValue};
pub use value::{FlagValue, MAX_SAFE_INTEGER, RequestedType, VariantType};
