//! Instance amounts for rolling updates: an integer (`1`) or a percentage of the replicas (`"25%"`).

use crate::report::Report;
use crate::table::Section;
use slipway_core::spec::Amount;
use toml::Spanned;
use toml::de::DeValue;

const HELP: &str = "write an integer like 1, or a percentage of the replicas like \"25%\"";

/// Reads `key` of `section` as an [`Amount`]; `None` when absent or reported as invalid.
pub(crate) fn read(r: &mut Report, section: &Section, key: &str) -> Option<Spanned<Amount>> {
    let value = section.get(key)?;
    let span = value.span();
    let amount = match value.get_ref() {
        DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix())
            .ok()
            .map(u32::try_from)
        {
            Some(Ok(n)) => Amount::Count(n),
            _ => {
                r.error(span, format!("{} cannot be negative", section.key_ref(key)))
                    .help(HELP);
                return None;
            }
        },
        DeValue::String(s) => match parse_percent(s) {
            Ok(p) => Amount::Percent(p),
            Err(problem) => {
                r.error(span, format!("{} {problem}: \"{s}\"", section.key_ref(key)))
                    .label("not an amount")
                    .help(HELP);
                return None;
            }
        },
        _ => {
            section
                .wrong_type(r, key, value, "an integer or a percentage")
                .help(HELP);
            return None;
        }
    };
    Some(Spanned::new(span, amount))
}

/// `"25%"` → 25. The error is a message fragment.
fn parse_percent(text: &str) -> Result<u32, &'static str> {
    let t = text.trim();
    let Some(number) = t.strip_suffix('%') else {
        return Err(if t.parse::<u32>().is_ok() {
            "is a number in quotes (remove the quotes, or add `%`)"
        } else {
            "is not an integer or a percentage"
        });
    };
    match number.trim().parse::<i64>() {
        Ok(p) if (0..=100).contains(&p) => Ok(p as u32),
        Ok(_) => Err("must be a percentage between 0% and 100%"),
        Err(_) => Err("is not a whole percentage"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_parse_within_bounds() {
        assert_eq!(parse_percent("25%"), Ok(25));
        assert_eq!(parse_percent("0%"), Ok(0));
        assert_eq!(parse_percent("100%"), Ok(100));
        assert!(parse_percent("150%").is_err());
        assert!(parse_percent("-5%").is_err());
        assert!(parse_percent("2.5%").is_err());
        assert!(parse_percent("abc").is_err());
        assert!(parse_percent("25").is_err());
    }
}
