//! `starts_with` and `ends_with`: flagd's string operators.
//!
//! They take exactly two strings (the caller checks the count). On anything else they answer `null`, not `false`: a rule used
//! directly as targeting would otherwise select a variant named "false" that usually does not exist.

use serde_json::Value;

pub fn starts_with(text: &Value, prefix: &Value) -> Option<bool> {
    Some(text.as_str()?.starts_with(prefix.as_str()?))
}

pub fn ends_with(text: &Value, suffix: &Value) -> Option<bool> {
    Some(text.as_str()?.ends_with(suffix.as_str()?))
}
