//! Rates written as percentages, `"1%"` or `"0.5%"`, read as fractions (0.01, 0.005).
//!
//! Why a string with `%` rather than a float: `max = 0.01` reads as "one hundredth" to some and as
//! "0.01 %" to others. The `%` says which, and the spec stores the unambiguous fraction.

/// `"1%"` → 0.01; more than 0 and at most 100 %. The error is a message fragment.
pub(crate) fn parse_rate(text: &str) -> Result<f64, &'static str> {
    let t = text.trim();
    let Some(number) = t.strip_suffix('%') else {
        return Err(if t.parse::<f64>().is_ok() {
            "needs a `%`"
        } else {
            "is not a percentage"
        });
    };
    let number = number.trim();
    // Plain decimal notation only: no "inf", "nan", "1e2" or signs.
    let plain = !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit() || c == '.')
        && number.matches('.').count() <= 1
        && !number.starts_with('.')
        && !number.ends_with('.');
    match number.parse::<f64>() {
        Ok(p) if plain && p > 0.0 && p <= 100.0 => Ok(p / 100.0),
        Ok(_) if plain => Err("must be more than 0% and at most 100%"),
        _ if number.starts_with('-') => Err("must be more than 0% and at most 100%"),
        _ => Err("is not a percentage"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_to_fractions() {
        assert_eq!(parse_rate("1%"), Ok(0.01));
        assert_eq!(parse_rate("0.5%"), Ok(0.005));
        assert_eq!(parse_rate(" 100% "), Ok(1.0));
        assert_eq!(parse_rate("2.5 %"), Ok(0.025));
    }

    #[test]
    fn bad_rates_say_why() {
        assert_eq!(
            parse_rate("0%"),
            Err("must be more than 0% and at most 100%")
        );
        assert_eq!(
            parse_rate("150%"),
            Err("must be more than 0% and at most 100%")
        );
        assert_eq!(
            parse_rate("-1%"),
            Err("must be more than 0% and at most 100%")
        );
        assert_eq!(parse_rate("1"), Err("needs a `%`"));
        assert_eq!(parse_rate("0.01"), Err("needs a `%`"));
        for bad in ["abc", "%", "inf%", "1e1%", ".5%", "1.%", "1.2.3%"] {
            assert_eq!(parse_rate(bad), Err("is not a percentage"), "{bad}");
        }
    }
}
