//! `fractional`: deterministic percentage bucketing, as flagd does it.
//!
//! The bucketing key (the first argument when it is a string; otherwise the flag key followed by the
//! targeting key) is hashed with MurmurHash3 x86_32, seed 0, over its UTF-8 bytes. The unsigned hash is
//! scaled onto the total weight with integer arithmetic — `bucket = (hash * total) >> 32` — and the first
//! variant whose cumulative weight exceeds the bucket wins. This is flagd's current ("v2") bucketing; the
//! older float formula (`abs(signed hash) / i32::MAX * 100`) is gone from flagd and not implemented.

use std::borrow::Cow;
use std::io::{Cursor, Read};

use serde_json::Value;

/// flagd refuses a total weight above `i32::MAX`, which also keeps `hash * total` inside a `u64`.
const MAX_TOTAL_WEIGHT: u64 = i32::MAX as u64;

/// Picks a bucket for `args` (already evaluated). `targeting_key` and `flag_key` make the key of the
/// shorthand form, which has no explicit bucketing key. `None` when flagd would answer `null`: no usable
/// key, a malformed bucket, or weights that add up to nothing or too much.
pub fn pick<'v>(
    args: &[Cow<'v, Value>],
    targeting_key: Option<&str>,
    flag_key: &str,
) -> Option<Cow<'v, Value>> {
    let (first, rest) = args.split_first()?;
    let (key, buckets): ([&str; 2], &[Cow<'v, Value>]) = match first.as_ref() {
        Value::String(key) => ([key.as_str(), ""], rest),
        _ => (
            [flag_key, targeting_key.filter(|key| !key.is_empty())?],
            args,
        ),
    };
    if key.iter().all(|part| part.is_empty()) {
        return None;
    }

    let mut total: u64 = 0;
    for bucket in buckets {
        total = total.saturating_add(weight(bucket)?);
    }
    if total == 0 || total > MAX_TOTAL_WEIGHT {
        return None;
    }

    let point = (u64::from(hash_parts(key)) * total) >> 32;
    let mut end = 0;
    for bucket in buckets {
        end += weight(bucket)?;
        if point < end {
            return Some(variant(bucket));
        }
    }
    None
}

/// MurmurHash3 x86_32 with seed 0, the hash every flagd implementation uses.
pub fn hash(key: &str) -> u32 {
    hash_parts([key, ""])
}

/// The hash of two strings one after the other, without joining them first.
fn hash_parts([first, second]: [&str; 2]) -> u32 {
    let mut bytes = Cursor::new(first.as_bytes()).chain(Cursor::new(second.as_bytes()));
    murmur3::murmur3_32(&mut bytes, 0).expect("reading from memory cannot fail")
}

/// A bucket is `[variant]` (weight 1) or `[variant, weight]` with an integer weight; a negative weight
/// counts as 0 (it can come out of a ramp's arithmetic).
fn weight(bucket: &Value) -> Option<u64> {
    match bucket.as_array()?.as_slice() {
        [_] => Some(1),
        [_, Value::Number(n)] => match (n.as_i64(), n.as_u64()) {
            (Some(w), _) => Some(u64::try_from(w).unwrap_or(0)),
            (None, Some(w)) => Some(w),
            _ => None, // a fraction
        },
        _ => None,
    }
}

fn variant<'v>(bucket: &Cow<'v, Value>) -> Cow<'v, Value> {
    match bucket {
        Cow::Borrowed(Value::Array(items)) => Cow::Borrowed(&items[0]),
        other => Cow::Owned(
            other
                .as_array()
                .and_then(|items| items.first())
                .cloned()
                .unwrap_or_default(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(values: Value) -> Vec<Cow<'static, Value>> {
        values
            .as_array()
            .unwrap()
            .iter()
            .cloned()
            .map(Cow::Owned)
            .collect()
    }

    #[test]
    fn the_hash_is_murmur3_x86_32_seed_0() {
        // The testbed's edge keys: chosen so their hashes sit at the bucket boundaries.
        assert_eq!(hash("SI7p-"), 2_147_483_647);
        assert_eq!(hash("6LvT0"), 2_147_483_648);
        assert_eq!(hash("ceQdGm"), 4_294_967_295);
        assert_eq!(hash("ejOoVL"), 0);
    }

    #[test]
    fn hashing_two_parts_equals_hashing_them_joined() {
        let joined = "fractional-flag-shorthandjon@company.com";
        for split in 0..=joined.len() {
            let (a, b) = joined.split_at(split);
            assert_eq!(hash_parts([a, b]), hash(joined), "split at {split}");
        }
    }

    #[test]
    fn boundaries_split_exactly_at_half() {
        let buckets = json!([["lower", 50], ["upper", 50]]);
        for (key, expected) in [
            ("SI7p-", "lower"),
            ("6LvT0", "upper"),
            ("ceQdGm", "upper"),
            ("ejOoVL", "lower"),
        ] {
            let mut all = vec![Cow::Owned(json!(key))];
            all.extend(args(buckets.clone()));
            assert_eq!(
                pick(&all, None, "f").as_deref(),
                Some(&json!(expected)),
                "{key}"
            );
        }
    }

    #[test]
    fn shorthand_hashes_flag_key_then_targeting_key() {
        let buckets = args(json!([["heads"], ["tails", 1]]));
        let pick_for =
            |tk| pick(&buckets, Some(tk), "fractional-flag-shorthand").map(Cow::into_owned);
        assert_eq!(pick_for("jon@company.com"), Some(json!("heads")));
        assert_eq!(pick_for("jane@company.com"), Some(json!("tails")));
        assert_eq!(pick(&buckets, None, "f"), None);
    }

    #[test]
    fn malformed_buckets_and_empty_weights_give_null() {
        assert_eq!(
            pick(&args(json!(["k", ["a", 0], ["b", 0]])), None, "f"),
            None
        );
        assert_eq!(pick(&args(json!(["k", ["a", 1.5]])), None, "f"), None);
        assert_eq!(pick(&args(json!(["k", "a"])), None, "f"), None);
        assert_eq!(
            pick(&args(json!(["k", ["a", 2147483647], ["b", 1]])), None, "f"),
            None
        );
        assert_eq!(
            pick(&args(json!(["k", ["a", -50], ["b", 100]])), None, "f").as_deref(),
            Some(&json!("b"))
        );
    }
}
