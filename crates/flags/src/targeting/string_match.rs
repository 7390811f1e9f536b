//! `starts_with` and `ends_with`: flagd's string operators.
//!
//! They take exactly two strings. On anything else they answer `null`, not `false`: a rule used
//! directly as targeting would otherwise select a variant named "false" that usually does not exist.

use std::borrow::Cow;

use serde_json::Value;

pub fn starts_with(args: &[Cow<'_, Value>]) -> Option<bool> {
    let (text, affix) = two_strings(args)?;
    Some(text.starts_with(affix))
}

pub fn ends_with(args: &[Cow<'_, Value>]) -> Option<bool> {
    let (text, affix) = two_strings(args)?;
    Some(text.ends_with(affix))
}

fn two_strings<'v>(args: &'v [Cow<'_, Value>]) -> Option<(&'v str, &'v str)> {
    match args {
        [text, affix] => Some((text.as_str()?, affix.as_str()?)),
        _ => None,
    }
}
