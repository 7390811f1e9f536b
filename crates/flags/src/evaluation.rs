//! The result of evaluating a flag, with flagd's reasons and error codes.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::Value;

use crate::context::EvaluationContext;
use crate::flag::{Flag, FlagState};
use crate::metadata::Metadata;
use crate::targeting::{Rule, RuleError};
use crate::value::{FlagValue, RequestedType};

/// Why a value was served (OpenFeature's reasons, as flagd uses them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No targeting: the default variant.
    Static,
    /// Targeting ran but picked nothing (`null`), or there is no default variant to be static about.
    Default,
    TargetingMatch,
    Disabled,
    Error,
}

/// OpenFeature's error codes. `TargetingKeyMissing` is never produced by evaluation — flagd, too, falls
/// back to the default when `fractional` has no key — but belongs to the protocol the daemon speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    FlagNotFound,
    ParseError,
    TypeMismatch,
    TargetingKeyMissing,
    InvalidContext,
    General,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvaluationError {
    pub code: ErrorCode,
    pub message: String,
}

/// One flag's evaluation. It borrows from the [`crate::FlagSet`], so evaluating allocates nothing
/// unless the rule builds strings or an error message is needed.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation<'a> {
    /// `None` when the caller's own default applies: disabled flag, no default variant, or an error.
    pub value: Option<&'a FlagValue>,
    pub variant: Option<&'a str>,
    pub reason: Reason,
    pub error: Option<EvaluationError>,
    /// The flag set's metadata overridden by the flag's; empty for an unknown flag.
    pub metadata: &'a Metadata,
}

static NO_METADATA: Metadata = BTreeMap::new();

impl<'a> Evaluation<'a> {
    pub fn failed(code: ErrorCode, message: impl Into<String>, metadata: &'a Metadata) -> Self {
        let error = Some(EvaluationError {
            code,
            message: message.into(),
        });
        Evaluation {
            value: None,
            variant: None,
            reason: Reason::Error,
            error,
            metadata,
        }
    }

    pub fn not_found(key: &str) -> Self {
        Evaluation::failed(
            ErrorCode::FlagNotFound,
            format!("flag \"{key}\" does not exist"),
            &NO_METADATA,
        )
    }

    /// Checks the served value against the type the caller asked for (OpenFeature's typed resolve
    /// methods). The caller's own default is never a mismatch.
    pub fn expecting(self, requested: RequestedType) -> Self {
        match self.value {
            Some(value) if !value.fits(requested) => {
                let found = value.variant_type();
                let message = format!("the flag serves a {found} value, not a {requested}");
                Evaluation::failed(ErrorCode::TypeMismatch, message, self.metadata)
            }
            _ => self,
        }
    }
}

/// flagd's decision procedure for one flag. `rule` is the flag's compiled active targeting.
pub(crate) fn evaluate<'a>(
    key: &'a str,
    flag: &'a Flag,
    rule: Option<&'a Result<Rule, RuleError>>,
    metadata: &'a Metadata,
    context: &EvaluationContext,
    now_unix: i64,
) -> Evaluation<'a> {
    if flag.state == FlagState::Disabled {
        return Evaluation {
            value: None,
            variant: None,
            reason: Reason::Disabled,
            error: None,
            metadata,
        };
    }
    let rule = match rule {
        None => return default(flag, Reason::Static, metadata),
        Some(Err(problem)) => {
            return Evaluation::failed(
                ErrorCode::ParseError,
                format!("invalid targeting: {problem}"),
                metadata,
            );
        }
        Some(Ok(rule)) => rule,
    };
    let result = rule.evaluate(context, key, now_unix);
    let name: Cow<'_, str> = match &*result {
        Value::Null => return default(flag, Reason::Default, metadata),
        // flagd reads a boolean result as the variant named "true" or "false".
        Value::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        Value::String(name) => Cow::Borrowed(name),
        Value::Number(n) => Cow::Owned(n.to_string()),
        other => {
            let message = format!(
                "targeting returned {}, not a variant name",
                crate::value::json_kind(other)
            );
            return Evaluation::failed(ErrorCode::General, message, metadata);
        }
    };
    match flag.variants.get_key_value(name.as_ref()) {
        Some((variant, value)) => Evaluation {
            value: Some(value),
            variant: Some(variant),
            reason: Reason::TargetingMatch,
            error: None,
            metadata,
        },
        None => {
            let message =
                format!("targeting picked variant \"{name}\", which the flag does not have");
            Evaluation::failed(ErrorCode::General, message, metadata)
        }
    }
}

fn default<'a>(flag: &'a Flag, reason: Reason, metadata: &'a Metadata) -> Evaluation<'a> {
    // Validation guarantees a named default variant exists.
    match flag
        .default_variant
        .as_ref()
        .and_then(|name| flag.variants.get_key_value(name))
    {
        Some((variant, value)) => Evaluation {
            value: Some(value),
            variant: Some(variant),
            reason,
            error: None,
            metadata,
        },
        None => Evaluation {
            value: None,
            variant: None,
            reason: Reason::Default,
            error: None,
            metadata,
        },
    }
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Static => "STATIC",
            Reason::Default => "DEFAULT",
            Reason::TargetingMatch => "TARGETING_MATCH",
            Reason::Disabled => "DISABLED",
            Reason::Error => "ERROR",
        }
    }
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::FlagNotFound => "FLAG_NOT_FOUND",
            ErrorCode::ParseError => "PARSE_ERROR",
            ErrorCode::TypeMismatch => "TYPE_MISMATCH",
            ErrorCode::TargetingKeyMissing => "TARGETING_KEY_MISSING",
            ErrorCode::InvalidContext => "INVALID_CONTEXT",
            ErrorCode::General => "GENERAL",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for EvaluationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for EvaluationError {}
