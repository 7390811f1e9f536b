//! "Did you mean ...?" for misspelled keys and values.

/// The candidate closest to `input`, if it is close enough to be a plausible typo.
///
/// Case, `-` versus `_`, and a missing tail (`drain` for `drain_timeout`) are all treated as near.
pub(crate) fn closest<'c>(input: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let norm = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    let input_n = norm(input);
    let mut best: Option<(usize, &'c str)> = None;
    for &candidate in candidates {
        let cand_n = norm(candidate);
        let distance = strsim::damerau_levenshtein(&input_n, &cand_n);
        let limit = match cand_n.chars().count() {
            0..=3 => 1,
            4..=7 => 2,
            _ => 3,
        };
        let prefix =
            input_n.len() >= 4 && (cand_n.starts_with(&input_n) || input_n.starts_with(&cand_n));
        let score = if distance <= limit {
            distance
        } else if prefix {
            limit + 1
        } else {
            continue;
        };
        if best.is_none_or(|(s, _)| score < s) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// `"a", "b" or "c"` / `` `a`, `b` or `c` ``, for listing the valid choices.
pub(crate) fn one_of(items: &[&str], quote: char) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("{quote}{i}{quote}")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &[&str] = &[
        "cmd",
        "replicas",
        "grace",
        "drain_timeout",
        "stream_drain_timeout",
        "readiness",
    ];

    #[test]
    fn typos_find_their_key() {
        assert_eq!(closest("replica", KEYS), Some("replicas"));
        assert_eq!(closest("replicsa", KEYS), Some("replicas"));
        assert_eq!(closest("drain-timeout", KEYS), Some("drain_timeout"));
        assert_eq!(closest("Grace", KEYS), Some("grace"));
        assert_eq!(closest("drain", KEYS), Some("drain_timeout"));
        assert_eq!(closest("redyness", KEYS), Some("readiness"));
    }

    #[test]
    fn unrelated_words_find_nothing() {
        assert_eq!(closest("image", KEYS), None);
        assert_eq!(closest("x", KEYS), None);
        assert_eq!(closest("command", &["cmd"]), None);
    }

    #[test]
    fn lists_read_naturally() {
        assert_eq!(
            one_of(&["rolling", "blue-green", "recreate"], '"'),
            "\"rolling\", \"blue-green\" or \"recreate\""
        );
        assert_eq!(one_of(&["http"], '`'), "`http`");
    }
}
